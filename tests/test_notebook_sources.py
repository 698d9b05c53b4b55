"""Notebook pairs are in sync, carry no outputs, and follow the course's structure."""

import re
from pathlib import Path

import nbformat
import pytest

from course_tools.nbtools import notebook_scripts, notebook_text, read_script

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
SCRIPTS = notebook_scripts(NB_DIR)
NOTEBOOKS = notebook_scripts(NB_DIR, suffix=".ipynb")


def test_there_are_notebooks_and_each_has_a_pair():
    assert SCRIPTS, "no notebooks found"
    assert [p.stem for p in SCRIPTS] == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_pair_in_sync(script):
    expected = notebook_text(read_script(script))
    actual = script.with_suffix(".ipynb").read_text(encoding="utf-8")
    assert actual == expected, f"{script.name} and its .ipynb differ: run `make notebooks`"


def test_build_is_deterministic(tmp_path):
    src = SCRIPTS[0]
    assert notebook_text(read_script(src)) == notebook_text(read_script(src))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name} has stored outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_code_cell_reports_environment(path):
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "env_report(" in first.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_are_well_formed(path):
    nb = nbformat.read(path, as_version=4)
    solutions, checks = {}, {}
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        ex = cell.metadata.get("exercise")
        if "solution" in tags:
            assert ex, f"{path.name}: a solution cell without exercise id"
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
            solutions[ex] = cell
        if "check" in tags:
            assert ex, f"{path.name}: a check cell without exercise id"
            assert re.search(r"^\s*assert ", cell.source, re.M), f"{path.name}: check for {ex} has no assert"
            assert int(cell.metadata.get("points", 0)) > 0, f"{path.name}: check for {ex} has no points"
            checks[ex] = cell
    assert set(solutions) == set(checks), f"{path.name}: exercises without check or solution"
    minimum = 2 if path.name.startswith("00") else 5
    assert len(solutions) >= minimum, f"{path.name}: {len(solutions)} exercises, at least {minimum} expected"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_show_or_star_imports(path):
    src = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert not re.search(r"from \S+ import \*", src)
    assert "plt.show()" not in src


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_first_cell_installs_the_package_on_colab(script):
    from course_tools.colab import install_snippet

    nb = read_script(script)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert first.source.startswith(install_snippet().strip().split("\n")[0])
    assert install_snippet().strip() in first.source, "run `python -m course_tools.colab` to refresh the snippet"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_readme_has_a_colab_badge(script):
    from course_tools.colab import badge_url

    readme = (NB_DIR.parent / "README.md").read_text()
    assert badge_url(f"{script.stem}.ipynb") in readme


def test_colab_snippet_is_inert_outside_colab():
    import sys

    from course_tools.colab import install_snippet

    assert "google.colab" not in sys.modules
    exec(compile(install_snippet(), "<snippet>", "exec"), {})  # must not try to install anything here


def test_notebook_names_and_parts(tmp_path):
    """``NN_name`` is a notebook; a lecture split in parts is ``NNa_name``, ``NNb_name`` (the notebook's ceiling per part)."""
    for name in ("00_intro.py", "01a_blocks.py", "01b_text.py", "02_zoo.py", "02_zoo.ipynb",
                 "1_short.py", "01ab_two_letters.py", "01-dash.py", "helpers.py", "01_.py"):
        (tmp_path / name).write_text("")
    assert [p.name for p in notebook_scripts(tmp_path)] == ["00_intro.py", "01a_blocks.py", "01b_text.py", "02_zoo.py"]
    assert [p.name for p in notebook_scripts(tmp_path, suffix=".ipynb")] == ["02_zoo.ipynb"]
