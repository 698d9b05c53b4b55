"""Statistics behind every claim: intervals over seeds and resamples, permutation nulls, Holm, verdicts, power.

:class:`Interval` (``"0.714 [0.620, 0.800]"``) comes from :func:`seed_interval` (Student t over
seeds), :func:`bootstrap_interval` (percentile, rows resampled jointly) or :func:`identity_bootstrap`
(face metrics: resample people, not pairs). :func:`permutation_gap_test` asks whether a between-group
gap beats shuffled labels; :func:`holm` adjusts several p-values; :func:`compare` turns two results
into ``"supported"``, ``"contradicted"`` or ``"within noise"``; :func:`min_detectable_difference` and
:func:`required_n` say what a sample can resolve. Seeds: :func:`summarize`, :func:`run_seeds`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.stats as sps
from scipy.optimize import brentq

__all__ = [
    "Interval", "percentile_bounds", "seed_interval", "resample_indices", "bootstrap_interval",
    "resample_identities", "identity_bootstrap", "PermutationTest", "permutation_gap_test", "holm",
    "Comparison", "VERDICTS", "compare", "min_detectable_difference", "required_n",
    "SeedSummary", "SeedRuns", "summarize", "run_seeds",
]  # fmt: skip

#: The three possible verdicts of :func:`compare`.
VERDICTS: tuple[str, ...] = ("supported", "contradicted", "within noise")


# ----------------------------------------------------------------------------- intervals
@dataclass(frozen=True)
class Interval:
    """An estimate with a ``level`` interval; ``n`` seeds, rows or people; ``note``: a caveat ``str`` shows.

    ``draws``: the per-seed values or bootstrap replicates :func:`compare` uses; equal ``key``: paired draws.
    """

    estimate: float
    low: float
    high: float
    level: float = 0.95
    n: int = 0
    method: str = ""
    note: str = ""
    draws: np.ndarray | None = field(default=None, repr=False, compare=False)
    key: Any = field(default=None, repr=False, compare=False)

    @property
    def kind(self) -> str:
        """``"seeds"`` for a t interval over seeds, ``"resamples"`` for a bootstrap."""
        return "seeds" if self.method.startswith("t") else "resamples"

    def format(self, *, signed: bool = False, decimals: int | None = None) -> str:
        """``"0.714 [0.620, 0.800]"``: by default two significant digits of the width, at least 3 decimals."""
        w = self.high - self.low
        auto = min(8, max(3, 1 - math.floor(math.log10(w)))) if math.isfinite(w) and w > 1e-12 else 3
        f = f"{{:{'+' if signed else ''}.{auto if decimals is None else decimals}f}}".format
        text = f"{f(self.estimate)} [{f(self.low)}, {f(self.high)}]"
        return f"{text} ({self.note})" if self.note else text

    def __str__(self) -> str:
        return self.format()


def percentile_bounds(replicates: Any, level: float = 0.95, *, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles along ``axis``, ignoring NaN replicates."""
    a, r = (1 - level) / 2, np.asarray(replicates, dtype=np.float64)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (a rate undefined in every replicate)
        return np.nanquantile(r, a, axis=axis), np.nanquantile(r, 1 - a, axis=axis)


def _check(level: float, alpha: float = 0.0, power: float = 1.0) -> None:
    if not (0 < level < 1 and 0 <= alpha < power <= 1):
        raise ValueError(f"need 0 < level < 1 and 0 < alpha < power < 1, got {level=}, {alpha=}, {power=}.")


def seed_interval(values: Sequence[float], *, level: float = 0.95) -> Interval:
    """Mean over seeds with a Student-t interval ``mean ± t_{n-1} * sd / sqrt(n)``.

    Why t: with 3-10 seeds the sample sd is itself noisy and often small; the
    t quantile with ``n - 1`` degrees of freedom (4.30 for 3 seeds, not 1.96)
    pays for estimating it (per-seed results assumed roughly normal). One
    seed: zero width, flagged in ``note`` (no spread estimate, not certainty).
    """
    _check(level)
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        raise ValueError("seed_interval needs at least one value.")
    mean, one = float(v.mean()), v.size == 1
    half = 0.0 if one else float(sps.t.ppf((1 + level) / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return Interval(mean, mean - half, mean + half, level, int(v.size), "t over seeds",
                    "1 seed: no spread estimate" if one else "", v)


def _percentile_interval(estimate: float, reps: np.ndarray, level: float, n: int, method: str, key: Any) -> Interval:
    low, high = percentile_bounds(reps, level)
    bad = int(np.isnan(reps).sum())
    note = f"{bad} of {reps.size} replicates undefined" if bad else ""
    return Interval(float(estimate), float(low), float(high), level, n, method, note, reps, key)


def resample_indices(n: int, *, n_boot: int, seed: int = 0, strata: Any = None) -> np.ndarray:
    """``(n_boot, n)`` row indices drawn with replacement: ``default_rng(seed).integers(0, n, (n_boot, n))``.

    With ``strata`` (one label per row) each replicate redraws as many rows of every
    stratum as it has, from that stratum (strata in sorted order, columns side by side).
    """
    rng = np.random.default_rng(seed)
    if strata is None:
        return rng.integers(0, n, size=(n_boot, n))
    s = np.asarray(strata)
    if s.shape != (n,):
        raise ValueError(f"strata must have one label per row ({n}), got shape {s.shape}.")
    members = [np.flatnonzero(s == name) for name in np.unique(s)]
    return np.concatenate([m[rng.integers(0, m.size, size=(n_boot, m.size))] for m in members], axis=1)


def _columns(arrays: Sequence[Any]) -> tuple[list[np.ndarray], int]:
    if not arrays or len({len(a) for a in arrays}) != 1 or len(arrays[0]) == 0:
        raise ValueError(f"pass non-empty arrays of equal lengths, got lengths {[len(a) for a in arrays]}.")
    return [np.asarray(a) for a in arrays], len(arrays[0])


def bootstrap_interval(stat_fn: Callable[..., Any], *arrays: Any, n_boot: int = 2000, seed: int = 0,
                       level: float = 0.95, vectorized: bool = False) -> Interval:
    """Percentile bootstrap interval of ``stat_fn(*arrays)``; row ``i`` of all ``(n, ...)`` arrays moves together.

    Rows come from :func:`resample_indices`. ``vectorized=True``: ``stat_fn`` gets the ``(n_boot, n, ...)``
    stacks at once (and a batch of 1 for the estimate) and reduces axis 1, e.g. ``lambda x: x.mean(axis=1)``.
    NaN replicates are ignored and counted in ``note``.
    """
    _check(level)
    cols, n = _columns(arrays)
    idx = resample_indices(n, n_boot=n_boot, seed=seed)
    if vectorized:
        estimate = float(np.asarray(stat_fn(*[c[None] for c in cols])).reshape(-1)[0])
        reps = np.asarray(stat_fn(*[c[idx] for c in cols]), dtype=np.float64).reshape(n_boot)
    else:
        estimate = float(stat_fn(*cols))
        reps = np.array([stat_fn(*[c[i] for c in cols]) for i in idx], dtype=np.float64)
    return _percentile_interval(estimate, reps, level, n, "percentile bootstrap", ("rows", n, n_boot, seed))


def resample_identities(identities: Any, *, n_boot: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Draw people with replacement: the ``(K,)`` distinct identities and ``(n_boot, K)`` draw counts.

    Replicate ``b`` draws ``K`` people uniformly with replacement
    (``default_rng(seed).integers(0, K, (n_boot, K))``); ``counts[b, k]`` is
    how often person ``k`` was drawn (0, 1, 2 ...).
    """
    people = np.unique(np.asarray(identities))
    k = people.size
    if k < 2:
        raise ValueError(f"an identity bootstrap needs at least 2 people, got {k}.")
    draws = np.random.default_rng(seed).integers(0, k, size=(n_boot, k))
    flat = (np.arange(n_boot)[:, None] * k + draws).ravel()
    return people, np.bincount(flat, minlength=n_boot * k).reshape(n_boot, k)


def identity_bootstrap(stat_fn: Callable[..., Any], *arrays: Any, identities: Any, n_boot: int = 1000,
                       seed: int = 0, level: float = 0.95, weighted: bool = False) -> Interval:
    """Percentile interval of a face metric, resampling people (not images or pairs) with replacement.

    Pairs sharing a person are not independent: resampling pairs gives too
    narrow intervals. Each replicate draws people (:func:`resample_identities`)
    and recomputes ``stat_fn(*arrays)`` (e.g. ``roc_auc(scores, same)``) on the
    rows among them. ``identities``: ``(n,)`` person of each row, or for pairs
    ``(id_first, id_second)``. ``weighted``: call ``stat_fn(*arrays, weights=w)``
    with ``(n,)`` integer weights instead of repeating rows.

    A person drawn ``c`` times brings ``c`` copies of their images (same identity): a row of
    one person is repeated ``c`` times, a pair of people ``a``, ``b`` ``c_a * c_b`` times (every
    copy of ``a`` with every copy of ``b``; for a genuine pair ``i != j`` also image ``i`` of one
    copy with ``j`` of another). An image is never paired with its own copy (a perfect match no
    real data contains). People drawn 0 times drop out with their pairs.
    """
    _check(level)
    cols, n = _columns(arrays)
    id_cols = [np.asarray(c) for c in (identities if isinstance(identities, tuple) else (identities,))]
    if any(c.shape != (n,) for c in id_cols):
        raise ValueError(f"identities must be (n,) arrays with n = {n}, got {[c.shape for c in id_cols]}.")
    people, counts = resample_identities(np.concatenate(id_cols), n_boot=n_boot, seed=seed)
    codes = [np.searchsorted(people, c) for c in id_cols]
    weights = (np.prod([row[c] for c in codes], axis=0) for row in counts)  # one (n,) row at a time: low memory
    if weighted:
        estimate = float(stat_fn(*cols, weights=np.ones(n, dtype=np.int64)))
        reps = np.array([stat_fn(*cols, weights=w) for w in weights], dtype=np.float64)
    else:
        estimate = float(stat_fn(*cols))
        rows = (np.repeat(np.arange(n), w) for w in weights)
        reps = np.array([stat_fn(*[c[r] for c in cols]) if r.size else np.nan for r in rows], dtype=np.float64)
    key = ("ids", tuple(people.tolist()), n_boot, seed)
    return _percentile_interval(estimate, reps, level, int(people.size), "identity bootstrap", key)


# ----------------------------------------------------------------------------- permutation null
_GAP_STATS: dict[str, Callable[[np.ndarray], np.ndarray]] = {  # group means (..., G) -> (...)
    "max_minus_min": lambda m: np.nanmax(m, axis=-1) - np.nanmin(m, axis=-1),
    "min_over_max": lambda m: np.nanmin(m, axis=-1) / np.nanmax(m, axis=-1)}


@dataclass(frozen=True)
class PermutationTest:
    """:func:`permutation_gap_test`: ``p = (1 + #{null >= observed}) / (1 + n_perm)``; null quantiles; group means."""

    stat: str
    observed: float
    null_mean: float
    null_low: float
    null_high: float
    p_value: float
    n_perm: int
    level: float
    group_values: dict[Any, float]

    def __str__(self) -> str:
        return (f"{self.stat} = {self.observed:.3f}; under shuffled groups {self.null_mean:.3f} "
                f"[{self.null_low:.3f}, {self.null_high:.3f}]; p = {self.p_value:.3g} ({self.n_perm} permutations)")


def permutation_gap_test(values: Any, groups: Any, *, stat: str | Callable[[np.ndarray], np.ndarray] = "max_minus_min",
                         n_perm: int = 5000, seed: int = 0, level: float = 0.95,
                         clusters: Any = None) -> PermutationTest:
    """Permutation null of a between-group gap: shuffle the group labels, recompute the gap.

    ``values``: ``(N,)`` per sample (1/0 correct, a score); a group's value is
    their mean. ``stat``: ``"max_minus_min"``, ``"min_over_max"`` or
    ``f(means (..., G)) -> (...)``. ``clusters``: ``(N,)`` person of each
    sample, to shuffle whole people (as face data requires). Gaps equal to the
    observed one up to rounding (1e-12) count as ``>=``.
    """
    _check(level)
    v = np.asarray(values, dtype=np.float64)
    names, codes = np.unique(np.asarray(groups), return_inverse=True)
    if v.ndim != 1 or codes.size != v.size or names.size < 2:
        raise ValueError(f"need (N,) values and groups, >= 2 groups; got {v.shape}, {np.shape(groups)}.")
    fn = _GAP_STATS[stat] if isinstance(stat, str) else stat
    g = names.size

    def gap(labels: np.ndarray) -> np.ndarray:  # (b, N) group codes -> (b,)
        b = labels.shape[0]
        flat = (np.arange(b)[:, None] * g + labels).ravel()
        sums = np.bincount(flat, weights=np.broadcast_to(v, labels.shape).ravel(), minlength=b * g)
        with np.errstate(all="ignore"):
            return np.asarray(fn((sums / np.bincount(flat, minlength=b * g)).reshape(b, g)), dtype=np.float64)

    units, expand = codes, np.arange(v.size)
    if clusters is not None:
        _, first, expand = np.unique(np.asarray(clusters), return_index=True, return_inverse=True)
        units = codes[first]
        if np.any(units[expand] != codes):
            raise ValueError("every cluster (person) must belong to one group.")
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // v.size)
    null = np.concatenate([gap(rng.permuted(np.tile(units, (min(chunk, n_perm - s), 1)), axis=1)[:, expand])
                           for s in range(0, n_perm, chunk)])
    observed = float(gap(codes[None])[0])
    hits = int(np.sum(null >= observed - 1e-12 * max(1.0, abs(observed))))
    low, high = percentile_bounds(null, level)
    means = {x: float(v[codes == i].mean()) for i, x in enumerate(names.tolist())}
    return PermutationTest(stat if isinstance(stat, str) else getattr(stat, "__name__", "stat"), observed, float(
        np.nanmean(null)), float(low), float(high), (1 + hits) / (1 + n_perm), int(n_perm), level, means)


# ----------------------------------------------------------------------------- multiple contrasts
def holm(pvalues: Sequence[float] | Mapping[Any, float]) -> np.ndarray | dict[Any, float]:
    """Holm's step-down adjusted p-values: reject contrast ``i`` at ``alpha`` when ``adjusted[i] <= alpha``.

    With ``p_(1) <= ... <= p_(m)``: ``adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``.
    Controls the family-wise error rate under any dependence. A mapping in gives a mapping out.
    """
    if isinstance(pvalues, Mapping):
        return dict(zip(pvalues, holm(list(pvalues.values())).tolist()))
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1 or np.isnan(p).any() or np.any((p < 0) | (p > 1)):
        raise ValueError(f"pvalues must be a 1-D sequence in [0, 1], got {pvalues!r}.")
    order = np.argsort(p, kind="stable")
    out = np.empty(p.size)
    out[order] = np.maximum.accumulate(np.minimum(1.0, (p.size - np.arange(p.size)) * p[order]))
    return out


# ----------------------------------------------------------------------------- verdicts
@dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare`: the claim, its verdict, the interval of ``a - b`` and a one-line text."""

    claim: str
    verdict: str
    difference: Interval
    paired: bool
    text: str

    def __str__(self) -> str:
        return self.text


def _draws(x: Any, kind: str) -> tuple[float, np.ndarray, str, Any]:
    """``(estimate, draws, kind, key)`` of a SeedRuns, SeedSummary, Interval with draws, or a sequence."""
    key = ("seeds", x.seeds) if isinstance(x, SeedRuns) else None
    x = x.summary if isinstance(x, SeedRuns) else x
    if isinstance(x, SeedSummary):
        return x.mean, np.asarray(x.values), "seeds", key
    if isinstance(x, Interval):
        if x.draws is None:  # built by hand: only bounds
            raise TypeError("this Interval carries no draws; compare needs per-seed values or bootstrap replicates.")
        return x.estimate, np.asarray(x.draws, dtype=np.float64), x.kind, x.key
    if np.ndim(x) == 0:
        raise TypeError("a single number has no interval; pass per-seed values or bootstrap replicates.")
    d = np.asarray(x, dtype=np.float64).ravel()
    return float(np.nanmean(d)), d, kind, None


def _difference(ea: float, da: np.ndarray, eb: float, db: np.ndarray, kind: str, paired: bool,
                level: float) -> Interval:
    if paired and da.size != db.size:
        raise ValueError(f"paired draws must be equally many, got {da.size} and {db.size}.")
    if kind == "resamples":  # independent replicates paired by index are draws of the difference too
        m = min(da.size, db.size)
        return _percentile_interval(ea - eb, da[:m] - db[:m], level, m,
                                    f"percentile bootstrap, {'paired' if paired else 'independent'} replicates", None)
    n = min(da.size, db.size)
    if n < 2:  # no spread estimate: no verdict either
        return Interval(ea - eb, math.nan, math.nan, level, n, "t over seeds", "1 seed: no spread estimate")
    if paired:
        d = seed_interval(da - db, level=level)
        return Interval(d.estimate, d.low, d.high, level, d.n, "t over seeds, paired", "", d.draws)
    va, vb = da.var(ddof=1) / da.size, db.var(ddof=1) / db.size
    df = (va + vb) ** 2 / (va**2 / (da.size - 1) + vb**2 / (db.size - 1)) if va + vb > 0 else 1.0
    half = float(sps.t.ppf((1 + level) / 2, df)) * math.sqrt(va + vb)
    est = float(da.mean() - db.mean())
    return Interval(est, est - half, est + half, level, n, "t over seeds (Welch)", "")


_CLAIMS = {"a > b": 1, "b < a": 1, "a < b": -1, "b > a": -1}


def compare(a: Any, b: Any, *, claim: str = "a > b", paired: bool | None = None, level: float = 0.95,
            kind: str = "seeds", names: tuple[str, str] = ("a", "b")) -> Comparison:
    """Does the run support ``claim`` about ``a`` and ``b``? An interval of ``a - b`` decides.

    ``"supported"``: the ``level`` interval of ``a - b`` excludes 0 in the claimed
    direction; ``"contradicted"``: in the other; else ``"within noise"`` (also one seed).

    ``a``, ``b``: :class:`SeedRuns`, :class:`SeedSummary`, an :class:`Interval`
    with draws, or sequences of ``kind`` (``"seeds"`` or ``"resamples"``).
    ``claim``: ``"a > b"`` or ``"a < b"``. ``paired``: same seeds, or same
    resamples (rows or people, ``n_boot``, seed); ``None``: when both keys
    match. Seeds: paired t on the differences, else Welch's t; replicates:
    percentile interval of ``a_r - b_r``. ``names`` are used in ``text``.
    """
    _check(level)
    if claim not in _CLAIMS or kind not in ("seeds", "resamples"):
        raise ValueError(f"claim must be in {sorted(_CLAIMS)}, kind 'seeds' or 'resamples'; got {claim!r}, {kind!r}.")
    ea, da, ka, key_a = _draws(a, kind)
    eb, db, kb, key_b = _draws(b, kind)
    if ka != kb:
        raise TypeError(f"cannot compare {ka} with {kb}: use the same kind of draws on both sides.")
    paired = bool(key_a is not None and key_a == key_b) if paired is None else paired
    diff = _difference(ea, da, eb, db, ka, paired, level)
    above, below = diff.low > 0, diff.high < 0  # both False when the interval is NaN
    if _CLAIMS[claim] < 0:
        above, below = below, above
    verdict = "supported" if above else "contradicted" if below else "within noise"
    (left, op, right), who = claim.split(), dict(zip("ab", names))
    text = (f"{who[left]} {op} {who[right]}: {verdict} ({names[0]} - {names[1]} = {diff.format(signed=True)}, "
            f"{level * 100:g}% {diff.method}, n = {diff.n})")
    return Comparison(claim, verdict, diff, paired, text)


# ----------------------------------------------------------------------------- power
def _power(x: float, alpha: float, df: float | None) -> float:
    """Two-sided power at standardised difference ``x = delta / se`` (normal, or noncentral t with ``df``)."""
    if df is None:
        crit = sps.norm.isf(alpha / 2)
        return float(sps.norm.sf(crit - x) + sps.norm.cdf(-crit - x))
    crit = sps.t.isf(alpha / 2, df)
    far = sps.nct.cdf(-crit, df, x)  # the opposite tail; NaN in scipy where it underflows
    return float(sps.nct.sf(crit, df, x) + (0.0 if np.isnan(far) else far))


def _design(n: int | tuple[int, int], p: float, sd: float | None, paired: bool) -> tuple[float, float | None]:
    """``(standard error of the difference per unit delta, degrees of freedom or None for z)``."""
    na, nb = (n, n) if np.ndim(n) == 0 else (int(n[0]), int(n[1]))
    if sd is None:
        if paired or not 0 < p < 1 or min(na, nb) < 1:
            raise ValueError(f"proportions need 0 < p < 1, n >= 1 and no pairing (paired: pass sd=), got {p=}, {n=}.")
        return math.sqrt(p * (1 - p) * (1 / na + 1 / nb)), None
    if sd <= 0 or min(na, nb) < 1 or (paired and (na != nb or na < 2)) or na + nb < 3:
        raise ValueError(f"means need sd > 0 and n_a + n_b >= 3 (paired: one n >= 2), got {sd=}, {n=}.")
    return (sd / math.sqrt(na), na - 1.0) if paired else (sd * math.sqrt(1 / na + 1 / nb), na + nb - 2.0)


def min_detectable_difference(n: int | tuple[int, int], *, p: float = 0.5, sd: float | None = None,
                              alpha: float = 0.05, power: float = 0.8, paired: bool = False) -> float:
    """Smallest true difference a two-sided test at ``alpha`` detects with probability ``power``.

    ``n``: per group, ``(n_a, n_b)``, or pairs with ``paired``. Proportions
    (``sd=None``): both rates near ``p``, a z test with standard error
    ``sqrt(p (1 - p) (1/n_a + 1/n_b))``. Means: ``sd`` per sample (paired: of
    the differences), an exact t test (noncentral t). A smaller gap is no evidence.
    """
    _check(0.5, alpha, power)
    se, df = _design(n, p, sd, paired)
    hi = next(2.0**k for k in range(2, 60) if _power(2.0**k, alpha, df) >= power)  # nct fails at huge arguments
    return float(brentq(lambda x: _power(x, alpha, df) - power, 0.0, hi, xtol=1e-12) * se)


def required_n(delta: float, *, p: float = 0.5, sd: float | None = None, alpha: float = 0.05, power: float = 0.8,
               paired: bool = False) -> int:
    """Smallest ``n`` per group (pairs with ``paired``) whose :func:`min_detectable_difference` is <= ``|delta|``."""
    _check(0.5, alpha, power)
    if delta == 0:
        raise ValueError("delta must be non-zero.")

    def enough(m: int) -> bool:
        se, df = _design(m, p, sd, paired)
        return _power(abs(delta) / se, alpha, df) >= power

    lo = hi = 1 if sd is None else 2
    while not enough(hi):  # double, then bisect
        lo, hi = hi + 1, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid + 1, hi)
    return int(lo)


# ----------------------------------------------------------------------------- seeds
@dataclass(frozen=True)
class SeedSummary:
    """Mean and Student-t interval of one number over seeds (``low``/``high``: NaN for one seed)."""

    values: tuple[float, ...]
    mean: float
    std: float
    low: float
    high: float
    confidence: float = 0.95

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    @property
    def interval(self) -> Interval:
        return seed_interval(self.values, level=self.confidence)

    def __str__(self) -> str:
        return f"{self.mean:.3f} (1 seed)" if self.n < 2 else f"{self.mean:.3f} ± {self.half_width:.3f}"


def summarize(values: Sequence[float], *, confidence: float = 0.95) -> SeedSummary:
    """Mean, sample standard deviation and Student-t interval ``mean ± t * std / sqrt(n)`` (:func:`seed_interval`)."""
    iv = seed_interval(values, level=confidence)
    sd, low, high = (math.nan,) * 3 if iv.n < 2 else (float(np.std(iv.draws, ddof=1)), iv.low, iv.high)
    return SeedSummary(tuple(iv.draws.tolist()), iv.estimate, sd, low, high, confidence)


@dataclass(frozen=True)
class SeedRuns:
    """The raw results of :func:`run_seeds` and the summary of the measured number."""

    seeds: tuple[int, ...]
    results: list[Any]
    summary: SeedSummary

    def __str__(self) -> str:
        return str(self.summary)


def run_seeds(fn: Callable[[int], Any], seeds: Sequence[int] | int, *,
              value: str | Callable[[Any], float] | None = None, confidence: float = 0.95) -> SeedRuns:
    """Call ``fn(seed)`` for each seed and summarise one number over the runs.

    ``seeds``: the seeds, or a count ``k`` for ``0 .. k-1``. ``value`` reads the
    number from a result: a key or attribute name, a function, or ``None`` (the result is it).
    """
    seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)
    results = [fn(s) for s in seeds]

    def read(r: Any) -> float:
        r = (r[value] if isinstance(r, Mapping) else getattr(r, value)) if isinstance(value, str) else r
        return float(value(r) if callable(value) else r)

    return SeedRuns(seeds, results, summarize([read(r) for r in results], confidence=confidence))
