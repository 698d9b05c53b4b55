"""Student releases and offline grading, from one source: the solution notebooks.

The instructor notebooks in ``notebooks/`` carry, for each exercise (cell
metadata ``exercise="<id>"``):

* a ``solution`` cell, with the answer between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` (an optional first line ``# Hint: ...`` inside);
* a ``check`` cell (``points=N``) with visible ``assert``s;
* optionally ``hidden`` cells, kept out of the student copy and injected at
  grading time.

Commands::

    python -m course_utils.assignments release [--out student]
    python -m course_utils.assignments check-release [--out student]
    python -m course_utils.assignments grade SUBMISSION.ipynb [...] [--out grades]

``release`` writes student copies: each solution block becomes
``raise NotImplementedError(<hint>)``, hidden cells are dropped, outputs are
cleared, everything else is unchanged. It is deterministic.

``grade`` runs a submission offline with nbclient (no accounts, no keys). The
instructor notebook is the template: the student's solution cells are put in
place of the instructor's, the visible and hidden checks are the instructor's
own (so editing a check in the student copy changes nothing), and each cell
runs even when an earlier one failed. An exercise scores its points when its
solution, check and hidden cells all run without error. The report is written
as CSV and JSON, with the error of each failed check.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from course_utils.nbtools import headless_client, notebook_scripts, notebook_text, read_script

__all__ = [
    "Exercise",
    "ExerciseResult",
    "GradeReport",
    "exercises",
    "stub_solution",
    "student_notebook",
    "release",
    "check_release",
    "merge_submission",
    "grade",
    "main",
]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
_SOLUTION_RE = re.compile(
    r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[^\n]*\n(?P<body>.*?)^[ \t]*### END SOLUTION[^\n]*(\n|$)",
    re.M | re.S,
)
_HIDDEN_RE = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*(\n|$)", re.M | re.S)
DEFAULT_HINT = "Replace this line with your solution."


@dataclass(frozen=True)
class Exercise:
    """One exercise of a notebook: its id, points and cell indices."""

    id: str
    points: int
    solution_cells: tuple[int, ...]
    check_cells: tuple[int, ...]
    hidden_cells: tuple[int, ...]


def _tags(cell) -> list[str]:
    return list(cell.metadata.get("tags", []))


def exercises(nb: nbformat.NotebookNode) -> list[Exercise]:
    """The exercises of an instructor notebook, in order of first appearance."""
    order: list[str] = []
    parts: dict[str, dict[str, list[int]]] = {}
    points: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        ex = cell.metadata.get("exercise")
        if not ex:
            continue
        kinds = [t for t in ("solution", "check", "hidden") if t in _tags(cell)]
        if not kinds:
            continue
        if ex not in parts:
            order.append(ex)
            parts[ex] = {"solution": [], "check": [], "hidden": []}
        for kind in kinds:
            parts[ex][kind].append(i)
        if "check" in kinds:
            points[ex] = points.get(ex, 0) + int(cell.metadata.get("points", 1))
    return [Exercise(ex, points.get(ex, 0), tuple(parts[ex]["solution"]), tuple(parts[ex]["check"]),
                     tuple(parts[ex]["hidden"])) for ex in order]


def stub_solution(source: str) -> str:
    """Replace each ``BEGIN/END SOLUTION`` block by ``raise NotImplementedError(hint)``.

    The hint is the block's first line when it starts with ``# Hint:``.
    Indentation is kept, so the stub sits inside a function body.
    """

    def repl(match: re.Match) -> str:
        indent = match.group("indent")
        first = match.group("body").lstrip("\n").splitlines()[0].strip() if match.group("body").strip() else ""
        hint = first[len("# Hint:"):].strip() if first.startswith("# Hint:") else DEFAULT_HINT
        return f"{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError({hint!r})\n"

    out, n = _SOLUTION_RE.subn(repl, source)
    if n == 0:
        raise ValueError("A solution cell without '### BEGIN SOLUTION' / '### END SOLUTION' markers.")
    return out.rstrip("\n")


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student copy of an instructor notebook (a new object)."""
    out = copy.deepcopy(nb)
    cells = []
    for cell in out.cells:
        tags = _tags(cell)
        if "hidden" in tags:
            continue
        if cell.cell_type == "code":
            if "solution" in tags:
                cell.source = stub_solution(cell.source)
            elif BEGIN_HIDDEN in cell.source:
                cell.source = _HIDDEN_RE.sub("", cell.source).rstrip("\n")
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    out.cells = cells
    return out


def release(source: str | Path = "notebooks", out: str | Path = "student") -> list[Path]:
    """Write the student copy of every notebook in ``source`` to ``out``."""
    source, out = Path(source), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for script in notebook_scripts(source):
        target = out / f"{script.stem}.ipynb"
        target.write_text(notebook_text(student_notebook(read_script(script))), encoding="utf-8")
        written.append(target)
    return written


def check_release(source: str | Path = "notebooks", out: str | Path = "student") -> list[str]:
    """Names of student copies in ``out`` that are missing or out of date (empty: all current)."""
    source, out = Path(source), Path(out)
    stale = []
    for script in notebook_scripts(source):
        target = out / f"{script.stem}.ipynb"
        expected = notebook_text(student_notebook(read_script(script)))
        if not target.is_file() or target.read_text(encoding="utf-8") != expected:
            stale.append(target.name)
    return stale


# --------------------------------------------------------------------------
# grading
# --------------------------------------------------------------------------


@dataclass
class ExerciseResult:
    """The outcome of one exercise."""

    exercise: str
    points: int
    score: int
    passed: bool
    message: str = ""


@dataclass
class GradeReport:
    """All exercises of one submission."""

    notebook: str
    submission: str
    results: list[ExerciseResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> int:
        return sum(r.score for r in self.results)

    @property
    def total(self) -> int:
        return sum(r.points for r in self.results)

    @property
    def fraction(self) -> float:
        return self.score / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        return {"notebook": self.notebook, "submission": self.submission, "score": self.score,
                "total": self.total, "fraction": round(self.fraction, 4), "seconds": round(self.seconds, 1),
                "exercises": [asdict(r) for r in self.results]}

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``<name>.json`` and ``<name>.csv`` to ``out_dir``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = Path(self.submission).stem
        jpath, cpath = out_dir / f"{stem}.json", out_dir / f"{stem}.csv"
        jpath.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        with cpath.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["notebook", "exercise", "points", "score", "passed", "message"])
            for r in self.results:
                writer.writerow([self.notebook, r.exercise, r.points, r.score, r.passed, r.message])
        return jpath, cpath


def merge_submission(instructor: nbformat.NotebookNode,
                     submission: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The instructor notebook with the student's solution cells put in place.

    Solution cells are matched by exercise id (and order within an exercise).
    An exercise whose solution cell is missing from the submission keeps the
    unsolved stub, so it scores zero.
    """
    merged = copy.deepcopy(instructor)
    theirs: dict[str, list[str]] = {}
    for cell in submission.cells:
        if "solution" in _tags(cell) and cell.metadata.get("exercise"):
            theirs.setdefault(cell.metadata["exercise"], []).append(cell.source)
    used: dict[str, int] = {}
    for cell in merged.cells:
        if "solution" not in _tags(cell):
            continue
        ex = cell.metadata.get("exercise")
        k = used.get(ex, 0)
        sources = theirs.get(ex, [])
        cell.source = sources[k] if k < len(sources) else stub_solution(cell.source)
        used[ex] = k + 1
    return merged


def _error_of(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}".strip()
    return None


def grade(submission: str | Path, *, instructor: str | Path | None = None, source: str | Path = "notebooks",
          timeout: int = 600, fast: bool = True, kernel_name: str | None = None) -> GradeReport:
    """Grade one submitted notebook offline.

    Args:
        submission: the student's ``.ipynb``.
        instructor: the instructor's notebook (``.py`` script or ``.ipynb``);
            default: the notebook in ``source`` with the same ``NN_`` prefix.
        timeout: seconds allowed per cell.
        fast: run in fast mode (``COURSE_FAST=1``).
        kernel_name: Jupyter kernel; default the current Python environment.
    """

    submission = Path(submission)
    if instructor is None:
        prefix = submission.name[:3]
        matches = sorted(Path(source).glob(f"{prefix}*.py"))
        if not matches:
            raise FileNotFoundError(f"No instructor notebook in {source} matches {submission.name}.")
        instructor = matches[0]
    instructor = Path(instructor)
    template = read_script(instructor) if instructor.suffix == ".py" else nbformat.read(instructor, as_version=4)
    student = nbformat.read(submission, as_version=4)
    merged = merge_submission(template, student)

    env_backup = os.environ.get("COURSE_FAST")
    if fast:
        os.environ["COURSE_FAST"] = "1"
    t0 = time.perf_counter()
    try:
        # runs in this interpreter's environment unless a kernel is named
        client = headless_client(merged, path=instructor.parent, timeout=timeout, allow_errors=True,
                                 kernel_name=kernel_name)
        client.execute()
    finally:
        if env_backup is None:
            os.environ.pop("COURSE_FAST", None)
        else:
            os.environ["COURSE_FAST"] = env_backup
    report = GradeReport(notebook=instructor.stem, submission=str(submission), seconds=time.perf_counter() - t0)
    for ex in exercises(merged):
        message = ""
        for kind, idxs in (("solution", ex.solution_cells), ("check", ex.check_cells), ("hidden", ex.hidden_cells)):
            for i in idxs:
                err = _error_of(merged.cells[i])
                if err and not message:
                    message = f"{kind} cell failed: {err}"
        passed = not message
        report.results.append(ExerciseResult(ex.id, ex.points, ex.points if passed else 0, passed, message))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.assignments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_rel = sub.add_parser("release", help="write the student copies")
    p_chk = sub.add_parser("check-release", help="fail if the student copies are out of date")
    for p in (p_rel, p_chk):
        p.add_argument("--source", default="notebooks")
        p.add_argument("--out", default="student")
    p_grade = sub.add_parser("grade", help="grade submitted notebooks offline")
    p_grade.add_argument("submissions", nargs="+")
    p_grade.add_argument("--source", default="notebooks")
    p_grade.add_argument("--out", default="grades")
    p_grade.add_argument("--timeout", type=int, default=600)
    p_grade.add_argument("--full", action="store_true", help="grade in full mode instead of fast mode")
    args = parser.parse_args(argv)

    if args.command == "release":
        for path in release(args.source, args.out):
            print(f"wrote {path}")
        return 0
    if args.command == "check-release":
        stale = check_release(args.source, args.out)
        if stale:
            print("Out of date: " + ", ".join(stale) + ". Run: python -m course_utils.assignments release")
            return 1
        print("student copies are up to date")
        return 0
    status = 0
    for sub_path in args.submissions:
        report = grade(sub_path, source=args.source, timeout=args.timeout, fast=not args.full)
        jpath, _ = report.write(args.out)
        print(f"{sub_path}: {report.score}/{report.total} ({report.fraction:.0%}) -> {jpath}")
        for r in report.results:
            mark = "ok " if r.passed else "FAIL"
            print(f"  {mark} {r.exercise:24s} {r.score}/{r.points} {r.message[:120]}")
        status = status or (0 if report.score == report.total else 1)
    return status


if __name__ == "__main__":
    sys.exit(main())
