"""Architecture cost figures (notebook 02): accuracy against cost with a Pareto front, where parameters and multiply-adds go."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from course_utils.cost import format_count, pareto_front
from course_utils.viz.core import new_axes

__all__ = [
    "plot_accuracy_vs_cost",
    "plot_cost_breakdown",
    "plot_pareto_front",
]


def _nice_sizes(lo: float, hi: float, n: int = 3) -> list[float]:
    """Up to ``n`` round numbers (1, 2, 5 x 10^k) spread between ``lo`` and ``hi`` (log scale)."""
    if not (lo > 0 and hi > 0):
        return []
    candidates = sorted({m * 10.0**e for e in range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1)
                         for m in (1, 2, 5)})
    inside = [c for c in candidates if lo <= c <= hi] or [hi]
    if len(inside) <= n:
        return inside
    idx = np.unique(np.round(np.linspace(0, len(inside) - 1, n)).astype(int))
    return [inside[i] for i in idx]


def plot_accuracy_vs_cost(cost: Sequence[float], accuracy: Sequence[float], *,
                          sizes: Sequence[float] | None = None, labels: Sequence[str] | None = None,
                          groups: Sequence[str] | None = None, annotate: bool | Sequence[str] = True,
                          logx: bool = True, max_marker: float = 700.0, size_unit: str = "params",
                          xlabel: str = "GMACs per image", ylabel: str = "top-1 accuracy (%)",
                          title: str | None = None, ax: Axes | None = None) -> Axes:
    """Accuracy against cost, one marker per model, in the style of Canziani et al. (2016).

    Args:
        cost: x values (multiply-adds, training seconds...), shape (N,).
        accuracy: y values, shape (N,).
        sizes: marker *area* proportional to these (e.g. parameter counts); a
            second legend shows a few round reference sizes.
        labels: one name per model, written next to its marker.
        groups: one group per model (e.g. the family); one colour and legend entry per group.
        annotate: ``True`` writes every label, ``False`` none, a sequence only those labels.
        logx: logarithmic x axis (cost spans orders of magnitude).
        max_marker: area in points^2 of the largest marker.
        size_unit: what ``sizes`` counts, for the size legend.
    """
    x = np.asarray(cost, dtype=float)
    y = np.asarray(accuracy, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"cost and accuracy must be 1-D of one length, got {x.shape} and {y.shape}.")
    for name, seq in (("sizes", sizes), ("labels", labels), ("groups", groups)):
        if seq is not None and len(seq) != len(x):
            raise ValueError(f"{len(seq)} {name} for {len(x)} models.")
    if logx and (x <= 0).any():
        raise ValueError("a logarithmic x axis needs positive costs; pass logx=False.")
    ax = new_axes(ax, figsize=(8, 5.5))
    if sizes is not None:
        s_arr = np.asarray(sizes, dtype=float)
        scale = max_marker / max(float(s_arr.max()), 1e-12)
        area = s_arr * scale
    else:
        scale, area = None, np.full(len(x), 40.0)
    group_list = list(groups) if groups is not None else [""] * len(x)
    order = list(dict.fromkeys(group_list))
    cmap = plt.get_cmap("tab20" if len(order) > 10 else "tab10")
    for gi, g in enumerate(order):
        idx = [i for i, gg in enumerate(group_list) if gg == g]
        ax.scatter(x[idx], y[idx], s=area[idx], color=cmap(gi % cmap.N), alpha=0.6,
                   edgecolors="black", linewidths=0.5, label=g or None, zorder=3)
    if labels is not None and annotate is not False:
        wanted = set(labels) if annotate is True else set(annotate)
        for xi, yi, lab in zip(x, y, labels):
            if lab in wanted:
                ax.annotate(str(lab), (xi, yi), xytext=(4, 3), textcoords="offset points", fontsize=7, zorder=4)
    ax.margins(x=0.08, y=0.06)  # room for the labels of the outermost models
    if logx:
        ax.set_xscale("log")
        if x.max() / x.min() < 30:  # less than ~1.5 decades: plain numbers read better than 2 x 10^0

            plain = FuncFormatter(lambda v, _: f"{v:g}")
            ax.xaxis.set_major_formatter(plain)
            ax.xaxis.set_minor_formatter(plain)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    # legends sit outside the axes, right of the plot, so they never hide a model
    if groups is not None:
        first = ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), title="family",
                          title_fontsize="small")
        for handle in first.legend_handles:
            handle.set_sizes([30.0])
        ax.add_artist(first)
    if scale is not None:
        refs = _nice_sizes(float(np.min(sizes)), float(np.max(sizes)))
        handles = [ax.scatter([], [], s=r * scale, color="lightgray", edgecolors="black", linewidths=0.5)
                   for r in refs]
        ax.legend(handles, [f"{format_count(r, digits=0)} {size_unit}" for r in refs], loc="lower left",
                  bbox_to_anchor=(1.01, 0.0), fontsize="small", labelspacing=1.3, borderpad=0.9, frameon=True,
                  title="marker area", title_fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def plot_cost_breakdown(names: Sequence[str], params: Sequence[float], macs: Sequence[float], *,
                        ax: Axes | None = None, title: str | None = None) -> Axes:
    """Where a model's parameters and multiply-adds go: share of each part, side by side.

    Args:
        names: parts of the model (stages, blocks, the head), top to bottom.
        params: parameters of each part.
        macs: multiply-adds of each part.
    """
    if not (len(names) == len(params) == len(macs)) or not names:
        raise ValueError("names, params and macs must be non-empty and of one length.")
    p = np.asarray(params, dtype=float)
    m = np.asarray(macs, dtype=float)
    p_share = 100 * p / max(p.sum(), 1e-12)
    m_share = 100 * m / max(m.sum(), 1e-12)
    ax = new_axes(ax, figsize=(6, 0.35 * len(names) + 1.2))
    pos = np.arange(len(names))
    h = 0.4
    ax.barh(pos - h / 2, p_share, height=h, label="parameters")
    ax.barh(pos + h / 2, m_share, height=h, label="multiply-adds")
    ax.set_yticks(pos, list(names), fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("share of the whole model (%)")
    ax.set_xlim(0, 100)
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize="small", loc="lower right")
    if title:
        ax.set_title(title)
    return ax


def plot_pareto_front(cost: Sequence[float], accuracy: Sequence[float], *, ax: Axes | None = None,
                      label: str = "Pareto front", color: str = "black") -> Axes:
    """The accuracy-versus-cost Pareto front (:func:`course_utils.cost.pareto_front`) as a staircase.

    Args:
        cost: x values of every model, shape (N,); accuracy: y values, shape (N,).
        label: the line's label. Drawn after :func:`plot_accuracy_vs_cost`, whose legends
            are fixed, it is not listed: say "dashed: Pareto front" in the title.
    """
    x, y = np.asarray(cost, dtype=float), np.asarray(accuracy, dtype=float)
    on = np.asarray(pareto_front(x, y), dtype=bool)
    order = np.argsort(x[on], kind="stable")
    ax = new_axes(ax, figsize=(8, 5.5))
    ax.step(x[on][order], y[on][order], where="post", color=color, lw=1.2, ls="--", label=label, zorder=2)
    return ax
