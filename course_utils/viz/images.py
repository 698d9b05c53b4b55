"""Images on Axes: tensors/arrays to displayable images, grids, labelled image rows, kernels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes

from course_utils.viz.core import new_axes

__all__ = [
    "to_numpy_image",
    "image_grid",
    "show_images",
    "show_kernels",
]


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
