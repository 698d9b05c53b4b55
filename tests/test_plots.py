"""Plot helpers draw on the Axes they are given and return it."""

import sys

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import viz
from course_utils.train import History


def test_plot_history_uses_given_axes():
    h = History()
    for e in range(1, 4):
        h.append({"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "train_acc": 0.5, "val_acc": 0.4})
    _, ax = plt.subplots()
    out = viz.plot_history(h, "loss", ax=ax)
    assert out is ax
    assert len(ax.lines) == 2
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, 0.5, 1 / 3])
    with pytest.raises(KeyError, match="nope"):
        viz.plot_history(h, "nope")


def test_plot_history_accepts_a_mapping():
    ax = viz.plot_history({"train_loss": [3, 2, 1]}, "loss")
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3]


def test_image_grid_layout():
    imgs = torch.zeros(5, 3, 4, 6)
    imgs[4] = 1.0
    grid = viz.image_grid(imgs, ncols=2, pad=1)
    assert grid.shape == (3 * 5 - 1, 2 * 7 - 1, 3)
    assert grid[10:14, 0:6].min() == 1.0  # the 5th image, row 2 col 0
    gray = viz.image_grid([np.zeros((4, 4))] * 3, ncols=3)
    assert gray.shape == (4, 14)


def test_show_images_labels_and_errors():
    ax = viz.show_images(torch.rand(6, 1, 8, 8), labels=list("abcdef"), ncols=3)
    assert [t.get_text() for t in ax.texts] == list("abcdef")
    with pytest.raises(ValueError, match="labels"):
        viz.show_images(torch.rand(2, 1, 8, 8), labels=["a"])


def test_to_numpy_image_rescales_out_of_range():
    arr = viz.to_numpy_image(torch.tensor([[[-2.0, 2.0]]]))
    np.testing.assert_allclose(arr, [[0.0, 1.0]])


def test_confusion_matrix_counts():
    y = [0, 0, 1, 1, 2]
    p = [0, 1, 1, 1, 0]
    ax = viz.plot_confusion_matrix(y, p, class_names=["a", "b", "c"], normalize=False)
    data = ax.images[0].get_array()
    np.testing.assert_array_equal(data, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    ax = viz.plot_confusion_matrix(y, p)
    np.testing.assert_allclose(ax.images[0].get_array()[0], [0.5, 0.5, 0.0])


def test_plots_do_not_touch_rcparams_on_import():
    import importlib

    before = dict(matplotlib.rcParams)
    for name in sorted(m for m in sys.modules if m.startswith("course_utils.viz.")):
        importlib.reload(sys.modules[name])
    assert dict(matplotlib.rcParams) == before
