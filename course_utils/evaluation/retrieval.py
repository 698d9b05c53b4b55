"""Retrieval and k-NN quality of embeddings.

* leave-one-out k-NN on embeddings with the package's metric names
  (:data:`~course_utils.metric_learning.distances.METRICS`):
  :func:`knn_precision_at_1`, :func:`knn_accuracy` (and per item, Euclidean,
  :func:`knn_correct`); one ranking (:func:`nearest_neighbours`'s, ties to the
  lower index) and one majority vote serve them all;
* retrieval with scikit-learn's metric names (``"euclidean"``, ``"cosine"``):
  :func:`nearest_neighbours`, :func:`retrieval_precision` (leave-one-out
  precision@k) and its per-query :func:`retrieval_hits`;
* a colour-histogram baseline (:func:`color_histograms`) for CNN features to beat.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from course_utils.arrays import labels_1d, to_matrix, to_numpy
from course_utils.metric_learning.distances import (
    METRICS,
    pairwise_cosine_similarity,
    pairwise_distance,
)

__all__ = [
    "knn_precision_at_1",
    "knn_accuracy",
    "knn_correct",
    "nearest_neighbours",
    "retrieval_precision",
    "retrieval_hits",
    "color_histograms",
]


def _nearest(d: np.ndarray, k: int, *, leave_out_self: bool) -> np.ndarray:
    """Indices ``(Q, k)`` of the ``k`` smallest distances of each row of ``d`` ``(Q, G)`` (ties: lower index).

    With ``leave_out_self`` the diagonal is excluded (``d`` is changed in place).
    """
    if leave_out_self:
        np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def _majority_is_own(labels: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Per item, whether the majority label of its ``neighbours`` ``(N, k)`` is its own (ties: smallest label)."""
    classes, codes = np.unique(labels, return_inverse=True)
    n, k = neighbours.shape
    votes = np.zeros((n, classes.size), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(n), k), codes[neighbours].ravel()), 1)
    return votes.argmax(axis=1) == codes


def _loo_neighbours(embeddings: Any, labels: Any, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    e = torch.as_tensor(to_numpy(embeddings), dtype=torch.float64)
    lab = to_numpy(labels)
    if e.ndim != 2 or lab.shape != (e.shape[0],):
        raise ValueError(f"embeddings (N, D) and labels (N,) expected; got {tuple(e.shape)} and {lab.shape}.")
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; use one of {METRICS}.")
    n = e.shape[0]
    if not 1 <= k <= n - 1:
        raise ValueError(f"leave-one-out k-NN needs 1 <= k <= N - 1 = {n - 1}; got k={k}.")
    if metric == "cosine":
        d = -pairwise_cosine_similarity(e)
    else:
        d = pairwise_distance(e, metric=metric)
    return lab, _nearest(d.numpy(), k, leave_out_self=True)


def knn_precision_at_1(embeddings: Any, labels: Any, *, metric: str = "cosine") -> float:
    """Leave-one-out precision@1: how often an embedding's nearest *other* embedding shares its label.

    Args:
        embeddings: shape (N, D).
        labels: shape (N,).
        metric: one of :data:`course_utils.metric_learning.distances.METRICS` (ties go to the lower index).
    """
    lab, order = _loo_neighbours(embeddings, labels, 1, metric)
    return float(np.mean(lab[order[:, 0]] == lab))


def knn_accuracy(embeddings: Any, labels: Any, *, k: int = 5, metric: str = "cosine") -> float:
    """Leave-one-out k-NN classification accuracy (majority vote; ties go to the smallest label)."""
    lab, order = _loo_neighbours(embeddings, labels, k, metric)
    return float(np.mean(_majority_is_own(lab, order)))


_RETRIEVAL_METRICS = ("cosine", "euclidean", "intersection", "chi2")


def _distance_matrix(q: np.ndarray, g: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        gn = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
        return 1.0 - qn @ gn.T
    if metric == "euclidean":
        d2 = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2 * q @ g.T
        return np.sqrt(np.maximum(d2, 0.0))
    if metric == "intersection":  # histograms: 1 - sum_b min(h_b, h'_b) (0 for identical normalised histograms)
        return 1.0 - np.minimum(q[:, None, :], g[None, :, :]).sum(-1)
    if metric == "chi2":  # 0.5 sum_b (h_b - h'_b)^2 / (h_b + h'_b)
        s = q[:, None, :] + g[None, :, :]
        diff = (q[:, None, :] - g[None, :, :]) ** 2
        return 0.5 * np.where(s > 0, diff / np.where(s > 0, s, 1.0), 0.0).sum(-1)
    raise ValueError(f"metric={metric!r}; use one of {_RETRIEVAL_METRICS}.")


def nearest_neighbours(
    queries: Any,
    gallery: Any | None = None,
    *,
    k: int = 5,
    metric: str = "cosine",
    leave_out_self: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest gallery items of each query.

    Args:
        queries: ``(Q, D)`` features.
        gallery: ``(G, D)``; ``None`` searches the queries themselves.
        k: neighbours per query.
        metric: ``"cosine"`` / ``"euclidean"`` (features) or
            ``"intersection"`` / ``"chi2"`` (histograms).
        leave_out_self: never return gallery item ``i`` for query ``i``
            (query ``i`` is item ``i``, or a modified copy of it; needs
            ``Q == G``). Default: only when ``gallery`` is ``None``.

    Returns:
        ``(indices, distances)``, each ``(Q, k)``, nearest first (ties: lower index first).
    """
    q = to_matrix(queries, "queries")
    g = q if gallery is None else to_matrix(gallery, "gallery")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} features, the gallery {g.shape[1]}.")
    leave_out = gallery is None if leave_out_self is None else leave_out_self
    if leave_out and q.shape[0] != g.shape[0]:
        raise ValueError(f"leave_out_self needs as many queries as gallery items; got {q.shape[0]} and {g.shape[0]}.")
    available = g.shape[0] - (1 if leave_out else 0)
    if not 1 <= k <= available:
        raise ValueError(f"k={k} must be between 1 and {available}.")
    d = _distance_matrix(q, g, metric)
    idx = _nearest(d, k, leave_out_self=leave_out)
    return idx, np.take_along_axis(d, idx, axis=1)


def retrieval_precision(features: Any, labels: Any, *, k: int = 5, metric: str = "cosine",
                        queries: Any | None = None) -> float:
    """Leave-one-out precision@k: each item queries all others; the mean share of its top ``k`` with its label.

    Args:
        features: the gallery ``(N, D)``.
        labels: ``(N,)``.
        k: retrieved items per query.
        metric: see :func:`nearest_neighbours`.
        queries: ``(N, D)`` features of modified copies of the items (e.g.
            relit photos) to query with instead; query ``i`` still never
            retrieves item ``i``.
    """
    return float(np.mean(retrieval_hits(features, labels, k=k, metric=metric, queries=queries)))


def retrieval_hits(features: Any, labels: Any, *, k: int = 5, metric: str = "cosine",
                   queries: Any | None = None) -> np.ndarray:
    """Per query, the share of its ``k`` retrieved items with its label: ``(N,)``; the mean is :func:`retrieval_precision`."""
    a = to_matrix(features, "features")
    y = labels_1d(labels, n=a.shape[0])
    if queries is None:
        idx, _ = nearest_neighbours(a, k=k, metric=metric)
    else:
        idx, _ = nearest_neighbours(queries, a, k=k, metric=metric, leave_out_self=True)
    return np.mean(y[idx] == y[:, None], axis=1)


def color_histograms(images: Any, *, bins: int = 8) -> np.ndarray:
    """The joint colour histogram of each image, normalised to sum to 1: a pre-CNN retrieval feature.

    Args:
        images: ``(N, C, H, W)``, floats in ``[0, 1]`` or ``uint8``; ``C`` = 1
            (grey: a ``bins``-bin intensity histogram) or 3 (a ``bins**3`` RGB histogram).
        bins: bins per channel.

    Returns:
        float64 ``(N, bins ** C)``; bin index ``sum_c b_c * bins ** (C - 1 - c)``.
    """
    t = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if t.ndim != 4 or t.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, 1 or 3, H, W); got {tuple(t.shape)}.")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}.")
    x = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    b = (x.clamp(0, 1) * bins).long().clamp_(max=bins - 1)  # (N, C, H, W) bin of each channel
    code = torch.zeros_like(b[:, 0])
    for c in range(b.shape[1]):
        code = code * bins + b[:, c]
    n, n_bins = code.shape[0], bins ** b.shape[1]
    flat = code.reshape(n, -1)
    hist = torch.zeros(n, n_bins, dtype=torch.float64)
    hist.scatter_add_(1, flat, torch.ones_like(flat, dtype=torch.float64))
    return (hist / flat.shape[1]).numpy()


def knn_correct(x: Any, labels: Any, *, k: int = 5) -> np.ndarray:
    """Per item: is the leave-one-out ``k``-NN majority vote (Euclidean) its own label?

    The mean is :func:`~course_utils.evaluation.separation.knn_accuracy_2d` (ties go to the smallest label);
    per item, it can be bootstrapped (resample people, not images).

    Returns:
        ``bool`` array ``(N,)``.
    """
    a = to_matrix(x)
    y = labels_1d(labels, n=a.shape[0])
    idx, _ = nearest_neighbours(a, k=k, metric="euclidean")
    return _majority_is_own(y, idx)
