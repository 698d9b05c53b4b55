"""The exercise format: what an instructor notebook declares, and how a submission is read.

Cell metadata of an exercise (in the percent script: ``# %% tags=["solution"] exercise="x" ...``):

* ``exercise="<id>"`` on each of its cells; ``tags`` say which: ``solution``,
  ``check`` (visible self-check), ``hidden`` (legacy in-notebook hidden cells);
* ``points=N`` on the check cell (or on the solution cell of an experiment);
* ``forbid=["course_utils.fairness", "np.histogram"]`` on the solution cell of a
  "write it yourself" exercise: references its solution may not use;
* ``experiment={"value": "name", "interpretation": "name", "tolerance": 0.05}``
  on the solution cell of a graded experiment: the variable holding the
  reported number, the one holding the written interpretation, and the
  tolerance around the range of the instructor's runs;
* ``timeout=S`` (seconds) on the solution cell, when the default 30 s is not enough.

Before the solutions the grader runs the *setup*: every code cell tagged
``setup`` (data loading, models the exercises use), and from the other
ordinary code cells before the last exercise only their imports,
``def``/``class`` statements and constant assignments. Nothing else of the
notebook runs at grading time.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field

import nbformat

__all__ = [
    "BEGIN",
    "BEGIN_HIDDEN",
    "DEFAULT_TIMEOUT",
    "END",
    "END_HIDDEN",
    "Exercise",
    "Experiment",
    "Extraction",
    "defined_names",
    "exercises",
    "extract_submission",
    "notebook_aliases",
    "setup_code",
    "tags",
]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Experiment:
    """A graded experiment: the variables holding the number and the interpretation."""

    value: str
    interpretation: str
    tolerance: float = 0.0
    min_words: int = 10


@dataclass(frozen=True)
class Exercise:
    """One exercise of an instructor notebook."""

    id: str
    points: int
    solution_cells: tuple[int, ...]
    check_cells: tuple[int, ...]
    hidden_cells: tuple[int, ...]
    forbid: tuple[str, ...] = ()
    experiment: Experiment | None = None
    timeout: float = DEFAULT_TIMEOUT


def tags(cell) -> list[str]:
    """The cell's tags (a list, possibly empty)."""
    value = cell.get("metadata", {}).get("tags", [])
    return [t for t in value if isinstance(t, str)] if isinstance(value, list) else []


def _experiment(value) -> Experiment | None:
    if not value:
        return None
    if isinstance(value, str):
        value = json.loads(value)
    return Experiment(value=value["value"], interpretation=value["interpretation"],
                      tolerance=float(value.get("tolerance", 0.0)), min_words=int(value.get("min_words", 10)))


def exercises(nb: nbformat.NotebookNode) -> list[Exercise]:
    """The exercises of an instructor notebook, in order of first appearance."""
    order: list[str] = []
    parts: dict[str, dict] = {}
    for i, cell in enumerate(nb.cells):
        ex = cell.metadata.get("exercise")
        kinds = [t for t in ("solution", "check", "hidden") if t in tags(cell)]
        if not ex or not kinds:
            continue
        if ex not in parts:
            order.append(ex)
            parts[ex] = {"solution": [], "check": [], "hidden": [], "points": 0, "forbid": (), "experiment": None,
                         "timeout": DEFAULT_TIMEOUT}
        p = parts[ex]
        for kind in kinds:
            p[kind].append(i)
        if "points" in cell.metadata:
            p["points"] += int(cell.metadata["points"])
        elif "check" in kinds:
            p["points"] += 1
        if "solution" in kinds:
            p["forbid"] += tuple(cell.metadata.get("forbid", ()))
            p["experiment"] = p["experiment"] or _experiment(cell.metadata.get("experiment"))
            p["timeout"] = float(cell.metadata.get("timeout", p["timeout"]))
    return [Exercise(ex, parts[ex]["points"], tuple(parts[ex]["solution"]), tuple(parts[ex]["check"]),
                     tuple(parts[ex]["hidden"]), parts[ex]["forbid"], parts[ex]["experiment"], parts[ex]["timeout"])
            for ex in order]


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except SyntaxError:
        try:  # IPython syntax (magics) in an otherwise valid cell
            from IPython.core.inputtransformer2 import TransformerManager

            return ast.parse(TransformerManager().transform_cell(source))
        except Exception:  # noqa: BLE001
            return None


def _is_constant(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_is_constant(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_constant(k) for k in node.keys) and all(_is_constant(v) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        return _is_constant(node.operand)
    return False


def _cheap_statements(source: str) -> str:
    """The imports, definitions and constant assignments of a cell, as source."""
    tree = _parse(source)
    if tree is None:
        return ""
    keep = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or (
                isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and _is_constant(node.value)
                and all(isinstance(t, ast.Name) for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))):
            keep.append(ast.get_source_segment(source, node, padded=False) or ast.unparse(node))
    return "\n".join(keep)


def setup_code(nb: nbformat.NotebookNode) -> list[str]:
    """What the grader runs before the solutions, in notebook order up to the last exercise.

    A cell tagged ``setup`` runs whole; from every other ordinary code cell
    only its imports, ``def``/``class`` statements and constant assignments run
    (cheap, no training, no data loading).
    """
    exs = exercises(nb)
    last = max((i for e in exs for i in e.solution_cells), default=len(nb.cells))
    out = []
    for cell in nb.cells[:last]:
        if cell.cell_type != "code" or cell.metadata.get("exercise"):
            continue
        code = cell.source if "setup" in tags(cell) else _cheap_statements(cell.source)
        if code.strip():
            out.append(code)
    return out


def defined_names(source: str) -> set[str]:
    """Top-level names a cell defines (functions, classes, assignments, imports)."""
    tree = _parse(source)
    names: set[str] = set()
    if tree is None:
        return names
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def notebook_aliases(nb: nbformat.NotebookNode) -> dict[str, str]:
    """``{name: dotted}`` for the imports of the notebook's ordinary code cells."""
    from course_utils.selfcheck import import_aliases

    out: dict[str, str] = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.metadata.get("exercise"):
            out.update(import_aliases(cell.source))
    return out


@dataclass
class Extraction:
    """What the grader takes out of a submission."""

    solutions: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    helpers: list[tuple[str, str]] = field(default_factory=list)
    general: list[str] = field(default_factory=list)

    def note(self, exercise: str, message: str) -> None:
        self.notes.setdefault(exercise, []).append(message)


def extract_submission(instructor: nbformat.NotebookNode, submission: dict) -> Extraction:
    """The student's solution cells, helpers and what was odd about them.

    Solution cells are found by their ``exercise`` metadata; a duplicated
    one is named and the last copy graded (the one the student ran last in
    notebook order); when the metadata is gone, the cell that defines the
    same names as the instructor's solution is used, and the report says so.
    Functions and classes that the student defined in ordinary cells (not in
    the instructor notebook) are carried over as helpers and named.
    """
    result = Extraction()
    exs = exercises(instructor)
    cells = [c for c in submission.get("cells", []) if isinstance(c, dict)]

    def source_of(cell) -> str:
        src = cell.get("source", "")
        return "".join(src) if isinstance(src, list) else str(src)

    code_cells = [c for c in cells if c.get("cell_type") == "code"]
    tagged: dict[str, list[str]] = {}
    for cell in code_cells:
        md = cell.get("metadata") or {}
        if "solution" in tags(cell) and isinstance(md.get("exercise"), str):
            tagged.setdefault(md["exercise"], []).append(source_of(cell))
    untagged = [source_of(c) for c in code_cells
                if not (c.get("metadata") or {}).get("exercise") and not {"solution", "check", "hidden"} & set(tags(c))]
    used_untagged: set[int] = set()
    for ex in exs:
        n_expected = len(ex.solution_cells)
        found = tagged.get(ex.id, [])
        if len(found) > n_expected:
            result.note(ex.id, f"{len(found)} solution cells carry exercise id {ex.id!r} (duplicated cell?); "
                               f"the last {n_expected} graded")
            found = found[-n_expected:]
        if not found:
            wanted = set().union(*(defined_names(instructor.cells[i].source) for i in ex.solution_cells))
            wanted = {n for n in wanted if not n.startswith("_")}
            for k, src in enumerate(untagged):
                if wanted and wanted <= defined_names(src) and "NotImplementedError" not in src.split("\n", 1)[0]:
                    found = [src]
                    used_untagged.add(k)
                    result.note(ex.id, "the solution cell had lost its metadata (exercise id); "
                                       f"graded the cell that defines {', '.join(sorted(wanted))}")
            if not found:
                result.note(ex.id, f"no solution cell for exercise {ex.id!r} in the submission "
                                   "(deleted, or its cell metadata was removed)")
                continue
        result.solutions[ex.id] = "\n\n".join(found)
    # helpers: new top-level functions/classes in ordinary cells
    instructor_names: set[str] = set()
    for cell in instructor.cells:
        if cell.cell_type == "code":
            instructor_names |= defined_names(cell.source)
    for k, src in enumerate(untagged):
        if k in used_untagged:
            continue
        tree = _parse(src)
        if tree is None:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and \
                    node.name not in instructor_names:
                code = ast.get_source_segment(src, node) or ast.unparse(node)
                imports = [ast.get_source_segment(src, n) or ast.unparse(n) for n in tree.body
                           if isinstance(n, (ast.Import, ast.ImportFrom))]
                result.helpers.append((node.name, "\n".join([*imports, code])))
    if result.helpers:
        result.general.append("carried over helper(s) defined outside the solution cells: "
                              + ", ".join(f"`{n}`" for n, _ in result.helpers))
    return result
