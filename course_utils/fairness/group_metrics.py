"""Per-group metrics with bootstrap intervals (fairlearn's ``MetricFrame``), and contrasts between groups with Holm."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from scipy.stats import binomtest, norm

from course_utils.arrays import labels_1d, to_numpy
from course_utils.fairness._common import _order
from course_utils.stats import holm, percentile_bounds

__all__ = [
    "RateMetric",
    "group_metric_frame",
    "bootstrap_group_metrics",
    "contrast_with_rest",
    "paired_group_contrasts",
    "ACCURACY",
    "ERROR_RATE",
    "FALSE_POSITIVE_RATE",
    "FALSE_NEGATIVE_RATE",
    "SELECTION_RATE",
    "CLASSIFICATION_METRICS",
]


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
        num, den = self.counts(to_numpy(y_true), to_numpy(y_pred))
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

    return MetricFrame(metrics={m.name: m for m in metrics}, y_true=to_numpy(y_true), y_pred=to_numpy(y_pred),
                       sensitive_features=pd.Series(labels_1d(groups), name="group"))


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
    y = to_numpy(y_true)
    g = labels_1d(groups, n=y.size)
    names = _order(g, order)
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(g == name) for name in names]
    draws = [m[rng.integers(0, m.size, size=(n_boot, m.size))] for m in members]  # (B, n_g) each
    values: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}  # (model, metric) -> (point (G,), boot (B, G))
    for model, pred in models.items():
        p = to_numpy(pred)
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


    a = to_numpy(correct_a).astype(bool)
    b = to_numpy(correct_b).astype(bool)
    g = labels_1d(groups, n=a.size)
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
