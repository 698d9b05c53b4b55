"""Face identification (1:N, "who is it?"): galleries and probes, closed and open set.

* split: :func:`gallery_probe_split` enrols ``per_identity`` images of each
  known person (one-shot by default) and probes with the rest; with
  ``n_unknown > 0`` some identities are left out (open set);
* scores: :func:`similarity_matrix` (probes x gallery), :func:`identify`
  (nearest gallery entry, rejected below a threshold);
* closed set (every probe is enrolled): :func:`cmc_curve`, :func:`rank_k_accuracy`;
* open set (probes may be strangers): :func:`open_set_identification`
  (detection-and-identification rate at a false-alarm rate) and
  :func:`open_set_rates` (at a given threshold).

Scores follow :mod:`course_utils.evaluation.verification`'s convention
(higher = more alike).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from course_utils.arrays import labels_1d, to_float_tensor, to_numpy
from course_utils.evaluation.verification import ScoreFn, _score
from course_utils.metric_learning.distances import pairwise_cosine_similarity

__all__ = [
    "cmc_curve",
    "rank_k_accuracy",
    "OpenSetResult",
    "open_set_rates",
    "open_set_identification",
    "GalleryProbeSplit",
    "gallery_probe_split",
    "similarity_matrix",
    "identify",
]


def _id_inputs(scores: Any, gallery_labels: Any, probe_labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = to_numpy(scores).astype(np.float64)
    g = to_numpy(gallery_labels)
    p = to_numpy(probe_labels)
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


@dataclass(frozen=True)
class GalleryProbeSplit:
    """A gallery (enrolled images) and probes (queries) drawn from one set of images.

    Attributes:
        gallery: ``(G,)`` indices of enrolled images.
        probes: ``(P,)`` indices of query images (never in the gallery).
        known: ``(P,)`` bool, whether the probe's identity is enrolled.
        unknown_identities: identities with no image in the gallery.
    """

    gallery: np.ndarray
    probes: np.ndarray
    known: np.ndarray
    unknown_identities: np.ndarray

    @property
    def n_known_probes(self) -> int:
        return int(self.known.sum())

    @property
    def n_unknown_probes(self) -> int:
        return int((~self.known).sum())


def gallery_probe_split(
    labels: Any, *, per_identity: int = 1, n_unknown: int | float = 0, seed: int = 0
) -> GalleryProbeSplit:
    """Enrol ``per_identity`` images of each known person; every other image is a probe.

    Args:
        labels: ``(N,)`` identity of each image.
        per_identity: gallery images per enrolled identity (1 = one-shot).
        n_unknown: identities left out of the gallery, whose images are all
            *unknown* probes (open set); an int, or a fraction in ``(0, 1)`` of
            the identities. 0 gives a closed set.
        seed: seed of the choice of unknown identities and gallery images.

    Returns:
        A :class:`GalleryProbeSplit`.

    Raises:
        ValueError: an enrolled identity has no image left to probe with, or
            no identity would be enrolled.
    """
    lab = labels_1d(labels)
    ids = np.unique(lab)
    if isinstance(n_unknown, float) and 0 < n_unknown < 1:
        n_unknown = int(round(n_unknown * ids.size))
    n_unknown = int(n_unknown)
    if per_identity < 1:
        raise ValueError(f"per_identity must be >= 1, got {per_identity}.")
    if not 0 <= n_unknown < ids.size:
        raise ValueError(f"n_unknown must be in [0, {ids.size - 1}] for {ids.size} identities, got {n_unknown}.")
    rng = np.random.default_rng(seed)
    unknown_ids = np.sort(rng.choice(ids, n_unknown, replace=False)) if n_unknown else ids[:0]
    gallery = []
    for ident in ids:
        if ident in unknown_ids:
            continue
        members = np.flatnonzero(lab == ident)
        if members.size <= per_identity:
            raise ValueError(
                f"identity {ident!r} has {members.size} image(s): it needs more than per_identity={per_identity} "
                "to leave a probe."
            )
        gallery.append(rng.choice(members, per_identity, replace=False))
    gallery_idx = np.sort(np.concatenate(gallery)).astype(np.int64)
    probes = np.setdiff1d(np.arange(lab.size), gallery_idx).astype(np.int64)
    known = ~np.isin(lab[probes], unknown_ids)
    return GalleryProbeSplit(gallery_idx, probes, known, unknown_ids)


def similarity_matrix(queries: Any, references: Any, *, score_fn: ScoreFn | None = None) -> np.ndarray:
    """Scores of every query against every reference: (P, D), (G, D) -> (P, G).

    Cosine similarity by default (one matrix product); a paired ``score_fn``
    is applied to all ``P * G`` pairs.
    """
    q, r = to_float_tensor(queries), to_float_tensor(references)
    if q.ndim != 2 or r.ndim != 2 or q.shape[1] != r.shape[1]:
        raise ValueError(f"queries (P, D) and references (G, D) expected; got {tuple(q.shape)} and {tuple(r.shape)}.")
    if score_fn is None:
        return pairwise_cosine_similarity(q, r).numpy().astype(np.float64)
    p, g = q.shape[0], r.shape[0]
    flat = _score(score_fn, q.repeat_interleave(g, dim=0), r.repeat(p, 1))
    return flat.reshape(p, g)


def identify(
    probe_embeddings: Any,
    gallery_embeddings: Any,
    gallery_labels: Any,
    *,
    threshold: float = -math.inf,
    score_fn: ScoreFn | None = None,
    reject_label: Any = -1,
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-gallery identification with rejection.

    Each probe gets the label of its best-scoring gallery entry, or
    ``reject_label`` ("unknown person") when that best score is below
    ``threshold``.

    Returns:
        ``(predicted_labels, best_scores)``, each ``(P,)``.
    """
    g_lab = labels_1d(gallery_labels)
    s = similarity_matrix(probe_embeddings, gallery_embeddings, score_fn=score_fn)
    if s.shape[1] != g_lab.size:
        raise ValueError(f"gallery_labels has {g_lab.size} entries for {s.shape[1]} gallery embeddings.")
    best = s.argmax(axis=1)
    top = s[np.arange(s.shape[0]), best]
    pred = np.where(top >= threshold, g_lab[best], reject_label)
    return pred, top
