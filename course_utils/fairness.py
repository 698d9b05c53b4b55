"""Assessing group differences in face data and models, and mitigating them.

The measurements of notebook 06, as small tested functions:

* **Composition**: :func:`composition_table` counts a label column;
  :data:`PUBLISHED_COMPOSITIONS` holds compositions of other face data sets
  as their sources state them (each row carries its citation).
* **Equal-size training sets**: :func:`group_quotas` and
  :func:`sample_by_quota` draw a *skewed* set (one group dominant) and a
  *balanced* one of exactly the same size, stratified by a second column
  (e.g. the label) inside each group; :func:`skewed_and_balanced` does both.
* **Per-group metrics with intervals**: a metric is a :class:`RateMetric`
  (a ratio of per-sample counts: accuracy, error rate, FPR, FNR, selection
  rate), which makes the bootstrap vectorised. :func:`group_metric_frame`
  is fairlearn's ``MetricFrame`` on those metrics;
  :func:`bootstrap_group_metrics` adds percentile intervals for every group,
  for the between-group difference (max - min) and ratio (min / max), for
  several models on the same resamples, and for model contrasts.
* **Verification per group**: :func:`within_group_pairs` (impostor pairs
  inside a group, as NIST FRVT's demographic FMR uses),
  :func:`threshold_at_fmr`, :func:`per_group_thresholds` and
  :func:`verification_by_group` (FMR and FNMR per group, from
  ``MetricFrame`` on pair-level outcomes).
* **Space occupancy**: :func:`occupancy_stats`, per-group spread of
  embeddings (distance to the centroid, covariance log-determinant in a
  shared PCA space, k-NN distance, nearest-impostor distance) over random
  equal-size subsamples, with intervals.
* **Impostor pairs without identities** (FairFace: every image assumed a
  different person): :func:`within_cell_pairs`, :func:`pair_distances`,
  :func:`impostor_fmr` (FMR per group and threshold, optionally per image
  bootstrap replicate from :func:`image_bootstrap_counts`),
  :func:`distance_threshold_at_fmr`, :func:`fmr_by_group` (FMR with
  intervals and the highest-to-lowest ratio), :func:`fmr_permutation_test`.
* **Occupancy with resampling intervals**: :func:`occupancy_bootstrap`
  (spread, nearest-neighbour distance, PCA log-determinant; images resampled).
* **Contrasts**: :func:`contrast_with_rest` (each group against the others,
  bootstrap p-values with Holm), :func:`paired_group_contrasts` (two
  classifiers on the same images: McNemar per group, Holm).
* **Mitigation**: :func:`group_balancing_weights`, :func:`balanced_sampler`
  (reweighting / rebalanced sampling), :class:`ScoreClassifier` (wraps
  precomputed scores for fairlearn's ``ThresholdOptimizer``).
* :func:`umap_2d`: a 2-D UMAP projection with numba's cache in the course cache.

Conventions: ``groups`` is any array-like of labels (strings or codes), one
per sample; tables are indexed by the group labels in sorted order unless an
``order`` is given. Nothing here imports matplotlib (see ``plots``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import binomtest, norm
from sklearn.base import BaseEstimator, ClassifierMixin

from course_utils.facerec import VerificationPairs, verification_pairs
from course_utils.metrics import threshold_at_far
from course_utils.stats import PermutationTest, holm, percentile_bounds

__all__ = [
    "PublishedComposition",
    "PUBLISHED_COMPOSITIONS",
    "published_compositions",
    "composition_table",
    "group_quotas",
    "sample_by_quota",
    "skewed_and_balanced",
    "RateMetric",
    "ACCURACY",
    "ERROR_RATE",
    "FALSE_POSITIVE_RATE",
    "FALSE_NEGATIVE_RATE",
    "SELECTION_RATE",
    "CLASSIFICATION_METRICS",
    "group_metric_frame",
    "bootstrap_group_metrics",
    "within_group_pairs",
    "threshold_at_fmr",
    "per_group_thresholds",
    "verification_by_group",
    "OCCUPANCY_STATS",
    "occupancy_stats",
    "within_cell_pairs",
    "pair_distances",
    "image_bootstrap_counts",
    "impostor_fmr",
    "distance_threshold_at_fmr",
    "fmr_by_group",
    "fmr_permutation_test",
    "OCCUPANCY_BOOTSTRAP_STATS",
    "occupancy_bootstrap",
    "contrast_with_rest",
    "paired_group_contrasts",
    "group_balancing_weights",
    "balanced_sampler",
    "ScoreClassifier",
    "umap_2d",
]


def _array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, (pd.Series, pd.Index)):
        return x.to_numpy()
    return np.asarray(x)


def _groups(groups: Any, n: int | None = None) -> np.ndarray:
    g = _array(groups)
    if g.ndim != 1:
        raise ValueError(f"groups must be one label per sample (1-D), got shape {g.shape}.")
    if n is not None and g.size != n:
        raise ValueError(f"groups has {g.size} labels for {n} samples.")
    return g


def _order(g: np.ndarray, order: Sequence[Any] | None) -> list[Any]:
    present = pd.unique(g)
    if order is None:
        return sorted(present.tolist(), key=str)
    missing = [x for x in present if x not in set(order)]
    if missing:
        raise ValueError(f"groups {missing} are not in order={list(order)}.")
    return [x for x in order if x in set(present)]


# ----------------------------------------------------------------------------- composition
@dataclass(frozen=True)
class PublishedComposition:
    """One published share of one group in a face data set, with its source.

    Attributes:
        dataset: the data set described.
        attribute: what was counted (e.g. ``"skin type (Fitzpatrick I-III)"``).
        group: the group whose share is stated.
        share: the stated share, in ``[0, 1]``.
        source: where the number is stated (author, venue, year, place).
    """

    dataset: str
    attribute: str
    group: str
    share: float
    source: str


#: Shares stated in the text of their sources (not read off charts).
PUBLISHED_COMPOSITIONS: tuple[PublishedComposition, ...] = (
    PublishedComposition("IJB-A", "skin type (Fitzpatrick, lighter = I-III)", "lighter-skinned", 0.796,
                         "Buolamwini & Gebru, 'Gender Shades', FAT* 2018 (PMLR 81), abstract"),
    PublishedComposition("Adience", "skin type (Fitzpatrick, lighter = I-III)", "lighter-skinned", 0.862,
                         "Buolamwini & Gebru, 'Gender Shades', FAT* 2018 (PMLR 81), abstract"),
    PublishedComposition("LFW", "race (estimated)", "White", 0.835,
                         "Han & Jain 2014, as cited by Buolamwini & Gebru, FAT* 2018"),
    PublishedComposition("LFW", "gender (estimated)", "male", 0.775,
                         "Han & Jain 2014, as cited by Buolamwini & Gebru, FAT* 2018"),
)


def published_compositions() -> pd.DataFrame:
    """:data:`PUBLISHED_COMPOSITIONS` as a table (one row per stated share)."""
    return pd.DataFrame([vars(p) for p in PUBLISHED_COMPOSITIONS])


def composition_table(frame: pd.DataFrame, columns: str | Sequence[str], *,
                      order: Mapping[str, Sequence[Any]] | None = None) -> pd.DataFrame:
    """Counts and shares of the values of one column, or of combinations of several.

    Args:
        frame: a label table (e.g. ``load_fairface_labels(full=True)``).
        columns: one column name, or several for joint counts (race x gender).
        order: optional value order per column (categoricals keep their own).

    Returns:
        DataFrame indexed by the value (or a MultiIndex of values) with
        ``count`` (int) and ``share`` (count / total; sums to 1). Values that
        a categorical declares but that never occur get count 0.
    """
    cols = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise KeyError(f"columns {missing} are not in the table ({list(frame.columns)}).")
    data = frame[cols].copy()
    for c in cols:
        if order and c in order:
            data[c] = pd.Categorical(data[c], categories=list(order[c]))
    counts = data.groupby(cols, observed=False).size() if len(cols) > 1 else \
        data[cols[0]].value_counts(sort=False)
    if len(cols) == 1 and not isinstance(data[cols[0]].dtype, pd.CategoricalDtype):
        counts = counts.sort_index(key=lambda idx: idx.map(str))
    counts = counts.astype(int)
    out = pd.DataFrame({"count": counts, "share": counts / max(int(counts.sum()), 1)})
    out.index.names = cols
    return out


# ----------------------------------------------------------------------------- equal-size subsets
def group_quotas(groups: Sequence[Any], size: int, *, dominant: Any = None, dominant_share: float | None = None
                 ) -> dict[Any, int]:
    """How many samples each group gets in a set of ``size``: equal, or with one group dominant.

    Args:
        groups: the group names.
        size: total size.
        dominant: the group that gets ``dominant_share`` of the set (``None``:
            all groups equal).
        dominant_share: its share, in ``(0, 1)``; the others split the rest
            equally.

    Returns:
        ``{group: count}`` summing exactly to ``size`` (largest-remainder rounding).
    """
    names = list(groups)
    if size < len(names):
        raise ValueError(f"size={size} is smaller than the number of groups ({len(names)}).")
    if dominant is None:
        shares = np.full(len(names), 1 / len(names))
    else:
        if dominant not in names:
            raise ValueError(f"dominant={dominant!r} is not one of {names}.")
        if dominant_share is None or not 0 < dominant_share < 1:
            raise ValueError(f"dominant_share must lie in (0, 1), got {dominant_share}.")
        rest = (1 - dominant_share) / max(len(names) - 1, 1)
        shares = np.array([dominant_share if n == dominant else rest for n in names])
    raw = shares * size
    counts = np.floor(raw).astype(int)
    counts[np.argsort(-(raw - counts), kind="stable")[: size - counts.sum()]] += 1
    return dict(zip(names, counts.tolist()))


def sample_by_quota(groups: Any, quotas: Mapping[Any, int], *, strata: Any = None, seed: int = 0) -> np.ndarray:
    """Indices of a subset with ``quotas[g]`` samples of each group ``g``.

    Args:
        groups: ``(N,)`` group label of each sample.
        quotas: samples to draw per group (groups not listed get none).
        strata: optional ``(N,)`` second label (e.g. the class); inside each
            group the quota is split as equally as possible among its strata,
            so the class balance does not change with the group's share.
        seed: the draw.

    Returns:
        Sorted ``int64`` indices, ``sum(quotas.values())`` of them, no repeats.

    Raises:
        ValueError: a group (or stratum) has fewer samples than its quota.
    """
    g = _groups(groups)
    s = np.zeros(g.size, dtype=np.int64) if strata is None else _groups(strata, g.size)
    rng = np.random.default_rng(seed)
    chosen: list[np.ndarray] = []
    for name in sorted(quotas, key=str):
        q = int(quotas[name])
        if q == 0:
            continue
        members = np.flatnonzero(g == name)
        levels = sorted(pd.unique(s[members]).tolist(), key=str)
        per = group_quotas(levels, q) if q >= len(levels) else dict(zip(levels, [1] * q + [0] * (len(levels) - q)))
        for level in levels:
            pool = members[s[members] == level]
            if per[level] > pool.size:
                where = f"group {name!r}" + ("" if strata is None else f", stratum {level!r}")
                raise ValueError(f"{where} has {pool.size} samples; the quota needs {per[level]}.")
            chosen.append(rng.choice(pool, per[level], replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64) if chosen else np.zeros(0, dtype=np.int64)


def skewed_and_balanced(groups: Any, *, size: int, dominant: Any, dominant_share: float, strata: Any = None,
                        seed: int = 0) -> dict[str, np.ndarray]:
    """A skewed and a balanced training subset of the same ``size``.

    Returns:
        ``{"skewed": indices, "balanced": indices}``; in ``skewed``,
        ``dominant`` has ``dominant_share`` of the samples and the other
        groups share the rest equally; in ``balanced`` every group has the
        same count. Both are stratified by ``strata`` inside each group.
    """
    names = sorted(pd.unique(_groups(groups)).tolist(), key=str)
    return {
        "skewed": sample_by_quota(groups, group_quotas(names, size, dominant=dominant, dominant_share=dominant_share),
                                  strata=strata, seed=seed),
        "balanced": sample_by_quota(groups, group_quotas(names, size), strata=strata, seed=seed + 1),
    }


# ----------------------------------------------------------------------------- per-group metrics
@dataclass(frozen=True)
class RateMetric:
    """A metric that is a ratio of per-sample counts: ``sum(numerator) / sum(denominator)``.

    Written this way, the metric of any resample is two sums, so a bootstrap
    over thousands of resamples is a few array operations.

    Attributes:
        name: column name in tables.
        numerator: ``f(y_true, y_pred) -> (N,) bool`` of the samples counted.
        denominator: ``f(y_true, y_pred) -> (N,) bool`` of the samples it is a rate of.
    """

    name: str
    numerator: Callable[[np.ndarray, np.ndarray], np.ndarray]
    denominator: Callable[[np.ndarray, np.ndarray], np.ndarray]

    @property
    def __name__(self) -> str:  # fairlearn names a metric function by its __name__
        return self.name

    def counts(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        num = np.asarray(self.numerator(y_true, y_pred), dtype=bool)
        den = np.asarray(self.denominator(y_true, y_pred), dtype=bool)
        return (num & den).astype(np.float64), den.astype(np.float64)

    def __call__(self, y_true: Any, y_pred: Any) -> float:
        """The metric on one sample, with fairlearn's ``metric(y_true, y_pred)`` signature (NaN if undefined)."""
        num, den = self.counts(_array(y_true), _array(y_pred))
        return float(num.sum() / den.sum()) if den.sum() > 0 else float("nan")


def _all(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.ones(np.shape(t), dtype=bool)


ACCURACY = RateMetric("accuracy", lambda t, p: t == p, _all)
ERROR_RATE = RateMetric("error rate", lambda t, p: t != p, _all)
#: For binary labels (positive = 1): false positives among the negatives.
FALSE_POSITIVE_RATE = RateMetric("false positive rate", lambda t, p: p == 1, lambda t, p: t == 0)
#: For binary labels (positive = 1): false negatives among the positives.
FALSE_NEGATIVE_RATE = RateMetric("false negative rate", lambda t, p: p == 0, lambda t, p: t == 1)
SELECTION_RATE = RateMetric("selection rate", lambda t, p: p == 1, _all)
CLASSIFICATION_METRICS: tuple[RateMetric, ...] = (ACCURACY, ERROR_RATE, FALSE_POSITIVE_RATE, FALSE_NEGATIVE_RATE)


def group_metric_frame(y_true: Any, y_pred: Any, groups: Any, *,
                       metrics: Sequence[RateMetric] = CLASSIFICATION_METRICS) -> Any:
    """fairlearn's ``MetricFrame`` of ``metrics`` with ``groups`` as the sensitive feature.

    Use ``.overall``, ``.by_group``, ``.difference()`` and ``.ratio()`` on it.
    """
    from fairlearn.metrics import MetricFrame

    return MetricFrame(metrics={m.name: m for m in metrics}, y_true=_array(y_true), y_pred=_array(y_pred),
                       sensitive_features=pd.Series(_groups(groups), name="group"))


def _spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Between-group difference (max - min) and ratio (min / max) along the last axis, NaN-aware."""
    with np.errstate(all="ignore"):
        hi, lo = np.nanmax(values, axis=-1), np.nanmin(values, axis=-1)
        return hi - lo, np.where(hi > 0, lo / hi, np.nan)


def bootstrap_group_metrics(
    y_true: Any,
    predictions: Any,
    groups: Any,
    *,
    metrics: Sequence[RateMetric] = CLASSIFICATION_METRICS,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    contrasts: Sequence[tuple[str, str]] = (),
    order: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """Per-group metrics with percentile bootstrap intervals, and their between-group difference and ratio.

    The bootstrap is stratified: every replicate redraws, with replacement,
    as many samples of each group as the group has (group sizes are part of
    the design, not random). All models and metrics share the same
    replicates, so model contrasts are paired.

    Args:
        y_true: ``(N,)`` labels.
        predictions: ``(N,)`` predictions of one model, or ``{model: (N,)}``.
        groups: ``(N,)`` group of each sample.
        metrics: :class:`RateMetric` objects.
        n_boot: bootstrap replicates.
        confidence: of the percentile intervals.
        seed: of the replicates.
        contrasts: pairs ``(a, b)`` of model names; rows ``"a - b"`` give the
            paired difference of every per-group value, difference and ratio.
        order: group order in the table (default sorted).

    Returns:
        Long table with columns ``model, metric, group, estimate, low, high``
        (``group`` also takes the values ``"difference"`` = max - min over
        groups and ``"ratio"`` = min / max) and ``n`` (samples in the group).
        ``estimate`` is computed on the data themselves (it equals fairlearn's
        ``MetricFrame.by_group``, ``.difference()`` and ``.ratio()``).
    """
    models = dict(predictions) if isinstance(predictions, Mapping) else {"model": predictions}
    y = _array(y_true)
    g = _groups(groups, y.size)
    names = _order(g, order)
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(g == name) for name in names]
    draws = [m[rng.integers(0, m.size, size=(n_boot, m.size))] for m in members]  # (B, n_g) each
    values: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}  # (model, metric) -> (point (G,), boot (B, G))
    for model, pred in models.items():
        p = _array(pred)
        if p.shape != y.shape:
            raise ValueError(f"predictions of {model!r} have shape {p.shape}, labels {y.shape}.")
        for metric in metrics:
            num, den = metric.counts(y, p)
            with np.errstate(all="ignore"):
                point = np.array([num[m].sum() / den[m].sum() for m in members])
                boot = np.stack([num[d].sum(1) / den[d].sum(1) for d in draws], axis=1)
            values[(model, metric.name)] = (point, boot)
    rows = []

    def emit(model: str, metric: str, point: np.ndarray, boot: np.ndarray) -> None:
        d_point, r_point = _spread(point[None])
        d_boot, r_boot = _spread(boot)
        full_point = np.concatenate([point, d_point, r_point])
        full_boot = np.concatenate([boot, d_boot[:, None], r_boot[:, None]], axis=1)
        low, high = percentile_bounds(full_boot, confidence)
        for j, name in enumerate([*names, "difference", "ratio"]):
            n = int(members[j].size) if j < len(names) else int(y.size)
            rows.append({"model": model, "metric": metric, "group": name, "estimate": float(full_point[j]),
                         "low": float(low[j]), "high": float(high[j]), "n": n})

    for (model, metric), (point, boot) in values.items():
        emit(model, metric, point, boot)
    for a, b in contrasts:
        for metric in metrics:
            pa, ba = values[(a, metric.name)]
            pb, bb = values[(b, metric.name)]
            # contrast of the group values; its difference / ratio rows contrast those of the models
            da, ra = _spread(pa[None])
            db, rb = _spread(pb[None])
            dab, rab = _spread(ba)
            dbb, rbb = _spread(bb)
            point = np.concatenate([pa - pb, da - db, ra - rb])
            boot = np.concatenate([ba - bb, (dab - dbb)[:, None], (rab - rbb)[:, None]], axis=1)
            low, high = percentile_bounds(boot, confidence)
            for j, name in enumerate([*names, "difference", "ratio"]):
                n = int(members[j].size) if j < len(names) else int(y.size)
                rows.append({"model": f"{a} - {b}", "metric": metric.name, "group": name,
                             "estimate": float(point[j]), "low": float(low[j]), "high": float(high[j]), "n": n})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- verification per group
def within_group_pairs(labels: Any, groups: Any, *, max_impostors_per_group: int | None = None,
                       seed: int = 0) -> tuple[VerificationPairs, np.ndarray]:
    """Verification pairs whose two images belong to the same group.

    Genuine pairs are always within a group (one identity, one group);
    impostor pairs are restricted to the same group, as in NIST FRVT's
    demographic false match rates (an impostor of another group is usually
    easy to reject and would dilute the rate).

    Args:
        labels: ``(N,)`` identity of each image.
        groups: ``(N,)`` group of each image (constant within an identity).
        max_impostors_per_group: keep at most this many impostor pairs per group.
        seed: of that sample.

    Returns:
        ``(pairs, pair_groups)``: :class:`~course_utils.facerec.VerificationPairs`
        with indices into the full set, and the ``(P,)`` group of each pair.
    """
    lab = _array(labels)
    g = _groups(groups, lab.size)
    first, second, same, pg = [], [], [], []
    for k, name in enumerate(_order(g, None)):
        idx = np.flatnonzero(g == name)
        p = verification_pairs(lab[idx], max_impostors=max_impostors_per_group, seed=seed + k)
        first.append(idx[p.first])
        second.append(idx[p.second])
        same.append(p.same)
        pg.append(np.full(len(p), name, dtype=object))
    pairs = VerificationPairs(np.concatenate(first), np.concatenate(second), np.concatenate(same))
    return pairs, np.concatenate(pg)


def threshold_at_fmr(scores: Any, same: Any, fmr: float) -> float:
    """NIST's name for :func:`course_utils.metrics.threshold_at_far`: the lowest threshold with FMR <= ``fmr``.

    A pair is accepted when ``score >= threshold``. With ``n`` impostor
    scores sorted from the highest, ``s_0 >= s_1 >= ...``, and
    ``k = floor(fmr * n)``, the threshold is the next float above ``s_k``.
    """
    return threshold_at_far(scores, same, far=fmr)


def per_group_thresholds(scores: Any, same: Any, pair_groups: Any, fmr: float) -> dict[Any, float]:
    """``{group: threshold_at_fmr(...)}`` on each group's pairs: every group gets the same FMR."""
    s, y = _array(scores), _array(same).astype(bool)
    g = _groups(pair_groups, s.size)
    return {name: threshold_at_fmr(s[g == name], y[g == name], fmr) for name in _order(g, None)}


def verification_by_group(scores: Any, same: Any, pair_groups: Any,
                          threshold: float | Mapping[Any, float]) -> pd.DataFrame:
    """False match and false non-match rates per group, from ``MetricFrame`` on pair outcomes.

    Each pair is one sample: ``y_true = same``, ``y_pred = score >= t``,
    with ``t`` the global threshold or the pair's group threshold. Then
    FMR = fairlearn's ``false_positive_rate`` and FNMR = its
    ``false_negative_rate``, per group.

    Returns:
        DataFrame indexed by group with ``FMR``, ``FNMR``, ``threshold``,
        ``genuine`` and ``impostor`` (pair counts); ``attrs["frame"]`` holds
        the ``MetricFrame`` (for ``.difference()`` / ``.ratio()``).
    """
    from fairlearn.metrics import (
        MetricFrame,
        count,
        false_negative_rate,
        false_positive_rate,
    )

    s, y = _array(scores).astype(np.float64), _array(same).astype(bool)
    g = _groups(pair_groups, s.size)
    if isinstance(threshold, Mapping):
        missing = set(pd.unique(g)) - set(threshold)
        if missing:
            raise ValueError(f"no threshold for groups {sorted(missing, key=str)}.")
        t = np.array([threshold[x] for x in g], dtype=np.float64)
    else:
        t = np.full(s.size, float(threshold))
    accept = (s >= t).astype(int)
    frame = MetricFrame(metrics={"FMR": lambda a, b: false_positive_rate(a, b, pos_label=1),
                                 "FNMR": lambda a, b: false_negative_rate(a, b, pos_label=1),
                                 "pairs": count},
                        y_true=y.astype(int), y_pred=accept, sensitive_features=pd.Series(g, name="group"))
    table = frame.by_group[["FMR", "FNMR"]].astype(float).copy()
    names = list(table.index)
    table["threshold"] = [float(threshold[n]) if isinstance(threshold, Mapping) else float(threshold) for n in names]
    table["genuine"] = [int((y & (g == n)).sum()) for n in names]
    table["impostor"] = [int((~y & (g == n)).sum()) for n in names]
    table = table.loc[_order(g, None)]
    table.attrs["frame"] = frame
    return table


# ----------------------------------------------------------------------------- space occupancy
#: The statistics of :func:`occupancy_stats`, in table order.
OCCUPANCY_STATS: tuple[str, ...] = ("centroid distance", "log det cov (PCA)", "k-NN distance", "nearest impostor")


def occupancy_stats(
    embeddings: Any,
    groups: Any,
    *,
    identities: Any = None,
    n_per_group: int | None = None,
    n_components: int = 8,
    k: int = 5,
    n_boot: int = 100,
    confidence: float = 0.95,
    normalize: bool = True,
    seed: int = 0,
    order: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """How much of the embedding space each group occupies, over equal-size random subsamples.

    Every replicate draws ``n_per_group`` points of each group **without
    replacement** (k-NN distances shrink as a group gets more points, so the
    groups must be compared at equal size, and duplicates from a
    with-replacement bootstrap would give zero distances), and computes per group:

    * ``centroid distance``: mean Euclidean distance to the group's mean;
    * ``log det cov (PCA)``: ``log det`` of the group's covariance in the
      first ``n_components`` principal axes of *all* embeddings (one shared
      space: a volume-like measure of spread);
    * ``k-NN distance``: mean distance to the ``k`` nearest other points of
      the same group;
    * ``nearest impostor``: mean distance to the nearest point of the same
      group with another identity (without ``identities``, every point is
      its own identity and this is the 1-NN distance). Small values mean
      people of that group crowd together: a global threshold then makes
      more false matches among them.

    Args:
        embeddings: ``(N, D)``.
        groups: ``(N,)``.
        identities: ``(N,)`` identity labels, or ``None``.
        n_per_group: subsample size (default: 80 % of the smallest group).
        n_components: PCA dimensions for the log-determinant (``< n_per_group``).
        k: neighbours for the k-NN distance.
        n_boot: subsamples.
        confidence: of the percentile intervals over subsamples.
        normalize: L2-normalise the embeddings first (cosine geometry).
        seed: of the subsamples.
        order: group order.

    Returns:
        Long table ``group, stat, estimate, low, high, n`` where ``estimate``
        is the mean over subsamples; ``attrs["n_per_group"]`` records the size.
    """
    x = torch.as_tensor(_array(embeddings), dtype=torch.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got {tuple(x.shape)}.")
    g = _groups(groups, x.shape[0])
    ids = np.arange(g.size) if identities is None else _groups(identities, g.size)
    if normalize:
        x = torch.nn.functional.normalize(x, dim=1)
    names = _order(g, order)
    sizes = {n: int((g == n).sum()) for n in names}
    m = n_per_group or max(2, int(0.8 * min(sizes.values())))
    if m > min(sizes.values()):
        raise ValueError(f"n_per_group={m} exceeds the smallest group ({min(sizes.values())} points).")
    if not 1 <= k < m:
        raise ValueError(f"k={k} must lie in [1, n_per_group).")
    n_comp = min(n_components, x.shape[1], m - 1)
    centred = x - x.mean(0)
    _, _, vt = torch.linalg.svd(centred, full_matrices=False)
    z = centred @ vt[:n_comp].T  # (N, n_comp), shared PCA space
    rng = np.random.default_rng(seed)
    rows = []
    for name in names:
        members = np.flatnonzero(g == name)
        pick = np.stack([rng.choice(members, m, replace=False) for _ in range(n_boot)])  # (B, m)
        xb = x[torch.from_numpy(pick)]  # (B, m, D)
        zb = z[torch.from_numpy(pick)]
        idb = torch.from_numpy(pd.factorize(ids)[0][pick])
        centroid = (xb - xb.mean(1, keepdim=True)).norm(dim=2).mean(1)
        cov = torch.einsum("bmi,bmj->bij", zb - zb.mean(1, keepdim=True), zb - zb.mean(1, keepdim=True)) / (m - 1)
        logdet = torch.linalg.slogdet(cov).logabsdet
        d = torch.cdist(xb, xb)
        eye = torch.eye(m, dtype=torch.bool)
        knn = d.masked_fill(eye, float("inf")).topk(k, dim=2, largest=False).values.mean((1, 2))
        other = idb[:, :, None] != idb[:, None, :]
        nearest = d.masked_fill(~other, float("inf")).min(2).values
        nearest = torch.where(torch.isinf(nearest), torch.nan, nearest).nanmean(1)
        for stat, vals in zip(OCCUPANCY_STATS, (centroid, logdet, knn, nearest)):
            v = vals.numpy()
            lo, hi = percentile_bounds(v[:, None], confidence)
            rows.append({"group": name, "stat": stat, "estimate": float(np.nanmean(v)), "low": float(lo[0]),
                         "high": float(hi[0]), "n": sizes[name]})
    out = pd.DataFrame(rows)
    out.attrs["n_per_group"] = m
    return out


# ----------------------------------------------------------------------------- mitigation
def group_balancing_weights(groups: Any) -> np.ndarray:
    """Per-sample weights ``N / (G * n_g)``: every group gets the same total weight, the mean weight is 1."""
    g = _groups(groups)
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


# ----------------------------------------------------------------------------- projection
def umap_2d(x: Any, *, n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "cosine",
            seed: int = 0) -> np.ndarray:
    """A 2-D UMAP projection ``(N, 2)``: :func:`course_utils.embeddings.project` with cosine distances.

    numba's compiled code is cached in ``cache_dir("numba")`` (the first call
    in a fresh cache compiles for tens of seconds); ``seed`` makes it
    deterministic; PyTorch's CPU thread count is kept.
    """
    from course_utils.embeddings import project  # noqa: PLC0415 (imports umap lazily)

    return project(x, "umap", seed=seed, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric).coords


# ----------------------------------------------------------------------------- impostor pairs without identities
def within_cell_pairs(cells: Any, *, identities: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """All impostor pairs ``i < j`` of images in the same cell (e.g. race x gender).

    A data set without identity labels (FairFace) is used under the
    assumption that two images show two different people; with
    ``identities`` the pairs of one person are left out.

    Args:
        cells: ``(N,)`` cell of each image.
        identities: ``(N,)`` person of each image, or ``None`` (every image its own person).

    Returns:
        ``(first, second)``: ``(P,)`` int64 image indices, ``first < second``,
        cell by cell in sorted order.
    """
    c = _groups(cells)
    ids = None if identities is None else _groups(identities, c.size)
    first, second = [], []
    for name in _order(c, None):
        idx = np.flatnonzero(c == name)
        i, j = np.triu_indices(idx.size, k=1)
        a, b = idx[i], idx[j]
        if ids is not None:
            keep = ids[a] != ids[b]
            a, b = a[keep], b[keep]
        first.append(a)
        second.append(b)
    if not first:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(first).astype(np.int64), np.concatenate(second).astype(np.int64)


def pair_distances(embeddings: Any, first: Any, second: Any) -> np.ndarray:
    """Euclidean distances ``(P,)`` between rows ``first`` and ``second`` of ``embeddings (N, D)`` (float64)."""
    x = _array(embeddings).astype(np.float64)
    f, s = _array(first).astype(np.int64), _array(second).astype(np.int64)
    out = np.empty(f.size)
    for start in range(0, f.size, 200_000):  # bounded memory
        sl = slice(start, start + 200_000)
        out[sl] = np.sqrt(((x[f[sl]] - x[s[sl]]) ** 2).sum(1))
    return out


def image_bootstrap_counts(strata: Any, *, n_boot: int, seed: int = 0) -> np.ndarray:
    """How often each image is drawn in each replicate of an image bootstrap: ``(n_boot, N)`` int32.

    Images are drawn with replacement within each stratum (a cell keeps its
    size).
    A pair of images ``(i, j)`` then counts ``counts[b, i] * counts[b, j]``
    times in replicate ``b``; the pair of an image with its own copy (distance
    0, a perfect match no real data contains) is never formed.
    """
    s = _groups(strata)
    rng = np.random.default_rng(seed)
    out = np.zeros((n_boot, s.size), dtype=np.int32)
    for name in _order(s, None):
        m = np.flatnonzero(s == name)
        draws = rng.integers(0, m.size, size=(n_boot, m.size))
        flat = (np.arange(n_boot)[:, None] * m.size + draws).ravel()
        out[:, m] = np.bincount(flat, minlength=n_boot * m.size).reshape(n_boot, m.size)
    return out


def _pair_codes(pair_groups: Any, n: int, order: Sequence[Any] | None) -> tuple[list[Any], np.ndarray]:
    g = _groups(pair_groups, n)
    names = _order(g, order)
    lookup = {name: k for k, name in enumerate(names)}
    return names, np.array([lookup[x] for x in g], dtype=np.int64) if g.size else np.zeros(0, np.int64)


def _pair_weight_totals(codes: np.ndarray, first: np.ndarray, second: np.ndarray, counts: np.ndarray,
                        n_groups: int, chunk: int = 32) -> np.ndarray:
    """``(B, G)`` sum over each group's pairs of ``counts[:, i] * counts[:, j]``."""
    b = counts.shape[0]
    out = np.zeros((b, n_groups))
    onehot = np.zeros((codes.size, n_groups), dtype=np.float32)
    onehot[np.arange(codes.size), codes] = 1
    for start in range(0, b, chunk):
        c = counts[start:start + chunk]
        w = (c[:, first] * c[:, second]).astype(np.float32)  # (b, P)
        out[start:start + chunk] = w @ onehot
    return out


def impostor_fmr(distances: Any, first: Any, second: Any, pair_groups: Any, thresholds: Any, *,
                 counts: np.ndarray | None = None, order: Sequence[Any] | None = None) -> np.ndarray:
    """False match rate per group: the share of impostor pairs with ``distance < threshold``.

    Args:
        distances: ``(P,)`` impostor-pair distances (smaller = more alike).
        first, second: ``(P,)`` image indices of the pairs.
        pair_groups: ``(P,)`` group of each pair.
        thresholds: a number or ``(T,)`` thresholds.
        counts: ``(B, N)`` draws per image from :func:`image_bootstrap_counts`:
            each pair then weighs ``counts[b, i] * counts[b, j]``.
        order: group order (default sorted).

    Returns:
        ``(G,)`` for one threshold, ``(T, G)`` for several; with ``counts``,
        ``(B, G)`` or ``(B, T, G)``. NaN where a group has no pair weight.
    """
    d = _array(distances).astype(np.float64)
    f, s = _array(first).astype(np.int64), _array(second).astype(np.int64)
    names, codes = _pair_codes(pair_groups, d.size, order)
    t = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    G = len(names)
    if counts is None:
        num = np.stack([np.bincount(codes[d < x], minlength=G) for x in t]).astype(np.float64)  # (T, G)
        den = np.bincount(codes, minlength=G).astype(np.float64)
        with np.errstate(all="ignore"):
            out = num / den
        return out[0] if np.ndim(thresholds) == 0 else out
    counts = np.asarray(counts)
    den = _pair_weight_totals(codes, f, s, counts, G)  # (B, G)
    cand = np.flatnonzero(d < t.max())
    num = np.zeros((counts.shape[0], t.size, G))
    if cand.size:
        cand = cand[np.argsort(d[cand], kind="stable")]
        for k in range(G):
            ck = cand[codes[cand] == k]
            if not ck.size:
                continue
            pos = np.searchsorted(d[ck], t, side="left")  # pairs with d < t
            for start in range(0, counts.shape[0], 128):  # bounded memory: (128, Pk) at a time
                c = counts[start:start + 128]
                w = np.cumsum(c[:, f[ck]].astype(np.float64) * c[:, s[ck]], axis=1)
                w = np.concatenate([np.zeros((w.shape[0], 1)), w], axis=1)
                num[start:start + 128, :, k] = w[:, pos]
    with np.errstate(all="ignore"):
        out = num / den[:, None, :]
    return out[:, 0] if np.ndim(thresholds) == 0 else out


def distance_threshold_at_fmr(distances: Any, pair_groups: Any, fmr: float, *, first: Any = None,
                              second: Any = None, counts: np.ndarray | None = None,
                              order: Sequence[Any] | None = None) -> np.ndarray:
    """Per group, the largest distance threshold ``t`` (accept ``distance < t``) with FMR ``<= fmr``.

    With a group's ``n`` distances sorted ascending ``d_0 <= d_1 <= ...`` and
    ``k = floor(fmr * n)``, ``t = d_k``: at most ``k`` pairs lie below it, and
    any larger threshold accepts ``d_k`` too. With ``counts`` (and
    ``first``/``second``) the same rule on pair weights, per replicate.

    Returns:
        ``(G,)``, or ``(B, G)`` with ``counts``; ``inf`` when every pair may be accepted.
    """
    d = _array(distances).astype(np.float64)
    names, codes = _pair_codes(pair_groups, d.size, order)
    out = np.full(len(names) if counts is None else (np.asarray(counts).shape[0], len(names)), np.inf)
    for k in range(len(names)):
        members = np.flatnonzero(codes == k)
        members = members[np.argsort(d[members], kind="stable")]
        ds = d[members]
        if counts is None:
            j = int(np.floor(fmr * ds.size + 1e-9))
            out[k] = ds[j] if j < ds.size else np.inf
            continue
        c_all = np.asarray(counts)
        f, s = _array(first).astype(np.int64), _array(second).astype(np.int64)
        for start in range(0, c_all.shape[0], 128):  # bounded memory: (128, n) at a time
            c = c_all[start:start + 128]
            cum = np.cumsum(c[:, f[members]].astype(np.float64) * c[:, s[members]], axis=1)
            allowed = fmr * cum[:, -1:] + 1e-9
            j = (cum <= allowed).sum(1)  # first index whose cumulative weight exceeds the allowance
            out[start:start + 128, k] = np.where(j < ds.size, ds[np.minimum(j, ds.size - 1)], np.inf)
    return out


def fmr_by_group(distances: Any, first: Any, second: Any, pair_groups: Any, threshold: float, *,
                 strata: Any, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                 order: Sequence[Any] | None = None) -> pd.DataFrame:
    """FMR per group at one threshold with image-bootstrap intervals, and the highest-to-lowest ratio.

    Images are resampled within ``strata`` (:func:`image_bootstrap_counts`),
    every pair among the drawn images counts (not the pairs of an image with
    its own copy), and the FMR is recomputed (:func:`impostor_fmr`).

    Returns:
        DataFrame indexed by group plus a row ``"max / min"`` with columns
        ``pairs``, ``false matches``, ``FMR``, ``low``, ``high``;
        ``attrs["replicates"]`` ``(B, G)`` and ``attrs["ratio_replicates"]`` ``(B,)``.
    """

    d = _array(distances).astype(np.float64)
    names, codes = _pair_codes(pair_groups, d.size, order)
    point = impostor_fmr(d, first, second, pair_groups, threshold, order=names)
    counts = image_bootstrap_counts(strata, n_boot=n_boot, seed=seed)
    reps = impostor_fmr(d, first, second, pair_groups, threshold, counts=counts, order=names)  # (B, G)
    low, high = percentile_bounds(reps, level)
    with np.errstate(all="ignore"):
        ratio = float(point.max() / point.min())
        ratio_reps = reps.max(1) / reps.min(1)
    r_low, r_high = percentile_bounds(np.where(np.isfinite(ratio_reps), ratio_reps, np.nan), level)
    table = pd.DataFrame({"pairs": np.bincount(codes, minlength=len(names)),
                          "false matches": np.bincount(codes[d < threshold], minlength=len(names)),
                          "FMR": point, "low": low, "high": high}, index=pd.Index(names, name="group"))
    table.loc["max / min"] = [int(d.size), int((d < threshold).sum()), ratio, float(r_low), float(r_high)]
    table.attrs["replicates"] = reps
    table.attrs["ratio_replicates"] = ratio_reps
    return table


def fmr_permutation_test(embeddings: Any, groups: Any, threshold: float, *, strata: Any = None,
                         stat: str = "max_over_min", n_perm: int = 1000, seed: int = 0, level: float = 0.95) -> Any:
    """Is the spread of FMR between groups larger than shuffled group labels give?

    Impostor pairs are all pairs within a (group x stratum) cell. Each
    permutation shuffles the group labels of the images within each stratum
    (so every cell keeps its size), forms the pairs again and recomputes the
    FMR per group at ``threshold`` (accept ``distance < threshold``).

    Args:
        embeddings: ``(N, D)``; groups: ``(N,)``; strata: ``(N,)`` (e.g. gender) or ``None``.
        stat: ``"max_over_min"`` (the FMR ratio) or ``"max_minus_min"``.

    Returns:
        :class:`course_utils.stats.PermutationTest` (``group_values`` = observed FMRs).
    """

    x = torch.as_tensor(_array(embeddings), dtype=torch.float64)
    g = _groups(groups, x.shape[0])
    st = np.zeros(g.size, dtype=np.int64) if strata is None else pd.factorize(_groups(strata, g.size))[0]
    names = _order(g, None)
    codes = np.array([names.index(v) for v in g], dtype=np.int64)
    G = len(names)
    acc_i, acc_j = [], []
    den = np.zeros(G)
    for s_ in np.unique(st):
        idx = np.flatnonzero(st == s_)
        dist = torch.cdist(x[idx], x[idx]).numpy()
        i, j = np.nonzero(np.triu(dist < threshold, k=1))
        acc_i.append(idx[i])
        acc_j.append(idx[j])
        n_c = np.bincount(codes[idx], minlength=G)
        den += n_c * (n_c - 1) / 2
    ai, aj = np.concatenate(acc_i), np.concatenate(acc_j)
    if stat not in ("max_over_min", "max_minus_min"):
        raise ValueError(f"stat={stat!r}; use 'max_over_min' or 'max_minus_min'.")

    def spread(lab: np.ndarray) -> np.ndarray:  # (b, N) codes -> (b,)
        b = lab.shape[0]
        same = lab[:, ai] == lab[:, aj]
        flat = (np.arange(b)[:, None] * G + lab[:, ai])[same]
        fmr = np.bincount(flat, minlength=b * G).reshape(b, G) / den
        with np.errstate(all="ignore"):
            return fmr.max(1) / fmr.min(1) if stat == "max_over_min" else fmr.max(1) - fmr.min(1)

    observed_fmr = np.bincount(codes[ai][codes[ai] == codes[aj]], minlength=G) / den
    observed = float(spread(codes[None])[0])
    rng = np.random.default_rng(seed)
    null = []
    chunk = max(1, 2_000_000 // max(ai.size, 1))
    for start in range(0, n_perm, chunk):
        b = min(chunk, n_perm - start)
        lab = np.tile(codes, (b, 1))
        for s_ in np.unique(st):
            m = np.flatnonzero(st == s_)
            lab[:, m] = rng.permuted(lab[:, m], axis=1)
        null.append(spread(lab))
    null_a = np.concatenate(null)
    finite = np.where(np.isfinite(null_a), null_a, np.nan)
    hits = int(np.sum(null_a >= observed - 1e-12 * max(1.0, abs(observed))))
    low, high = percentile_bounds(finite, level)
    return PermutationTest(stat, observed, float(np.nanmean(finite)), float(low), float(high),
                           (1 + hits) / (1 + n_perm), int(n_perm), level,
                           {n: float(v) for n, v in zip(names, observed_fmr)})


# ----------------------------------------------------------------------------- occupancy with resampling intervals
#: The statistics of :func:`occupancy_bootstrap`, in table order.
OCCUPANCY_BOOTSTRAP_STATS: tuple[str, ...] = ("spread around centroid", "nearest-neighbour distance",
                                              "log det cov (PCA)")


def _occupancy_one(x: np.ndarray, z: np.ndarray, dist: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``(B, 3)`` weighted statistics of one group; ``c`` ``(B, n)`` draws per image."""
    cf = c.astype(np.float64)
    tot = cf.sum(1, keepdims=True)  # (B, 1)
    mu = cf @ x / tot  # (B, D)
    spread = (cf * np.sqrt(((x[None] - mu[:, None]) ** 2).sum(-1))).sum(1) / tot[:, 0]
    nn = np.empty(c.shape[0])
    for start in range(0, c.shape[0], 16):
        cc = cf[start:start + 16]
        dm = np.where(cc[:, None, :] > 0, dist[None], np.inf)  # other *distinct* drawn images
        nn[start:start + 16] = (cc * dm.min(2)).sum(1) / cc.sum(1)
    mz = cf @ z / tot
    second = np.einsum("bn,ni,nj->bij", cf, z, z) / tot[:, :, None]
    cov = (second - mz[:, :, None] * mz[:, None, :]) * (tot / (tot - 1))[:, :, None]
    logdet = np.linalg.slogdet(cov)[1]
    return np.stack([spread, nn, logdet], axis=1)


def occupancy_bootstrap(embeddings: Any, groups: Any, *, strata: Any = None, n_components: int = 8,
                        n_boot: int = 200, seed: int = 0, level: float = 0.95, normalize: bool = False,
                        order: Sequence[Any] | None = None) -> pd.DataFrame:
    """How much of the embedding space each group occupies, with image-bootstrap intervals.

    Per group (all its images; compare groups of equal size, these numbers
    depend on it):

    * ``spread around centroid``: mean Euclidean distance to the group's mean;
    * ``nearest-neighbour distance``: mean distance to the nearest *other*
      image of the group;
    * ``log det cov (PCA)``: log-determinant of the group's covariance in the
      first ``n_components`` principal axes of all embeddings (a log-volume).

    Intervals: images are redrawn with replacement within ``strata``
    (default the groups; :func:`image_bootstrap_counts`) and the statistics
    recomputed with each drawn copy counted; an image's nearest neighbour is
    never its own copy. Redrawing leaves about 37 % of the images out, which
    lengthens nearest-neighbour distances (and shrinks the log-volume), so
    the replicates are biased; the interval is the percentile interval of
    the replicates shifted by that bias (``bias`` = mean of the replicates
    minus the estimate). The bias is about equal for equal-size groups, so
    contrasts between groups hardly depend on it.

    Returns:
        Long table ``group, stat, estimate, low, high, bias, n``;
        ``attrs["replicates"]``: ``{stat: (B, G)}`` (unshifted).
    """

    x = _array(embeddings).astype(np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got {x.shape}.")
    if normalize:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    g = _groups(groups, x.shape[0])
    names = _order(g, order)
    st = g if strata is None else _groups(strata, g.size)
    n_comp = min(n_components, x.shape[1], min(int((g == n).sum()) for n in names) - 1)
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    z_all = centred @ vt[:n_comp].T
    counts = image_bootstrap_counts(st, n_boot=n_boot, seed=seed)
    rows, reps = [], {s: np.zeros((n_boot, len(names))) for s in OCCUPANCY_BOOTSTRAP_STATS}
    for k, name in enumerate(names):
        m = np.flatnonzero(g == name)
        xs, zs = x[m], z_all[m]
        dist = np.sqrt(np.maximum(((xs[:, None] - xs[None]) ** 2).sum(-1), 0))
        np.fill_diagonal(dist, np.inf)
        point = _occupancy_one(xs, zs, dist, np.ones((1, m.size), dtype=np.int32))[0]
        boot = _occupancy_one(xs, zs, dist, counts[:, m])
        bias = boot.mean(0) - point
        low, high = percentile_bounds(boot - bias, level)  # percentile interval, shifted by the bootstrap bias
        for j, stat in enumerate(OCCUPANCY_BOOTSTRAP_STATS):
            reps[stat][:, k] = boot[:, j]
            rows.append({"group": name, "stat": stat, "estimate": float(point[j]), "low": float(low[j]),
                         "high": float(high[j]), "bias": float(bias[j]), "n": int(m.size)})
    out = pd.DataFrame(rows)
    out.attrs["replicates"] = reps
    out.attrs["n_components"] = n_comp
    return out


# ----------------------------------------------------------------------------- contrasts with Holm
def _boot_p(estimate: float, diff: np.ndarray) -> float:
    """Two-sided p-value of ``estimate`` against 0 from its bootstrap standard error (normal approximation).

    ``2 * (1 - Phi(|estimate| / sd(replicates)))``: unlike counting replicates
    beyond 0, it is not floored at ``2 / (B + 1)``, which with few replicates
    would make a Holm correction over several groups unable to reject at all.
    """

    d = diff[np.isfinite(diff)]
    if d.size < 2 or not np.isfinite(estimate):
        return 1.0
    sd = float(d.std(ddof=1))
    if sd == 0:
        return 0.0 if estimate != 0 else 1.0
    return float(min(1.0, 2 * norm.sf(abs(estimate) / sd)))


def contrast_with_rest(estimates: Any, replicates: Any, names: Sequence[Any], *, level: float = 0.95,
                       alpha: float = 0.05, log: bool = False) -> pd.DataFrame:
    """Each group against the mean of the other groups, with Holm-adjusted p-values from the bootstrap.

    Args:
        estimates: ``(G,)`` group values; replicates: ``(B, G)`` from one
            bootstrap (same resamples for all groups).
        log: contrast ``log`` values (for rates compared as ratios).

    Returns:
        DataFrame indexed by group: ``difference`` (group minus mean of the
        others, on the log scale with ``log``), ``low``, ``high`` (percentile
        interval), ``p`` (two-sided, from the bootstrap standard error),
        ``p (Holm)``, and ``verdict``: ``"above the others"``,
        ``"below the others"`` (Holm-adjusted ``p <= alpha``) or ``"within noise"``.
    """

    e = np.asarray(estimates, dtype=np.float64)
    r = np.asarray(replicates, dtype=np.float64)
    if log:
        with np.errstate(all="ignore"):
            e, r = np.log(e), np.log(r)
        r = np.where(np.isfinite(r), r, np.nan)
    G = e.size

    def rest(v: np.ndarray) -> np.ndarray:  # (..., G) -> (..., G): v_g - mean of the others
        return v - (np.nansum(v, axis=-1, keepdims=True) - v) / (G - 1)

    de, dr = rest(e), rest(r)
    low, high = percentile_bounds(dr, level)
    p = np.array([_boot_p(de[k], dr[:, k]) for k in range(G)])
    ph = holm(p)
    verdict = ["above the others" if q <= alpha and d > 0 else "below the others" if q <= alpha and d < 0
               else "within noise" for q, d in zip(ph, de)]
    return pd.DataFrame({"difference": de, "low": low, "high": high, "p": p, "p (Holm)": ph, "verdict": verdict},
                        index=pd.Index(list(names), name="group"))


def paired_group_contrasts(correct_a: Any, correct_b: Any, groups: Any, *, n_boot: int = 2000, seed: int = 0,
                           level: float = 0.95, alpha: float = 0.05,
                           order: Sequence[Any] | None = None) -> pd.DataFrame:
    """Two classifiers on the same images, group by group: accuracy difference, McNemar's test, Holm.

    Args:
        correct_a, correct_b: ``(N,)`` booleans, whether each model got image ``i`` right.
        groups: ``(N,)``.

    Returns:
        DataFrame indexed by group: ``a``, ``b`` (accuracies), ``difference``
        (a - b) with a paired bootstrap interval ``low``, ``high`` (images
        resampled within the group), ``p`` (exact two-sided McNemar test on the
        discordant images), ``p (Holm)`` over the groups, ``verdict``
        (``"a higher"``, ``"b higher"``, ``"within noise"`` at Holm ``alpha``).
    """


    a = _array(correct_a).astype(bool)
    b = _array(correct_b).astype(bool)
    g = _groups(groups, a.size)
    names = _order(g, order)
    rng = np.random.default_rng(seed)
    rows = []
    for name in names:
        m = np.flatnonzero(g == name)
        diff = a[m].astype(float) - b[m]
        idx = rng.integers(0, m.size, size=(n_boot, m.size))
        low, high = percentile_bounds(diff[idx].mean(1), level)
        n01, n10 = int((~a[m] & b[m]).sum()), int((a[m] & ~b[m]).sum())
        p = 1.0 if n01 + n10 == 0 else float(binomtest(n10, n01 + n10, 0.5).pvalue)
        rows.append({"group": name, "a": a[m].mean(), "b": b[m].mean(), "difference": diff.mean(),
                     "low": float(low), "high": float(high), "p": p, "n": int(m.size)})
    out = pd.DataFrame(rows).set_index("group")
    out["p (Holm)"] = holm(out["p"].to_numpy())
    out["verdict"] = ["a higher" if q <= alpha and d > 0 else "b higher" if q <= alpha and d < 0 else "within noise"
                      for q, d in zip(out["p (Holm)"], out["difference"])]
    return out
