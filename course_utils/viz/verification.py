"""Face verification figures: ROC curves, genuine / impostor score distributions, image pairs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes

from course_utils.evaluation import (
    roc_auc,
    roc_curve,
)
from course_utils.viz.core import new_axes
from course_utils.viz.images import show_images

__all__ = [
    "plot_roc_curves",
    "plot_score_distributions",
    "show_pairs",
]


def plot_roc_curves(curves: Mapping[str, tuple[Any, Any]], *, ax: Axes | None = None, log_far: bool = True,
                    mark_far: float | None = None, title: str | None = "verification ROC") -> Axes:
    """Verification ROC curves (true accept rate against false accept rate), one per method.

    Args:
        curves: name -> ``(scores, same)``: pair scores (higher = more alike)
            and 1/0 same-identity flags; the legend gives each curve's AUC.
        log_far: logarithmic FAR axis (where face systems operate), starting
            at one false accept.
        mark_far: draw a vertical line at this FAR (e.g. 1e-2).
    """
    ax = new_axes(ax, figsize=(5.5, 4))
    lowest = 1.0
    for name, (scores, same) in curves.items():
        fpr, tpr, _ = roc_curve(scores, same)
        positive = fpr[fpr > 0]
        if positive.size:
            lowest = min(lowest, float(positive.min()))
        ax.step(fpr, tpr, where="post", label=f"{name} (AUC {roc_auc(scores, same):.3f})")
    if log_far:
        ax.set_xscale("log")
        ax.set_xlim(lowest * 0.8, 1.0)
    else:
        ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
        ax.set_xlim(0, 1)
    if mark_far is not None:
        ax.axvline(mark_far, color="grey", ls="--", lw=1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false accept rate (FAR)" + (", log scale" if log_far else ""))
    ax.set_ylabel("true accept rate (TAR)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", loc="lower right")
    if title:
        ax.set_title(title)
    return ax


def plot_score_distributions(scores: Any, same: Any, *, threshold: float | None = None, bins: int = 40,
                             ax: Axes | None = None, title: str | None = None) -> Axes:
    """Histograms of genuine (same person) and impostor pair scores, with an optional threshold.

    Each histogram is normalised to a density, so the two classes are
    comparable however unbalanced they are. With a ``threshold``, the
    impostors at or above it (false accepts) and the genuine pairs below it
    (false rejects) are the two shaded tails.
    """
    s = np.asarray(torch.as_tensor(scores).detach().cpu(), dtype=float)
    y = np.asarray(torch.as_tensor(same).detach().cpu()).astype(bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores and same must both have shape (N,); got {s.shape} and {y.shape}.")
    ax = new_axes(ax, figsize=(5.5, 3.5))
    edges = np.linspace(float(s.min()), float(s.max()) + 1e-9, bins + 1)
    ax.hist(s[~y], bins=edges, density=True, alpha=0.5, color="tab:red", label=f"impostor ({int((~y).sum())})")
    ax.hist(s[y], bins=edges, density=True, alpha=0.5, color="tab:green", label=f"genuine ({int(y.sum())})")
    if threshold is not None:
        ax.axvline(threshold, color="black", lw=1.5, label=f"threshold {threshold:.3f}")
        fa = int(((s >= threshold) & ~y).sum())
        fr = int(((s < threshold) & y).sum())
        ax.text(0.02, 0.97, f"false accepts: {fa}\nfalse rejects: {fr}", transform=ax.transAxes, va="top",
                fontsize="small", bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
    ax.set_xlabel("score (higher = more alike)")
    ax.set_ylabel("density")
    ax.legend(fontsize="small", loc="upper right")
    if title:
        ax.set_title(title)
    return ax


def show_pairs(first: Any, second: Any, labels: Sequence[Any] | None = None, *, ax: Axes | None = None,
               title: str | None = None, ncols: int = 4) -> Axes:
    """Image pairs side by side (``first[i]`` left of ``second[i]``), ``ncols`` pairs per row."""
    a, b = list(first), list(second)
    if len(a) != len(b):
        raise ValueError(f"{len(a)} first images but {len(b)} second images.")
    if not a:
        ax = new_axes(ax, figsize=(3, 1.5))
        ax.text(0.5, 0.5, "none", ha="center", va="center")
        ax.set_xticks([])
        ax.set_yticks([])
        if title:
            ax.set_title(title)
        return ax
    tiles = [im for pair in zip(a, b) for im in pair]
    tile_labels = None
    if labels is not None:
        if len(labels) != len(a):
            raise ValueError(f"{len(labels)} labels for {len(a)} pairs.")
        tile_labels = [x for lab in labels for x in (lab, "")]
    return show_images(tiles, tile_labels, ncols=2 * min(ncols, len(a)), ax=ax, title=title)
