"""Face verification (1:1, "are these two faces the same person?"): scores, pairs and rates.

**Score convention.** A *score* is a similarity: **a higher score means more
likely the same identity**, and a pair is accepted as "same" when
``score >= threshold``. :func:`pair_scores` computes scores straight from
embeddings (cosine similarity by default, minus a distance otherwise);
:func:`distances_to_scores` turns distances into scores (negation).

* pairs: :func:`verification_pairs` (every genuine pair, all or a sample of
  the impostor pairs), :func:`verification_scores`, :func:`all_pair_scores`;
* rates: :func:`roc_curve`, :func:`roc_auc`, :func:`equal_error_rate`,
  :func:`tar_at_far` / :func:`tar_at_fars`, :func:`best_accuracy_threshold`
  chosen on a validation split and applied with :func:`verification_accuracy`
  (:func:`validated_verification_accuracy` does both).

Every function accepts torch tensors (any device, with or without grad),
NumPy arrays or lists, and returns Python floats or NumPy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from course_utils.arrays import labels_1d, to_float_tensor, to_numpy
from course_utils.metric_learning.distances import (
    METRICS,
    cosine_similarity,
    paired_distance,
)

__all__ = [
    "ScoreFn",
    "distances_to_scores",
    "pair_scores",
    "euclidean_scores",
    "all_pair_scores",
    "roc_curve",
    "roc_auc",
    "EER",
    "equal_error_rate",
    "tar_at_far",
    "threshold_at_far",
    "tar_at_fars",
    "verification_accuracy",
    "best_accuracy_threshold",
    "ValidatedAccuracy",
    "validated_verification_accuracy",
    "VerificationPairs",
    "verification_pairs",
    "verification_scores",
]

#: A paired score function: ``(x1 (N, D), x2 (N, D)) -> (N,)`` scores, higher = more alike.
ScoreFn = Callable[[Tensor, Tensor], Any]


def _scores_labels(scores: Any, same: Any, *, need_both: bool = True) -> tuple[np.ndarray, np.ndarray]:
    s = to_numpy(scores).astype(np.float64)
    y = to_numpy(same)
    if s.ndim != 1 or y.shape != s.shape:
        raise ValueError(f"scores and same must both have shape (N,); got {s.shape} and {y.shape}.")
    if s.size and not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinite values.")
    if y.dtype != bool:
        if not np.all(np.isin(y, (0, 1))):
            raise ValueError("same must hold 0/1 (or False/True): 1 = same identity.")
        y = y.astype(bool)
    if need_both and (y.all() or not y.any()):
        raise ValueError(
            f"need both same-identity (genuine) and different-identity (impostor) pairs; "
            f"got {int(y.sum())} genuine and {int((~y).sum())} impostor pairs."
        )
    return s, y


def _ranked_counts(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative true/false positive counts at each distinct score, highest first."""
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    return tps, fps, s[last]


def distances_to_scores(distances: Any) -> np.ndarray:
    """Turn distances (lower = more alike) into scores (higher = more alike) by negation."""
    return -to_numpy(distances).astype(np.float64)


def pair_scores(x1: Any, x2: Any, *, metric: str = "cosine") -> np.ndarray:
    """Verification scores of pairs of embeddings: (N, D), (N, D) -> (N,), in float64.

    ``metric="cosine"`` gives the cosine similarity
    (:func:`~course_utils.metric_learning.distances.cosine_similarity`, the
    package's one); any other metric of
    :data:`course_utils.metric_learning.distances.METRICS` gives minus that distance.
    A ``(x1, x2) -> scores`` :data:`ScoreFn` with another metric:
    ``functools.partial(pair_scores, metric="l2")`` (or :func:`euclidean_scores`).
    """
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; use one of {METRICS}.")
    a = torch.as_tensor(to_numpy(x1), dtype=torch.float64)
    b = torch.as_tensor(to_numpy(x2), dtype=torch.float64)
    if metric == "cosine":
        return cosine_similarity(a, b).numpy()
    return -paired_distance(a, b, metric=metric).numpy()


def all_pair_scores(embeddings: Any, labels: Any, *, metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """Scores and same-identity flags of all pairs ``i < j`` of a set of embeddings.

    Args:
        embeddings: shape (N, D).
        labels: identities, shape (N,).
        metric: as in :func:`pair_scores`.

    Returns:
        ``(scores, same)``, each of shape (N (N - 1) / 2,).
    """
    e = to_numpy(embeddings)
    lab = to_numpy(labels)
    if e.ndim != 2 or lab.shape != (e.shape[0],):
        raise ValueError(f"embeddings (N, D) and labels (N,) expected; got {e.shape} and {lab.shape}.")
    i, j = np.triu_indices(e.shape[0], k=1)
    return pair_scores(e[i], e[j], metric=metric), lab[i] == lab[j]


def roc_curve(scores: Any, same: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve of verification scores (one point per distinct score).

    Args:
        scores: shape (N,), higher = more likely same.
        same: 1 for a genuine (same-identity) pair, 0 for an impostor pair; shape (N,).

    Returns:
        ``(fpr, tpr, thresholds)``, each of shape (U + 1,) for U distinct
        scores; point ``i`` accepts ``score >= thresholds[i]``; the first point
        is ``(0, 0)`` at threshold ``+inf`` (like scikit-learn with
        ``drop_intermediate=False``).
    """
    s, y = _scores_labels(scores, same)
    tps, fps, thr = _ranked_counts(s, y)
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return fpr, tpr, np.r_[np.inf, thr]


def roc_auc(scores: Any, same: Any) -> float:
    """Area under the ROC curve = P(genuine score > impostor score) + 0.5 P(tie).

    Computed from mid-ranks (the Mann-Whitney U statistic), exact with ties.
    """
    s, y = _scores_labels(scores, same)
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    mid_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based average ranks per value
    ranks = mid_rank[inverse]
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


class EER(NamedTuple):
    """Equal error rate and the threshold where it is reached."""

    eer: float
    threshold: float


def equal_error_rate(scores: Any, same: Any) -> EER:
    """Equal error rate: where the false accept rate equals the false reject rate.

    The ROC is walked from the strictest threshold; between the last point
    with FRR > FAR and the first with FRR <= FAR, both rates are linearly
    interpolated and the crossing is returned (its threshold too).

    Returns:
        ``EER(eer, threshold)``.
    """
    fpr, tpr, thr = roc_curve(scores, same)
    fnr = 1.0 - tpr
    diff = fnr - fpr  # > 0 at the start, decreasing
    i = int(np.flatnonzero(diff <= 0)[0])
    d0, d1 = diff[i - 1], diff[i]
    t = d0 / (d0 - d1)
    eer = fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    lo, hi = thr[i], thr[i - 1]
    threshold = lo if not np.isfinite(hi) else hi + t * (lo - hi)
    return EER(float(eer), float(threshold))


def tar_at_far(scores: Any, same: Any, *, far: float) -> float:
    """True accept rate at the best threshold whose false accept rate is at most ``far``.

    With ``n`` impostor pairs at most ``floor(far * n)`` false accepts are
    allowed, so a FAR below ``1 / n`` can only be met by accepting no impostor
    at all; report how many impostor pairs a TAR@FAR was measured on.
    """
    if not 0.0 <= far <= 1.0:
        raise ValueError(f"far must be in [0, 1], got {far}.")
    s, y = _scores_labels(scores, same)
    tps, fps, _ = _ranked_counts(s, y)
    allowed = math.floor(far * int((~y).sum()) + 1e-9)
    ok = fps <= allowed
    return float(tps[ok].max() / y.sum()) if ok.any() else 0.0


def threshold_at_far(scores: Any, same: Any, *, far: float) -> float:
    """The lowest threshold whose false accept (match) rate is at most ``far``.

    A pair is accepted when ``score >= threshold``. With ``n`` impostor
    scores sorted from the highest, ``s_0 >= s_1 >= ...``, and
    ``k = floor(far * n)``, the threshold is the next float above ``s_k``:
    at most ``k`` impostors score above it, and no lower threshold (among the
    score values) keeps the rate at or below ``far``.

    Args:
        scores: ``(P,)`` similarity scores (higher = same).
        same: ``(P,)`` bool, genuine pairs.
        far: target false accept rate in ``[0, 1)``.
    """
    s, y = _scores_labels(scores, same, need_both=False)
    imp = np.sort(s[~y])[::-1]
    if imp.size == 0:
        raise ValueError("no impostor pairs: the false accept rate is undefined.")
    if not 0 <= far < 1:
        raise ValueError(f"far must lie in [0, 1), got {far}.")
    k = int(np.floor(far * imp.size + 1e-9))
    return float(np.nextafter(imp[k], np.inf))


def tar_at_fars(scores: Any, same: Any, *, fars: Sequence[float] = (1e-1, 1e-2, 1e-3)) -> dict[float, float]:
    """:func:`tar_at_far` at several false accept rates: ``{far: tar}``."""
    return {float(f): tar_at_far(scores, same, far=f) for f in fars}


def verification_accuracy(scores: Any, same: Any, *, threshold: float) -> float:
    """Accuracy of the decision "same if ``score >= threshold``"."""
    s, y = _scores_labels(scores, same, need_both=False)
    if s.size == 0:
        raise ValueError("accuracy of an empty set of pairs is undefined.")
    return float(np.mean((s >= threshold) == y))


def best_accuracy_threshold(scores: Any, same: Any) -> tuple[float, float]:
    """Threshold with the highest verification accuracy on these (validation) pairs.

    The threshold is placed midway between two consecutive distinct scores,
    so it transfers sensibly to other pairs; ``+inf`` (reject all) or
    ``-inf`` (accept all) when that is best. Ties go to the highest threshold.

    Returns:
        ``(threshold, accuracy)``.
    """
    s, y = _scores_labels(scores, same, need_both=False)
    if s.size == 0:
        raise ValueError("best_accuracy_threshold needs at least one pair.")
    tps, fps, values = _ranked_counts(s, y)
    n_neg = int((~y).sum())
    correct = np.r_[n_neg, tps + (n_neg - fps)]  # accept none, then accept down to each value
    k = int(np.argmax(correct))
    if k == 0:
        thr = math.inf
    elif k == values.size:
        thr = -math.inf
    else:
        thr = float((values[k - 1] + values[k]) / 2.0)
    return thr, float(correct[k] / s.size)


class ValidatedAccuracy(NamedTuple):
    """A threshold chosen on validation pairs and the accuracies it gives."""

    threshold: float
    val_accuracy: float
    test_accuracy: float


def validated_verification_accuracy(
    val_scores: Any, val_same: Any, test_scores: Any, test_same: Any
) -> ValidatedAccuracy:
    """Choose the best-accuracy threshold on a validation split and apply it to a test split.

    Choosing the threshold on the test pairs themselves would overstate the
    accuracy; this is the honest protocol (as in LFW's 10 folds).
    """
    thr, val_acc = best_accuracy_threshold(val_scores, val_same)
    return ValidatedAccuracy(thr, val_acc, verification_accuracy(test_scores, test_same, threshold=thr))


def euclidean_scores(x1: Any, x2: Any) -> np.ndarray:
    """Negative Euclidean distance of paired rows: ``(N, D), (N, D) -> (N,)``; higher = more alike.

    The score for raw (not normalised) descriptors such as dlib's, whose
    same-person rule is ``distance < 0.6``, i.e. ``score > -0.6``
    (:func:`pair_scores` with ``metric="l2"``).
    """
    return pair_scores(x1, x2, metric="l2")


def _check_emb(emb: Tensor, labels: np.ndarray) -> None:
    if emb.ndim != 2 or emb.shape[0] != labels.shape[0]:
        raise ValueError(
            f"embeddings must have shape (N, D) with N = len(labels) = {labels.shape[0]}; got {tuple(emb.shape)}."
        )


def _score(score_fn: ScoreFn | None, x1: Tensor, x2: Tensor) -> np.ndarray:
    if score_fn is None:
        return pair_scores(x1, x2)
    with torch.no_grad():
        out = score_fn(x1, x2)
    out = out.detach().float().cpu().numpy() if isinstance(out, Tensor) else np.asarray(out, dtype=float)
    if out.shape != (x1.shape[0],):
        raise ValueError(f"score_fn must return one score per pair, shape ({x1.shape[0]},); got {out.shape}.")
    return out.astype(np.float64)


@dataclass(frozen=True)
class VerificationPairs:
    """Index pairs into a set of images, with ``same`` = both show the same identity.

    Attributes:
        first, second: ``(P,)`` int64 indices, ``first < second``.
        same: ``(P,)`` bool.
    """

    first: np.ndarray
    second: np.ndarray
    same: np.ndarray

    def __len__(self) -> int:
        return int(self.first.size)

    @property
    def n_genuine(self) -> int:
        return int(self.same.sum())

    @property
    def n_impostor(self) -> int:
        return int((~self.same).sum())


def verification_pairs(labels: Any, *, max_impostors: int | None = None, seed: int = 0) -> VerificationPairs:
    """Every genuine pair ``i < j`` and all, or a random sample of, the impostor pairs.

    Args:
        labels: ``(N,)`` identity of each image.
        max_impostors: keep at most this many impostor pairs (drawn without
            replacement); ``None`` keeps them all.
        seed: seed of the impostor sample.

    Returns:
        :class:`VerificationPairs`, sorted by ``(first, second)``.

    Raises:
        ValueError: no genuine or no impostor pair can be formed.
    """
    lab = labels_1d(labels)
    i, j = np.triu_indices(lab.size, k=1)
    same = lab[i] == lab[j]
    if not same.any() or same.all():
        raise ValueError(
            f"verification needs genuine and impostor pairs; these {lab.size} images give "
            f"{int(same.sum())} genuine and {int((~same).sum())} impostor pairs."
        )
    keep = same.copy()
    imp = np.flatnonzero(~same)
    if max_impostors is not None and max_impostors < imp.size:
        if max_impostors < 1:
            raise ValueError(f"max_impostors must be >= 1, got {max_impostors}.")
        imp = np.random.default_rng(seed).choice(imp, max_impostors, replace=False)
    keep[imp] = True
    return VerificationPairs(i[keep].astype(np.int64), j[keep].astype(np.int64), same[keep])


def verification_scores(
    embeddings: Any,
    labels: Any,
    *,
    pairs: VerificationPairs | None = None,
    max_impostors: int | None = None,
    seed: int = 0,
    score_fn: ScoreFn | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and ``same`` flags of verification pairs of a set of embeddings.

    Args:
        embeddings: ``(N, D)``.
        labels: ``(N,)``.
        pairs: the pairs to score (default: :func:`verification_pairs`).
        max_impostors, seed: passed to :func:`verification_pairs`.
        score_fn: paired score function (default: cosine similarity).

    Returns:
        ``(scores, same)``, each ``(P,)``.
    """
    emb, lab = to_float_tensor(embeddings), labels_1d(labels)
    _check_emb(emb, lab)
    if pairs is None:
        pairs = verification_pairs(lab, max_impostors=max_impostors, seed=seed)
    return _score(score_fn, emb[pairs.first], emb[pairs.second]), pairs.same.copy()
