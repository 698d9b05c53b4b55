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
