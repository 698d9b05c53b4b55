"""Face-recognition protocols in one call, and comparing models on held-out people.

:func:`evaluate_embeddings` runs verification, closed-set and open-set
identification on one set of embeddings and returns one dict of numbers
(AUC, EER, TAR@FAR, rank-1, rank-5, open-set DIR@FAR).

A face metric measured on a handful of test people is noisy in a way that
resampling pairs hides: every pair shares its people with many others. The
comparison functions resample **people**
(:func:`course_utils.stats.identity_bootstrap`) with the same draws for every
model, so that two models are compared on the same resampled populations
(paired replicates) and :func:`course_utils.stats.compare` turns the
difference into ``"supported"``, ``"contradicted"`` or ``"within noise"``.

- :func:`rank1_hits`: per probe, whether one-shot identification got it right.
- :func:`identity_intervals`: AUC, TAR@FAR and rank-1 with identity-level bootstrap intervals.
- :func:`interval_table`, :func:`verdict_table`: the intervals and verdicts of many models as tables.
- :func:`gallery_false_alarm_rate`, :func:`pairwise_far_for_alarm_rate`: how a pairwise false
  accept rate grows with the gallery in open-set identification, and back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from course_utils.arrays import labels_1d, to_float_tensor
from course_utils.evaluation.identification import (
    gallery_probe_split,
    open_set_identification,
    rank_k_accuracy,
    similarity_matrix,
)
from course_utils.evaluation.verification import (
    ScoreFn,
    _check_emb,
    equal_error_rate,
    roc_auc,
    tar_at_far,
    verification_pairs,
    verification_scores,
)
from course_utils.stats import Interval, compare, identity_bootstrap

__all__ = [
    "METRIC_NAMES",
    "evaluate_embeddings",
    "rank1_hits",
    "identity_intervals",
    "interval_table",
    "verdict_table",
    "gallery_false_alarm_rate",
    "pairwise_far_for_alarm_rate",
]


def evaluate_embeddings(
    embeddings: Any,
    labels: Any,
    *,
    far: float = 1e-2,
    open_set_far: float = 0.1,
    n_unknown: int | float = 0.5,
    max_impostors: int | None = None,
    score_fn: ScoreFn | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Verification, closed-set and open-set identification numbers for one set of embeddings.

    The embeddings should come from identities never seen in training.

    * verification on :func:`verification_pairs`: ``auc``, ``eer``,
      ``tar_at_far`` (TAR at ``far``);
    * closed set, one-shot (one gallery image per identity, every other
      image a probe): ``rank1``, ``rank5``;
    * open set (``n_unknown`` identities left out of the one-shot gallery):
      ``dir_at_far``, the detection-and-identification rate at a false-alarm
      rate of ``open_set_far``.

    Also returns the counts the numbers rest on (``n_genuine``,
    ``n_impostor``, ``n_identities``, ``n_unknown_probes``).

    Args:
        embeddings: ``(N, D)``.
        labels: ``(N,)``; every identity needs at least two images.
        far: false accept rate of ``tar_at_far``.
        open_set_far: false alarm rate of ``dir_at_far``.
        n_unknown: identities (int) or share of them (float < 1) that are
            unknown in the open-set protocol.
        max_impostors: sample this many impostor pairs (default: all).
        score_fn: paired score function (default cosine similarity).
        seed: seed of the samples and splits.
    """
    emb, lab = to_float_tensor(embeddings), labels_1d(labels)
    _check_emb(emb, lab)
    scores, same = verification_scores(emb, lab, max_impostors=max_impostors, seed=seed, score_fn=score_fn)
    out: dict[str, float] = {
        "auc": roc_auc(scores, same),
        "eer": equal_error_rate(scores, same).eer,
        "tar_at_far": tar_at_far(scores, same, far=far),
    }
    closed = gallery_probe_split(lab, n_unknown=0, seed=seed)
    s = similarity_matrix(emb[closed.probes], emb[closed.gallery], score_fn=score_fn)
    out["rank1"] = rank_k_accuracy(s, lab[closed.gallery], lab[closed.probes], k=1)
    out["rank5"] = rank_k_accuracy(s, lab[closed.gallery], lab[closed.probes], k=min(5, closed.gallery.size))
    opened = gallery_probe_split(lab, n_unknown=n_unknown, seed=seed)
    s = similarity_matrix(emb[opened.probes], emb[opened.gallery], score_fn=score_fn)
    res = open_set_identification(s, lab[opened.gallery], lab[opened.probes], far=open_set_far)
    out["dir_at_far"] = res.detection_identification_rate
    out.update(
        n_genuine=float(same.sum()),
        n_impostor=float((~same).sum()),
        n_identities=float(np.unique(lab).size),
        n_unknown_probes=float(opened.n_unknown_probes),
    )
    return out


#: Column names of the metrics :func:`identity_intervals` returns.
METRIC_NAMES: dict[str, str] = {"auc": "AUC", "tar_at_far": "TAR@FAR", "rank1": "rank-1"}


def rank1_hits(embeddings: Any, labels: Any, *, score_fn: ScoreFn | None = None,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One-shot closed-set identification, per probe: ``(hits (P,) bool, probe labels (P,))``.

    The gallery is one image per person drawn by
    :func:`~course_utils.evaluation.identification.gallery_probe_split` with ``seed`` (the split
    :func:`evaluate_embeddings` uses with the same seed),
    every other image is a probe. A probe is a hit when its own person's
    gallery image scores strictly above every other gallery image (ties count
    against it, as in :func:`~course_utils.evaluation.identification.cmc_curve`), so
    ``hits.mean()`` is the rank-1 accuracy.
    """
    lab = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    split = gallery_probe_split(lab, n_unknown=0, seed=seed)
    emb = embeddings if isinstance(embeddings, torch.Tensor) else torch.as_tensor(np.asarray(embeddings, np.float32))
    s = similarity_matrix(emb[split.probes], emb[split.gallery], score_fn=score_fn)
    g, p = lab[split.gallery], lab[split.probes]
    mate = p[:, None] == g[None, :]
    mate_score = np.where(mate, s, -np.inf).max(axis=1)
    beaten = np.sum(~mate & (s >= mate_score[:, None]), axis=1)
    return beaten == 0, p


def identity_intervals(embeddings: Any, labels: Any, *, score_fn: ScoreFn | None = None, far: float = 1e-2,
                       n_boot: int = 1000, seed: int = 0, split_seed: int = 0,
                       level: float = 0.95) -> dict[str, Interval]:
    """AUC, TAR@``far`` (all pairs) and one-shot rank-1 with identity-level bootstrap intervals.

    Args:
        embeddings: ``(N, D)`` of people never seen in training.
        labels: ``(N,)`` person of each image (at least 2 people, 2 images each).
        score_fn: paired score, higher = more alike (default cosine; :func:`euclidean_scores` for raw descriptors).
        far: false accept rate of the TAR.
        n_boot, seed: bootstrap replicates and their seed. Models evaluated on
            the same people with the same ``n_boot`` and ``seed`` get the same
            draws of people, so :func:`course_utils.stats.compare` pairs them.
        split_seed: seed of the one-shot gallery (see :func:`rank1_hits`).
        level: interval level.

    Returns:
        ``{"auc": Interval, "tar_at_far": Interval, "rank1": Interval}``; each
        interval's ``n`` is the number of people.
    """
    lab = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    pairs = verification_pairs(lab)
    scores, same = verification_scores(embeddings, lab, pairs=pairs, score_fn=score_fn)
    ids = (lab[pairs.first], lab[pairs.second])
    hits, probe_labels = rank1_hits(embeddings, lab, score_fn=score_fn, seed=split_seed)
    common = {"n_boot": n_boot, "seed": seed, "level": level}
    return {
        "auc": identity_bootstrap(roc_auc, scores, same, identities=ids, **common),
        "tar_at_far": identity_bootstrap(lambda s, y: tar_at_far(s, y, far=far), scores, same, identities=ids,
                                         **common),
        "rank1": identity_bootstrap(np.mean, hits.astype(np.float64), identities=probe_labels, **common),
    }


def interval_table(intervals: Mapping[str, Mapping[str, Interval]], *,
                   columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per model, one column per metric, cells ``"0.873 [0.80, 0.93]"`` (``Interval.format``).

    ``columns``: metric key -> column name (default :data:`METRIC_NAMES`, in that order).
    """
    columns = dict(METRIC_NAMES if columns is None else columns)
    rows = {name: {col: ivs[key].format() for key, col in columns.items() if key in ivs}
            for name, ivs in intervals.items()}
    return pd.DataFrame.from_dict(rows, orient="index")[[c for c in columns.values()]]


def verdict_table(intervals: Mapping[str, Mapping[str, Interval]], *, reference: str,
                  models: Sequence[str] | None = None, claim: str = "a > b",
                  metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """``compare(model, reference, claim=claim)`` for each model and metric, as a long table.

    Returns:
        Columns ``model``, ``metric``, ``model value``, ``reference value``,
        ``difference`` (``model - reference`` with its interval), ``low``,
        ``high`` and ``verdict`` (``"supported"``, ``"contradicted"``,
        ``"within noise"``). Paired when both sides share their draws of people.
    """
    models = [m for m in (intervals if models is None else models) if m != reference]
    metrics = list(METRIC_NAMES if metrics is None else metrics)
    rows = []
    for name in models:
        for key in metrics:
            a, b = intervals[name][key], intervals[reference][key]
            c = compare(a, b, claim=claim, kind="resamples")
            rows.append({"model": name, "metric": METRIC_NAMES.get(key, key), "model value": a.estimate,
                         "reference value": b.estimate, "difference": c.difference.format(signed=True),
                         "low": c.difference.low, "high": c.difference.high, "verdict": c.verdict})
    return pd.DataFrame(rows)


def _check_rate(rate: float, gallery_size: int, what: str) -> None:
    if not 0.0 <= rate <= 1.0 or int(gallery_size) != gallery_size or gallery_size < 1:
        raise ValueError(f"need 0 <= {what} <= 1 and a gallery of >= 1 people, got {what}={rate}, {gallery_size=}.")


def gallery_false_alarm_rate(far: float, gallery_size: int) -> float:
    """Chance that a stranger matches *someone* in a gallery of ``G`` people: ``1 - (1 - far)^G``.

    Open-set identification compares each probe with every gallery entry and
    raises an alarm when the best score passes the threshold; with a pairwise
    false accept rate ``far`` and independent comparisons, a stranger escapes
    all ``G`` of them with probability ``(1 - far)^G``.
    """
    _check_rate(far, gallery_size, "far")
    return float(1.0 - (1.0 - far) ** int(gallery_size))


def pairwise_far_for_alarm_rate(alarm_rate: float, gallery_size: int) -> float:
    """The pairwise false accept rate that gives ``alarm_rate`` over a gallery of ``G``: ``1 - (1 - alarm)^(1/G)``.

    The inverse of :func:`gallery_false_alarm_rate` (same independence assumption).
    """
    _check_rate(alarm_rate, gallery_size, "alarm_rate")
    return float(1.0 - (1.0 - alarm_rate) ** (1.0 / int(gallery_size)))
