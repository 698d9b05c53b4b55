"""Hidden tests: the instructor's probes and the host-side checks of their outputs.

A hidden-test file ``grading/hidden/NN_name.py`` (never released, never
mounted in the sandbox) holds, for each exercise id of notebook ``NN_name``:

* ``def probe_<id>(ns):`` -- runs *in the sandbox*, after the student's
  solution: calls the student's code (``ns["name"]``) on hidden inputs and
  returns a dict of plain outputs. It must be self-contained (imports inside)
  and must not contain expected values, since the student's process sees it.
* ``EXPECT["<id>"] = {"key": [checks...]}`` -- runs *on the host* on plain
  data: an output key without declared checks is compared with the reference
  solution's output (``reference()``, computed in a separate clean process);
  a key with declared checks gets exactly those: ``equals(value)`` and
  ``holds(fn, why)`` do not depend on the reference implementation, and
  ``reference(rtol=..., atol=...)`` can be listed with them.
* ``FORBID["<id>"] = [...]`` -- forbidden references, added to the cell metadata's.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Check", "HiddenTests", "equals", "holds", "load_hidden", "reference", "same"]


def same(a: Any, b: Any, *, rtol: float = 1e-6, atol: float = 1e-8) -> bool:
    """Plain-data equality with a numeric tolerance (bools and strings exact)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= atol + rtol * abs(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, rtol=rtol, atol=atol) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rtol=rtol, atol=atol) for k in a)
    return type(a) is type(b) and a == b


def _short(value: Any, n: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


@dataclass(frozen=True)
class Check:
    """One host-side check of one probe output."""

    kind: str
    expected: Any = None
    predicate: Callable[[Any], bool] | None = None
    why: str = ""
    rtol: float = 1e-6
    atol: float = 1e-8

    def failure(self, actual: Any, ref: Any) -> str | None:
        """``None`` when the check passes, else what went wrong (without giving the expected value away)."""
        if self.kind == "reference":
            ok = same(actual, ref, rtol=self.rtol, atol=self.atol)
            return None if ok else f"differs from the expected result (got {_short(actual)})"
        if self.kind == "equals":
            ok = same(actual, self.expected, rtol=self.rtol, atol=self.atol)
            return None if ok else f"wrong value (got {_short(actual)})"
        try:
            ok = bool(self.predicate(actual))
        except Exception as exc:  # noqa: BLE001 - a malformed output fails the check
            return f"{self.why} (could not check: {type(exc).__name__}: {exc})"
        return None if ok else f"{self.why} (got {_short(actual)})"


def reference(*, rtol: float = 1e-6, atol: float = 1e-8) -> Check:
    """Equal to the reference solution's output for the same hidden input."""
    return Check("reference", rtol=rtol, atol=atol)


def equals(value: Any, *, rtol: float = 1e-6, atol: float = 1e-8) -> Check:
    """Equal to an explicit expected value (written by hand, independent of the package)."""
    return Check("equals", expected=value, rtol=rtol, atol=atol)


def holds(predicate: Callable[[Any], bool], why: str) -> Check:
    """A property the output must have (``why`` is the message when it does not)."""
    return Check("holds", predicate=predicate, why=why)


@dataclass(frozen=True)
class HiddenTests:
    """The hidden tests of one notebook."""

    path: Path | None
    probes: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (function name, source)
    expect: dict[str, dict[str, list[Check]]] = field(default_factory=dict)
    forbid: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def checks(self, exercise: str, key: str) -> list[Check]:
        """The checks of output ``key``: the declared ones, or ``reference()`` when none is declared."""
        return list(self.expect.get(exercise, {}).get(key, [])) or [reference()]


def load_hidden(path: str | Path) -> HiddenTests:
    """Load ``grading/hidden/NN_name.py`` (on the host; an absent file gives no hidden tests)."""
    path = Path(path)
    if not path.is_file():
        return HiddenTests(None)
    spec = importlib.util.spec_from_file_location(f"_hidden_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    probes = {}
    for name, fn in vars(module).items():
        if name.startswith("probe_") and inspect.isfunction(fn):
            probes[name[len("probe_"):]] = (name, textwrap.dedent(inspect.getsource(fn)))
    expect = {ex: {k: (list(v) if isinstance(v, (list, tuple)) else [v]) for k, v in keys.items()}
              for ex, keys in getattr(module, "EXPECT", {}).items()}
    forbid = {ex: tuple(v) for ex, v in getattr(module, "FORBID", {}).items()}
    return HiddenTests(path, probes, expect, forbid)
