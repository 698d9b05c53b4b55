"""Age estimation scores: MAE, CS@k, MaxAE, and mean absolute errors per group with intervals.

``pred`` and ``target`` are ``(N,)`` ages in years (arrays, lists or tensors).
:func:`mean_absolute_error` ``mean |pred - target|``, :func:`cumulative_score`
(CS@k: the share of images within ``k`` years, ``|pred - target| <= k``) and
:func:`max_absolute_error` are plain numbers; :func:`age_scores` puts a
bootstrap interval on each (rows resampled: face data sets without identity
labels, such as UTKFace, cannot resample people, so the intervals ignore that
one person may appear several times and are somewhat too narrow);
:func:`group_mae_table` gives the MAE of every group with its interval, the
smallest gap to the rest that the group's size can resolve, and a
Holm-adjusted permutation p-value of the observed gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from course_utils.arrays import to_numpy
from course_utils.stats import (
    Interval,
    bootstrap_interval,
    holm,
    min_detectable_difference,
    permutation_gap_test,
)

__all__ = [
    "AgeScores",
    "absolute_errors",
    "age_scores",
    "cumulative_score",
    "group_mae",
    "group_mae_table",
    "max_absolute_error",
    "mean_absolute_error",
]


def _as_1d(x: Any, name: str) -> np.ndarray:
    a = to_numpy(x).astype(np.float64, copy=False).reshape(-1)
    if a.size == 0:
        raise ValueError(f"{name} is empty.")
    return a


def absolute_errors(pred: Any, target: Any) -> np.ndarray:
    """``|pred - target|``, ``(N,)`` float64 (``pred``, ``target``: ``(N,)`` or ``(N, 1)``)."""
    p, t = _as_1d(pred, "pred"), _as_1d(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have the same length, got {p.size} and {t.size}.")
    return np.abs(p - t)


def mean_absolute_error(pred: Any, target: Any) -> float:
    """MAE ``= mean_i |pred_i - target_i|`` (years)."""
    return float(absolute_errors(pred, target).mean())


def cumulative_score(pred: Any, target: Any, *, k: float = 5.0) -> float:
    """CS@k: the share of rows with ``|pred - target| <= k`` (CS5: within five years)."""
    return float(np.mean(absolute_errors(pred, target) <= k))


def max_absolute_error(pred: Any, target: Any) -> float:
    """MaxAE ``= max_i |pred_i - target_i|``: the worst single estimate."""
    return float(absolute_errors(pred, target).max())


@dataclass(frozen=True)
class AgeScores:
    """MAE, CS@k and MaxAE with percentile-bootstrap intervals over the same row resamples.

    The intervals of two models scored on the same test rows (same ``n_boot``
    and ``seed``) share their resamples, so :func:`course_utils.stats.compare`
    pairs them. MaxAE's interval is a rough guide only: the bootstrap of a
    maximum cannot exceed the largest observed error.
    """

    mae: Interval
    cs: Interval
    max_ae: Interval
    k: float

    def row(self) -> dict[str, str]:
        """``{"MAE": "6.1 [5.6, 6.7]", "CS5": ..., "MaxAE": ...}`` for a table."""
        return {"MAE (years)": self.mae.format(decimals=2), f"CS{self.k:g}": self.cs.format(decimals=3),
                "MaxAE (years)": self.max_ae.format(decimals=1)}


def age_scores(pred: Any, target: Any, *, k: float = 5.0, n_boot: int = 2000, seed: int = 0,
               level: float = 0.95) -> AgeScores:
    """:class:`AgeScores` of ``(N,)`` predictions: each score with a ``level`` bootstrap interval (rows resampled)."""
    err = absolute_errors(pred, target)
    boot = {"n_boot": n_boot, "seed": seed, "level": level, "vectorized": True}
    return AgeScores(
        mae=bootstrap_interval(lambda e: e.mean(axis=1), err, **boot),
        cs=bootstrap_interval(lambda e: (e <= k).mean(axis=1), err, **boot),
        max_ae=bootstrap_interval(lambda e: e.max(axis=1), err, **boot),
        k=float(k),
    )


def group_mae(pred: Any, target: Any, groups: Any, *, n_boot: int = 2000, seed: int = 0,
              level: float = 0.95) -> dict[Any, Interval]:
    """Group -> MAE over that group's rows, with a bootstrap interval resampling within the group."""
    err = absolute_errors(pred, target)
    g = np.asarray(groups)
    if g.shape != err.shape:
        raise ValueError(f"groups must have one label per row ({err.size}), got shape {g.shape}.")
    return {name: bootstrap_interval(lambda e: e.mean(axis=1), err[g == name], n_boot=n_boot, seed=seed,
                                     level=level, vectorized=True)
            for name in sorted(np.unique(g).tolist(), key=str)}


def group_mae_table(pred: Any, target: Any, groups: Any, *, n_boot: int = 2000, n_perm: int = 5000, seed: int = 0,
                    level: float = 0.95, power: float = 0.8, order: Sequence[Any] | None = None,
                    strata: Any = None) -> pd.DataFrame:
    """One row per group: ``n``, its MAE with interval, the rest's MAE, the gap and what the sample can resolve.

    Columns: ``n``, ``MAE (years)`` (interval as text), ``rest MAE``, ``gap`` (group minus
    rest), ``detectable gap`` (:func:`~course_utils.stats.min_detectable_difference` for
    ``(n, n_rest)`` rows at the pooled sd of the absolute errors, two-sided ``alpha = 1 - level``
    at ``power``: a smaller true gap would usually be missed) and ``p (Holm)``: the
    permutation p-value of ``|gap|`` (group against rest, labels shuffled), Holm-adjusted over the groups.
    Groups with fewer than 2 rows get no test (NaN).

    ``strata`` (``(N,)`` labels, e.g. age bins) adds ``adjusted gap`` and ``adjusted p (Holm)``: the same
    on the residuals ``|error| - mean |error| of the row's stratum``, i.e. the gap left once each image
    is compared with images of its own stratum (a group with older faces is not blamed for their age).
    """
    err = absolute_errors(pred, target)
    g = np.asarray(groups)
    per = group_mae(err, np.zeros_like(err), g, n_boot=n_boot, seed=seed, level=level)
    names = list(order) if order is not None else list(per)
    sd = float(err.std(ddof=1)) if err.size > 1 else float("nan")
    rows, pvals = {}, {}
    for name in names:
        inside = g == name
        n_in, n_out = int(inside.sum()), int((~inside).sum())
        rest = float(err[~inside].mean()) if n_out else float("nan")
        testable = n_in >= 2 and n_out >= 2 and sd > 0
        if testable:
            pvals[name] = permutation_gap_test(err, inside, n_perm=n_perm, seed=seed).p_value
        rows[name] = {
            "n": n_in,
            "MAE (years)": per[name].format(decimals=2) if name in per else "",
            "rest MAE": round(rest, 2),
            "gap": round(float(err[inside].mean()) - rest, 2) if n_in else float("nan"),
            "detectable gap": round(min_detectable_difference((n_in, n_out), sd=sd, alpha=1 - level, power=power), 2)
            if testable else float("nan"),
        }
    adjusted = holm(pvals) if pvals else {}
    for name in names:
        rows[name]["p (Holm)"] = round(float(adjusted[name]), 4) if name in adjusted else float("nan")
    if strata is not None:
        st = np.asarray(strata)
        if st.shape != err.shape:
            raise ValueError(f"strata must have one label per row ({err.size}), got shape {st.shape}.")
        means = pd.Series(err).groupby(st).transform("mean").to_numpy()
        resid, res_p = err - means, {}
        for name in names:
            inside = g == name
            n_in, n_out = int(inside.sum()), int((~inside).sum())
            rows[name]["adjusted gap"] = round(float(resid[inside].mean() - resid[~inside].mean()), 2) \
                if n_in and n_out else float("nan")
            if n_in >= 2 and n_out >= 2:
                res_p[name] = permutation_gap_test(resid, inside, n_perm=n_perm, seed=seed).p_value
        res_adj = holm(res_p) if res_p else {}
        for name in names:
            rows[name]["adjusted p (Holm)"] = round(float(res_adj[name]), 4) if name in res_adj else float("nan")
    return pd.DataFrame.from_dict(rows, orient="index")
