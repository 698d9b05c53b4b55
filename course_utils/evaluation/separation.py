"""How well an embedding, or its 2-D picture, separates labels: numbers to put next to the pictures.

* :func:`separation_table`: leave-one-out k-NN accuracy and silhouette in the
  full space and in each 2-D projection, with each projection's
  trustworthiness (Venna and Kaski; :func:`sklearn.manifold.trustworthiness`);
* :func:`separation_intervals`: identity-level intervals (people resampled,
  not images) of the per-item k-NN votes
  (:func:`~course_utils.evaluation.retrieval.knn_correct`) and silhouettes;
* :func:`angular_spread`, :func:`centre_distance_correlation`: what a
  normalised space and a 2-D layout keep of the distances between people.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr
from sklearn.metrics import silhouette_samples, silhouette_score

from course_utils.arrays import labels_1d, to_matrix
from course_utils.evaluation.projections import Projection
from course_utils.evaluation.retrieval import knn_accuracy, knn_correct
from course_utils.stats import identity_bootstrap

__all__ = [
    "silhouette",
    "trustworthiness",
    "knn_accuracy_2d",
    "separation_table",
    "angular_spread",
    "centre_distance_correlation",
    "separation_intervals",
]


def silhouette(x: Any, labels: Any, *, metric: str = "euclidean") -> float:
    """Mean silhouette ``(b - a) / max(a, b)`` over points (scikit-learn's ``silhouette_score``).

    ``a``: mean distance to the other points of the same label; ``b``: mean
    distance to the nearest other label. +1: tight, well separated
    clusters; 0: overlapping; negative: points closer to another label.
    """
    a = to_matrix(x)
    return float(silhouette_score(a, labels_1d(labels, n=a.shape[0]), metric=metric))


def trustworthiness(x_high: Any, x_low: Any, *, n_neighbors: int = 5, metric: str = "euclidean") -> float:
    """How far the projection avoids *false* neighbours (scikit-learn's ``trustworthiness``).

    1 when every point's ``n_neighbors`` nearest neighbours in 2-D were
    also among its nearest in the full space; lower when the picture puts
    together points that were far apart. ``metric`` is the full space's.
    """
    from sklearn.manifold import trustworthiness as tw

    hi, lo = to_matrix(x_high, "x_high"), to_matrix(x_low, "x_low")
    if hi.shape[0] != lo.shape[0]:
        raise ValueError(f"x_high and x_low must have the same rows; got {hi.shape[0]} and {lo.shape[0]}.")
    return float(tw(hi, lo, n_neighbors=n_neighbors, metric=metric))


def knn_accuracy_2d(x: Any, labels: Any, *, k: int = 5) -> float:
    """Leave-one-out k-NN accuracy with Euclidean distances (as in a scatter plot)."""
    return knn_accuracy(to_matrix(x), labels, k=k, metric="l2")


def separation_table(
    x: Any,
    projections: Mapping[str, Any | Projection],
    labels: Any,
    *,
    k: int = 5,
    n_neighbors: int = 5,
    full_name: str | None = None,
) -> pd.DataFrame:
    """Do the identities separate? The same numbers in the full space and in each projection.

    Args:
        x: the embeddings ``(N, D)``.
        projections: name -> ``(N, 2)`` coordinates (or a :class:`Projection`).
        labels: ``(N,)``.
        k: neighbours of the leave-one-out k-NN vote.
        n_neighbors: neighbourhood size of the trustworthiness.
        full_name: the row name of the full space (default ``"full (D-d)"``).

    Returns:
        One row per space: ``dims``, ``knn_acc`` (Euclidean, leave-one-out),
        ``silhouette`` (Euclidean), ``trustworthiness`` (NaN for the full space).
    """
    a = to_matrix(x)
    y = labels_1d(labels, n=a.shape[0])
    rows = {full_name or f"full ({a.shape[1]}-d)": {
        "dims": a.shape[1], "knn_acc": knn_accuracy_2d(a, y, k=k), "silhouette": silhouette(a, y),
        "trustworthiness": np.nan}}
    for name, proj in projections.items():
        xy = proj.coords if isinstance(proj, Projection) else to_matrix(proj)
        rows[name] = {"dims": xy.shape[1], "knn_acc": knn_accuracy_2d(xy, y, k=k), "silhouette": silhouette(xy, y),
                      "trustworthiness": trustworthiness(a, xy, n_neighbors=n_neighbors)}
    return pd.DataFrame(rows).T.astype({"dims": int, "knn_acc": float, "silhouette": float,
                                        "trustworthiness": float})


def angular_spread(x: Any, labels: Any) -> float:
    """Mean angle (degrees) between each point and its class's mean direction."""
    a = to_matrix(x)
    y = labels_1d(labels, n=a.shape[0])
    u = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    angles = np.empty(a.shape[0])
    for c in np.unique(y):
        m = y == c
        centre = u[m].mean(0)
        centre /= max(np.linalg.norm(centre), 1e-12)
        angles[m] = np.degrees(np.arccos(np.clip(u[m] @ centre, -1.0, 1.0)))
    return float(angles.mean())


def centre_distance_correlation(x: Any, xy: Any, labels: Any) -> float:
    """Spearman correlation of the distances between label centres in ``x`` ``(N, D)`` and in ``xy`` ``(N, 2)``.

    1: the picture orders the distances between people as the full space
    does; near 0: the layout of the clusters says nothing about it.
    """
    a, b = to_matrix(x, "x"), to_matrix(xy, "xy")
    y = labels_1d(labels, n=a.shape[0])
    ids = np.unique(y)
    if ids.size < 3:
        raise ValueError(f"need at least 3 labels for a rank correlation of their distances, got {ids.size}.")
    full = pdist(np.stack([a[y == i].mean(0) for i in ids]))
    flat = pdist(np.stack([b[y == i].mean(0) for i in ids]))
    return float(spearmanr(full, flat)[0])


def separation_intervals(x: Any, labels: Any, *, identities: Any | None = None, k: int = 5,
                         n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """k-NN accuracy and silhouette with identity-level bootstrap intervals (people resampled, not images).

    The per-item values (:func:`knn_correct`, scikit-learn's
    ``silhouette_samples``) are computed once on all items; each replicate
    averages them over a resample of people (:func:`course_utils.stats.identity_bootstrap`).
    Two calls with the same ``identities``, ``n_boot`` and ``seed`` give paired
    intervals, so :func:`course_utils.stats.compare` can compare embedders.

    Args:
        x: ``(N, D)``; labels: ``(N,)``; identities: ``(N,)`` person of each
            item (default: the labels).

    Returns:
        ``{"knn_acc": Interval, "silhouette": Interval}``.
    """
    a = to_matrix(x)
    y = labels_1d(labels, n=a.shape[0])
    ids = y if identities is None else labels_1d(identities, n=a.shape[0])
    per_item = {"knn_acc": knn_correct(a, y, k=k).astype(np.float64), "silhouette": silhouette_samples(a, y)}
    return {name: identity_bootstrap(np.mean, v, identities=ids, n_boot=n_boot, seed=seed, level=level)
            for name, v in per_item.items()}
