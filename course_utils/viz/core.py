"""The one convention of every figure: ``ax=None`` in (a new figure is made), ``Axes`` out."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

__all__ = [
    "new_axes",
]


def new_axes(ax: Axes | None = None, *, figsize: tuple[float, float] = (5, 3.5)) -> Axes:
    """``ax`` itself, or the Axes of a new figure."""
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax
