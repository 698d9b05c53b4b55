"""Fairness figures: per-group estimates with intervals, embeddings coloured by group."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes

from course_utils.viz.core import new_axes

__all__ = [
    "plot_group_intervals",
    "plot_embedding_groups",
]


def plot_group_intervals(table: Any, *, ax: Axes | None = None, title: str | None = None,
                         ylabel: str | None = None, reference: float | None = None,
                         groups: Sequence[Any] | None = None) -> Axes:
    """Per-group estimates with their intervals, one colour per model, side by side.

    Args:
        table: long DataFrame with columns ``group``, ``estimate``, ``low``,
            ``high`` and optionally ``model`` (e.g. one metric of
            :func:`course_utils.fairness.bootstrap_group_metrics`).
        reference: draw a horizontal line there (e.g. chance, or 0 for contrasts).
        groups: the groups to show, in order (default: those of the table).
    """
    ax = new_axes(ax, figsize=(7, 3.5))
    t = table if "model" in table.columns else table.assign(model="")
    names = list(groups) if groups is not None else list(dict.fromkeys(t["group"]))
    models = list(dict.fromkeys(t["model"]))
    width = 0.8 / max(len(models), 1)
    for k, model in enumerate(models):
        rows = t[t["model"] == model].set_index("group").reindex(names)
        x = np.arange(len(names)) + (k - (len(models) - 1) / 2) * width
        est = rows["estimate"].to_numpy(float)
        err = np.stack([est - rows["low"].to_numpy(float), rows["high"].to_numpy(float) - est])
        ax.errorbar(x, est, yerr=np.clip(err, 0, None), fmt="o", capsize=3, label=str(model) or None,
                    color=f"C{k}")
    if reference is not None:
        ax.axhline(reference, color="0.5", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(names)), [str(n) for n in names], rotation=30, ha="right")
    if ylabel:
        ax.set_ylabel(ylabel)
    if len(models) > 1 or models[0]:
        ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def plot_embedding_groups(xy: Any, groups: Any, *, ax: Axes | None = None, title: str | None = None,
                          size: float = 6.0, order: Sequence[Any] | None = None) -> Axes:
    """A 2-D projection ``(N, 2)`` of embeddings, one colour per group."""
    ax = new_axes(ax, figsize=(5, 4.5))
    pts = xy.detach().cpu().numpy() if isinstance(xy, torch.Tensor) else np.asarray(xy)
    g = np.asarray(groups)
    names = list(order) if order is not None else sorted(set(g.tolist()), key=str)
    for k, name in enumerate(names):
        m = g == name
        ax.scatter(pts[m, 0], pts[m, 1], s=size, alpha=0.7, color=f"C{k % 10}", label=str(name), linewidths=0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize="x-small", markerscale=2, loc="best")
    if title:
        ax.set_title(title)
    return ax
