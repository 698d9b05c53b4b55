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
* **Mitigation**: :func:`group_balancing_weights`, :func:`balanced_sampler`
  (reweighting / rebalanced sampling), :class:`ScoreClassifier` (wraps
  precomputed scores for fairlearn's ``ThresholdOptimizer``).
* :func:`umap_2d`: a 2-D UMAP projection with numba's cache in the course cache.

Conventions: ``groups`` is any array-like of labels (strings or codes), one
per sample; tables are indexed by the group labels in sorted order unless an
``order`` is given. Nothing here imports matplotlib (see ``plots``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from course_utils.facerec import VerificationPairs, verification_pairs
from course_utils.metrics import threshold_at_far

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


def _quantiles(values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = (1 - confidence) / 2
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (a rate undefined in every replicate)
        return np.nanquantile(values, alpha, axis=0), np.nanquantile(values, 1 - alpha, axis=0)


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
        low, high = _quantiles(full_boot, confidence)
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
            low, high = _quantiles(boot, confidence)
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
    from fairlearn.metrics import MetricFrame, count, false_negative_rate, false_positive_rate

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
            lo, hi = _quantiles(v[:, None], confidence)
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
