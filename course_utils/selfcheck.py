""""Write it yourself" exercises: find calls to references a solution must not use.

An exercise that asks for an implementation from scratch lists the package or
library references its solution may not call, as dotted names (in the cell
metadata ``forbid=["course_utils.fairness", "fairlearn", "np.histogram"]``).
A name forbids itself and everything under it. The grader checks the
solution cell's source; the visible self-check in the notebook checks the
function the student wrote::

    from course_utils.selfcheck import assert_no_forbidden_calls
    assert_no_forbidden_calls(composition_shares, ["course_utils.fairness"])

Aliases are resolved (``import course_utils.fairness as Fa`` makes
``Fa.composition_table`` a use of ``course_utils.fairness.composition_table``),
and so are re-exports: a name is also compared by the module that defines it
(``from course_utils.metric_learning import TripletLoss`` is a use of
``course_utils.metric_learning.losses.TripletLoss``, and the reverse),
and dynamic look-ups that would hide a call (``eval``, ``exec``,
``__import__``, ``importlib``, ``globals()``, ``sys.modules`` ...) are refused
in such a solution too.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
import types
from collections.abc import Callable, Iterable, Mapping

__all__ = ["DYNAMIC_ATTRIBUTES", "DYNAMIC_LOOKUPS", "assert_no_forbidden_calls", "forbidden_uses", "import_aliases"]

#: names that can reach a forbidden reference without naming it
DYNAMIC_LOOKUPS = ("eval", "exec", "compile", "__import__", "importlib", "globals", "vars", "locals", "getattr",
                   "sys.modules", "builtins", "__builtins__", "runpy", "inspect", "ctypes", "subprocess",
                   "operator.attrgetter", "operator.methodcaller")
#: attributes that reach a namespace without naming what is taken from it
DYNAMIC_ATTRIBUTES = ("__dict__", "__getattribute__", "__globals__", "__builtins__", "__subclasses__", "__closure__",
                      "__code__", "f_globals", "f_locals", "f_back")


def import_aliases(source: str) -> dict[str, str]:
    """``{local name: dotted module or object}`` for every import statement in ``source``."""
    aliases: dict[str, str] = {}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return aliases
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    aliases[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            dotted = _dotted(node.value)  # `cp = cost.count_parameters` makes `cp` an alias too
            if dotted and dotted != node.targets[0].id:
                aliases[node.targets[0].id] = dotted
    return aliases


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _matches(name: str, forbidden: str) -> bool:
    return name == forbidden or name.startswith(forbidden + ".")


def forbidden_uses(source: str, forbid: Iterable[str], *, aliases: Mapping[str, str] | None = None) -> list[str]:
    """Messages, one per use of a forbidden reference in ``source`` (empty: none).

    Args:
        source: the solution's code.
        forbid: dotted names, as written in the exercise metadata.
        aliases: names bound outside ``source`` (the notebook's imports), ``{name: dotted}``.
    """
    forbid = [f for f in forbid if f]
    if not forbid:
        return []
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError as err:
        return [f"the solution is not valid Python ({err.msg}, line {err.lineno})"]
    known = {**(aliases or {}), **import_aliases(source)}
    # aliases written in the forbid list itself ("Fa.composition_table") resolve like the code's
    targets = set(forbid) | {_resolve(f, known) for f in forbid}
    # re-exports: the same object reached through another package path
    roots = {t.split(".")[0] for t in targets}
    targets |= {_defined_at(t, roots) for t in targets}

    def hit(*names: str) -> bool:
        candidates = set(names) | {_defined_at(n, roots) for n in names}
        return any(_matches(c, t) for c in candidates for t in targets)
    found: list[str] = []

    def report(node: ast.AST, what: str) -> None:
        msg = f"line {getattr(node, 'lineno', '?')}: uses {what}"
        if msg not in found:
            found.append(msg)

    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}  # report each chain once
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in DYNAMIC_ATTRIBUTES:
            report(node, f"`.{node.attr}` (dynamic look-ups are not allowed in a write-it-yourself exercise)")
        if id(node) in inner:
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [f"{node.module}.{a.name}" for a in node.names] + [node.module or ""])
            for name in names:
                if hit(name):
                    report(node, f"`{name}` (forbidden in this exercise: write it yourself)")
                    break
                if any(_matches(name, d) for d in DYNAMIC_LOOKUPS):
                    report(node, f"`{name}` (dynamic imports are not allowed in a write-it-yourself exercise)")
                    break
        elif isinstance(node, (ast.Attribute, ast.Name)) and isinstance(node.ctx, ast.Load):
            dotted = _dotted(node)
            if dotted is None:
                continue
            resolved = _resolve(dotted, known)
            if hit(dotted, resolved):
                report(node, f"`{dotted}`" + (f" (= {resolved})" if resolved != dotted else "")
                       + " (forbidden in this exercise: write it yourself)")
            else:
                if isinstance(node, ast.Name) and node.id in DYNAMIC_LOOKUPS or any(
                        _matches(resolved, d) for d in DYNAMIC_LOOKUPS if "." in d):
                    report(node, f"`{dotted}` (dynamic look-ups are not allowed in a write-it-yourself exercise)")
    return sorted(found, key=lambda m: int(m.split(":")[0].split()[1]) if m.split(":")[0].split()[1].isdigit() else 0)


def _resolve(dotted: str, aliases: Mapping[str, str]) -> str:
    for _ in range(10):  # aliases of aliases
        head, _, rest = dotted.partition(".")
        if head not in aliases or aliases[head].split(".")[0] == head and aliases[head] == head:
            return dotted
        dotted = aliases[head] + ("." + rest if rest else "")
    return dotted


def _defined_at(dotted: str, roots: set[str]) -> str:
    """``module.qualname`` of the function or class (or the module) that ``dotted`` names.

    Only names under a forbidden target's top-level package are looked up
    (by importing that package's modules, never the solution); anything
    else, or a name that does not resolve, is returned unchanged.
    """
    parts = dotted.split(".")
    if parts[0] not in roots:
        return dotted
    obj: object = None
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
            break
        except Exception:  # not a module (an attribute), or not importable here
            continue
    else:
        return dotted
    for attr in parts[i:]:
        obj = getattr(obj, attr, None)
        if obj is None:
            return dotted
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{qualname}" if isinstance(module, str) and isinstance(qualname, str) else dotted


def _aliases_of_globals(namespace: Mapping[str, object]) -> dict[str, str]:
    out = {}
    for name, value in namespace.items():
        if isinstance(value, types.ModuleType):
            out[name] = value.__name__
        elif callable(value) and getattr(value, "__module__", None) and getattr(value, "__qualname__", None):
            out[name] = f"{value.__module__}.{value.__qualname__}"
    return out


def assert_no_forbidden_calls(obj: Callable | type | str, forbid: Iterable[str]) -> None:
    """Raise ``AssertionError`` naming each forbidden reference that ``obj``'s code uses.

    ``obj`` is the function or class the student wrote (its source is read with
    ``inspect``; in Jupyter this works for code defined in a cell), or source text.
    """
    if isinstance(obj, str):
        source, namespace = obj, {}
    else:
        source = inspect.getsource(obj)
        namespace = dict(getattr(obj, "__globals__", None) or vars(inspect.getmodule(obj) or types.ModuleType("x")))
        if inspect.isfunction(obj):
            namespace.update(inspect.getclosurevars(obj).nonlocals)
    problems = forbidden_uses(source, forbid, aliases=_aliases_of_globals(namespace))
    assert not problems, "write it yourself: " + "; ".join(problems)
