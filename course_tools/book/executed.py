"""A pytest plugin: the notebook tests also save the executed notebooks.

nbval (lax mode, see ``pyproject.toml``) runs each notebook cell by cell and
keeps each cell's outputs only long enough to compare them. This plugin
copies those outputs back into the notebook nbval read and, once the
notebook's last cell has run, writes it with an *environment stamp* to
``build/executed/<mode>/NN_name.ipynb`` (``<mode>`` is ``fast`` or ``full``).
The site (``make book``) and the slides (``make slides``) are built from these
copies, so CI executes every notebook exactly once.

Nothing about the test changes: a cell still fails only when it raises, with
nbval's per-cell timeout. A notebook is saved only when all of its code cells
ran (not when ``-k`` selected some of them); a notebook with failing cells is
saved too, and its stamp lists them.

Options: ``--executed-dir DIR`` (default: ``$COURSE_EXECUTED_DIR`` or
``build/executed/<mode>``) and ``--no-save-executed``.
"""

from __future__ import annotations

import io
import os
import re
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

__all__ = ["default_fast", "executed_dir", "environment_stamp", "replaced_datasets"]

_KEY = "course_executed"  # notebook-level metadata key holding the stamp
_FALLBACK_RE = re.compile(r"\[course_utils\] (?P<real>.+?) is not in (?P<where>.+?): using (?P<using>.+?)(?: instead)?[.\n]")


def executed_dir(root: str | Path = ".", fast: bool | None = None) -> Path:
    """Where executed copies go: ``$COURSE_EXECUTED_DIR`` or ``<root>/build/executed/{fast,full}``."""
    env = os.environ.get("COURSE_EXECUTED_DIR", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    if fast is None:
        from course_utils.settings import is_fast

        fast = is_fast()
    return Path(root).resolve() / "build" / "executed" / ("fast" if fast else "full")


def default_fast() -> bool:
    """The site's and slides' mode: ``COURSE_FAST`` when set, else fast (the outputs CI produces)."""
    if os.environ.get("COURSE_FAST", "").strip():
        from course_utils.settings import is_fast

        return is_fast()
    return True


def replaced_datasets(nb) -> list[dict[str, str]]:
    """The ``[course_utils] X is not in Y: using Z instead`` announcements in ``nb``'s outputs."""
    seen, found = set(), []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            text = out.get("text", "") if out.get("output_type") == "stream" else out.get("data", {}).get("text/plain", "")
            if isinstance(text, list):
                text = "".join(text)
            for m in _FALLBACK_RE.finditer(text + "\n"):
                key = (m["real"], m["using"])
                if key not in seen:
                    seen.add(key)
                    found.append({"dataset": m["real"], "replaced_by": m["using"].strip()})
    return found


def environment_stamp() -> dict[str, Any]:
    """What ``course_utils.env_report`` says (quietly), plus the time: where and how outputs were computed."""
    from course_utils.settings import env_report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = env_report(file=io.StringIO())
    info = {k: v for k, v in info.items() if k not in ("cache_dir",)}
    info["executed_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return info


class _Recorder:
    def __init__(self, config: pytest.Config):
        self.config = config
        opt = config.getoption("executed_dir", None)
        self.out = Path(opt).resolve() if opt else None
        self.started: dict[int, float] = {}
        self.ran: dict[int, set[int]] = {}
        self.failed: dict[int, list[int]] = {}
        self.counter: dict[int, int] = {}

    @staticmethod
    def _is_cell(item) -> bool:
        return type(item).__name__ == "IPyNbCell" and hasattr(item, "cell") and hasattr(item.parent, "nb")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        if not self._is_cell(item):
            yield
            return
        nb_id = id(item.parent)
        self.started.setdefault(nb_id, time.time())
        outcome = yield
        self.ran.setdefault(nb_id, set()).add(item.cell_num)  # also a cell nbval skips (NBVAL_SKIP)
        outs = getattr(item, "test_outputs", None)
        if outs is None:  # skipped before running: no outputs
            return
        self.counter[nb_id] = self.counter.get(nb_id, 0) + 1
        cell = item.cell
        import nbformat

        cell.outputs = [nbformat.from_dict(dict(o)) for o in outs]
        for o in cell.outputs:
            if o.get("output_type") == "execute_result":
                o["execution_count"] = self.counter[nb_id]
        cell.execution_count = self.counter[nb_id]
        if outcome.excinfo is not None:
            self.failed.setdefault(nb_id, []).append(item.cell_num)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item, nextitem):
        yield
        if not self._is_cell(item) or (nextitem is not None and nextitem.parent is item.parent):
            return
        try:
            self._save(item.parent)
        except Exception as exc:  # never fail a test because its copy could not be written
            warnings.warn(f"could not save the executed copy of {item.parent.path}: {exc!r}", stacklevel=1)

    def _save(self, nbfile) -> None:
        import nbformat

        nb_id = id(nbfile)
        n_code = sum(c.cell_type == "code" for c in nbfile.nb.cells)
        if len(self.ran.get(nb_id, ())) < n_code:
            return  # only some cells ran (-k, -x, an interrupted run): keep the last complete copy
        from course_utils.settings import is_fast

        out_dir = self.out or executed_dir(self.config.rootpath, fast=is_fast())
        out_dir.mkdir(parents=True, exist_ok=True)
        stamp = environment_stamp()
        stamp["duration_s"] = round(time.time() - self.started.get(nb_id, time.time()), 1)
        stamp["failed_cells"] = sorted(self.failed.get(nb_id, []))
        stamp["replaced"] = replaced_datasets(nbfile.nb)
        stamp["harness"] = "pytest + nbval (lax mode)"
        nbfile.nb.metadata[_KEY] = stamp
        target = out_dir / Path(str(nbfile.path)).name
        tmp = target.with_suffix(".ipynb.part")
        nbformat.write(nbfile.nb, str(tmp))
        os.replace(tmp, target)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("course", "course notebook harness")
    group.addoption("--executed-dir", default=None,
                    help="folder for the executed notebooks (default: $COURSE_EXECUTED_DIR or build/executed/<mode>)")
    group.addoption("--no-save-executed", action="store_true", default=False,
                    help="do not save executed notebooks")


def pytest_collection_modifyitems(session, config, items) -> None:
    """Tests marked ``book`` (the site and slide builds) run last: after the notebooks of this session
    have been executed and saved, so they build from fresh copies and nothing runs twice."""
    book = [it for it in items if it.get_closest_marker("book")]
    if book:
        ids = {id(it) for it in book}
        items[:] = [it for it in items if id(it) not in ids] + book


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "book: builds the course site or slides; runs after the notebooks")
    if not config.getoption("no_save_executed", False):
        config.pluginmanager.register(_Recorder(config), "course-executed-recorder")
