"""Explorers build headless, draw once with their defaults, and redraw when a control moves."""

import ipywidgets as W
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
import torch
from nbclient import NotebookClient

from course_utils.viz import widgets
from course_utils.scratch import conv_output_size


#: A notebook cell that builds a convolution explorer inside a real kernel and shows it.
EXPLORER_CELL = (
    "import numpy as np\n"
    "from course_utils.viz import conv_explorer\n"
    "ex = conv_explorer(np.eye(20, dtype='float32'), kernel_size=5, stride=2)\n"
    "assert ex.figure is not None and not ex.static\n"
    "print(ex.info)\n"
    "ex"
)


@pytest.fixture
def image():
    yy, xx = np.mgrid[0:40, 0:48]
    return ((xx > 20) ^ (yy > 15)).astype(np.float32)  # a checkerboard quadrant, edges in both directions


def test_interactive_figure_draws_once_with_defaults_and_redraws():
    calls = []

    def render(fig, *, a, b):
        calls.append((a, b))
        fig.subplots().plot([0, a], [0, b])
        return f"a+b={a + b}"

    ex = widgets.interactive_figure(render, {"a": W.IntSlider(value=2), "b": W.IntSlider(value=3)})
    assert isinstance(ex, W.VBox)
    assert calls == [(2, 3)] and ex.info == "a+b=5"
    assert ex.static, "outside a kernel the explorer falls back to a plain figure"
    first = ex.figure
    ex.controls["a"].value = 7  # what a slider move does
    assert calls[-1] == (7, 3) and ex.info == "a+b=10" and ex.figure is not first
    ex.update(a=1, b=1)
    assert calls[-1] == (1, 1) and len(calls) == 3, "update sets several controls and redraws once"
    with pytest.raises(KeyError):
        ex.update(c=1)


def test_conv_explorer_reports_the_real_output_size(image):
    ex = widgets.conv_explorer(image)
    assert len(ex.figure.axes) == 3
    assert "38x46" in ex.info and "matches" in ex.info
    for values in [dict(kernel_size=5, stride=2, padding=1, dilation=1),
                   dict(kernel_size=3, stride=3, padding=4, dilation=3),
                   dict(filter="sobel y", kernel_size=2, stride=1, padding=0, dilation=2)]:
        ex.update(**values)
        h = conv_output_size(40, values["kernel_size"], stride=values["stride"], padding=values["padding"],
                             dilation=values["dilation"])
        w = conv_output_size(48, values["kernel_size"], stride=values["stride"], padding=values["padding"],
                             dilation=values["dilation"])
        assert f"output size {h}x{w}" in ex.info and "matches" in ex.info
        out_ax = ex.figure.axes[2]
        assert out_ax.images[0].get_array().shape == (h, w)


def test_conv_explorer_kernel_slider_follows_filter(image):
    ex = widgets.conv_explorer(torch.tensor(image)[None].repeat(3, 1, 1), kernel_size=1, filter="box blur")
    assert ex.controls["kernel_size"].min == 1
    ex.update(filter="laplacian")
    assert ex.values["kernel_size"] == 3 and ex.controls["kernel_size"].min == 3
    assert "output size 38x46" in ex.info


def test_conv_explorer_survives_a_kernel_larger_than_the_input(image):
    ex = widgets.conv_explorer(image[:6, :6], kernel_size=5, dilation=3)
    assert "no output" in ex.info
    with pytest.raises(ValueError):
        widgets.conv_explorer(image, filter="emboss")


def test_conv_explorer_runs_in_a_headless_kernel():
    """What nbval does in CI: a real kernel, no browser; the callback must run and draw."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(EXPLORER_CELL)]
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "output size 8x8" in text
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs
               if o.output_type == "execute_result")


def test_show_kernels_draws_signed_and_colour_kernels():
    from course_utils.scratch import CLASSIC_FILTERS
    from course_utils.viz import show_kernels

    _, ax = plt.subplots()
    out = show_kernels([CLASSIC_FILTERS["sobel x"], CLASSIC_FILTERS["laplacian"]], labels=["x", "lap"], ax=ax)
    assert out is ax
    grid = ax.images[0].get_array()
    assert grid.shape == (3, 7)
    np.testing.assert_allclose(grid[:, :3], CLASSIC_FILTERS["sobel x"].numpy() / 4 + 0.5)  # 0 maps to the middle
    assert [t.get_text() for t in ax.texts] == ["x", "lap"]
    rgb = show_kernels(torch.randn(5, 3, 5, 5), ncols=3)
    assert rgb.images[0].get_array().shape == (11, 17, 3)
    with pytest.raises(ValueError):
        show_kernels(torch.randn(2, 4, 3, 3))


@pytest.mark.notebook
def test_headless_client_runs_an_explorer_without_widget_emulation(tmp_path):
    """The grader's and the offline tests' client: no Output-widget emulation, outputs still kept."""
    from course_tools.nbtools import headless_client

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(EXPLORER_CELL)]
    client = headless_client(nb, path=tmp_path, timeout=60)
    assert client.widget_registry == {}
    client.execute()
    outputs = nb.cells[0].outputs
    assert "output size 8x8" in "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    # the figure drawn inside the explorer's Output widget reaches the cell's outputs directly
    assert any("image/png" in o.get("data", {}) for o in outputs if o.output_type == "display_data")
