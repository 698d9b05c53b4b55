"""Face verification by group: within-group pairs, FMR / FNMR per group, impostor pairs without identities, permutation tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from fairlearn.metrics import (
    MetricFrame,
    count,
    false_negative_rate,
    false_positive_rate,
)

from course_utils.arrays import labels_1d, to_numpy
from course_utils.evaluation import (
    VerificationPairs,
    threshold_at_far,
    verification_pairs,
)
from course_utils.fairness._common import _order
from course_utils.stats import PermutationTest, percentile_bounds

__all__ = [
    "within_group_pairs",
    "threshold_at_fmr",
    "per_group_thresholds",
    "verification_by_group",
    "within_cell_pairs",
    "pair_distances",
    "image_bootstrap_counts",
    "impostor_fmr",
    "distance_threshold_at_fmr",
    "fmr_by_group",
    "fmr_permutation_test",
]


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
        ``(pairs, pair_groups)``: :class:`~course_utils.evaluation.VerificationPairs`
        with indices into the full set, and the ``(P,)`` group of each pair.
    """
    lab = to_numpy(labels)
    g = labels_1d(groups, n=lab.size)
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
    """NIST's name for :func:`course_utils.evaluation.threshold_at_far`: the lowest threshold with FMR <= ``fmr``.

    A pair is accepted when ``score >= threshold``. With ``n`` impostor
    scores sorted from the highest, ``s_0 >= s_1 >= ...``, and
    ``k = floor(fmr * n)``, the threshold is the next float above ``s_k``.
    """
    return threshold_at_far(scores, same, far=fmr)


def per_group_thresholds(scores: Any, same: Any, pair_groups: Any, fmr: float) -> dict[Any, float]:
    """``{group: threshold_at_fmr(...)}`` on each group's pairs: every group gets the same FMR."""
    s, y = to_numpy(scores), to_numpy(same).astype(bool)
    g = labels_1d(pair_groups, n=s.size)
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
    s, y = to_numpy(scores).astype(np.float64), to_numpy(same).astype(bool)
    g = labels_1d(pair_groups, n=s.size)
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
    c = labels_1d(cells)
    ids = None if identities is None else labels_1d(identities, n=c.size)
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
    x = to_numpy(embeddings).astype(np.float64)
    f, s = to_numpy(first).astype(np.int64), to_numpy(second).astype(np.int64)
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
    s = labels_1d(strata)
    rng = np.random.default_rng(seed)
    out = np.zeros((n_boot, s.size), dtype=np.int32)
    for name in _order(s, None):
        m = np.flatnonzero(s == name)
        draws = rng.integers(0, m.size, size=(n_boot, m.size))
        flat = (np.arange(n_boot)[:, None] * m.size + draws).ravel()
        out[:, m] = np.bincount(flat, minlength=n_boot * m.size).reshape(n_boot, m.size)
    return out


def _pair_codes(pair_groups: Any, n: int, order: Sequence[Any] | None) -> tuple[list[Any], np.ndarray]:
    g = labels_1d(pair_groups, n=n)
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
    d = to_numpy(distances).astype(np.float64)
    f, s = to_numpy(first).astype(np.int64), to_numpy(second).astype(np.int64)
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
    d = to_numpy(distances).astype(np.float64)
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
        f, s = to_numpy(first).astype(np.int64), to_numpy(second).astype(np.int64)
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

    d = to_numpy(distances).astype(np.float64)
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

    x = torch.as_tensor(to_numpy(embeddings), dtype=torch.float64)
    g = labels_1d(groups, n=x.shape[0])
    st = np.zeros(g.size, dtype=np.int64) if strata is None else pd.factorize(labels_1d(strata, n=g.size))[0]
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
