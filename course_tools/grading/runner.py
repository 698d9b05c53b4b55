"""The sandbox side of grading: run a job, write the outputs as plain data.

This file is copied into the sandbox's private working directory and run
there as ``python runner.py job.json results.jsonl``; it imports nothing from
``course_tools`` (which the sandbox does not see). It executes the job's
setup code, the student's helper and solution code, then each exercise's
probe (instructor code that calls the student's functions on hidden inputs),
and appends one JSON line per step to ``results.jsonl``: numbers, strings,
lists, nested dicts, nothing else. The host compares those with the
expected values; nothing this process says about "passed" is trusted.
"""

from __future__ import annotations

import json
import math
import resource
import signal
import sys
import time
import traceback

__all__ = ["main", "to_plain"]

MAX_ITEMS = 100_000


class ExerciseTimeout(BaseException):
    """Raised by the per-exercise timer (a BaseException, so ``except Exception`` does not swallow it)."""


class _Names:
    """The student's namespace as the probes see it: a missing name is said plainly."""

    def __init__(self, ns: dict) -> None:
        self._ns = ns

    def __getitem__(self, name: str):
        if name not in self._ns:
            raise NameError(f"the solution does not define `{name}`")
        return self._ns[name]

    def get(self, name: str, default=None):
        return self._ns.get(name, default)

    def __contains__(self, name: str) -> bool:
        return name in self._ns


def _on_alarm(signum, frame):
    raise ExerciseTimeout("exercise time limit reached")


def to_plain(value, depth: int = 0):
    """``value`` as JSON-ready plain data (exact built-in types only).

    Tensors and arrays become nested lists, pandas objects dicts of lists,
    subclasses of ``int``/``float``/``str`` their plain values. Anything else
    raises ``TypeError``.
    """
    if depth > 20:
        raise TypeError("output nested too deeply")
    if value is None or type(value) in (bool, str):
        return value
    if isinstance(value, bool):
        return bool.__bool__(value)
    if isinstance(value, int):
        return int.__index__(value)
    if isinstance(value, float):
        f = float.__float__(value)
        return f if math.isfinite(f) else repr(f)
    if isinstance(value, str):
        return str.__str__(value)
    mod = type(value).__module__.split(".")[0]
    if mod == "torch":
        value = value.detach().cpu().numpy()
        mod = "numpy"
    if mod == "pandas":
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            return {"index": to_plain(list(value.index), depth + 1), "columns": to_plain(list(value.columns), depth + 1),
                    "values": to_plain(value.to_numpy(), depth + 1)}
        if isinstance(value, pd.Series):
            return {"index": to_plain(list(value.index), depth + 1), "values": to_plain(value.to_numpy(), depth + 1)}
    if mod == "numpy":
        import numpy as np

        arr = np.asarray(value)
        if arr.size > MAX_ITEMS:
            raise TypeError(f"output with {arr.size} items is too large")
        if arr.dtype.kind in "biuf":
            arr = arr.astype(np.float64 if arr.dtype.kind == "f" else np.int64 if arr.dtype.kind in "iu" else bool)
            if arr.ndim == 0:
                return to_plain(arr.item(), depth + 1)
            return [to_plain(x, depth + 1) for x in arr.tolist()] if arr.ndim == 1 else \
                [to_plain(x, depth + 1) for x in arr]
        return [to_plain(x, depth + 1) for x in arr.tolist()]
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ITEMS:
            raise TypeError("output too large")
        return [to_plain(x, depth + 1) for x in value]
    if isinstance(value, dict):
        return {str(to_plain(k, depth + 1)): to_plain(v, depth + 1) for k, v in value.items()}
    raise TypeError(f"cannot turn a {type(value).__name__} into plain data")


def _transform(source: str) -> str:
    """IPython syntax (``%magic``, ``!cmd``) turned into Python, when IPython is installed."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - leave it to compile() to report
        return source


def _error(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = next((f" (line {f.lineno} of {f.filename})" for f in reversed(tb) if f.filename.startswith("<")), "")
    return f"{type(exc).__name__}: {exc}"[:500] + where


def main(argv: list[str] | None = None) -> int:
    job_path, out_path = (argv or sys.argv[1:])[:2]
    with open(job_path, encoding="utf-8") as fh:
        job = json.load(fh)
    out = open(out_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - kept open on purpose
    signal.signal(signal.SIGALRM, _on_alarm)

    def emit(record: dict) -> None:
        out.write(json.dumps(record, allow_nan=False) + "\n")
        out.flush()

    def run_code(code: str, name: str, ns: dict, timeout: float) -> str | None:
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            exec(compile(_transform(code), f"<{name}>", "exec"), ns)  # noqa: S102 - that is the job
            return None
        except ExerciseTimeout:
            return f"timed out after {timeout:.0f} s"
        except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt included
            return _error(exc)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    ns: dict = {"__name__": "__main__"}
    for i, code in enumerate(job.get("setup", [])):
        t0 = time.perf_counter()
        err = run_code(code, f"setup {i + 1}", ns, job.get("setup_timeout", 120))
        emit({"kind": "setup", "index": i, "error": err, "seconds": round(time.perf_counter() - t0, 3)})
    for helper in job.get("helpers", []):
        emit({"kind": "start", "id": f"helper:{helper['name']}", "timeout": 30})
        err = run_code(helper["code"], f"helper {helper['name']}", ns, 30)
        emit({"kind": "helper", "name": helper["name"], "error": err})
    for ex in job.get("exercises", []):
        t0 = time.perf_counter()
        timeout = float(ex.get("timeout", 60))
        emit({"kind": "start", "id": ex["id"], "timeout": timeout})  # the host's deadline starts here
        record = {"kind": "exercise", "id": ex["id"], "error": None, "outputs": None}
        err = run_code(ex["solution"], f"solution {ex['id']}", ns, timeout)
        if err:
            record["error"] = f"solution cell failed: {err}"
        elif ex.get("probe"):
            probe_ns: dict = {"__name__": "probe"}
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                exec(compile(ex["probe"], f"<hidden checks {ex['id']}>", "exec"), probe_ns)  # noqa: S102
                record["outputs"] = to_plain(probe_ns[ex["probe_name"]](_Names(ns)))
            except ExerciseTimeout:
                record["error"] = f"timed out after {timeout:.0f} s"
            except BaseException as exc:  # noqa: BLE001
                record["error"] = _error(exc)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        elif ex.get("experiment"):
            try:
                record["outputs"] = {name: to_plain(ns.get(name)) for name in ex["experiment"]}
            except BaseException as exc:  # noqa: BLE001
                record["error"] = _error(exc)
        record["seconds"] = round(time.perf_counter() - t0, 3)
        emit(record)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    emit({"kind": "done", "cpu_s": round(usage.ru_utime + usage.ru_stime, 2)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
