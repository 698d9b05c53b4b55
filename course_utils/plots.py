"""Every figure of the course.

Each helper takes ``ax=None`` (a new figure is made when no Axes is given)
and returns the ``Axes`` it drew on, so notebooks can compose figures. Nothing
here calls ``plt.show()`` or changes ``rcParams``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

__all__ = [
    "new_axes",
    "plot_history",
    "show_images",
    "image_grid",
    "plot_confusion_matrix",
    "to_numpy_image",
]


def new_axes(ax: Axes | None = None, *, figsize: tuple[float, float] = (5, 3.5)) -> Axes:
    """``ax`` itself, or the Axes of a new figure."""
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


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


def to_numpy_image(img: Any) -> np.ndarray:
    """An image as an (H, W) or (H, W, 3) float array for ``imshow``.

    Accepts tensors (C, H, W) or arrays (H, W[, C]); values are clipped to
    [0, 1] when they look like [0, 1] floats, else min-max scaled.
    """
    if isinstance(img, torch.Tensor):
        arr = img.detach().cpu().float().numpy()
        if arr.ndim == 3 and arr.shape[0] in (1, 3):
            arr = np.transpose(arr, (1, 2, 0))
    else:
        arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.dtype != np.uint8:
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        if lo < -1e-3 or hi > 1 + 1e-3:
            arr = (arr - lo) / (hi - lo + 1e-12)
        arr = np.clip(arr, 0, 1)
    return arr


def image_grid(images: Any, *, ncols: int = 8, pad: int = 1) -> np.ndarray:
    """Tile images (N, C, H, W) or a list of (H, W[, C]) into one array."""
    imgs = [to_numpy_image(im) for im in images]
    if not imgs:
        raise ValueError("No images to show.")
    rgb = any(im.ndim == 3 for im in imgs)
    if rgb:
        imgs = [np.repeat(im[..., None], 3, axis=2) if im.ndim == 2 else im for im in imgs]
    h = max(im.shape[0] for im in imgs)
    w = max(im.shape[1] for im in imgs)
    ncols = max(1, min(ncols, len(imgs)))
    nrows = -(-len(imgs) // ncols)
    shape = (nrows * (h + pad) - pad, ncols * (w + pad) - pad) + ((3,) if rgb else ())
    grid = np.ones(shape, dtype=np.float32)
    for i, im in enumerate(imgs):
        r, c = divmod(i, ncols)
        grid[r * (h + pad): r * (h + pad) + im.shape[0], c * (w + pad): c * (w + pad) + im.shape[1]] = im
    return grid


def show_images(images: Any, labels: Sequence[Any] | None = None, *, ncols: int = 8, ax: Axes | None = None,
                title: str | None = None, cmap: str = "gray") -> Axes:
    """A grid of images with optional per-image labels, on one Axes.

    Args:
        images: tensor (N, C, H, W) or a list of (H, W[, C]) arrays/tensors.
        labels: one label per image, written under its tile.
    """
    imgs = list(images)
    grid = image_grid(imgs, ncols=ncols)
    ncols = max(1, min(ncols, len(imgs)))
    nrows = -(-len(imgs) // ncols)
    ax = new_axes(ax, figsize=(1.3 * ncols, 1.4 * nrows + 0.3))
    ax.imshow(grid, cmap=cmap if grid.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if labels is not None:
        if len(labels) != len(imgs):
            raise ValueError(f"{len(labels)} labels for {len(imgs)} images.")
        h = grid.shape[0] / nrows
        w = grid.shape[1] / ncols
        for i, lab in enumerate(labels):
            r, c = divmod(i, ncols)
            ax.text(c * w + 1, r * h + h - 2, str(lab), color="yellow", fontsize=7, va="bottom",
                    bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "lw": 0})
    if title:
        ax.set_title(title)
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


def show_kernels(kernels: Any, labels: Sequence[Any] | None = None, *, ncols: int = 8, ax: Axes | None = None,
                 title: str | None = None, pad: int = 1) -> Axes:
    """Convolution kernels side by side, each scaled on its own.

    Single-channel kernels are drawn with a diverging colour map (blue
    negative, white zero, red positive; each scaled by its largest absolute
    weight), so a learned filter and a hand-made one such as Sobel look
    alike. Three-channel kernels are drawn as colour images (each min-max
    scaled), the usual picture of a network's first layer.

    Args:
        kernels: tensor (N, C, kH, kW) with C = 1 or 3, (N, kH, kW), or a list of (kH, kW) kernels.
        labels: one label per kernel, written above its tile.
    """
    ks = [torch.as_tensor(k).detach().cpu().float() for k in kernels]
    if not ks:
        raise ValueError("No kernels to show.")
    ks = [k[0] if k.dim() == 3 and k.shape[0] == 1 else k for k in ks]
    rgb = ks[0].dim() == 3
    if rgb and ks[0].shape[0] != 3:
        raise ValueError(f"Kernels with {ks[0].shape[0]} channels: pass one channel at a time (k[:, c]).")
    h = max(k.shape[-2] for k in ks)
    w = max(k.shape[-1] for k in ks)
    ncols = max(1, min(ncols, len(ks)))
    nrows = -(-len(ks) // ncols)
    shape = (nrows * (h + pad) - pad, ncols * (w + pad) - pad) + ((3,) if rgb else ())
    grid = np.full(shape, 1.0 if rgb else 0.5, dtype=np.float32)
    for i, k in enumerate(ks):
        r, c = divmod(i, ncols)
        if rgb:
            arr = k.permute(1, 2, 0).numpy()
            arr = (arr - arr.min()) / (arr.max() - arr.min() + 1e-12)
        else:
            arr = k.numpy() / (2 * (np.abs(k.numpy()).max() + 1e-12)) + 0.5
        grid[r * (h + pad): r * (h + pad) + arr.shape[0], c * (w + pad): c * (w + pad) + arr.shape[1]] = arr
    ax = new_axes(ax, figsize=(1.1 * ncols, 1.2 * nrows + 0.3))
    ax.imshow(grid, cmap=None if rgb else "RdBu_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if labels is not None:
        if len(labels) != len(ks):
            raise ValueError(f"{len(labels)} labels for {len(ks)} kernels.")
        for i, lab in enumerate(labels):
            r, c = divmod(i, ncols)
            ax.text(c * (w + pad) + (w - 1) / 2, r * (h + pad) - 0.6, str(lab), ha="center", va="bottom",
                    fontsize=7)
    if title:
        ax.set_title(title, pad=12 if labels is not None else 6)
    return ax


# --------------------------------------------------------------------------
# Architecture zoo (notebook 02): accuracy against cost, where the cost goes
# --------------------------------------------------------------------------


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
            from matplotlib.ticker import FuncFormatter

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
        from course_utils.cost import format_count

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


__all__ += ["plot_accuracy_vs_cost", "plot_cost_breakdown"]


# --------------------------------------------------------------------------
# face verification (notebook 04)
# --------------------------------------------------------------------------


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
    from course_utils.metrics import roc_auc, roc_curve

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


__all__ += ["plot_roc_curves", "plot_score_distributions", "show_pairs"]


# --------------------------------------------------------------------------
# transfer learning and calibration (notebook 03)
# --------------------------------------------------------------------------


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
    from course_utils.metrics import expected_calibration_error, reliability_bins

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
    import warnings

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


__all__ += ["plot_reliability_diagram", "plot_mean_curves"]


# --------------------------------------------------------------------------
# embeddings and retrieval (notebook 05)
# --------------------------------------------------------------------------


def _label_colours(labels: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    """Codes 0..K-1 of ``labels``, the unique labels, and a colormap with K distinct colours."""
    lab = np.asarray(labels)
    uniq, codes = np.unique(lab, return_inverse=True)
    k = len(uniq)
    name = "tab10" if k <= 10 else "tab20" if k <= 20 else "turbo"
    return codes, uniq, plt.get_cmap(name, max(k, 1) if name == "turbo" else None)


def plot_embedding_2d(coords: Any, labels: Any, *, ax: Axes | None = None, title: str | None = None,
                      s: float = 14.0, legend: bool | None = None, label_names: Mapping[Any, str] | None = None,
                      alpha: float = 0.85, marker: str = "o") -> Axes:
    """A scatter of 2-D points ``(N, 2)`` coloured by label (identity, class or group attribute).

    Args:
        coords: ``(N, 2)`` array or tensor.
        labels: ``(N,)`` ints or strings; each distinct value gets a colour
            (tab10 up to 10 values, tab20 up to 20, then a continuous map).
        legend: draw a legend (default: when there are at most 12 values).
        label_names: value -> legend text.
    """
    xy = coords.detach().cpu().numpy() if isinstance(coords, torch.Tensor) else np.asarray(coords, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"coords must be (N, 2); got {xy.shape}.")
    codes, uniq, cmap = _label_colours(labels)
    if len(codes) != len(xy):
        raise ValueError(f"{len(codes)} labels for {len(xy)} points.")
    ax = new_axes(ax, figsize=(5, 4.5))
    n_col = len(uniq)
    for i, value in enumerate(uniq):
        m = codes == i
        colour = cmap(i / max(n_col - 1, 1)) if cmap.N > 20 else cmap(i % cmap.N)
        name = label_names.get(value, str(value)) if label_names else str(value)
        ax.scatter(xy[m, 0], xy[m, 1], s=s, color=colour, alpha=alpha, lw=0, marker=marker, label=name)
    if legend or (legend is None and n_col <= 12):
        ax.legend(fontsize="x-small", markerscale=1.5, loc="best", frameon=False, ncol=1 if n_col <= 6 else 2)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize="medium")
    return ax


def plot_thumbnails(coords: Any, images: Any, *, labels: Any = None, ax: Axes | None = None, zoom: float = 0.5,
                    max_images: int = 150, seed: int = 0, title: str | None = None) -> Axes:
    """Images drawn at their 2-D points (an embedding map you can read), framed in their label's colour.

    Args:
        coords: ``(N, 2)``.
        images: ``(N, C, H, W)`` tensor (or list of images).
        labels: ``(N,)`` for the frame colours (optional).
        zoom: image scale (1 = one image pixel per screen pixel).
        max_images: draw at most this many (a fixed random subset).
    """
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    xy = coords.detach().cpu().numpy() if isinstance(coords, torch.Tensor) else np.asarray(coords, dtype=float)
    n = len(xy)
    if len(images) != n:
        raise ValueError(f"{len(images)} images for {n} points.")
    ax = new_axes(ax, figsize=(7, 6))
    shown = np.arange(n) if n <= max_images else np.sort(np.random.default_rng(seed).permutation(n)[:max_images])
    if labels is not None:
        codes, uniq, cmap = _label_colours(labels)
    ax.scatter(xy[:, 0], xy[:, 1], s=2, color="lightgrey")
    for i in shown:
        img = to_numpy_image(images[i])
        box = OffsetImage(img, zoom=zoom, cmap="gray" if img.ndim == 2 else None)
        colour = "black"
        if labels is not None:
            colour = cmap(codes[i] / max(len(uniq) - 1, 1)) if cmap.N > 20 else cmap(codes[i] % cmap.N)
        ab = AnnotationBbox(box, (xy[i, 0], xy[i, 1]), frameon=True, pad=0.1,
                            bboxprops={"edgecolor": colour, "lw": 1.5})
        ax.add_artist(ab)
    pad_x = 0.05 * (np.ptp(xy[:, 0]) or 1.0)
    pad_y = 0.05 * (np.ptp(xy[:, 1]) or 1.0)
    ax.set_xlim(xy[:, 0].min() - pad_x, xy[:, 0].max() + pad_x)
    ax.set_ylim(xy[:, 1].min() - pad_y, xy[:, 1].max() + pad_y)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize="medium")
    return ax


def show_retrieval(query_images: Any, neighbour_images: Any, correct: Any, *, ax: Axes | None = None,
                   title: str | None = None, row_names: Sequence[str] | None = None) -> Axes:
    """Rows of ``query | its k nearest neighbours``, each neighbour framed green (same label) or red.

    Args:
        query_images: ``(Q, C, H, W)``.
        neighbour_images: ``(Q, k, C, H, W)``.
        correct: ``(Q, k)`` booleans: does neighbour j share query i's label?
        row_names: text written on each query tile.
    """
    q = [to_numpy_image(im) for im in query_images]
    nb = neighbour_images
    ok = np.asarray(correct, dtype=bool)
    n_q, k = ok.shape
    if len(q) != n_q or len(nb) != n_q:
        raise ValueError(f"{len(q)} queries, {len(nb)} neighbour rows, {n_q} rows of flags.")
    tiles = []
    for i in range(n_q):
        tiles.append(q[i])
        for j in range(k):
            tiles.append(to_numpy_image(nb[i][j]))
    rgb = [np.repeat(t[..., None], 3, axis=2) if t.ndim == 2 else t for t in tiles]
    h, w = rgb[0].shape[:2]
    b = max(1, h // 16)  # frame width
    framed = []
    for idx, t in enumerate(rgb):
        i, j = divmod(idx, k + 1)
        colour = (0.2, 0.2, 0.9) if j == 0 else ((0.1, 0.7, 0.1) if ok[i, j - 1] else (0.85, 0.1, 0.1))
        f = np.empty((h + 2 * b, w + 2 * b, 3), dtype=np.float32)
        f[:] = colour
        f[b:b + h, b:b + w] = t
        framed.append(f)
    grid = image_grid(framed, ncols=k + 1, pad=2)
    ax = new_axes(ax, figsize=(1.1 * (k + 1), 1.15 * n_q + 0.4))
    ax.imshow(grid)
    ax.set_xticks([])
    ax.set_yticks([])
    if row_names is not None:
        th = grid.shape[0] / n_q
        for i, name in enumerate(row_names):
            ax.text(2, i * th + 3, str(name), color="yellow", fontsize=7, va="top",
                    bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "lw": 0})
    if title:
        ax.set_title(title, fontsize="medium")
    return ax


__all__ += ["plot_embedding_2d", "plot_thumbnails", "show_retrieval"]


# --------------------------------------------------------------------------
# fairness (notebook 06)
# --------------------------------------------------------------------------


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


__all__ += ["plot_group_intervals", "plot_embedding_groups"]
