"""Build the ``.ipynb`` notebooks from their jupytext percent scripts, deterministically.

``python -m course_tools.nbtools [notebooks/NN_name.py ...]`` (or ``make
notebooks``) writes each ``NN_name.ipynb`` next to its script, without
outputs and with cell ids derived from the cell contents, so that building
twice gives byte-identical files and diffs stay small.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path
from typing import Any

import jupytext
import nbformat

__all__ = ["NOTEBOOK_NAME", "notebook_scripts", "read_script", "build_notebook", "notebook_text", "headless_client", "main"]

KEEP_CELL_METADATA = ("tags", "exercise", "points", "forbid", "experiment", "timeout")


#: A course notebook's file name: ``NN_name`` or, for a lecture split in parts,
#: ``NNa_name``, ``NNb_name`` ... (each part is a notebook of its own; the
#: fast-mode ceiling of notebook ``NN`` applies to each part).
NOTEBOOK_NAME = re.compile(r"^(?P<number>\d\d)(?P<part>[a-z]?)_\w+$")


def notebook_scripts(directory: str | Path = "notebooks", *, suffix: str = ".py") -> list[Path]:
    """The course notebooks in ``directory`` (``NN_name.py``, ``NNa_name.py`` ...), in order.

    ``suffix=".ipynb"`` lists the paired notebooks (or executed copies) instead.
    """
    return sorted(p for p in Path(directory).glob(f"[0-9][0-9]*{suffix}") if NOTEBOOK_NAME.match(p.stem))


def read_script(path: str | Path) -> nbformat.NotebookNode:
    """Read a percent script into a notebook with stable cell ids and no outputs."""
    nb = jupytext.read(Path(path))
    seen: dict[str, int] = {}
    for cell in nb.cells:
        cell.metadata = {k: cell.metadata[k] for k in KEEP_CELL_METADATA if k in cell.metadata}
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
        seen[digest] = seen.get(digest, 0) + 1
        cell.id = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata = {"kernelspec": nb.metadata.get("kernelspec", {
        "display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}),
        "language_info": {"name": "python"}}
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def notebook_text(nb: nbformat.NotebookNode) -> str:
    """The exact text written for ``nb`` (1-space JSON indent, trailing newline)."""
    return nbformat.writes(nb, version=4) + "\n"


def build_notebook(script: str | Path) -> Path:
    """Write ``script``'s ``.ipynb`` twin and return its path."""
    script = Path(script)
    out = script.with_suffix(".ipynb")
    out.write_text(notebook_text(read_script(script)), encoding="utf-8")
    return out


def headless_client(nb: nbformat.NotebookNode, *, path: str | Path, timeout: int = 900,
                    allow_errors: bool = False, kernel_name: str | None = None) -> Any:
    """An ``nbclient.NotebookClient`` that runs ``nb`` in ``path`` without emulating a widget frontend.

    nbclient imitates JupyterLab's Output widget by sending comm messages back
    to the kernel on the shell channel *while a cell runs*. With ipykernel 7
    this sometimes leaves the kernel idle and the client waiting forever for
    the cell's reply (seen here on the threshold explorer of notebook 04; see
    jupyter/nbclient#312). nbval, which runs the notebooks in CI, never sends
    such messages. Output-widget contents are not needed to grade or check a
    notebook (figures are also kept in the explorer's ``figure`` attribute),
    so this client turns the emulation off.

    Args:
        nb: the notebook, executed in place.
        path: working directory of the kernel.
        timeout: seconds allowed per cell.
        allow_errors: keep going after a failing cell (the grader does).
        kernel_name: Jupyter kernel; default: this interpreter's environment.
    """
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, allow_errors=allow_errors,
                            kernel_name=kernel_name or NATIVE_KERNEL_NAME,
                            resources={"metadata": {"path": str(Path(path).resolve())}})
    client.widget_registry = {}  # no Output-widget emulation: no client-to-kernel comm traffic
    return client


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    scripts = [Path(a) for a in args] or notebook_scripts()
    for script in scripts:
        print(f"{script} -> {build_notebook(script)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
