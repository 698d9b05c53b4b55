"""``make slides``: a reveal.js deck per notebook, a lecture path through it.

Slide structure is derived here, at build time, by rule; nothing is stored in
the notebooks:

* a ``#`` or ``##`` Markdown heading starts a slide, ``###`` a sub-slide
  (a vertical slide under the current one);
* exercises are left out: cells tagged ``solution``, ``check`` or ``hidden``,
  and every cell of an ``Exercise`` section (a ``## Exercises`` section shows
  only its heading slide, pointing to the notebook);
* long code (more than :data:`LONG_CODE` lines) is left out: its figures and
  short printed results stay, without the code; long code with nothing to
  show is skipped;
* a slide that grows past :data:`SLIDE_LINES` lines continues on a sub-slide.

Decks come from the executed copies (``build/executed/<mode>/``) when there
are any, with their outputs, in the student structure (see
:func:`course_tools.book.site.student_view`); otherwise from the committed
notebooks, without outputs. They are written by nbconvert's ``SlidesExporter``
(what ``jupyter nbconvert --to slides`` runs) with a template that loads
reveal.js 4, require.js and MathJax 3 from local copies in ``_static/``
(npm, pinned versions: :data:`course_tools.book.assets.NPM_PACKAGES`).

``python -m course_tools.book slides [--out build/slides] [NN ...]``
"""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path

import nbformat

from course_tools.book.assets import REVEAL_THEME, copy_mathjax, copy_requirejs, copy_reveal
from course_tools.book.executed import default_fast, executed_dir
from course_tools.book.site import DATASETS, ROOT, _link_mapper, _repo_url, _tags, datasets_used, student_view

from course_tools.nbtools import notebook_scripts

__all__ = ["LONG_CODE", "SLIDE_LINES", "slide_notebook", "build_slides", "remote_urls"]

LONG_CODE = 12
SLIDE_LINES = 24
TEMPLATES = Path(__file__).resolve().parent / "templates"
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_EXERCISE = re.compile(r"\bexercises?\b", re.I)


def _heading(cell) -> tuple[int, str] | None:
    if cell.cell_type != "markdown":
        return None
    first = cell.source.lstrip().splitlines()[0] if cell.source.strip() else ""
    m = _HEADING.match(first)
    return (len(m.group(1)), m.group(2)) if m else None


def _output_lines(cell) -> int:
    n = 0
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if any(k.startswith("image/") for k in data):
            n += 14
        elif "text/html" in data:
            n += min(14, str(data["text/html"]).count("<tr") + 2)
        else:
            text = out.get("text") or data.get("text/plain", "")
            n += min(14, str(text).count("\n") + 1)
    return n


def _has_figure(cell) -> bool:
    return any(k.startswith("image/") for o in cell.get("outputs", []) for k in o.get("data", {}))


def slide_notebook(nb) -> nbformat.NotebookNode:
    """``nb`` (a new object) with ``slideshow`` metadata on every cell and long code's input hidden."""
    nb = copy.deepcopy(nb)
    in_exercises = None  # level of the exercise section we are in, if any
    used = 0
    started = False
    for cell in nb.cells:
        meta = cell.metadata
        head = _heading(cell)
        kind = "-"
        if head:
            level, text = head
            if in_exercises is not None and level <= in_exercises and not _EXERCISE.search(text):
                in_exercises = None
            if in_exercises is None and _EXERCISE.search(text) and level <= 3:
                in_exercises = level
                # an "Exercises" section keeps its heading slide only; "### Exercise 3" is left out
                if level <= 2:
                    kind, used, started = "slide", 0, True
                    cell.source = cell.source.lstrip().splitlines()[0] + \
                        "\n\nThe exercises and their self-checks are in the notebook."
                    meta["slideshow"] = {"slide_type": kind}
                    continue
                kind = "skip"
            elif in_exercises is not None:
                kind = "skip"
            elif level <= 2 or not started:
                kind, used, started = "slide", 0, True
            elif level == 3:
                kind, used = "subslide", 0
        elif in_exercises is not None:
            kind = "skip"
        elif cell.cell_type == "code" and set(_tags(cell)) & {"solution", "check", "hidden"}:
            kind = "skip"
        elif cell.cell_type == "code" and not cell.get("outputs") and cell.source.count("\n") + 1 > LONG_CODE:
            kind = "skip"
        if kind != "skip":
            if cell.cell_type == "code" and cell.source.count("\n") + 1 > LONG_CODE:
                meta.setdefault("tags", [])
                meta["tags"] = [*meta["tags"], "course-slides-hide-input"]
                lines = _output_lines(cell)
            elif cell.cell_type == "code":
                lines = cell.source.count("\n") + 1 + _output_lines(cell)
            else:
                lines = cell.source.count("\n") + 1
            if kind == "-" and started and used and used + lines > SLIDE_LINES:
                kind = "subslide"
                used = 0
            if not started:
                kind, started = "slide", True
            used += lines
        meta["slideshow"] = {"slide_type": kind}
    return nb


def _deck_notebook(nb, name: str = "") -> nbformat.NotebookNode:
    """Student structure, a short stamp on the title slide, and a closing slide with the data licences.

    Links to files of the repository point to the forge (a deck is a single file, published anywhere)."""
    stamp = nb.metadata.get("course_executed") or {}
    view = student_view(nb, links=_link_mapper(f"notebooks/{name}.ipynb", None, [], _repo_url()))
    at = next((i for i, c in enumerate(view.cells) if _heading(c) and _heading(c)[0] == 1), -1)
    if stamp:
        mode = "fast mode" if stamp.get("fast_mode") else "full runs"
        note = (f"<small>Outputs computed {stamp.get('executed_at', '?')[:10]} on {stamp.get('device', '?')}, "
                f"{mode}" + ("; replaced by fallbacks: " + ", ".join(r["dataset"] for r in stamp["replaced"])
                             if stamp.get("replaced") else "") + ".</small>")
        view.cells.insert(at + 1, nbformat.v4.new_markdown_cell(note))
    used = datasets_used(nb)
    if used:
        rows = "\n".join(f"- **{DATASETS[k][0]}**: {DATASETS[k][2]}" for k in used)
        view.cells.append(nbformat.v4.new_markdown_cell(
            "## Data: licences and attribution\n\nThe face photographs are of real people, shown only as far "
            "as the course needs them.\n\n" + rows))
    for i, c in enumerate(view.cells):
        c.id = f"deck-{i}"
    return view


def _exporter(prefix: str):
    from nbconvert.exporters import SlidesExporter
    from traitlets.config import Config

    c = Config()
    c.SlidesExporter.reveal_url_prefix = f"{prefix}/reveal.js"
    c.SlidesExporter.reveal_theme = REVEAL_THEME
    c.SlidesExporter.reveal_number = "c/t"
    c.SlidesExporter.require_js_url = f"{prefix}/require.js"
    c.SlidesExporter.mathjax_url = f"{prefix}/mathjax/tex-chtml-full.js"
    c.SlidesExporter.jquery_url = ""
    c.SlidesExporter.mermaid_js_url = ""
    c.SlidesExporter.extra_template_basedirs = [str(TEMPLATES)]
    c.SlidesExporter.template_name = "course_reveal"
    c.SlidesExporter.exclude_input_prompt = True
    c.SlidesExporter.exclude_output_prompt = True
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_input_tags = {"course-slides-hide-input"}
    return SlidesExporter(config=c)


_REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*((?:https?:)?//[^"'\s>]+)""", re.I)
_CSS_REMOTE = re.compile(r"""(?:@import\s+(?:url\()?|url\()\s*["']?((?:https?:)?//[^"')\s]+)""", re.I)


def remote_urls(html: str, *, allow_links: bool = True) -> list[str]:
    """Remote URLs the page would *load* (``src``, stylesheets, CSS ``url()``/``@import``, scripts).

    With ``allow_links``, ``<a href>`` links (citations, sources) are allowed:
    following them is the reader's choice, and nothing is fetched to show the page.
    """
    found = []
    for m in re.finditer(r"<(?P<tag>[a-zA-Z]+)\b[^>]*>", html):
        tag = m.group("tag").lower()
        for u in _REMOTE.finditer(m.group(0)):
            if allow_links and tag == "a":
                continue
            found.append(u.group(1))
    found += [u.group(1) for u in _CSS_REMOTE.finditer(html)]
    found += re.findall(r"""(?:import|require\()\s*\(?\s*["']((?:https?:)?//[^"']+)""", html)
    return found


def build_slides(root: str | Path = ROOT, out: str | Path | None = None, *, names: list[str] | None = None,
                 fast: bool | None = None, quiet: bool = False) -> list[Path]:
    """Write ``NN_name.slides.html`` for each notebook (or those whose names start with ``names``) to ``out``."""
    root = Path(root).resolve()
    out = Path(out).resolve() if out else root / "build" / "slides"
    exe_dir = executed_dir(root, fast=default_fast() if fast is None else fast)
    static = out / "_static"
    copy_reveal(static / "reveal.js", root)
    copy_requirejs(static, root)
    copy_mathjax(static / "mathjax", root)
    exporter = _exporter("_static")
    written = []
    for script in notebook_scripts(root / "notebooks"):
        if names and not any(script.stem.startswith(n) for n in names):
            continue
        t0 = time.time()
        executed = exe_dir / f"{script.stem}.ipynb"
        source = executed if executed.is_file() else script.with_suffix(".ipynb")
        nb = slide_notebook(_deck_notebook(nbformat.read(source, as_version=4), script.stem))
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": script.stem}})
        target = out / f"{script.stem}.slides.html"
        target.write_text(body, encoding="utf-8")
        written.append(target)
        n = sum(c.metadata["slideshow"]["slide_type"] in ("slide", "subslide") for c in nb.cells)
        if not quiet:
            print(f"[slides] {target.relative_to(root) if target.is_relative_to(root) else target}: {n} slides "
                  f"from {'executed copy' if source == executed else 'notebook without outputs'} "
                  f"({time.time() - t0:.1f} s)", flush=True)
    index = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Slides</title></head><body>",
             "<h1>Lecture slides</h1><ul>"]
    index += [f"<li><a href='{p.name}'>{p.name.removesuffix('.slides.html')}</a></li>" for p in written]
    index += ["</ul><p>Arrow keys move; <kbd>s</kbd> opens the speaker notes; <kbd>Esc</kbd> the overview.</p>",
              "</body></html>"]
    (out / "index.html").write_text("\n".join(index), encoding="utf-8")
    return written
