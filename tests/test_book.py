"""The course site's pieces: the executed-notebook harness, the page transformation, links, landing page."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest

from course_tools.book.executed import replaced_datasets
from course_tools.book.site import _link_mapper, data_markdown, landing_page, page_notebook, stamp_markdown
from course_tools.nbtools import notebook_scripts

ROOT = Path(__file__).resolve().parents[1]
STAMP = {"executed_at": "2026-01-01T00:00:00+00:00", "device": "cpu", "cpu_threads": 2, "fast_mode": True,
         "python": "3.11", "torch": "2.14", "platform": "Linux", "duration_s": 3.0, "failed_cells": [],
         "datasets": {"orl_faces": True, "fairface": False},
         "replaced": [{"dataset": "FairFace", "replaced_by": "SynthFaces groups"}]}


def _nb() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("faces = load_face_identities('orl')\nattrs = load_face_attributes('fairface')",
                                     execution_count=1)
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="shown\n")]
    sol = nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    # Hint: add one\n    return 42\n"
                                    "    ### END SOLUTION", metadata={"tags": ["solution"], "exercise": "f"})
    sol.outputs = [nbformat.v4.new_output("stream", name="stdout", text="SOLUTION OUTPUT\n")]
    check = nbformat.v4.new_code_cell("assert f() == 42\n### BEGIN HIDDEN TESTS\nassert f() != 41\n"
                                      "### END HIDDEN TESTS", metadata={"tags": ["check"], "exercise": "f"})
    check.outputs = [nbformat.v4.new_output("stream", name="stdout", text="passed\n")]
    hidden = nbformat.v4.new_code_cell("assert f() > 0", metadata={"tags": ["hidden"], "exercise": "f"})
    widget = nbformat.v4.new_code_cell("slider")
    widget.outputs = [nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2, "version_minor": 0},
        "text/plain": "IntSlider()"})]
    nb.cells = [nbformat.v4.new_markdown_cell("# 03 · Title\n\nSee [the data](../data/README.md#fairface) and "
                                              "[zoo](../course_utils/models/zoo.py)."),
                code, sol, check, hidden, widget]
    nb.metadata["course_executed"] = STAMP
    return nb


def test_page_is_the_student_copy_with_outputs():
    links = _link_mapper("notebooks/03_x.ipynb", "notebooks/03_x.ipynb", ["03_x"], "https://github.com/o/r")
    page = page_notebook(_nb(), links=links)
    text = json.dumps(page)
    assert "BEGIN SOLUTION" not in text and "return 42" not in text and "SOLUTION OUTPUT" not in text
    assert "NotImplementedError('add one')" in text  # the release's stub, with its hint
    assert "HIDDEN TESTS" not in text and "f() != 41" not in text and "f() > 0" not in text
    assert "shown" in text and "passed" in text  # teaching and self-check outputs stay
    assert "widget-view" not in text and "interactive widget" in text
    title, stamp, licence = page.cells[:3]
    assert title.source.startswith("# 03") and "course-stamp" in stamp.source and "course-data-licence" in licence.source
    assert "FairFace → SynthFaces groups" in stamp.source and "fast" in stamp.source and "cpu" in stamp.source
    assert "](../data.md#fairface)" in title.source
    assert "](https://github.com/o/r/blob/main/course_utils/models/zoo.py)" in title.source


def test_licences_name_each_real_data_set():
    text = data_markdown(["orl_faces", "fairface", "utkface"], STAMP)
    assert "CC BY 4.0" in text and "non-commercial" in text and "Samaria" in text
    assert "FairFace**" in text and "not present" in text  # FairFace was replaced in this run
    assert data_markdown([], STAMP) == ""
    assert "No environment stamp" in stamp_markdown(None)


def test_fallback_announcements_are_found():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=(
        "[course_utils] CIFAR-10 is not in /d/cifar-10-batches-py: using scikit-learn's digits (8 x 8) instead.\n"
        "  To use CIFAR-10, call load_cifar10(download=True) once.\n"))]
    nb.cells = [cell, cell]
    assert replaced_datasets(nb) == [{"dataset": "CIFAR-10", "replaced_by": "scikit-learn's digits (8 x 8)"}]


def test_landing_page_is_the_readme_course_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = [p.stem for p in notebook_scripts(ROOT / "notebooks")]
    page = landing_page(readme, names, slides=True)
    for name in names:
        assert f"[`{name}`](notebooks/{name}.ipynb)" in page
        assert f'href="slides/{name}.slides.html"' in page
    assert "colab-badge.svg" not in page  # no remote images on the site


@pytest.mark.slow
def test_one_execution_checks_and_saves_the_notebook(tmp_path):
    """nbval lax semantics are kept (the raising cell fails, the others pass) and the run is saved once."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell("print('hello')\n1 + 1"),
                nbformat.v4.new_code_cell("raise ValueError('boom')"), nbformat.v4.new_code_cell("print('after')")]
    nbformat.write(nb, str(tmp_path / "99_t.ipynb"))
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["course_tools.book.executed"]\n')
    out = tmp_path / "executed"
    import subprocess

    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                          "--nbval-current-env", f"--executed-dir={out}", "99_t.ipynb", "-o", "addopts="],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "COURSE_FAST": "1"})
    assert "1 failed, 2 passed" in res.stdout, res.stdout[-3000:]
    saved = nbformat.read(out / "99_t.ipynb", as_version=4)
    code = [c for c in saved.cells if c.cell_type == "code"]
    assert code[0].outputs[0]["text"] == "hello\n" and code[0].outputs[1]["data"]["text/plain"] == "2"
    assert code[1].outputs[0]["output_type"] == "error" and code[2].outputs[0]["text"] == "after\n"
    stamp = saved.metadata["course_executed"]
    assert stamp["fast_mode"] is True and stamp["failed_cells"] == [1] and "device" in stamp and stamp["executed_at"]
    nbformat.validate(saved)
