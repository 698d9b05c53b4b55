"""Embedding figures: 2-D maps coloured by label, thumbnails at their coordinates, retrieval results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.offsetbox import AnnotationBbox, OffsetImage

from course_utils.viz.core import new_axes
from course_utils.viz.images import image_grid, to_numpy_image

__all__ = [
    "plot_embedding_2d",
    "plot_thumbnails",
    "show_retrieval",
]


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
