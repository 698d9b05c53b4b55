"""Array conversion shared by the package: anything array-like to NumPy or to a float tensor.

Metrics and protocols accept torch tensors (any device, with or without
grad), NumPy arrays or lists; these two functions are the one place that
turns them into what the computation needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["to_numpy", "to_float_tensor", "to_matrix", "labels_1d"]


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array of ``x`` (a tensor is detached and copied to the CPU; the dtype is kept)."""
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def to_float_tensor(x: Any) -> Tensor:
    """A ``float32`` CPU tensor of ``x``, detached from any graph."""
    if isinstance(x, Tensor):
        return x.detach().float().cpu()
    return torch.as_tensor(np.asarray(x), dtype=torch.float32)


def to_matrix(x: Any, name: str = "x") -> np.ndarray:
    """``x`` as a float64 NumPy array of shape ``(N, D)``.

    Raises:
        ValueError: ``x`` is not two-dimensional (the message names it ``name``).
    """
    a = to_numpy(x).astype(np.float64, copy=False)
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D); got {a.shape}.")
    return a


def labels_1d(labels: Any, *, n: int | None = None) -> np.ndarray:
    """``labels`` as a NumPy array of shape ``(N,)`` (``(n,)`` when ``n`` is given).

    Raises:
        ValueError: ``labels`` is not one-dimensional, or not of length ``n``.
    """
    lab = to_numpy(labels)
    if n is not None and lab.shape != (n,):
        raise ValueError(f"labels must have shape ({n},); got {lab.shape}.")
    if lab.ndim != 1:
        raise ValueError(f"labels must have shape (N,), got {lab.shape}.")
    return lab
