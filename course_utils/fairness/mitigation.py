"""Mitigation: reweighting, rebalanced sampling, and a score wrapper for fairlearn's ``ThresholdOptimizer``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from course_utils.arrays import labels_1d

__all__ = [
    "group_balancing_weights",
    "balanced_sampler",
    "ScoreClassifier",
]


# ----------------------------------------------------------------------------- mitigation
def group_balancing_weights(groups: Any) -> np.ndarray:
    """Per-sample weights ``N / (G * n_g)``: every group gets the same total weight, the mean weight is 1."""
    g = labels_1d(groups)
    _, inverse, counts = np.unique(g.astype(str), return_inverse=True, return_counts=True)
    return (g.size / (counts.size * counts[inverse])).astype(np.float64)


def balanced_sampler(groups: Any, *, num_samples: int | None = None, seed: int = 0
                     ) -> torch.utils.data.WeightedRandomSampler:
    """A sampler that draws every group equally often (with replacement): rebalanced sampling.

    Pass it to ``make_loader(..., sampler=...)``; an epoch has ``num_samples``
    draws (default: the data set's size).
    """
    w = group_balancing_weights(groups)
    gen = torch.Generator().manual_seed(seed)
    return torch.utils.data.WeightedRandomSampler(torch.as_tensor(w), num_samples or w.size, replacement=True,
                                                  generator=gen)


class ScoreClassifier(ClassifierMixin, BaseEstimator):
    """A fitted scikit-learn classifier whose input *is* its score: ``X[:, 0]`` = P(class 1).

    fairlearn's ``ThresholdOptimizer(estimator=ScoreClassifier().fit(), prefit=True,
    predict_method="predict_proba")`` then learns per-group thresholds on
    scores a network computed beforehand.
    """

    def fit(self, X: Any = None, y: Any = None) -> ScoreClassifier:  # noqa: N803 (scikit-learn's names)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803
        s = np.clip(np.asarray(X, dtype=np.float64).reshape(len(X), -1)[:, 0], 0.0, 1.0)
        return np.stack([1 - s, s], axis=1)

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
