"""`make slides`: every notebook becomes a reveal.js deck that works offline.

Marked ``book`` so that, in a full run, the decks are built after the
notebook tests saved their executed copies (``build/executed/fast``); on its
own it builds from whatever copies exist, else from the committed notebooks.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from course_tools.book.site import DATASETS, _repo_url
from course_tools.book.slides import build_slides, remote_urls, slide_notebook
from course_tools.nbtools import notebook_scripts

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [p.stem for p in notebook_scripts(ROOT / "notebooks")]

pytestmark = pytest.mark.book


@pytest.fixture(scope="module")
def decks(tmp_path_factory) -> dict[str, Path]:
    import shutil

    from course_tools.book.assets import NPM_PACKAGES

    if not shutil.which("npm") and not (ROOT / ".cache" / "book" / "node_modules" / "reveal.js").is_dir():
        pytest.skip(f"npm is missing: install Node.js to build the slides (local {', '.join(NPM_PACKAGES)})")
    out = tmp_path_factory.mktemp("slides")
    return {p.name.removesuffix(".slides.html"): p for p in build_slides(ROOT, out, fast=True)}


def _content_links() -> set[str]:
    """URLs written in the notebooks' Markdown and in the licence notes: links a reader may follow."""
    text = "\n".join(c.source for n in NOTEBOOKS
                     for c in nbformat.read(ROOT / "notebooks" / f"{n}.ipynb", as_version=4).cells
                     if c.cell_type == "markdown")
    text += "\n".join(d[2] for d in DATASETS.values())
    return set(re.findall(r"https?://[^\s)>\]\"']+", text))


def _allowed(href: str, allowed: set[str]) -> bool:
    """A link written in the text, or (rewritten from a relative link) to a file of the course repository."""
    return href.startswith(_repo_url() + "/") or unquote(href).rstrip("/.") in {u.rstrip("/.") for u in allowed}


def test_every_notebook_has_a_deck_with_slides(decks):
    assert sorted(decks) == NOTEBOOKS
    for name, path in decks.items():
        html = path.read_text(encoding="utf-8")
        assert html.count("<section") >= 3, f"{name}: too few slides"
        assert "Reveal.initialize" in html
        assert "BEGIN SOLUTION" not in html and "BEGIN HIDDEN TESTS" not in html, name


def test_decks_load_nothing_remote(decks):
    allowed = _content_links()
    for name, path in decks.items():
        html = path.read_text(encoding="utf-8")
        assert remote_urls(html) == [], f"{name} loads remote resources"
        for href in re.findall(r"<a\b[^>]*href=\"(https?://[^\"]+)\"", html):  # only links from the text
            assert _allowed(href, allowed), f"{name}: unexpected link {href}"
        for css in (path.parent / "_static").rglob("*.css"):
            assert remote_urls(css.read_text(encoding="utf-8")) == [], css


def test_local_assets_exist(decks):
    for name, path in decks.items():
        html = path.read_text(encoding="utf-8")
        refs = re.findall(r"(?:src|href)=\"([^\"#]+)\"", html)
        refs += re.findall(r"\"([^\"]*_static/reveal\.js)[^\"]*\"", html)
        for ref in refs:
            if urlsplit(ref).scheme or ref.startswith(("data:", "//")):
                continue
            assert (path.parent / unquote(ref)).exists(), f"{name}: missing {ref}"
        assert (path.parent / "_static" / "reveal.js" / "dist" / "reveal.js").is_file()
        assert (path.parent / "_static" / "reveal.js" / "plugin" / "notes" / "notes.js").is_file()


def test_slide_rules():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_markdown_cell("## Part one\n\ntext"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("### Detail"),
        nbformat.v4.new_code_cell("\n".join(f"line{i} = {i}" for i in range(40))),
        nbformat.v4.new_code_cell("\n".join(f"y{i} = {i}" for i in range(40)),
                                  outputs=[nbformat.v4.new_output("display_data", data={"image/png": "iVBOR"})]),
        nbformat.v4.new_markdown_cell("## Exercises"),
        nbformat.v4.new_markdown_cell("### Exercise 1 (2 points)"),
        nbformat.v4.new_code_cell("def f():\n    pass", metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("assert f() is None", metadata={"tags": ["check"]}),
    ]
    kinds = [c.metadata["slideshow"]["slide_type"] for c in slide_notebook(nb).cells]
    assert kinds == ["slide", "slide", "-", "subslide", "skip", "-", "slide", "skip", "skip", "skip"]
    hidden = slide_notebook(nb).cells[5].metadata["tags"]
    assert "course-slides-hide-input" in hidden  # long code with a figure: the figure stays, the code goes
    assert not any("slideshow" in c.metadata for c in nb.cells)  # the notebook itself is untouched
