"""``describe(dataset)``: how many images, per identity and per group, as a small table."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np
import pandas as pd

__all__ = ["describe"]


def _image_shape(dataset: Any) -> str:
    base = getattr(dataset, "base", None)
    if base is not None:  # pairs / triplets: describe the images of the base dataset
        return _image_shape(base)
    images = getattr(dataset, "images", None)
    if images is not None and getattr(images, "ndim", 0) == 4:
        return "x".join(str(int(s)) for s in images.shape[1:])
    try:
        first = dataset[0][0]
        return "x".join(str(int(s)) for s in getattr(first, "shape", ()))
    except Exception:  # noqa: BLE001 - description must never fail
        return "?"


def describe(
    dataset: Any,
    *,
    columns: Sequence[str] | None = None,
    max_rows: int = 15,
    file: TextIO | None = None,
) -> pd.DataFrame:
    """Print counts per identity (or class) and per group, and return the group table.

    Args:
        dataset: anything with ``targets`` (and optionally ``attributes``,
            ``group_columns``, ``classes``, ``name``, ``same`` for pairs).
        columns: attribute columns to count (default: ``group_columns``).
        max_rows: most rows printed per column (the return value has all).
        file: where to print (default ``sys.stdout``).

    Returns:
        One row per (column, value): ``column, value, images, share`` and,
        when ``targets`` are identities, ``identities``.
    """
    out = file or sys.stdout
    targets = np.asarray(getattr(dataset, "targets"))
    name = getattr(dataset, "name", type(dataset).__name__)
    target_name = getattr(dataset, "target_name", "class")
    n = len(targets)
    classes = getattr(dataset, "classes", None)
    ids, counts = np.unique(targets, return_counts=True)
    lines = [f"{name}: {n} items of {_image_shape(dataset)}"]
    same = getattr(dataset, "same", None)
    if same is not None:
        same = np.asarray(same, dtype=bool)
        lines.append(f"  pairs: {int(same.sum())} same identity, {int((~same).sum())} different")
    elif n:
        lines.append(
            f"  {len(ids)} {target_name} values; items per {target_name}: min {counts.min()}, "
            f"median {int(np.median(counts))}, max {counts.max()}"
        )
    attributes: pd.DataFrame | None = getattr(dataset, "attributes", None)
    cols = list(columns) if columns is not None else list(getattr(dataset, "group_columns", ()))
    rows = []
    if attributes is not None and cols:
        per_identity = target_name == "identity"
        for col in cols:
            if col not in attributes.columns:
                raise KeyError(f"{col!r} is not an attribute; choose from {list(attributes.columns)}.")
            values = attributes[col]
            groups = values.groupby(values, observed=False, sort=True)
            for value, idx in groups.groups.items():
                idx = np.asarray(idx)
                row = {"column": col, "value": value, "images": len(idx), "share": len(idx) / n if n else 0.0}
                if per_identity:
                    row["identities"] = len(np.unique(targets[attributes.index.get_indexer(idx)])) if len(idx) else 0
                rows.append(row)
    elif n and same is None:
        for ident, count in sorted(zip(ids, counts), key=lambda t: -t[1]):
            label = classes[ident] if classes is not None and 0 <= ident < len(classes) else ident
            rows.append({"column": target_name, "value": label, "images": int(count), "share": count / n})
    table = pd.DataFrame(rows, columns=["column", "value", "images", "share", "identities"][: 5 if rows and "identities" in rows[0] else 4])
    print("\n".join(lines), file=out)
    if not table.empty:
        shown = pd.concat([g.head(max_rows) for _, g in table.groupby("column", sort=False)])
        text = shown.assign(share=shown["share"].map(lambda s: f"{100 * s:5.1f}%")).to_string(index=False)
        print("  " + text.replace("\n", "\n  "), file=out)
        hidden = len(table) - len(shown)
        if hidden:
            print(f"  ... {hidden} more rows (see the returned table)", file=out)
    return table
