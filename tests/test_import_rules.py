"""The package's layering, read from the source with ``ast`` (nothing is imported).

Data flows one way: settings -> data -> models -> train -> metric_learning /
evaluation -> transfer / pretrained -> fairness -> viz. A module may import
its own layer and the layers below, never one above; nothing in
``course_utils`` imports ``course_tools`` (the authoring tools) or a notebook;
only ``viz`` imports matplotlib and ipywidgets; and imports sit at the top of
a module, except for the optional or slow dependencies of
:data:`LAZY_ALLOWED`, each with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "course_utils"

#: Layer of each top-level module or sub-package of ``course_utils`` (0 = bottom).
LAYERS: dict[str, int] = {
    # foundations: no course_utils imports above them
    "settings": 0,
    "arrays": 0,
    "stats": 0,
    "selfcheck": 0,
    # data sets, samplers, caches; batch augmentations
    "data": 1,
    "augment": 1,
    # architectures, their costs, the from-scratch reference ops
    "models": 2,
    "cost": 2,
    "scratch": 2,
    # fit / evaluate / predict, checkpoints, DistributedDataParallel
    "train": 3,
    "callbacks": 3,
    "checkpointing": 3,
    "distributed": 3,
    # what models output: metric-learning losses and miners, evaluation protocols
    "metric_learning": 4,
    "evaluation": 4,
    # transfer learning, pretrained networks, architecture search (all train models)
    "transfer": 5,
    "pretrained": 5,
    "nas": 5,
    # group differences, on top of evaluation and pretrained models
    "fairness": 6,
    # figures and explorers: the top, the only home of matplotlib and ipywidgets
    "viz": 7,
}

#: Modules still to be moved into their layer's home by the regrouping of
#: issue #15 (the lead removes each entry when its module lands). Each is
#: placed in the layer of what it imports today.
PENDING_LAYERS: dict[str, int] = {}

#: Upward imports still to be removed, as ``(module, imported module)``.
PENDING_UPWARD: set[tuple[str, str]] = set()

#: Third-party modules imported inside functions on purpose, with the reason.
LAZY_ALLOWED: dict[str, str] = {
    "dlib": "optional (the `faces` extra; no wheel on some platforms)",
    "umap": "slow import (numba compilation set-up); only UMAP projections need it",
    "numba": "slow import; only configured when UMAP is used",
    "pynndescent": "slow import (numba); only UMAP's nearest-neighbour index",
    "sklearn.manifold": "slow import; only t-SNE and trustworthiness",
    "psutil": "optional: the environment report works without it",
    "wordfreq": "slow import (loads word lists); only notebook 02's text data",
    "skimage": "slow import; only the sample images",
    "sklearn.datasets": "slow import; only the sample images and digits",
    "torchvision.datasets": "slow import; only the downloadable image data sets",
    "torchvision.transforms": "slow import (torchvision); only the face data's transform pipeline",
    "scipy.io": "only the .mat metadata of one data set",
}

#: Function-level imports not yet moved to the top of their module, as
#: ``(module, imported module)``: each is in a module that other issues are
#: editing (settings, pretrained). Remove entries as they land.
PENDING_LAZY: set[tuple[str, str]] = set()

#: ``course_utils`` modules allowed to import ``course_tools`` (deprecated forwarders).
PENDING_TOOLS: set[str] = set()

GUI = ("matplotlib", "ipywidgets")
AUTHORING = ("course_tools", "jupytext", "nbformat", "nbclient", "jupyterlab", "jupyter_client")


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """``(imported module, line, inside a function)`` for every import of ``path``.

    ``from course_utils import x`` counts as importing ``course_utils.x``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside |= {id(n) for n in ast.walk(fn) if n is not fn}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno, id(node) in inside) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "course_utils":
                found += [(f"course_utils.{a.name}", node.lineno, id(node) in inside) for a in node.names]
            else:
                found.append((node.module, node.lineno, id(node) in inside))
    return found


def _top(module: str) -> str | None:
    """``course_utils.models.zoo`` -> ``models``; the package itself -> ``None``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _layer(module: str) -> int | None:
    top = _top(module)
    if top is None:
        return None
    if top in LAYERS:
        return LAYERS[top]
    return PENDING_LAYERS.get(top)


def _under(name: str, prefixes: tuple[str, ...] | list[str] | set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_every_module_has_a_layer():
    missing = sorted({_top(m) for m, _ in MODULES if _top(m) and _layer(m) is None})
    assert missing == [], f"give these modules a layer in LAYERS: {missing}"


def test_no_module_imports_a_higher_layer():
    bad = []
    for module, path in MODULES:
        own = _layer(module)
        if own is None:  # the package's own __init__ re-exports a few names from train
            continue
        for name, line, _ in _imports(path):
            if not _under(name, ["course_utils"]) or name == "course_utils":
                continue
            other = _layer(name)
            if other is not None and other > own and (module, name) not in PENDING_UPWARD:
                bad.append(f"{path.relative_to(ROOT)}:{line} ({_top(module)}, layer {own}) imports "
                           f"{name} (layer {other})")
    assert bad == [], "imports against the layering:\n" + "\n".join(bad)


def test_nothing_imports_the_authoring_tools():
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for module, path in MODULES if module not in PENDING_TOOLS
           for name, line, _ in _imports(path) if _under(name, AUTHORING)]
    assert bad == [], "the runtime package must not need course_tools or Jupyter's tools:\n" + "\n".join(bad)


def test_only_viz_imports_matplotlib_and_ipywidgets():
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for module, path in MODULES if _top(module) != "viz"
           for name, line, _ in _imports(path) if _under(name, GUI)]
    assert bad == [], "\n".join(bad)


def test_no_function_level_imports_except_optional_heavy_ones():
    bad = []
    for module, path in MODULES:
        for name, line, lazy in _imports(path):
            if not lazy or _under(name, LAZY_ALLOWED) or (module, name) in PENDING_LAZY:
                continue
            bad.append(f"{path.relative_to(ROOT)}:{line} imports {name} inside a function")
    assert bad == [], ("move these imports to the top of their module, or add the dependency to "
                       "LAZY_ALLOWED with its reason:\n" + "\n".join(bad))


def test_pending_entries_are_still_needed():
    """An entry whose import is gone must leave the list, so that the list only shrinks."""
    lazy = {(module, name) for module, path in MODULES for name, _, is_lazy in _imports(path) if is_lazy}
    stale = sorted(PENDING_LAZY - lazy)
    assert stale == [], f"remove from PENDING_LAZY: {stale}"
    tops = {_top(m) for m, _ in MODULES}
    assert sorted(set(PENDING_LAYERS) - tops) == [], "remove modules that no longer exist from PENDING_LAYERS"
    assert sorted(PENDING_TOOLS - {m for m, _ in MODULES}) == [], "remove deleted forwarders from PENDING_TOOLS"
    every = {(module, name) for module, path in MODULES for name, _, _ in _imports(path)}
    assert sorted(PENDING_UPWARD - every) == [], "remove from PENDING_UPWARD"


@pytest.mark.parametrize("source, expected", [
    ("import numpy as np\n", [("numpy", 1, False)]),
    ("def f():\n    from course_utils import train\n", [("course_utils.train", 2, True)]),
    ("from .x import y\n", []),
])
def test_the_import_reader(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source)
    assert _imports(path) == expected
