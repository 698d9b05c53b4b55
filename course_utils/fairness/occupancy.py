"""How groups occupy the embedding space: spread, k-NN and impostor distances, PCA log-determinants, with intervals; a 2-D UMAP."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from course_utils.arrays import labels_1d, to_numpy
from course_utils.evaluation import project
from course_utils.fairness._common import _order
from course_utils.fairness.verification import image_bootstrap_counts
from course_utils.stats import percentile_bounds

__all__ = [
    "occupancy_stats",
    "occupancy_bootstrap",
    "umap_2d",
    "OCCUPANCY_STATS",
    "OCCUPANCY_BOOTSTRAP_STATS",
]


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
    x = torch.as_tensor(to_numpy(embeddings), dtype=torch.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got {tuple(x.shape)}.")
    g = labels_1d(groups, n=x.shape[0])
    ids = np.arange(g.size) if identities is None else labels_1d(identities, n=g.size)
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

    x = to_numpy(embeddings).astype(np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got {x.shape}.")
    if normalize:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    g = labels_1d(groups, n=x.shape[0])
    names = _order(g, order)
    st = g if strata is None else labels_1d(strata, n=g.size)
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




# ----------------------------------------------------------------------------- projection
def umap_2d(x: Any, *, n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "cosine",
            seed: int = 0) -> np.ndarray:
    """A 2-D UMAP projection ``(N, 2)``: :func:`course_utils.evaluation.project` with cosine distances.

    numba's compiled code is cached in ``cache_dir("numba")`` (the first call
    in a fresh cache compiles for tens of seconds); ``seed`` makes it
    deterministic; PyTorch's CPU thread count is kept.
    """
    return project(x, "umap", seed=seed, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric).coords
