"""Evaluation metrics for classification, face verification and identification.

Every function accepts torch tensors (any device, with or without grad),
NumPy arrays or lists, and returns Python floats or NumPy arrays.

**Score convention.** Everywhere in this module a *score* is a similarity:
**a higher score means more likely the same identity**, and a pair is accepted
as "same" when ``score >= threshold``. Cosine similarity is a score as is;
turn a distance into a score with :func:`distances_to_scores` (negation), or
compute scores straight from embeddings with :func:`pair_scores`.

* Classification: :func:`accuracy`; calibration with
  :func:`expected_calibration_error` and :func:`reliability_bins`.
* Verification (1:1, is this the same person?): :func:`roc_curve`,
  :func:`roc_auc`, :func:`equal_error_rate`, :func:`tar_at_far` /
  :func:`tar_at_fars`, :func:`best_accuracy_threshold` chosen on a validation
  split and applied with :func:`verification_accuracy`
  (:func:`validated_verification_accuracy` does both).
* Closed-set identification (1:N, who is it? every probe is in the gallery):
  :func:`cmc_curve`, :func:`rank_k_accuracy`.
* Open-set identification (probes may be strangers): :func:`open_set_identification`
  (detection-and-identification rate at a false-alarm rate) and
  :func:`open_set_rates` (at a given threshold).
* Embedding quality: :func:`knn_precision_at_1`, :func:`knn_accuracy`
  (leave-one-out).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from course_utils.distances import METRICS, paired_distance, pairwise_cosine_similarity, pairwise_distance

__all__ = [
    "accuracy",
    "distances_to_scores",
    "pair_scores",
    "all_pair_scores",
    "roc_curve",
    "roc_auc",
    "EER",
    "equal_error_rate",
    "tar_at_far",
    "threshold_at_far",
    "tar_at_fars",
    "best_accuracy_threshold",
    "verification_accuracy",
    "ValidatedAccuracy",
    "validated_verification_accuracy",
    "cmc_curve",
    "rank_k_accuracy",
    "OpenSetResult",
    "open_set_rates",
    "open_set_identification",
    "knn_precision_at_1",
    "knn_accuracy",
    "ReliabilityBins",
    "reliability_bins",
    "expected_calibration_error",
]


# --------------------------------------------------------------------------- helpers
def _np(x: Any, name: str) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _scores_labels(scores: Any, same: Any, *, need_both: bool = True) -> tuple[np.ndarray, np.ndarray]:
    s = _np(scores, "scores").astype(np.float64)
    y = _np(same, "same")
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


# --------------------------------------------------------------------------- classification
def accuracy(outputs: Any, targets: Any) -> float:
    """Fraction of correct predictions.

    Args:
        outputs: logits or probabilities (N, K) (the argmax is taken), or
            predicted labels (N,).
        targets: true labels, shape (N,).
    """
    out = _np(outputs, "outputs")
    t = _np(targets, "targets")
    pred = out.argmax(axis=1) if out.ndim == 2 else out
    if pred.ndim != 1 or t.shape != pred.shape:
        raise ValueError(f"outputs (N, K) or (N,) and targets (N,) must agree; got {out.shape} and {t.shape}.")
    if pred.size == 0:
        raise ValueError("accuracy of an empty batch is undefined.")
    return float(np.mean(pred == t))


# --------------------------------------------------------------------------- scores
def distances_to_scores(distances: Any) -> np.ndarray:
    """Turn distances (lower = more alike) into scores (higher = more alike) by negation."""
    return -_np(distances, "distances").astype(np.float64)


def pair_scores(x1: Any, x2: Any, *, metric: str = "cosine") -> np.ndarray:
    """Verification scores of pairs of embeddings: (N, D), (N, D) -> (N,).

    ``metric="cosine"`` gives the cosine similarity; any other metric of
    :data:`course_utils.distances.METRICS` gives minus that distance.
    """
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; use one of {METRICS}.")
    a = torch.as_tensor(_np(x1, "x1"), dtype=torch.float64)
    b = torch.as_tensor(_np(x2, "x2"), dtype=torch.float64)
    d = paired_distance(a, b, metric=metric).numpy()
    return 1.0 - d if metric == "cosine" else -d


def all_pair_scores(embeddings: Any, labels: Any, *, metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """Scores and same-identity flags of all pairs ``i < j`` of a set of embeddings.

    Args:
        embeddings: shape (N, D).
        labels: identities, shape (N,).
        metric: as in :func:`pair_scores`.

    Returns:
        ``(scores, same)``, each of shape (N (N - 1) / 2,).
    """
    e = _np(embeddings, "embeddings")
    lab = _np(labels, "labels")
    if e.ndim != 2 or lab.shape != (e.shape[0],):
        raise ValueError(f"embeddings (N, D) and labels (N,) expected; got {e.shape} and {lab.shape}.")
    i, j = np.triu_indices(e.shape[0], k=1)
    return pair_scores(e[i], e[j], metric=metric), lab[i] == lab[j]


# --------------------------------------------------------------------------- verification
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


# --------------------------------------------------------------------------- identification
def _id_inputs(scores: Any, gallery_labels: Any, probe_labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = _np(scores, "scores").astype(np.float64)
    g = _np(gallery_labels, "gallery_labels")
    p = _np(probe_labels, "probe_labels")
    if s.ndim != 2 or g.shape != (s.shape[1],) or p.shape != (s.shape[0],):
        raise ValueError(
            "scores must have shape (P, G) for P probes and G gallery entries, gallery_labels (G,) and "
            f"probe_labels (P,); got {s.shape}, {g.shape} and {p.shape}."
        )
    if s.shape[1] == 0:
        raise ValueError("the gallery is empty.")
    return s, g, p


def _mate_rank(s: np.ndarray, g: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each probe: best score of a same-identity gallery entry and its rank (pessimistic ties)."""
    correct = p[:, None] == g[None, :]
    mate = np.where(correct, s, -np.inf).max(axis=1)
    rank = 1 + np.sum(~correct & (s >= mate[:, None]), axis=1)
    return mate, rank


def cmc_curve(scores: Any, gallery_labels: Any, probe_labels: Any, *, max_rank: int | None = None) -> np.ndarray:
    """Cumulative match characteristic of closed-set identification.

    A probe's rank is the position of its first correct gallery entry when the
    gallery is sorted by score (higher first); ties with wrong entries count
    against the probe. ``cmc[k - 1]`` is the fraction of probes with rank <= k.

    Args:
        scores: similarities, shape (P, G); higher = more alike.
        gallery_labels: shape (G,).
        probe_labels: shape (P,); every probe identity must be in the gallery.
        max_rank: length of the curve (default G).

    Returns:
        The CMC, shape (max_rank,), non-decreasing; ``cmc[0]`` is rank-1 accuracy.
    """
    s, g, p = _id_inputs(scores, gallery_labels, probe_labels)
    if p.size == 0:
        raise ValueError("cmc_curve needs at least one probe.")
    missing = ~np.isin(p, g)
    if missing.any():
        raise ValueError(
            f"closed-set identification: {int(missing.sum())} probe(s) have identities absent from the gallery "
            f"(e.g. {p[missing][0]!r}); use open_set_identification for unknown probes."
        )
    _, rank = _mate_rank(s, g, p)
    max_rank = s.shape[1] if max_rank is None else int(max_rank)
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}.")
    ks = np.arange(1, max_rank + 1)
    return (rank[None, :] <= ks[:, None]).mean(axis=1)


def rank_k_accuracy(scores: Any, gallery_labels: Any, probe_labels: Any, *, k: int = 1) -> float:
    """Fraction of probes whose correct identity is among the top ``k`` gallery entries."""
    return float(cmc_curve(scores, gallery_labels, probe_labels, max_rank=k)[k - 1])


class OpenSetResult(NamedTuple):
    """Open-set identification at one operating point."""

    detection_identification_rate: float
    false_alarm_rate: float
    threshold: float


def _open_set_parts(scores: Any, gallery_labels: Any, probe_labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s, g, p = _id_inputs(scores, gallery_labels, probe_labels)
    known = np.isin(p, g)
    if not known.any() or known.all():
        raise ValueError(
            f"open-set identification needs both known probes (identity in the gallery) and unknown probes; "
            f"got {int(known.sum())} known and {int((~known).sum())} unknown."
        )
    mate, rank = _mate_rank(s[known], g, p[known])
    unknown_top = s[~known].max(axis=1)
    return mate, rank, unknown_top


def open_set_rates(
    scores: Any, gallery_labels: Any, probe_labels: Any, *, threshold: float, rank: int = 1
) -> OpenSetResult:
    """Open-set identification with a fixed acceptance threshold.

    A probe is accepted as someone in the gallery when a score reaches the
    threshold. Probes whose identity is not in ``gallery_labels`` are unknown.

    * detection-and-identification rate (DIR): fraction of *known* probes whose
      correct identity is within the top ``rank`` and scores ``>= threshold``;
    * false alarm rate: fraction of *unknown* probes whose best score is ``>= threshold``.

    Args:
        scores: similarities (P, G); gallery_labels (G,); probe_labels (P,).
        threshold: acceptance threshold.
        rank: identification rank (1 = the top match must be right).
    """
    mate, mate_rank, unknown_top = _open_set_parts(scores, gallery_labels, probe_labels)
    dir_ = float(np.mean((mate_rank <= rank) & (mate >= threshold)))
    return OpenSetResult(dir_, float(np.mean(unknown_top >= threshold)), float(threshold))


def open_set_identification(
    scores: Any, gallery_labels: Any, probe_labels: Any, *, far: float = 0.01, rank: int = 1
) -> OpenSetResult:
    """Detection-and-identification rate at a false alarm rate (open-set 1:N).

    The threshold is the lowest one at which at most ``floor(far * U)`` of the
    U unknown probes raise a false alarm; the DIR of the known probes is then
    measured at it (see :func:`open_set_rates`).

    Returns:
        ``OpenSetResult(detection_identification_rate, false_alarm_rate, threshold)``.
    """
    if not 0.0 <= far <= 1.0:
        raise ValueError(f"far must be in [0, 1], got {far}.")
    _, _, unknown_top = _open_set_parts(scores, gallery_labels, probe_labels)
    u = np.sort(unknown_top)[::-1]
    allowed = math.floor(far * u.size + 1e-9)
    threshold = -math.inf if allowed >= u.size else float(np.nextafter(u[allowed], math.inf))
    return open_set_rates(scores, gallery_labels, probe_labels, threshold=threshold, rank=rank)


# --------------------------------------------------------------------------- k-NN
def _loo_neighbours(embeddings: Any, labels: Any, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    e = torch.as_tensor(_np(embeddings, "embeddings"), dtype=torch.float64)
    lab = _np(labels, "labels")
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
    d.fill_diagonal_(math.inf)
    order = np.argsort(d.numpy(), axis=1, kind="stable")[:, :k]
    return lab, order


def knn_precision_at_1(embeddings: Any, labels: Any, *, metric: str = "cosine") -> float:
    """Leave-one-out precision@1: how often an embedding's nearest *other* embedding shares its label.

    Args:
        embeddings: shape (N, D).
        labels: shape (N,).
        metric: one of :data:`course_utils.distances.METRICS` (ties go to the lower index).
    """
    lab, order = _loo_neighbours(embeddings, labels, 1, metric)
    return float(np.mean(lab[order[:, 0]] == lab))


def knn_accuracy(embeddings: Any, labels: Any, *, k: int = 5, metric: str = "cosine") -> float:
    """Leave-one-out k-NN classification accuracy (majority vote; ties go to the smallest label)."""
    lab, order = _loo_neighbours(embeddings, labels, k, metric)
    classes, codes = np.unique(lab, return_inverse=True)
    votes = np.zeros((lab.size, classes.size), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(lab.size), k), codes[order].ravel()), 1)
    return float(np.mean(votes.argmax(axis=1) == codes))


# --------------------------------------------------------------------------- calibration
class ReliabilityBins(NamedTuple):
    """Per-bin statistics of a reliability diagram (B equal-width confidence bins).

    ``confidence`` and ``accuracy`` are NaN in empty bins.
    """

    edges: np.ndarray  # (B + 1,)
    confidence: np.ndarray  # (B,) mean confidence
    accuracy: np.ndarray  # (B,) fraction correct
    counts: np.ndarray  # (B,) samples per bin


def _confidences(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p = _np(probs, "probs").astype(np.float64)
    y = _np(labels, "labels")
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
