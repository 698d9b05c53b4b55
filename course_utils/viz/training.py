"""Training and classification figures: curves per epoch, mean curves over seeds, confusion matrices, reliability diagrams."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from course_utils.evaluation import (
    expected_calibration_error,
    reliability_bins,
)
from course_utils.viz.core import new_axes

__all__ = [
    "plot_history",
    "plot_confusion_matrix",
    "plot_reliability_diagram",
    "plot_mean_curves",
]


def _history_series(history: Any) -> dict[str, list[float]]:
    if hasattr(history, "records"):
        return {k: history[k] for k in history.keys()}
    if isinstance(history, Mapping):
        return {k: list(v) for k, v in history.items()}
    raise TypeError(f"Expected a History or a mapping of lists, got {type(history).__name__}.")


def plot_history(history: Any, keys: Sequence[str] | str = "loss", *, ax: Axes | None = None,
                 label: str | None = None, logy: bool = False) -> Axes:
    """Training curves: ``train_<key>`` and ``val_<key>`` per epoch.

    Args:
        history: a :class:`course_utils.train.History` or ``{name: [values]}``.
        keys: metric names without the ``train_``/``val_`` prefix
            (``"loss"``, ``"acc"``), or full record keys.
        label: prefix for the legend (to overlay several runs on one Axes).
        logy: logarithmic y axis.
    """
    ax = new_axes(ax)
    series = _history_series(history)
    epochs = series.get("epoch") or list(range(1, len(next(iter(series.values()))) + 1))
    keys = [keys] if isinstance(keys, str) else list(keys)
    drawn = 0
    for key in keys:
        names = [key] if key in series else [f"train_{key}", f"val_{key}"]
        for name in names:
            if name not in series:
                continue
            style = "--" if name.startswith("val_") else "-"
            ax.plot(epochs, series[name], style, marker="o", ms=3,
                    label=f"{label}: {name}" if label else name)
            drawn += 1
    if drawn == 0:
        raise KeyError(f"None of {keys} in the history (have {sorted(series)}).")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(", ".join(keys))
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_confusion_matrix(y_true: Any, y_pred: Any, *, class_names: Sequence[str] | None = None,
                          normalize: bool = True, ax: Axes | None = None, cmap: str = "Blues") -> Axes:
    """Confusion matrix (rows: true class, columns: predicted class).

    Args:
        y_true, y_pred: integer labels, shape (N,).
        normalize: show row fractions (recall per class) instead of counts.
    """
    y_true = np.asarray(torch.as_tensor(y_true).cpu()).astype(int)
    y_pred = np.asarray(torch.as_tensor(y_pred).cpu()).astype(int)
    k = int(max(y_true.max(initial=0), y_pred.max(initial=0)) + 1)
    if class_names is not None:
        k = max(k, len(class_names))
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    ax = new_axes(ax, figsize=(0.45 * k + 2, 0.45 * k + 1.5))
    im = ax.imshow(shown, cmap=cmap, vmin=0, vmax=1 if normalize else None)
    ax.figure.colorbar(im, ax=ax, fraction=0.046)
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize="small")
    ax.set_yticks(range(k), names, fontsize="small")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 15:
        for i in range(k):
            for j in range(k):
                val = shown[i, j]
                if cm[i, j] == 0:
                    continue
                txt = f"{val:.2f}" if normalize else str(val)
                ax.text(j, i, txt, ha="center", va="center", fontsize=6,
                        color="white" if (val > 0.5 if normalize else val > cm.max() / 2) else "black")
    ax.set_title("confusion matrix" + (" (row-normalised)" if normalize else ""))
    return ax


def plot_reliability_diagram(probs: Any, labels: Any, *, n_bins: int = 10, ax: Axes | None = None,
                             label: str | None = None, color: str | None = None, title: str | None = None) -> Axes:
    """Reliability diagram: accuracy against confidence in equal-width confidence bins.

    A calibrated model lies on the diagonal; bars below it are over-confident.
    The legend gives the expected calibration error (ECE). Call it twice on
    one Axes (with ``label``) to compare two models.

    Args:
        probs: class probabilities ``(N, K)`` (rows sum to 1), or ``(N,)`` for P(class 1).
        labels: true classes ``(N,)``.
        n_bins: number of bins on [0, 1].
        label: legend prefix for this model.
    """
    ax = new_axes(ax, figsize=(4.2, 4.2))
    bins = reliability_bins(probs, labels, n_bins=n_bins)
    ece = expected_calibration_error(probs, labels, n_bins=n_bins)
    full = bins.counts > 0
    centres = (bins.edges[:-1] + bins.edges[1:]) / 2
    width = bins.edges[1] - bins.edges[0]
    name = f"{label}: " if label else ""
    ax.bar(centres[full], bins.accuracy[full], width=width * 0.9, alpha=0.45, color=color, edgecolor=color or "C0",
           label=f"{name}ECE {ece:.3f}")
    ax.plot(bins.confidence[full], bins.accuracy[full], "o-", color=color, ms=4, lw=1)
    if not any(line.get_label() == "calibrated" for line in ax.get_lines()):
        ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize="small", loc="upper left")
    if title:
        ax.set_title(title)
    return ax


def plot_mean_curves(curves: Mapping[str, Any], *, ax: Axes | None = None, xlabel: str = "epoch",
                     ylabel: str = "test accuracy", title: str | None = None, band: str = "range",
                     chance: float | None = None) -> Axes:
    """One line per run group: the mean over runs, with a shaded band.

    Args:
        curves: name -> values of shape ``(n_runs, n_points)`` (or
            ``(n_points,)`` for a single run); shorter runs may be padded with NaN.
        band: ``"range"`` (min to max over runs), ``"std"`` (mean ± one
            standard deviation) or ``"none"``.
        chance: draw a dotted horizontal line at this value.
    """
    if band not in ("range", "std", "none"):
        raise ValueError(f"band={band!r}; use 'range', 'std' or 'none'.")
    ax = new_axes(ax)
    for i, (name, values) in enumerate(curves.items()):
        v = np.atleast_2d(np.asarray(values, dtype=float))
        if v.size == 0:
            continue
        x = np.arange(1, v.shape[1] + 1)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns of padded runs
            mean = np.nanmean(v, axis=0)
            if band == "range":
                lo, hi = np.nanmin(v, axis=0), np.nanmax(v, axis=0)
            elif band == "std":
                sd = np.nan_to_num(np.nanstd(v, axis=0))
                lo, hi = mean - sd, mean + sd
        color = f"C{i % 10}"
        runs = f" ({v.shape[0]} runs)" if v.shape[0] > 1 else ""
        ax.plot(x, mean, color=color, lw=1.8, label=f"{name}{runs}")
        if band != "none" and v.shape[0] > 1:
            ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)
    if chance is not None:
        ax.axhline(chance, ls=":", color="grey", lw=1, label="chance")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax
