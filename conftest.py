"""Repository-wide pytest hooks: a per-notebook wall-time table at the end of the run."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

# The notebook tests also save the executed notebooks (build/executed/<mode>/) for
# `make book` and `make slides`: one execution checks and records them.
pytest_plugins = ["course_tools.book.executed"]

# Fast-mode ceilings on 2 CPU cores (seconds), from the course's issues.
NOTEBOOK_CEILINGS = {"00": 60, "01": 150, "02": 180, "03": 180, "04": 180, "05": 150, "06": 240}

_notebook_seconds: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    if report.skipped:
        return
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration
    elif "test_notebooks_offline" in path and "[" in report.nodeid and report.when == "call":
        name = report.nodeid.split("[", 1)[1].rstrip("]")
        _notebook_seconds[f"notebooks/{name} (empty data dir)"] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    tr = terminalreporter
    tr.section("notebook wall time (fast mode ceilings in brackets)")
    total = 0.0
    for path, secs in sorted(_notebook_seconds.items()):
        key = Path(path).name[:2]
        ceiling = NOTEBOOK_CEILINGS.get(key)
        flag = "" if ceiling is None or secs <= ceiling else "  OVER CEILING"
        tr.write_line(f"{path:55s} {secs:7.1f} s  [{ceiling if ceiling else '-'} s]{flag}")
        total += secs
    tr.write_line(f"{'total':55s} {total:7.1f} s")
