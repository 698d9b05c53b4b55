"""The built course site in a real (headless) browser.

Runs after the notebook tests of the same session (the ``book`` marker moves
it to the end, see ``course_tools/book/executed.py``), so in CI the site is
built once, from the executed copies those tests just saved
(``build/executed/fast``), into ``build/site`` (the CI artifact); nothing is
executed twice. Without executed copies (a unit-test run on its own) it
builds a site from a small fixture notebook instead.

Checks: every notebook page loads and shows its figures as images, with no
error output, no JavaScript error and no remote request; every page has the
environment stamp, pages with real data have the licence box; every slide
deck (``slides/``) opens offline; every internal link (and its #anchor)
resolves.
"""

from __future__ import annotations

import base64
import functools
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from course_tools.book.executed import executed_dir
from course_tools.nbtools import notebook_scripts

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ARTIFACTS = ROOT / "test-artifacts" / "e2e" / "site"
PLAYWRIGHT_VERSION = "1.65.1"

pytestmark = [pytest.mark.e2e, pytest.mark.book]


def _fixture_notebooks(folder: Path) -> None:
    """Two tiny 'executed' notebooks with a figure, a table and a stamp (no kernel needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [0, 1, 4])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    png = base64.b64encode(buf.getvalue()).decode()
    stamp = {"executed_at": "2026-01-01T00:00:00+00:00", "device": "cpu", "cpu_threads": 1, "fast_mode": True,
             "python": "3.11", "torch": "2", "platform": "Linux", "duration_s": 1.0, "failed_cells": [],
             "datasets": {"orl_faces": False}, "replaced": [{"dataset": "ORL", "replaced_by": "SynthFaces"}]}
    for name in ("00_getting_started", "01_cnn_building_blocks"):
        nb = nbformat.v4.new_notebook()
        code = nbformat.v4.new_code_cell("faces = load_face_identities('orl')\nplt.plot([0, 1, 2], [0, 1, 4])",
                                         execution_count=1)
        code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n"),
                        nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})]
        sol = nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION",
                                        metadata={"tags": ["solution"], "exercise": "f"}, execution_count=2)
        sol.outputs = [nbformat.v4.new_output("stream", name="stdout", text="SECRET\n")]
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}\n\nSee [the data](../data/README.md) and "
                                                  "[the next notebook](01_cnn_building_blocks.ipynb)."),
                    code, nbformat.v4.new_markdown_cell("## Exercises\n\n### Exercise 1"), sol]
        nb.metadata["course_executed"] = stamp
        nbformat.write(nb, str(folder / f"{name}.ipynb"))


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> dict:
    """The site: from the executed copies into build/site, or from the fixture into a temporary folder."""
    from course_tools.book.site import build_site

    _browser_tools()  # skip early when there is no browser or npm (the site's MathJax comes from npm too)
    exe = executed_dir(ROOT, fast=True)
    real = exe.is_dir() and bool(notebook_scripts(exe, suffix=".ipynb"))
    if real:
        out = ROOT / "build" / "site"
        index = build_site(ROOT, out, fast=True, execute=False)
    else:
        exe = tmp_path_factory.mktemp("executed")
        _fixture_notebooks(exe)
        out = tmp_path_factory.mktemp("site") / "site"
        os.environ["COURSE_EXECUTED_DIR"] = str(exe)
        try:
            index = build_site(ROOT, out, fast=True, execute=False)
        finally:
            os.environ.pop("COURSE_EXECUTED_DIR", None)
    names = [p.stem for p in notebook_scripts(exe, suffix=".ipynb")]
    return {"out": index.parent, "names": names, "real": real}


@pytest.fixture(scope="session")
def server(built_site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(built_site["out"]))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _browser_tools() -> tuple[str, Path]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("Chromium is missing: install Debian's `chromium` (the JupyterLab browser test installs it).")
    if not shutil.which("npm"):
        pytest.skip("node/npm are missing: install Node.js to run the browser tests.")
    prefix = ROOT / ".cache" / "e2e"
    if not (prefix / "node_modules" / "playwright-core").is_dir():
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix),
                        f"playwright-core@{PLAYWRIGHT_VERSION}"], capture_output=True, text=True, timeout=600)
    assert (prefix / "node_modules" / "playwright-core").is_dir(), "npm install playwright-core failed"
    driver_dir = prefix / "driver"
    driver_dir.mkdir(exist_ok=True)
    shutil.copy(HERE / "site_driver.mjs", driver_dir / "site_driver.mjs")
    return chromium, driver_dir / "site_driver.mjs"


@pytest.fixture(scope="session")
def visited(built_site, server) -> dict:
    chromium, driver = _browser_tools()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pages = ["index.html", "data.html", "instructor_guide.html"] + \
        [f"notebooks/{n}.html" for n in built_site["names"]] + \
        [f"slides/{n}.slides.html" for n in built_site["names"]]
    env = {**os.environ, "CHROMIUM": chromium, "NODE_PATH": str(driver.parents[1] / "node_modules")}
    res = subprocess.run(["node", str(driver), server, str(ARTIFACTS), *pages], capture_output=True, text=True,
                         timeout=600, env=env)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"driver printed nothing:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return {p["page"]: p for p in json.loads(lines[-1])["pages"]}


def test_every_notebook_page_loads_with_figures_and_no_errors(built_site, visited):
    assert built_site["names"], "no notebook pages"
    for name in built_site["names"]:
        page = visited[f"notebooks/{name}.html"]
        assert page["status"] == 200, page
        assert page["outputImages"] > 0, f"{name}: no figure rendered as an image"
        assert not page["brokenImages"], f"{name}: broken images {page['brokenImages']}"
        assert page["errorOutputs"] == 0, f"{name}: {page['errorOutputs']} error outputs"
        assert not page["jsErrors"], f"{name}: JavaScript errors {page['jsErrors']}"
        assert not page["failedRequests"], f"{name}: failed requests {page['failedRequests']}"
        assert not page["remoteRequests"], f"{name}: remote requests {page['remoteRequests']}"
        assert page["stamp"], f"{name}: no environment stamp"
    for page in visited.values():
        assert page["status"] == 200 and not page["remoteRequests"] and not page["jsErrors"], page


def test_every_deck_opens_offline(built_site, visited):
    for name in built_site["names"]:
        deck = visited[f"slides/{name}.slides.html"]
        assert deck["status"] == 200 and deck["slides"] >= 3, deck
        assert not deck["jsErrors"] and not deck["failedRequests"] and not deck["remoteRequests"], deck
        assert not deck["brokenImages"] and deck["errorOutputs"] == 0, deck


def test_pages_with_real_data_carry_the_licences(built_site, visited):
    from course_tools.book.site import datasets_used

    exe = executed_dir(ROOT, fast=True) if built_site["real"] else None
    for name in built_site["names"]:
        if exe is None:
            assert visited[f"notebooks/{name}.html"]["licence"]
            continue
        used = datasets_used(nbformat.read(exe / f"{name}.ipynb", as_version=4))
        if used:
            assert visited[f"notebooks/{name}.html"]["licence"], f"{name} shows {used} without their licences"
    data = (built_site["out"] / "data.html").read_text(encoding="utf-8")
    assert "CC BY 4.0" in data and "non-commercial" in data.lower()


def test_no_solution_or_hidden_test_on_the_site(built_site):
    for html in (built_site["out"] / "notebooks").glob("*.html"):
        text = html.read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, html.name
        if not built_site["real"]:
            assert "SECRET" not in text and "return 42" not in text


def test_internal_links_resolve(built_site, visited):
    out = built_site["out"]
    broken = []
    ids_cache: dict[Path, set[str]] = {}
    for path, page in visited.items():
        here = (out / path).parent
        for href in page["links"]:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
                continue
            target = (here / unquote(parts.path)).resolve() if parts.path else (out / path).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{path}: {href}")
                continue
            # reveal.js decks route by #/ hashes and hide nbconvert's heading anchors: files only there
            if parts.fragment and target.suffix == ".html" and not path.startswith("slides/"):
                if target not in ids_cache:
                    ids_cache[target] = set(re.findall(r'\bid="([^"]+)"', target.read_text(encoding="utf-8")))
                if unquote(parts.fragment) not in ids_cache[target]:
                    broken.append(f"{path}: {href} (no such anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:40])
