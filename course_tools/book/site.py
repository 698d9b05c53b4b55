"""``make book``: a static site of the course with executed outputs (Sphinx + MyST-NB).

Sources (written fresh to ``build/book/src`` on every build):

* the landing page: the README's introduction and course table, each
  notebook linked to its page;
* one page per notebook, from the *executed copy* the notebook tests saved
  (``build/executed/<mode>/``, see :mod:`course_tools.book.executed`), in
  the student structure: solution cells stubbed as in the student release
  (their outputs dropped), hidden tests removed, every other cell with its
  outputs; a box with the environment stamp and the data sets replaced, and
  the licences of the real data the page shows;
* ``docs/instructor_guide.md``, ``data/README.md`` and ``docs/models/*.md``.

Why Sphinx + MyST-NB: pure Python wheels from PyPI, builds offline (Jupyter
Book 2 / mystmd downloads its theme at build time), renders stored outputs
without executing (``nb_execution_mode = "off"``), writes figures as image
files, and reads the MyST/Markdown the course already uses. MathJax is served
from a local copy (npm, pinned), not a CDN.

``python -m course_tools.book site [--out build/site] [--no-execute]``
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from course_tools.book.executed import default_fast, executed_dir
from course_tools.grading.release import student_notebook

from course_tools.nbtools import notebook_scripts

__all__ = ["DATASETS", "student_view", "page_notebook", "stamp_markdown", "data_markdown", "landing_page", "prepare_sources",
           "ensure_executed", "build_site", "datasets_used"]

ROOT = Path(__file__).resolve().parents[2]
TITLE = "Modern CNNs, transfer learning and face recognition"
WIDGET_MIMES = ("application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json")

#: Real data sets a page may show: name, marker key, code pattern, licence / attribution line.
DATASETS = {
    "orl_faces": ("ORL / AT&T Database of Faces", re.compile(r"[\"']orl[\"']|orl_faces|load_orl"),
                  "Olivetti Research Laboratory (AT&T Laboratories Cambridge), free for research and teaching "
                  "with credit; cite F. Samaria and A. Harter, *Parameterisation of a stochastic model for human "
                  "face identification*, IEEE WACV 1994."),
    "fairface": ("FairFace", re.compile(r"fairface", re.I),
                 "images licensed [CC BY 4.0](https://creativecommons.org/licenses/by/4.0/); K. Kärkkäinen and "
                 "J. Joo, *FairFace: Face Attribute Dataset for Balanced Race, Gender, and Age for Bias Measurement "
                 "and Mitigation*, WACV 2021 (<https://github.com/joojs/fairface>). Changes: images resized (and "
                 "cropped or augmented where the notebook says so)."),
    "utkface": ("UTKFace", re.compile(r"utkface", re.I),
                "**non-commercial research and teaching only**; the images' copyright stays with their owners. "
                "Z. Zhang, Y. Song and H. Qi, *Age Progression/Regression by Conditional Adversarial "
                "Autoencoder*, CVPR 2017."),
    "lfw": ("Labeled Faces in the Wild", re.compile(r"[\"']lfw[\"']|load_lfw_(people|pairs)"),
            "news photos provided for research; G. B. Huang, M. Ramesh, T. Berg and E. Learned-Miller, "
            "*Labeled Faces in the Wild*, UMass Amherst TR 07-49, 2007."),
    "cifar10": ("CIFAR-10", re.compile(r"cifar10|load_cifar"),
                "A. Krizhevsky, *Learning Multiple Layers of Features from Tiny Images*, 2009."),
    "fashion_mnist": ("FashionMNIST", re.compile(r"fashion_mnist"),
                      "MIT licence; H. Xiao, K. Rasul and R. Vollgraf, *Fashion-MNIST*, 2017."),
}
_REAL_NAMES = {"orl_faces": ("ORL",), "fairface": ("FairFace",), "utkface": ("UTKFace",), "lfw": ("LFW", "Labeled"),
               "cifar10": ("CIFAR-10",), "fashion_mnist": ("FashionMNIST",)}


# --------------------------------------------------------------------------- pages
def _tags(cell) -> list[str]:
    from course_tools.grading.spec import tags

    return tags(cell)


def datasets_used(nb) -> list[str]:
    """Keys of :data:`DATASETS` that ``nb``'s code cells load (a source scan)."""
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return [k for k, (_, pattern, _) in DATASETS.items() if pattern.search(code)]


def stamp_markdown(stamp: dict | None) -> str:
    """The environment box shown at the top of a notebook page."""
    if not stamp:
        return (":::{admonition} How these outputs were computed\n:class: warning course-stamp\n"
                "No environment stamp: this copy was not saved by the course's notebook harness.\n:::")
    fast = stamp.get("fast_mode")
    device = stamp.get("device", "?") + (f" ({stamp['gpu']})" if stamp.get("gpu") else
                                         f" ({stamp.get('cpu_threads', '?')} CPU threads)")
    present = [DATASETS[k][0] for k, v in stamp.get("datasets", {}).items() if v and k in DATASETS]
    lines = [
        ":::{admonition} How these outputs were computed",
        ":class: note course-stamp",
        f"- **when**: {stamp.get('executed_at', '?')} ({stamp.get('duration_s', '?')} s)",
        f"- **device**: {device}; Python {stamp.get('python', '?')}, torch {stamp.get('torch', '?')}, "
        f"{stamp.get('platform', '?')}",
        "- **mode**: " + ("fast (`COURSE_FAST=1`): small data, few epochs; numbers are smaller than in full runs"
                          if fast else "full (`COURSE_FAST=0`): full-size runs"),
        "- **real data found**: " + (", ".join(present) if present else "none (embedded fallbacks only)"),
    ]
    replaced = stamp.get("replaced") or []
    lines.append("- **replaced by fallbacks**: " + ("; ".join(f"{r['dataset']} → {r['replaced_by']}" for r in replaced)
                                                     if replaced else "none"))
    if stamp.get("failed_cells"):
        lines.append(f"- **failing cells** (code cell numbers): {stamp['failed_cells']}")
    lines.append("")
    lines.append("Exercises appear as students get them: the solution cells are stubs and their outputs are "
                 "left out; run the notebook to do them.")
    lines.append(":::")
    return "\n".join(lines)


def data_markdown(used: list[str], stamp: dict | None) -> str:
    """Licence and attribution box for the real data sets a page shows ('' when none)."""
    if not used:
        return ""
    stamp = stamp or {}
    present = stamp.get("datasets", {})
    replaced_text = " ".join(r["dataset"] for r in stamp.get("replaced") or [])
    rows = []
    for key in used:
        name, _, licence = DATASETS[key]
        shown = present.get(key, False) and not any(n in replaced_text for n in _REAL_NAMES[key])
        state = "" if shown else " *(not present when this page was built: replaced, no images of it appear)*"
        rows.append(f"- **{name}**{state}: {licence}")
    return "\n".join([
        ":::{admonition} Data on this page: licences and attribution",
        ":class: tip course-data-licence",
        "The face photographs are of real people and are shown only as far as the course needs them.",
        "",
        *rows,
        "",
        "Details and download instructions: [the data sets page](../data.md).",
        ":::",
    ])


def _clean_output(out):
    data = out.get("data")
    if data and any(m in data for m in WIDGET_MIMES):
        for m in WIDGET_MIMES:
            data.pop(m, None)
        data["text/plain"] = "[an interactive widget: open the notebook in JupyterLab or Colab to use it]"
    return out


def student_view(nb, *, links=None) -> nbformat.NotebookNode:
    """The executed notebook in the student structure, with outputs (a new object).

    Hidden cells and hidden-test blocks go, solution blocks become the student
    stubs of the release (:func:`course_tools.grading.release.stub_solution`)
    and lose their outputs; every other cell keeps its outputs (interactive
    widgets become a note). ``links`` rewrites the Markdown cells.
    """
    out = student_notebook(nb, keep_outputs=True)
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs = [_clean_output(o) for o in cell.get("outputs", [])]
        elif cell.cell_type == "markdown" and links is not None:
            cell.source = links(cell.source)
    out.metadata = {k: out.metadata[k] for k in ("kernelspec", "language_info") if k in out.metadata}
    out.metadata["course_executed"] = nb.metadata.get("course_executed") or {}
    return out


def _title_index(cells) -> int:
    return next((i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.lstrip().startswith("# ")), -1)


def page_notebook(nb, *, links=None) -> nbformat.NotebookNode:
    """The site page of an executed notebook: :func:`student_view` plus, after the title,
    the environment stamp and the licences of the real data the page shows."""
    stamp = nb.metadata.get("course_executed")
    out = student_view(nb, links=links)
    extra = [nbformat.v4.new_markdown_cell(stamp_markdown(stamp))]
    lic = data_markdown(datasets_used(nb), stamp)
    if lic:
        extra.append(nbformat.v4.new_markdown_cell(lic))
    at = _title_index(out.cells)
    if at < 0:
        extra.insert(0, nbformat.v4.new_markdown_cell("# Notebook"))
    for i, c in enumerate(extra):
        c.id = f"course-site-{i}"
    out.cells[at + 1:at + 1] = extra
    return out


# --------------------------------------------------------------------------- links
_LINK_RE = re.compile(r"(?<!!)\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)\)")


def _link_mapper(repo_path: str, site_path: str | None, notebooks: list[str], repo_url: str):
    """A function rewriting Markdown links of the repository file ``repo_path`` for the site page ``site_path``.

    Links to pages the site has become relative links between pages; other files of the repository (and
    everything, when ``site_path`` is None: the slides) link to the file on the forge (``REPO_URL``).
    """
    site_of = {"README.md": "index.md", "data/README.md": "data.md", "docs/instructor_guide.md": "instructor_guide.md"}

    def target_for(repo_target: str) -> str | None:
        if repo_target in site_of:
            return site_of[repo_target]
        if repo_target.startswith("docs/models/") and repo_target.endswith(".md"):
            return "models/" + repo_target.split("/", 2)[2]
        if repo_target.startswith("docs/") and repo_target.count("/") == 1 and repo_target.endswith(".md"):
            return repo_target.split("/", 1)[1]  # other guides: docs/distributed.md -> distributed.md
        stem = posixpath.basename(repo_target)
        if stem.endswith((".ipynb", ".py")) and stem.rsplit(".", 1)[0] in notebooks \
                and posixpath.dirname(repo_target) in ("notebooks", "student"):
            return f"notebooks/{stem.rsplit('.', 1)[0]}.ipynb"
        return None

    def repl(m: re.Match) -> str:
        target = m["target"]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            return m.group(0)
        path, _, frag = target.partition("#")
        repo_target = posixpath.normpath(posixpath.join(posixpath.dirname(repo_path), path))
        site = target_for(repo_target) if site_path is not None else None
        if site is None:  # a file of the repository: link to it on the forge
            kind = "tree" if not posixpath.splitext(repo_target)[1] else "blob"
            new = f"{repo_url}/{kind}/main/{repo_target}" + (f"#{frag}" if frag else "")
        else:
            new = posixpath.relpath(site, posixpath.dirname(site_path) or ".") + (f"#{frag}" if frag else "")
        return f"[{m['text']}]({new})"

    return lambda text: _LINK_RE.sub(repl, text)


def _repo_url() -> str:
    for module in ("course_tools.colab", "course_utils.colab"):
        try:
            return __import__(module, fromlist=["REPO_URL"]).REPO_URL.rstrip("/")
        except (ImportError, AttributeError):
            continue
    return "https://github.com/cnn-course/cnn-course"


def landing_page(readme: str, notebooks: list[str], *, slides: bool = False, other_guides: tuple = ()) -> str:
    """The site's index: the README's first paragraph and course table, notebooks linked to their pages."""
    lines = readme.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| notebook"))
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    intro = [ln for ln in lines[:start] if not ln.startswith("# ")]
    rows = []
    for k, ln in enumerate(lines[start:end]):
        cols = [c.strip() for c in ln.strip().strip("|").split("|")]
        name = cols[0].strip("`")
        if name in notebooks:
            cols[0] = f"[`{name}`](notebooks/{name}.ipynb)"
        if slides:  # a column with the notebook's deck (raw HTML: the deck is not a Sphinx page)
            cols.append("slides" if k == 0 else "---" if k == 1 else
                        f'<a href="slides/{name}.slides.html">slides</a>' if name in notebooks else "")
        # Colab badges are remote images: plain links instead
        cols = [re.sub(r"\[!\[[^\]]*\]\([^)]*\)\]\(([^)]*)\)", r"[open in Colab](\1)", c) for c in cols]
        rows.append("| " + " | ".join(cols) + " |")
    toc = "\n".join(f"notebooks/{n}" for n in notebooks)
    guides = "".join(f"{g}\n" for g in other_guides)
    slides_note = (" The lecture slides (reveal.js; arrow keys move, `s` opens the speaker notes) "
                   "are linked in the last column.") if slides else ""
    return f"""# {TITLE}

{chr(10).join(intro).strip()}

{chr(10).join(rows)}

Each notebook page shows the notebook as students get it, with the outputs of
one run (the box at the top of each page says when, on what device, in which
mode and with which data).{slides_note} Also here: the [instructor guide](instructor_guide.md),
the [data sets](data.md) and their licences, and the [model cards](models/index.md).

```{{toctree}}
:caption: Notebooks
:maxdepth: 1
:hidden:

{toc}
```

```{{toctree}}
:caption: Course
:maxdepth: 1
:hidden:

instructor_guide
data
{guides}models/index
```
"""


_CONF = '''# Generated by course_tools.book.site; edit that module instead.
project = {title!r}
author = "the course team"
copyright = "the course team; data sets under their own licences (see the data sets page)"
extensions = ["myst_nb"]
nb_execution_mode = "off"
nb_merge_streams = True
nb_output_stderr = "show"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings = ["myst.header", "misc.highlighting_failure", "myst.xref_missing", "mystnb.unknown_mime_type"]
html_title = {title!r}
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme = {theme!r}
html_theme_options = {theme_options!r}
'''

_CSS = """.course-stamp ul, .course-data-licence ul { margin-bottom: 0.3em; }
div.cell_output img { max-width: 100%; height: auto; }
"""


def prepare_sources(root: str | Path, exe_dir: str | Path, src: str | Path, *, slides: bool = False) -> list[str]:
    """Write the Sphinx project to ``src``; the notebook names with pages."""
    root, exe_dir, src = Path(root), Path(exe_dir), Path(src)
    if src.exists():
        shutil.rmtree(src)
    (src / "notebooks").mkdir(parents=True)
    (src / "models").mkdir()
    (src / "_static").mkdir()
    repo_url = _repo_url()
    names = [s.stem for s in notebook_scripts(root / "notebooks")]
    pages = []
    for name in names:
        executed = exe_dir / f"{name}.ipynb"
        if not executed.is_file():
            continue
        nb = nbformat.read(executed, as_version=4)
        page = page_notebook(nb, links=_link_mapper(f"notebooks/{name}.ipynb", f"notebooks/{name}.ipynb",
                                                    names, repo_url))
        nbformat.write(page, str(src / "notebooks" / f"{name}.ipynb"))
        pages.append(name)
    docs = [("README.md", None), ("data/README.md", "data.md")]
    docs += [(f"docs/{p.name}", p.name) for p in sorted((root / "docs").glob("*.md"))]
    docs += [(f"docs/models/{p.name}", f"models/{p.name}") for p in sorted((root / "docs" / "models").glob("*.md"))]
    for repo_path, site_path in docs:
        if site_path is None or not (root / repo_path).is_file():
            continue
        text = (root / repo_path).read_text(encoding="utf-8")
        (src / site_path).write_text(_link_mapper(repo_path, site_path, names, repo_url)(text), encoding="utf-8")
    models = sorted(p.stem for p in (src / "models").glob("*.md"))
    (src / "models" / "index.md").write_text(
        "# Model cards\n\nThe published models the notebooks run, with their data, licences and limits.\n\n"
        "```{toctree}\n:maxdepth: 1\n\n" + "\n".join(models) + "\n```\n", encoding="utf-8")
    readme = (root / "README.md").read_text(encoding="utf-8")
    guides = tuple(p.stem for p in sorted((root / "docs").glob("*.md")) if p.stem != "instructor_guide")
    index = landing_page(readme, pages, slides=slides, other_guides=guides)
    (src / "index.md").write_text(_link_mapper("README.md", "index.md", names, repo_url)(index), encoding="utf-8")
    (src / "_static" / "course.css").write_text(_CSS, encoding="utf-8")
    from course_tools.book.assets import copy_mathjax

    conf_extra = 'mathjax_path = "mathjax/tex-chtml-full.js"\n'
    try:
        copy_mathjax(src / "_static" / "mathjax", root)
    except RuntimeError as exc:  # no npm: the pages still build; formulas then need MathJax's CDN
        print(f"[book] WARNING: {exc}\n[book] formulas will load MathJax from its CDN (not offline)", flush=True)
        conf_extra = ""
    try:
        import sphinx_book_theme  # noqa: F401

        theme, options = "sphinx_book_theme", {"show_toc_level": 2, "home_page_in_toc": True,
                                                "use_download_button": False, "use_fullscreen_button": False,
                                                "navigation_with_keys": False}
    except ImportError:  # pragma: no cover - Sphinx's built-in theme works too
        theme, options = "alabaster", {}
    (src / "conf.py").write_text(_CONF.format(title=TITLE, theme=theme, theme_options=options) + conf_extra,
                                 encoding="utf-8")
    return pages


def ensure_executed(root: str | Path, exe_dir: str | Path, *, fast: bool) -> list[str]:
    """Run the notebook tests (which save executed copies) for notebooks without a copy; the names run."""
    root, exe_dir = Path(root), Path(exe_dir)
    missing = [s.stem for s in notebook_scripts(root / "notebooks") if not (exe_dir / f"{s.stem}.ipynb").is_file()]
    if not missing:
        return []
    print(f"[book] no executed copy of {', '.join(missing)} in {exe_dir}: running them once "
          f"({'fast' if fast else 'full'} mode)", flush=True)
    env = {**os.environ, "COURSE_FAST": "1" if fast else "0"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--executed-dir={exe_dir}",
           *(f"notebooks/{n}.ipynb" for n in missing)]
    subprocess.run(cmd, cwd=root, env=env, check=False)
    return missing


def build_site(root: str | Path = ROOT, out: str | Path | None = None, *, fast: bool | None = None,
               execute: bool = True, slides: bool = True, quiet: bool = True) -> Path:
    """Build the site into ``out`` (default ``build/site``); returns the path of its ``index.html``.

    With ``slides``, the lecture decks go to ``out/slides/`` and the landing page links them.
    """
    root = Path(root).resolve()
    fast = default_fast() if fast is None else fast
    exe_dir = executed_dir(root, fast=fast)
    out = Path(out).resolve() if out else root / "build" / "site"
    t0 = time.time()
    if execute:
        ensure_executed(root, exe_dir, fast=fast)
    stale = [s.stem for s in notebook_scripts(root / "notebooks")
             if (exe_dir / f"{s.stem}.ipynb").is_file() and s.with_suffix(".ipynb").is_file()
             and (exe_dir / f"{s.stem}.ipynb").stat().st_mtime < s.with_suffix(".ipynb").stat().st_mtime]
    if stale:
        print(f"[book] note: the executed copies of {', '.join(stale)} are older than the notebooks: "
              "`make test-notebook NB=..` (or deleting build/executed/) refreshes them", flush=True)
    src = out.parent / (out.name + "-src")
    pages = prepare_sources(root, exe_dir, src, slides=slides)
    if not pages:
        raise RuntimeError(f"no executed notebooks in {exe_dir}: run `make test` (or `make book` without --no-execute)")
    t1 = time.time()
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-E", "-j", "1", str(src), str(out)] + (["-q"] if quiet else [])
    res = subprocess.run(cmd, cwd=root, check=False)
    if res.returncode:
        raise RuntimeError(f"sphinx-build failed ({res.returncode})")
    if slides:
        from course_tools.book.slides import build_slides

        t2 = time.time()
        build_slides(root, out / "slides", names=pages, fast=fast, quiet=True)
        print(f"[book] slides {time.time() - t2:.1f} s", flush=True)
    (out / ".nojekyll").write_text("")  # GitHub Pages: serve _static/ and _images/ as they are
    print(f"[book] {len(pages)} notebook pages from {exe_dir}; preparation {t1 - t0:.1f} s, sphinx {time.time() - t1:.1f} s; "
          f"open {out / 'index.html'}", flush=True)
    return out / "index.html"
