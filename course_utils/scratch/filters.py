"""Classic image filters (box, Gaussian, Sobel, Laplacian ...) and the shift tolerance of pooling."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "filter_min_size",
    "classic_filter",
    "apply_filter",
    "shift_tolerance",
    "CLASSIC_FILTERS",
]

# --------------------------------------------------------------------------
# classic filters
# --------------------------------------------------------------------------


def _binomial(n: int) -> np.ndarray:
    """Row ``n - 1`` of Pascal's triangle: the discrete Gaussian of length ``n``."""
    row = np.array([1.0])
    for _ in range(n - 1):
        row = np.convolve(row, [1.0, 1.0])
    return row


_MIN_SIZE = {"identity": 1, "box blur": 1, "gaussian blur": 1, "sobel x": 2, "sobel y": 2,
             "laplacian": 3, "sharpen": 3}


def filter_min_size(name: str) -> int:
    """The smallest kernel size :func:`classic_filter` builds for ``name``."""
    if name not in _MIN_SIZE:
        raise KeyError(f"unknown filter {name!r}; choose from {sorted(_MIN_SIZE)}")
    return _MIN_SIZE[name]


def classic_filter(name: str, size: int = 3) -> Tensor:
    """A hand-designed ``size x size`` filter (float32 tensor).

    - ``identity``: 1 in the centre.
    - ``box blur``: the mean of the window, ``1 / size^2`` everywhere.
    - ``gaussian blur``: outer product of binomial coefficients (``[1, 2, 1] / 4`` for 3).
    - ``sobel x`` / ``sobel y``: smoothing across, derivative along
      (``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`` for x, size 3): responds to
      vertical / horizontal edges.
    - ``laplacian``: the second derivative in both directions
      (``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]`` for size 3; larger sizes smooth
      it with binomials): responds to blobs and thin lines; sums to 0.
    - ``sharpen``: identity minus the Laplacian (``[[0, -1, 0], [-1, 5, -1], [0, -1, 0]]``):
      boosts what differs from its neighbourhood; sums to 1.
    """
    min_size = filter_min_size(name)
    if size < min_size:
        raise ValueError(f"{name!r} needs a kernel of at least {min_size}x{min_size}, got {size}")
    smooth = _binomial(size)
    if name == "identity":
        k = np.zeros((size, size))
        k[(size - 1) // 2, (size - 1) // 2] = 1.0
    elif name == "box blur":
        k = np.full((size, size), 1.0 / size**2)
    elif name == "gaussian blur":
        k = np.outer(smooth, smooth) / smooth.sum() ** 2
    elif name in ("sobel x", "sobel y"):
        # [-1, 0, 1] for size 3: positive where the intensity grows to the right (x) or downwards (y)
        deriv = np.convolve(_binomial(size - 1), [-1.0, 1.0])
        k = np.outer(smooth, deriv) if name == "sobel x" else np.outer(deriv, smooth)
        k = k * 4.0 / k[k > 0].sum()  # positive weights sum to 4, as in the 3x3 Sobel
    elif name in ("laplacian", "sharpen"):
        if size == 3:
            lap = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
        else:
            d2 = np.convolve(_binomial(size - 2), [1.0, -2.0, 1.0])
            sm = smooth / smooth.sum()
            lap = np.outer(sm, d2) + np.outer(d2, sm)
            lap = lap * (4.0 / -lap[(size - 1) // 2, (size - 1) // 2]) if size % 2 else lap
        if name == "laplacian":
            k = lap
        else:
            k = 0.0 - lap
            k[(size - 1) // 2, (size - 1) // 2] += 1.0
    else:  # pragma: no cover - filter_min_size already rejected it
        raise KeyError(name)
    return torch.tensor(k, dtype=torch.float32)


#: The six classic 3x3 filters (plus identity) by name.
CLASSIC_FILTERS: dict[str, Tensor] = {name: classic_filter(name, 3) for name in _MIN_SIZE}


def apply_filter(image: Tensor, kernel: Tensor, *, stride: int = 1, padding: int | str = "same",
                 dilation: int = 1, padding_mode: str = "reflect") -> Tensor:
    """Convolve every channel of an image with one 2-D kernel (a depthwise convolution).

    Args:
        image: (H, W), (C, H, W) or (N, C, H, W) float tensor.
        kernel: (kH, kW).
        padding: pixels added on each side, or ``"same"`` (keep the size at
            stride 1: ``d (k - 1) / 2`` on each side, odd kernels).
        padding_mode: ``"reflect"`` (no dark frame around blurred images),
            ``"zeros"`` or ``"replicate"``.

    Returns:
        The filtered image with the dimensions of ``image``.
    """
    shape = image.shape
    x = image.float()
    while x.dim() < 4:
        x = x.unsqueeze(0)
    c = x.shape[1]
    kh, kw = kernel.shape
    if padding == "same":
        ph, pw = dilation * (kh - 1) // 2, dilation * (kw - 1) // 2
    else:
        ph = pw = int(padding)
    if ph or pw:
        mode = "constant" if padding_mode == "zeros" else padding_mode
        x = F.pad(x, (pw, pw, ph, ph), mode=mode)
    w = kernel.to(x).expand(c, 1, kh, kw)
    y = F.conv2d(x, w, stride=stride, dilation=dilation, groups=c)
    return y.reshape(*shape[:-2], *y.shape[-2:]) if len(shape) < 4 else y


# --------------------------------------------------------------------------
# pooling and shifts
# --------------------------------------------------------------------------


def shift_tolerance(fn: Callable[[Tensor], Tensor], images: Tensor, shifts: Iterable[int] = range(0, 9),
                    *, size: int | None = None) -> np.ndarray:
    """How much ``fn``'s output changes when its input moves by ``s`` pixels.

    For each shift ``s`` the window ``images[..., :, s:s + size]`` (moved
    ``s`` pixels to the right, so real content enters on one side, no
    wrap-around) is compared with the window at 0:
    ``||fn(shifted) - fn(x)|| / ||fn(x)||`` per image, averaged.

    Args:
        fn: maps (N, C, H, W) to features (any shape with batch first).
        images: (N, C, H, W), at least ``size + max(shifts)`` pixels wide.
        shifts: horizontal shifts in pixels.
        size: width of the window; default ``W - max(shifts)``.

    Returns:
        Relative change per shift (0 means the output did not change).
    """
    shifts = list(shifts)
    width = images.shape[-1]
    size = width - max(shifts) if size is None else size
    if size + max(shifts) > width:
        raise ValueError(f"images are {width} wide; need size + max shift = {size + max(shifts)}")
    with torch.no_grad():
        ref = fn(images[..., :size]).flatten(1)
        ref_norm = ref.norm(dim=1).clamp_min(1e-12)
        out = []
        for s in shifts:
            moved = fn(images[..., s:s + size]).flatten(1)
            out.append(float(((moved - ref).norm(dim=1) / ref_norm).mean()))
    return np.array(out)
