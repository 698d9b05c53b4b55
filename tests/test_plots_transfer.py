"""Plot helpers of notebook 03 (transfer learning): reliability diagram and mean curves over runs."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from course_utils import viz
from course_utils.evaluation import expected_calibration_error, reliability_bins


def _probs(n=400, k=4, seed=0, sharpness=3.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * sharpness
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = np.where(rng.random(n) < 0.6, p.argmax(1), rng.integers(0, k, n))
    return p, labels


def test_reliability_diagram_draws_the_bins_and_reports_ece():
    p, y = _probs()
    _, ax = plt.subplots()
    out = viz.plot_reliability_diagram(p, y, n_bins=10, ax=ax, label="model")
    assert out is ax
    bins = reliability_bins(p, y, n_bins=10)
    bars = ax.patches
    assert len(bars) == int((bins.counts > 0).sum())
    np.testing.assert_allclose(sorted(b.get_height() for b in bars), sorted(bins.accuracy[bins.counts > 0]))
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"model: ECE {expected_calibration_error(p, y, n_bins=10):.3f}" in texts
    assert "calibrated" in texts
    assert ax.get_xlim() == (0, 1) and ax.get_ylim() == (0, 1)


def test_reliability_diagram_overlays_two_models_with_one_diagonal():
    p, y = _probs()
    ax = viz.plot_reliability_diagram(p, y, label="a")
    viz.plot_reliability_diagram(np.full_like(p, 1 / p.shape[1]), y, ax=ax, label="uniform", color="C1")
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts.count("calibrated") == 1 and any(t.startswith("uniform: ECE") for t in texts)
    with pytest.raises(ValueError):
        viz.plot_reliability_diagram(np.ones((3, 2)), [0, 1, 0])  # rows do not sum to 1


def test_mean_curves_plot_mean_and_band():
    runs = np.array([[0.1, 0.5, 0.7], [0.3, 0.5, 0.9]])
    _, ax = plt.subplots()
    out = viz.plot_mean_curves({"a": runs, "single": [0.2, 0.3]}, ax=ax, chance=0.25, title="t")
    assert out is ax and ax.get_title() == "t"
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["a (2 runs)"].get_ydata(), [0.2, 0.5, 0.8])
    np.testing.assert_allclose(lines["a (2 runs)"].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(lines["single"].get_ydata(), [0.2, 0.3])
    assert len(ax.collections) == 1  # one band: the single run has none
    band = ax.collections[0].get_paths()[0].vertices
    assert np.isclose(band[:, 1].min(), 0.1) and np.isclose(band[:, 1].max(), 0.9)
    assert "chance" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_mean_curves_pad_with_nan_and_std_band():
    runs = np.array([[0.1, 0.2, np.nan], [0.3, 0.4, 0.5]])
    ax = viz.plot_mean_curves({"r": runs}, band="std")
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.2, 0.3, 0.5])
    with pytest.raises(ValueError):
        viz.plot_mean_curves({"r": runs}, band="iqr")
    assert viz.plot_mean_curves({}).get_legend() is None
