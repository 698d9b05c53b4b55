"""Interactive explorers (ipywidgets) that still produce a figure without a browser.

Every explorer is built with :func:`interactive_figure`: a set of controls
and a ``render(fig, **values)`` function that draws one figure for the
current values and returns a line of text. The explorer draws once with the
default values as soon as it is built, so

* in JupyterLab you get the controls, the figure and the text, and moving a
  control redraws;
* under nbclient/nbval (CI), in a script or in a test, where no browser
  renders widgets, the same code runs the callback once; with
  ``static=True`` (or outside an IPython kernel) the figure goes straight
  to the cell output / stays available as ``explorer.figure``.

To add an explorer, write a ``render`` function and call
:func:`interactive_figure` with its controls; see :func:`conv_explorer`.

Only :mod:`course_utils.viz` imports matplotlib and ipywidgets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from IPython import get_ipython
from IPython.display import display
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from course_utils.arrays import labels_1d
from course_utils.evaluation import (
    ProjectionCache,
    equal_error_rate,
    knn_accuracy_2d,
    silhouette,
    trustworthiness,
)
from course_utils.scratch import classic_filter, conv_output_size, filter_min_size
from course_utils.viz.embeddings import plot_embedding_2d
from course_utils.viz.verification import plot_score_distributions, show_pairs

__all__ = [
    "Explorer",
    "interactive_figure",
    "in_kernel",
    "conv_explorer",
    "CONV_FILTERS",
    "threshold_explorer",
    "projection_explorer",
]

Render = Callable[..., str | None]


def in_kernel() -> bool:
    """Whether this runs inside an IPython kernel (Jupyter, nbclient), where widgets can be shown."""
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Explorer(W.VBox):
    """The widget container an explorer returns: controls, a text line and the figure.

    Attributes:
        controls: name -> widget; the names are the keyword arguments of ``render``.
        figure: the last figure drawn (a matplotlib ``Figure``).
        info: the text ``render`` returned for it.
        static: whether figures go straight to the output (no widget output area).
    """

    def __init__(self, render: Render, controls: Mapping[str, W.ValueWidget], *,
                 figsize: tuple[float, float] = (9, 4), static: bool | None = None,
                 title: str | None = None) -> None:
        self._render = render
        self.controls = dict(controls)
        self.figsize = figsize
        self.static = (not in_kernel()) if static is None else static
        self.figure: Figure | None = None
        self.info: str = ""
        self._setting = False
        self._text = W.HTML()
        self._out = W.Output()
        header = [W.HTML(f"<b>{title}</b>")] if title else []
        row = W.HBox(list(self.controls.values()), layout=W.Layout(flex_flow="row wrap"))
        super().__init__(header + [row, self._text, self._out])
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.update()

    @property
    def values(self) -> dict[str, Any]:
        """The current value of every control."""
        return {name: c.value for name, c in self.controls.items()}

    def _on_change(self, _change: Any) -> None:
        if not self._setting:
            self.update()

    def update(self, **values: Any) -> Figure:
        """Set the given controls (if any), redraw once, and return the new figure."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise KeyError(f"no control {sorted(unknown)}; have {sorted(self.controls)}")
        self._setting = True
        try:
            for name, value in values.items():
                self.controls[name].value = value
        finally:
            self._setting = False
        if self.figure is not None:
            plt.close(self.figure)
        fig = plt.figure(figsize=self.figsize, layout="constrained")
        info = self._render(fig, **self.values) or ""
        self.figure, self.info = fig, info
        self._text.value = f"<pre style='margin:0'>{info}</pre>"
        if in_kernel():
            if self.static:
                display(fig)
            else:
                self._out.clear_output(wait=True)
                with self._out:
                    display(fig)
            plt.close(fig)  # shown once; the inline backend must not show it again
        return fig


def interactive_figure(render: Render, controls: Mapping[str, W.ValueWidget], *,
                       figsize: tuple[float, float] = (9, 4), static: bool | None = None,
                       title: str | None = None) -> Explorer:
    """An explorer: ``controls`` drive ``render(fig, **values)``; drawn once right away.

    Args:
        render: draws on the empty figure ``fig`` for the control values
            (passed as keyword arguments named like ``controls``) and
            returns a short text (or ``None``).
        controls: name -> ipywidgets control (sliders, dropdowns ...).
        figsize: size of each figure.
        static: ``True`` shows the figure directly in the cell output
            (use when no widget frontend will render it); ``None`` picks
            widgets inside a kernel and a plain figure elsewhere.
        title: bold line above the controls.

    Returns:
        The :class:`Explorer` (a ``VBox``: make it the last expression of a
        cell to show it).
    """
    return Explorer(render, controls, figsize=figsize, static=static, title=title)


# --------------------------------------------------------------------------
# the convolution explorer
# --------------------------------------------------------------------------

#: The filters the convolution explorer offers (names of :func:`course_utils.scratch.classic_filter`).
CONV_FILTERS = ("gaussian blur", "box blur", "sobel x", "sobel y", "laplacian", "sharpen", "identity")


def _gray(image: Any) -> torch.Tensor:
    """(H, W) float tensor in [0, 1] from an array/tensor (H, W), (H, W, 3) or (C, H, W)."""
    if isinstance(image, torch.Tensor):
        t = image.detach().float().cpu()
        if t.dim() == 3:  # (C, H, W)
            t = t[:3].mean(0)
    else:
        t = torch.as_tensor(np.asarray(image, dtype=np.float32))
        if t.dim() == 3:  # (H, W, C)
            t = t[..., :3].mean(-1)
    if t.dim() != 2:
        raise ValueError(f"expected one image (H, W), (H, W, C) or (C, H, W); got shape {tuple(t.shape)}")
    if t.max() > 1.5:
        t = t / 255.0
    return t


def _conv_render(image: torch.Tensor) -> Render:
    def render(fig: Figure, *, filter: str, kernel_size: int, stride: int, padding: int, dilation: int) -> str:
        h, w = image.shape
        k = classic_filter(filter, kernel_size)
        span = dilation * (kernel_size - 1) + 1
        if h + 2 * padding < span or w + 2 * padding < span:
            fig.text(0.5, 0.5, f"the dilated kernel spans {span} pixels: larger than the padded input",
                     ha="center")
            return f"no output: kernel span {span} > padded input {h + 2 * padding}"
        x = image[None, None]
        y = F.conv2d(x, k[None, None], stride=stride, padding=padding, dilation=dilation)[0, 0]
        h_out = conv_output_size(h, kernel_size, stride=stride, padding=padding, dilation=dilation)
        w_out = conv_output_size(w, kernel_size, stride=stride, padding=padding, dilation=dilation)
        agrees = (h_out, w_out) == tuple(y.shape)
        ax_in, ax_k, ax_out = fig.subplots(1, 3, width_ratios=[4, 1.2, 4])
        padded = F.pad(x, (padding,) * 4)[0, 0]
        ax_in.imshow(padded.numpy(), cmap="gray", vmin=0, vmax=1)
        if padding:
            ax_in.add_patch(Rectangle((padding - 0.5, padding - 0.5), w, h, fill=False, ec="tab:blue", lw=1))
        # the kernel taps of the first output pixel and of one near the centre
        for oi, oj, color in [(0, 0, "tab:red"), (h_out // 2, w_out // 2, "tab:orange")]:
            rows = oi * stride + dilation * np.arange(kernel_size)
            cols = oj * stride + dilation * np.arange(kernel_size)
            rr, cc = np.meshgrid(rows, cols, indexing="ij")
            ax_in.scatter(cc.ravel(), rr.ravel(), s=6, c=color)
        ax_in.set_title(f"input {h}x{w}, padded {h + 2 * padding}x{w + 2 * padding}", fontsize="small")
        lim = float(k.abs().max())
        ax_k.imshow(k.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax_k.set_title(f"{filter}\n{kernel_size}x{kernel_size}", fontsize="small")
        signed = bool((k < 0).any())
        if signed:
            v = float(y.abs().max()) or 1.0
            ax_out.imshow(y.numpy(), cmap="RdBu_r", vmin=-v, vmax=v)
        else:
            ax_out.imshow(y.numpy(), cmap="gray", vmin=0, vmax=1)
        ax_out.set_title(f"output {tuple(y.shape)[0]}x{tuple(y.shape)[1]}", fontsize="small")
        for ax in (ax_in, ax_k, ax_out):
            ax.set_xticks([])
            ax.set_yticks([])
        formula = (f"floor(({h} + 2*{padding} - {dilation}*({kernel_size}-1) - 1) / {stride}) + 1 = {h_out}")
        return (f"output size {h_out}x{w_out}  [{formula}]  "
                f"{'matches' if agrees else 'DOES NOT MATCH'} F.conv2d's {tuple(y.shape)}")

    return render


def conv_explorer(image: Any, *, filter: str = "gaussian blur", kernel_size: int = 3, stride: int = 1,
                  padding: int = 0, dilation: int = 1, max_kernel: int = 9, static: bool | None = None,
                  figsize: tuple[float, float] = (10, 4)) -> Explorer:
    """Sliders for kernel size, stride, padding and dilation (and a filter) on a real image.

    Shows the zero-padded input with the kernel taps of two output pixels
    (red: the first, orange: one near the centre), the kernel, and the
    output with its size. The text line gives the output size from
    :func:`course_utils.scratch.conv_output_size` and says whether it matches
    the shape of the real ``F.conv2d`` output.

    Args:
        image: one image, (H, W), (H, W, 3) or (C, H, W); colour is averaged to grey.
        filter, kernel_size, stride, padding, dilation: the starting values.
        max_kernel: largest kernel size on the slider.
        static: see :func:`interactive_figure`.

    Returns:
        The :class:`Explorer`; ``explorer.info`` holds the text,
        ``explorer.figure`` the figure, ``explorer.update(stride=2)`` redraws.
    """
    gray = _gray(image)
    if filter not in CONV_FILTERS:
        raise ValueError(f"filter {filter!r}: choose from {CONV_FILTERS}")
    style = {"description_width": "initial"}
    controls = {
        "filter": W.Dropdown(options=CONV_FILTERS, value=filter, description="filter"),
        "kernel_size": W.IntSlider(value=kernel_size, min=filter_min_size(filter), max=max_kernel,
                                   description="kernel size", continuous_update=False, style=style),
        "stride": W.IntSlider(value=stride, min=1, max=6, description="stride", continuous_update=False),
        "padding": W.IntSlider(value=padding, min=0, max=max_kernel, description="padding",
                               continuous_update=False),
        "dilation": W.IntSlider(value=dilation, min=1, max=6, description="dilation", continuous_update=False),
    }

    def set_min_kernel(change: Any) -> None:
        # Sobel needs 2 pixels, the Laplacian 3; the slider follows the filter
        controls["kernel_size"].min = filter_min_size(change["new"])

    controls["filter"].observe(set_min_kernel, names="value")
    return interactive_figure(_conv_render(gray), controls, figsize=figsize, static=static,
                              title="Convolution explorer: move a slider, watch the output and its size")


# --------------------------------------------------------------------------
# the verification threshold explorer (notebook 04)
# --------------------------------------------------------------------------


def _threshold_render(scores: np.ndarray, same: np.ndarray, first: Any, second: Any, n_examples: int) -> Render:
    n_gen, n_imp = int(same.sum()), int((~same).sum())

    def render(fig: Figure, *, threshold: float) -> str:
        accept = scores >= threshold
        fa = np.flatnonzero(accept & ~same)
        fr = np.flatnonzero(~accept & same)
        fa = fa[np.argsort(-scores[fa], kind="stable")][:n_examples]  # the most convincing impostors
        fr = fr[np.argsort(scores[fr], kind="stable")][:n_examples]  # the least alike genuine pairs
        n_fa, n_fr = int((accept & ~same).sum()), int((~accept & same).sum())
        if first is None:
            ax = fig.subplots()
            plot_score_distributions(scores, same, threshold=threshold, ax=ax)
        else:
            ax_h, ax_fa, ax_fr = fig.subplots(1, 3, width_ratios=[3, 2, 2])
            plot_score_distributions(scores, same, threshold=threshold, ax=ax_h)
            show_pairs([first[i] for i in fa], [second[i] for i in fa], [f"{scores[i]:.2f}" for i in fa],
                             ax=ax_fa, ncols=1, title=f"false accepts ({n_fa})")
            show_pairs([first[i] for i in fr], [second[i] for i in fr], [f"{scores[i]:.2f}" for i in fr],
                             ax=ax_fr, ncols=1, title=f"false rejects ({n_fr})")
        return (f"threshold {threshold:.3f}: {n_fa} false accepts of {n_imp} impostor pairs "
                f"(FAR {n_fa / n_imp:.2%}), {n_fr} false rejects of {n_gen} genuine pairs (FRR {n_fr / n_gen:.2%})")

    return render


def threshold_explorer(scores: Any, same: Any, *, pair_images: tuple[Any, Any] | None = None,
                       threshold: float | None = None, n_examples: int = 4, static: bool | None = None,
                       figsize: tuple[float, float] = (11, 4)) -> Explorer:
    """A threshold slider over verification scores: false accepts and false rejects, counted and shown.

    Left, the genuine and impostor score distributions with the threshold;
    right (when ``pair_images`` is given), the impostor pairs that pass the
    threshold with the highest scores and the genuine pairs it rejects with
    the lowest. The text line gives both counts and rates.

    Args:
        scores: ``(P,)`` pair scores, higher = more alike.
        same: ``(P,)`` 1 for genuine (same-person) pairs.
        pair_images: ``(first, second)`` images of each pair, each ``(P, C, H, W)``.
        threshold: starting threshold (default: the equal-error-rate threshold).
        n_examples: pairs shown per kind of error.
        static: see :func:`interactive_figure`.

    Returns:
        The :class:`Explorer`; ``explorer.update(threshold=0.5)`` redraws.
    """
    s = np.asarray(torch.as_tensor(scores).detach().cpu(), dtype=float)
    y = np.asarray(torch.as_tensor(same).detach().cpu()).astype(bool)
    if s.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"scores and same must both have shape (P,); got {s.shape} and {y.shape}.")
    first = second = None
    if pair_images is not None:
        first, second = pair_images
        if len(first) != s.size or len(second) != s.size:
            raise ValueError(f"pair_images must hold {s.size} first and second images, one per score.")
    if threshold is None:
        threshold = equal_error_rate(s, y).threshold
    lo, hi = float(s.min()), float(s.max())
    step = (hi - lo) / 200 or 0.01
    slider = W.FloatSlider(value=float(np.clip(threshold, lo, hi)), min=lo, max=hi, step=step, readout_format=".3f",
                           description="threshold", continuous_update=False)
    return interactive_figure(_threshold_render(s, y, first, second, n_examples), {"threshold": slider},
                              figsize=figsize, static=static,
                              title="Verification threshold: accept a pair when its score >= threshold")


# --------------------------------------------------------------------------
# the projection explorer (notebook 05)
# --------------------------------------------------------------------------


def projection_explorer(
    cache: ProjectionCache,
    labels: Any,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    perplexity: float = 30.0,
    k: int = 5,
    static: bool | None = None,
    figsize: tuple[float, float] = (11, 4.6),
) -> Any:
    """Sliders for UMAP ``n_neighbors`` / ``min_dist`` and t-SNE perplexity, with the numbers beside the map.

    Each redraw shows the UMAP and the t-SNE map of ``cache``'s points,
    coloured by ``labels``, and a text line with each map's 2-D k-NN
    accuracy, silhouette and trustworthiness. Fits go through ``cache``:
    values seen before (the first frame, if the notebook already fitted
    the defaults) cost nothing. Headless, it draws once (see
    :func:`interactive_figure`).

    Returns:
        The :class:`Explorer`.
    """
    n = cache.x.shape[0]
    y = labels_1d(labels)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},); got {y.shape}.")

    def render(fig: Any, *, n_neighbors: int, min_dist: float, perplexity: float) -> str:
        u = cache.get("umap", n_neighbors=int(n_neighbors), min_dist=float(min_dist))
        t = cache.get("tsne", perplexity=float(perplexity))
        axes = fig.subplots(1, 2)
        parts = []
        for ax, proj in zip(axes, (u, t)):
            acc = knn_accuracy_2d(proj.coords, y, k=k)
            tw = trustworthiness(cache.x, proj.coords)
            sil = silhouette(proj.coords, y)
            plot_embedding_2d(proj.coords, y, ax=ax, title=f"{proj.label}\n{k}-NN acc {acc:.2f}, trust {tw:.3f}")
            parts.append(f"{proj.label.split(' (')[0]}: {k}-NN acc {acc:.3f}, silhouette {sil:.3f}, "
                         f"trustworthiness {tw:.3f} ({proj.seconds:.1f} s)")
        return " | ".join(parts)

    controls = {
        "n_neighbors": W.IntSlider(value=n_neighbors, min=2, max=max(3, min(100, n - 1)), description="n_neighbors",
                                   continuous_update=False),
        "min_dist": W.FloatSlider(value=min_dist, min=0.0, max=0.99, step=0.05, description="min_dist",
                                  continuous_update=False),
        "perplexity": W.FloatSlider(value=perplexity, min=2.0, max=max(3.0, min(100.0, (n - 1) / 3)), step=1.0,
                                    description="perplexity", continuous_update=False),
    }
    return interactive_figure(render, controls, figsize=figsize, static=static,
                              title="UMAP and t-SNE: move a slider, watch the map and its numbers")
