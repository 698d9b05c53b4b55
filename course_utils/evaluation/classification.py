"""Classification metrics on outputs already computed: accuracy and calibration.

Every function accepts torch tensors, NumPy arrays or lists and returns
Python floats or NumPy arrays.

* :func:`accuracy` of logits, probabilities or predicted labels;
* calibration: :func:`reliability_bins` (the reliability diagram's numbers)
  and :func:`expected_calibration_error`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from course_utils.arrays import to_numpy

__all__ = [
    "accuracy",
    "ReliabilityBins",
    "reliability_bins",
    "expected_calibration_error",
]


def accuracy(outputs: Any, targets: Any) -> float:
    """Fraction of correct predictions.

    Args:
        outputs: logits or probabilities (N, K) (the argmax is taken), or
            predicted labels (N,).
        targets: true labels, shape (N,).
    """
    out = to_numpy(outputs)
    t = to_numpy(targets)
    pred = out.argmax(axis=1) if out.ndim == 2 else out
    if pred.ndim != 1 or t.shape != pred.shape:
        raise ValueError(f"outputs (N, K) or (N,) and targets (N,) must agree; got {out.shape} and {t.shape}.")
    if pred.size == 0:
        raise ValueError("accuracy of an empty batch is undefined.")
    return float(np.mean(pred == t))


class ReliabilityBins(NamedTuple):
    """Per-bin statistics of a reliability diagram (B equal-width confidence bins).

    ``confidence`` and ``accuracy`` are NaN in empty bins.
    """

    edges: np.ndarray  # (B + 1,)
    confidence: np.ndarray  # (B,) mean confidence
    accuracy: np.ndarray  # (B,) fraction correct
    counts: np.ndarray  # (B,) samples per bin


def _confidences(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p = to_numpy(probs).astype(np.float64)
    y = to_numpy(labels)
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2 or y.shape != (p.shape[0],):
        raise ValueError(
            f"probs must have shape (N, K) (or (N,) for P(class 1)) and labels (N,); got {p.shape} and {y.shape}."
        )
    if p.shape[0] == 0:
        raise ValueError("calibration of an empty set is undefined.")
    if np.any(p < 0) or np.any(p > 1) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("probs must be probabilities whose rows sum to 1; pass softmax(logits), not logits.")
    return p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)


def reliability_bins(probs: Any, labels: Any, *, n_bins: int = 15) -> ReliabilityBins:
    """Bin predictions by confidence (the top probability) for a reliability diagram.

    Bin ``b`` holds confidences in ``(edges[b], edges[b + 1]]`` (the first bin also holds 0).

    Args:
        probs: class probabilities (N, K), or (N,) probabilities of class 1 for a binary task.
        labels: true classes, shape (N,).
        n_bins: number of equal-width bins on [0, 1].
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}.")
    conf, correct = _confidences(probs, labels)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.searchsorted(edges[1:-1], conf, side="left")
    counts = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / counts
        acc = np.bincount(idx, weights=correct, minlength=n_bins) / counts
    return ReliabilityBins(edges, mean_conf, acc, counts)


def expected_calibration_error(probs: Any, labels: Any, *, n_bins: int = 15) -> float:
    """ECE = sum over bins of ``(n_b / N) |accuracy_b - confidence_b|`` (Guo et al., 2017).

    Args: as :func:`reliability_bins`.
    """
    bins = reliability_bins(probs, labels, n_bins=n_bins)
    full = bins.counts > 0
    weights = bins.counts[full] / bins.counts.sum()
    return float(np.sum(weights * np.abs(bins.accuracy[full] - bins.confidence[full])))
