"""Plot helpers of notebook 02 (architecture zoo): accuracy-versus-cost and cost breakdown."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from course_utils import viz


def test_accuracy_vs_cost_draws_on_given_axes_with_sizes_groups_and_labels():
    _, ax = plt.subplots()
    out = viz.plot_accuracy_vs_cost(
        [0.3, 4.1, 15.5], [72.0, 80.9, 71.6], sizes=[3.5e6, 25.6e6, 138e6],
        labels=["mobilenet_v2", "resnet50", "vgg16"], groups=["mobile", "resnet", "vgg"], annotate=["vgg16"], ax=ax,
    )
    assert out is ax
    assert ax.get_xscale() == "log"
    # one scatter per group (+ the empty reference markers of the size legend)
    drawn = [c for c in ax.collections if len(c.get_offsets())]
    assert len(drawn) == 3
    np.testing.assert_allclose(np.concatenate([c.get_offsets() for c in drawn])[:, 1], [72.0, 80.9, 71.6])
    # marker area is proportional to the size; the largest gets max_marker
    areas = np.concatenate([c.get_sizes() for c in drawn])
    np.testing.assert_allclose(areas / areas.max(), np.array([3.5, 25.6, 138]) / 138)
    assert [t.get_text() for t in ax.texts] == ["vgg16"]
    assert len(ax.artists) == 1  # the group legend kept next to the size legend
    assert ax.get_legend() is not None and "params" in ax.get_legend().get_texts()[0].get_text()


def test_accuracy_vs_cost_minimal_and_errors():
    ax = viz.plot_accuracy_vs_cost([1, 2], [0.5, 0.6], logx=False, labels=["a", "b"])
    assert ax.get_xscale() == "linear"
    assert [t.get_text() for t in ax.texts] == ["a", "b"]
    with pytest.raises(ValueError, match="one length"):
        viz.plot_accuracy_vs_cost([1, 2], [0.5])
    with pytest.raises(ValueError, match="labels"):
        viz.plot_accuracy_vs_cost([1, 2], [0.5, 0.6], labels=["a"])
    with pytest.raises(ValueError, match="positive"):
        viz.plot_accuracy_vs_cost([0, 2], [0.5, 0.6])


def test_nice_sizes_are_round_and_inside_the_range():
    refs = viz.cost._nice_sizes(2.3e6, 140e6)
    assert 1 <= len(refs) <= 3
    assert all(2.3e6 <= r <= 140e6 for r in refs)
    assert all(r / 10 ** np.floor(np.log10(r)) in (1, 2, 5) for r in refs)
    assert viz.cost._nice_sizes(0, 1) == []


def test_cost_breakdown_shows_shares_in_percent():
    _, ax = plt.subplots()
    out = viz.plot_cost_breakdown(["features", "fc"], [10, 90], [95, 5], ax=ax, title="VGG")
    assert out is ax
    widths = [p.get_width() for p in ax.patches]
    np.testing.assert_allclose(widths, [10, 90, 95, 5])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["features", "fc"]
    with pytest.raises(ValueError):
        viz.plot_cost_breakdown(["a"], [1, 2], [1])
