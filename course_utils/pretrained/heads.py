"""Attribute heads on frozen face descriptors: standardise, then logistic regression.

A pretrained face recogniser was trained to tell people apart, not to read
gender or age; how much of either a linear head can still read from its
128-d descriptors is a measurement of what the embedding encodes (and a
baseline for the fairness notebook). The head is a plain scikit-learn
pipeline, so ``predict``, ``predict_proba`` and ``score`` work as usual.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["fit_attribute_head", "majority_baseline"]


def fit_attribute_head(embeddings: np.ndarray | torch.Tensor, labels: Sequence | np.ndarray, *, seed: int = 0,
                       C: float = 1.0, max_iter: int = 2000) -> Pipeline:
    """Fit ``StandardScaler -> LogisticRegression`` on frozen embeddings.

    Args:
        embeddings: ``(N, D)`` descriptors (e.g. ``FaceRecognizer.embed`` output).
        labels: ``(N,)`` class labels of any hashable type (``"Male"``, ``"20-29"`` ...);
            two classes give a binary head, more a multinomial one.
        seed: ``random_state`` of the solver.
        C: inverse L2 regularisation strength.
        max_iter: solver iterations.

    Returns:
        The fitted pipeline (steps ``"scale"`` and ``"logreg"``).
    """
    x = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"embeddings {x.shape} and labels {y.shape}: need (N, D) and (N,).")
    if len(np.unique(y)) < 2:
        raise ValueError("labels hold a single class; a head needs at least two.")
    head = Pipeline([("scale", StandardScaler()),
                     ("logreg", LogisticRegression(C=C, max_iter=max_iter, random_state=seed))])
    return head.fit(x, y)


def majority_baseline(train_labels: Sequence | np.ndarray, test_labels: Sequence | np.ndarray) -> float:
    """Accuracy on ``test_labels`` of always predicting the most frequent training label (ties: the smallest)."""
    values, counts = np.unique(np.asarray(train_labels), return_counts=True)
    return float(np.mean(np.asarray(test_labels) == values[np.argmax(counts)]))
