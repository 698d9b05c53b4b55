"""Student releases (the grader itself: tests/test_grading.py)."""

import ast
import textwrap
from pathlib import Path

import nbformat
import pytest

from course_tools.grading import release as A
from course_tools.grading.cli import main as cli_main
from course_tools.nbtools import notebook_scripts, read_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = notebook_scripts(ROOT / "notebooks")


def test_stub_keeps_indentation_and_hint():
    src = textwrap.dedent('''\
        def f(x):
            """Doc."""
            ### BEGIN SOLUTION
            # Hint: square it.
            return x * x
            ### END SOLUTION
        ''')
    out = A.stub_solution(src)
    assert "return x * x" not in out
    assert "    raise NotImplementedError('square it.')" in out
    ns = {}
    exec(compile(out, "<stub>", "exec"), ns)  # the stub is valid Python
    with pytest.raises(NotImplementedError, match="square it"):
        ns["f"](3)


def test_stub_default_hint_and_missing_markers():
    out = A.stub_solution("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\ny = x + 1")
    assert out.startswith("# YOUR CODE HERE\nraise NotImplementedError(") and out.endswith("y = x + 1")
    with pytest.raises(ValueError, match="BEGIN SOLUTION"):
        A.stub_solution("x = 1")


def make_instructor(tmp_path: Path) -> Path:
    """A tiny instructor notebook with three exercises, one with a hidden test."""
    script = tmp_path / "nb" / "09_tiny.py"
    script.parent.mkdir()
    script.write_text(textwrap.dedent('''\
        # %%
        from course_utils import env_report
        base = 10

        # %% tags=["solution"] exercise="add"
        def add(a, b):
            ### BEGIN SOLUTION
            # Hint: use +.
            return a + b
            ### END SOLUTION

        # %% tags=["check"] exercise="add" points=2
        assert add(2, 3) == 5

        # %% tags=["hidden"] exercise="add"
        ### BEGIN HIDDEN TESTS
        assert add(-1, 1) == 0
        ### END HIDDEN TESTS

        # %% tags=["solution"] exercise="mul"
        def mul(a, b):
            ### BEGIN SOLUTION
            return a * b
            ### END SOLUTION

        # %% tags=["check"] exercise="mul" points=1
        assert mul(2, 3) == 6

        # %% tags=["solution"] exercise="scaled"
        def scaled(x):
            ### BEGIN SOLUTION
            return base * x
            ### END SOLUTION

        # %% tags=["check"] exercise="scaled" points=3
        assert scaled(2) == 20
        '''))
    return script


def test_exercises_are_found(tmp_path):
    nb = read_script(make_instructor(tmp_path))
    found = A.exercises(nb)
    assert [(e.id, e.points, len(e.hidden_cells)) for e in found] == [("add", 2, 1), ("mul", 1, 0), ("scaled", 3, 0)]


def test_student_copy_drops_hidden_and_stubs_solutions(tmp_path):
    nb = read_script(make_instructor(tmp_path))
    student = A.student_notebook(nb)
    text = "\n".join(c.source for c in student.cells)
    assert "HIDDEN" not in text and "add(-1, 1)" not in text
    assert "return a + b" not in text and "NotImplementedError('use +.')" in text
    assert len(student.cells) == len(nb.cells) - 1
    # everything that is not a solution or hidden cell is unchanged
    kept = [c.source for c in nb.cells if not {"solution", "hidden"} & set(c.metadata.get("tags", []))]
    assert kept == [c.source for c in student.cells if "solution" not in c.metadata.get("tags", [])]
    assert nb.cells[1].source.count("return a + b") == 1  # the instructor notebook is not modified


def test_release_is_deterministic_and_checkable(tmp_path):
    script = make_instructor(tmp_path)
    out = tmp_path / "student"
    first = [p.read_bytes() for p in A.release(script.parent, out)]
    second = [p.read_bytes() for p in A.release(script.parent, out)]
    assert first == second and len(first) == 1
    assert A.check_release(script.parent, out) == []
    (out / "09_tiny.ipynb").write_text("{}")
    assert A.check_release(script.parent, out) == ["09_tiny.ipynb"]


def test_committed_student_copies_are_up_to_date():
    stale = A.check_release(ROOT / "notebooks", ROOT / "student")
    assert stale == [], f"run `python -m course_tools.grading release`: {stale}"


def _names_defined(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_every_check_uses_what_its_solution_defines(script):
    """A check that never touches the solution's names would pass on the stub."""
    nb = read_script(script)
    for ex in A.exercises(nb):
        defined = set().union(*(_names_defined(nb.cells[i].source) for i in ex.solution_cells))
        # names the stub still defines (e.g. a function whose body is stubbed) are fine: calling them raises
        for i in ex.check_cells:
            used = {n.id for n in ast.walk(ast.parse(nb.cells[i].source)) if isinstance(n, ast.Name)}
            assert used & defined, f"{script.name}: check of {ex.id!r} uses none of {sorted(defined)}"


def test_cli_release_and_check(tmp_path, capsys):
    script = make_instructor(tmp_path)
    assert cli_main(["release", "--source", str(script.parent), "--out", str(tmp_path / "s")]) == 0
    assert cli_main(["check-release", "--source", str(script.parent), "--out", str(tmp_path / "s")]) == 0
    (tmp_path / "s" / "09_tiny.ipynb").unlink()
    assert cli_main(["check-release", "--source", str(script.parent), "--out", str(tmp_path / "s")]) == 1
    assert "Out of date" in capsys.readouterr().out


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_student_copy_matches_the_tested_notebook_up_to_the_first_exercise(script):
    """nbval executes the instructor notebook; the student copy is the same code up to its first exercise,
    so it runs without error that far (and every non-exercise cell after it is unchanged too)."""
    instructor = read_script(script)
    student = nbformat.read(ROOT / "student" / f"{script.stem}.ipynb", as_version=4)
    first = next(i for i, c in enumerate(instructor.cells) if c.metadata.get("exercise"))
    assert first > 0
    assert [c.source for c in student.cells[:first]] == [c.source for c in instructor.cells[:first]]
    assert "NotImplementedError" in student.cells[first].source or "solution" not in instructor.cells[first].metadata.get("tags", [])
