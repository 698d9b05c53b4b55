"""Who is in the data: composition tables, published compositions, equal-size skewed and balanced subsets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from course_utils.arrays import labels_1d

__all__ = [
    "PublishedComposition",
    "published_compositions",
    "composition_table",
    "group_quotas",
    "sample_by_quota",
    "skewed_and_balanced",
    "PUBLISHED_COMPOSITIONS",
]


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
    g = labels_1d(groups)
    s = np.zeros(g.size, dtype=np.int64) if strata is None else labels_1d(strata, n=g.size)
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
    names = sorted(pd.unique(labels_1d(groups)).tolist(), key=str)
    return {
        "skewed": sample_by_quota(groups, group_quotas(names, size, dominant=dominant, dominant_share=dominant_share),
                                  strata=strata, seed=seed),
        "balanced": sample_by_quota(groups, group_quotas(names, size), strata=strata, seed=seed + 1),
    }
