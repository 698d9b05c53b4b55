"""Attribute heads on frozen face descriptors: standardise, then logistic regression.

A pretrained face recogniser was trained to tell people apart, not to read
gender or age; how much of either a linear head can still read from its
128-d descriptors is a measurement of what the embedding encodes (and a
baseline for the fairness notebook). The head is a plain scikit-learn
pipeline, so ``predict``, ``predict_proba`` and ``score`` work as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["UTKFACE_TO_FAIRFACE_RACE", "fit_attribute_head", "majority_baseline", "shared_race_labels"]

#: UTKFace's race categories -> the FairFace race groups each one covers, only where the correspondence is
#: defensible. UTKFace's "Asian" covers FairFace's East and Southeast Asian (it cannot tell them apart); its
#: "Others" is a residual category (its authors give Hispanic, Latino and Middle Eastern as examples) with no
#: defined counterpart, and FairFace's Latino_Hispanic and Middle Eastern have none in UTKFace. Matching names
#: do not mean that the two data sets' annotators drew the borders in the same places.
UTKFACE_TO_FAIRFACE_RACE: Mapping[str, tuple[str, ...]] = {
    "White": ("White",),
    "Black": ("Black",),
    "Asian": ("East Asian", "Southeast Asian"),
    "Indian": ("Indian",),
}


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


def shared_race_labels(races: Sequence | np.ndarray, *, source: Literal["utkface", "fairface"]) -> np.ndarray:
    """Race labels of either data set in the categories both share (UTKFace's names); ``""`` where none maps.

    Args:
        races: ``(N,)`` race labels as the data set writes them (``"East Asian"``, ``"Others"`` ...).
        source: which data set's vocabulary ``races`` uses.

    Returns:
        ``(N,)`` object array: a key of :data:`UTKFACE_TO_FAIRFACE_RACE`, or ``""`` for a label
        with no counterpart (UTKFace's ``"Others"``; FairFace's ``"Latino_Hispanic"``, ``"Middle Eastern"``).
    """
    if source == "utkface":
        table = {k: k for k in UTKFACE_TO_FAIRFACE_RACE}
    elif source == "fairface":
        table = {group: k for k, groups in UTKFACE_TO_FAIRFACE_RACE.items() for group in groups}
    else:
        raise ValueError(f"source must be 'utkface' or 'fairface', got {source!r}.")
    values = np.asarray(races).astype(str)
    return np.array([table.get(v, "") for v in values.ravel()], dtype=object).reshape(values.shape)
