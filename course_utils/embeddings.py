"""Embeddings: extract them, project them to 2-D, and measure what the projection keeps.

A 2-D picture of an embedding is persuasive and can mislead. This module
puts numbers next to the pictures:

* :func:`extract` runs any model over any data set, in batches, on the
  chosen device, and returns an :class:`EmbeddingSet`: the vectors
  ``(N, D)`` with their labels ``(N,)`` and the data set's group
  attributes (one row per image).
* :func:`project` maps ``(N, D)`` to ``(N, 2)`` with PCA, t-SNE or UMAP
  (umap-learn), with fixed seeds and sensible defaults; a
  :class:`ProjectionCache` keeps every fitted reducer, so a figure, an
  explorer and a later ``transform`` reuse it instead of refitting.
* UMAP is compiled by numba on first use (tens of seconds).
  :func:`configure_numba_cache` (called by :func:`import_umap`) points
  ``NUMBA_CACHE_DIR`` into the course cache, so the compiled code is kept
  on disk between sessions; :func:`numba_cache_files` counts what is there.
* :func:`separation_table`: leave-one-out k-NN accuracy and silhouette in the
  full space and in each 2-D projection, with each projection's
  trustworthiness (Venna and Kaski; :func:`sklearn.manifold.trustworthiness`).
* Retrieval: :func:`nearest_neighbours`, :func:`retrieval_precision`
  (leave-one-out precision@k) and a colour-histogram baseline
  (:func:`color_histograms`) for CNN features to beat.

:func:`projection_explorer` (sliders for UMAP ``n_neighbors`` / ``min_dist``
and t-SNE perplexity) is built on :func:`course_utils.widgets.interactive_figure`,
so it draws a static figure when no browser is attached.

Example::

    emb = extract(net, test_set, device="cpu")          # emb.vectors (N, D), emb.labels (N,)
    cache = ProjectionCache(emb.vectors, seed=0)
    xy = cache.get("umap", n_neighbors=15).coords       # (N, 2)
    separation_table(emb.vectors, {"UMAP": xy}, emb.labels)
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from course_utils.settings import cache_dir

__all__ = [
    "EmbeddingSet",
    "extract",
    "PROJECTION_DEFAULTS",
    "Projection",
    "project",
    "ProjectionCache",
    "configure_numba_cache",
    "numba_cache_files",
    "import_umap",
    "exact_knn",
    "silhouette",
    "trustworthiness",
    "knn_accuracy_2d",
    "separation_table",
    "nearest_neighbours",
    "retrieval_precision",
    "color_histograms",
    "angular_spread",
    "projection_explorer",
    "knn_correct",
    "retrieval_hits",
    "centre_distance_correlation",
    "separation_intervals",
    "photo_crops",
]

ArrayLike = Any


def _np2d(x: ArrayLike, name: str = "x") -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    a = a.astype(np.float64, copy=False)
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D); got {a.shape}.")
    return a


def _labels(labels: ArrayLike, n: int) -> np.ndarray:
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},); got {y.shape}.")
    return y


# --------------------------------------------------------------------------
# extraction
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddingSet:
    """Embeddings with what is known about each image.

    Attributes:
        vectors: float32 ``(N, D)``.
        labels: int64 ``(N,)`` (identities or classes).
        groups: one row per image: the data set's group attributes (may have no columns).
        name: what produced them (a model name), for tables and titles.
    """

    vectors: np.ndarray
    labels: np.ndarray
    groups: pd.DataFrame = field(default_factory=pd.DataFrame)
    name: str = ""

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.labels.shape != (self.vectors.shape[0],):
            raise ValueError(f"EmbeddingSet: vectors (N, D) and labels (N,) expected; got "
                             f"{self.vectors.shape} and {self.labels.shape}.")
        if len(self.groups) not in (0, len(self.labels)) or (len(self.groups) == 0 and len(self.groups.columns)):
            raise ValueError(f"EmbeddingSet: groups has {len(self.groups)} rows; expected {len(self.labels)}.")

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        """D, the embedding size."""
        return int(self.vectors.shape[1])

    def subset(self, indices: ArrayLike) -> EmbeddingSet:
        """The rows ``indices`` (an index array or a boolean mask)."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        groups = self.groups.iloc[idx].reset_index(drop=True) if len(self.groups) else self.groups
        return EmbeddingSet(self.vectors[idx], self.labels[idx], groups, self.name)

    def normalized(self) -> EmbeddingSet:
        """The same set with unit-norm rows (cosine similarity becomes a dot product)."""
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        return EmbeddingSet((self.vectors / np.maximum(norms, 1e-12)).astype(np.float32), self.labels, self.groups,
                            self.name)


def _group_frame(data: Any, n: int) -> pd.DataFrame:
    ds = data.dataset if isinstance(data, DataLoader) else data
    attributes = getattr(ds, "attributes", None)
    if not isinstance(attributes, pd.DataFrame) or len(attributes) != n:
        return pd.DataFrame(index=pd.RangeIndex(n))
    columns = list(getattr(ds, "group_columns", ())) or list(attributes.columns)
    return attributes.loc[:, columns].reset_index(drop=True)


def extract(
    model: nn.Module,
    data: DataLoader | Dataset,
    *,
    device: str | torch.device | None = None,
    batch_size: int = 256,
    forward_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
    name: str = "",
) -> EmbeddingSet:
    """Embed every image of ``data`` in eval mode, in batches, on ``device``.

    Args:
        model: maps images ``(B, C, H, W)`` to ``(B, D)`` (or a feature map,
            which is average-pooled to ``(B, C')``).
        data: a data set of ``(image, label)`` items (read in order) or a
            ``DataLoader`` over one (keep ``shuffle=False`` so rows match the
            data set's attributes).
        device: ``None`` picks CUDA, then MPS, then CPU.
        batch_size: used when ``data`` is a data set.
        forward_fn: ``forward_fn(model, images) -> (B, D)`` instead of
            ``model(images)``, e.g. ``lambda m, x: m.pooled_features(x)``.
        name: stored on the result.

    Returns:
        An :class:`EmbeddingSet` with ``N = len(data)`` rows and the data
        set's group columns (all of ``attributes`` when it names none).
    """
    from course_utils.models.embedding import extract_embeddings

    def pooled(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        out = forward_fn(m, x) if forward_fn is not None else m(x)
        return out.mean(dim=(2, 3)) if out.ndim == 4 else out

    vectors, labels = extract_embeddings(model, data, device=device, batch_size=batch_size, forward_fn=pooled)
    n = vectors.shape[0]
    return EmbeddingSet(vectors.float().numpy(), labels.numpy().astype(np.int64), _group_frame(data, n), name)


# --------------------------------------------------------------------------
# numba / UMAP
# --------------------------------------------------------------------------


def configure_numba_cache(path: str | Path | None = None, *, threading_layer: str | None = "workqueue") -> Path:
    """Keep numba's compiled code (UMAP, pynndescent) on disk, and keep numba's threads from idling hot.

    Sets ``NUMBA_CACHE_DIR`` (unless it is set already and ``path`` is
    ``None``) to ``cache_dir("numba")``. Call it before ``import umap``;
    if numba is already imported, its configuration is updated too.

    It also picks numba's ``workqueue`` threading layer (unless
    ``NUMBA_THREADING_LAYER`` is set, or numba is already imported): numba's
    default OpenMP workers keep spinning after UMAP returns and, on a
    two-core machine, slowed the PyTorch training that followed UMAP several
    times over. ``threading_layer=None`` leaves numba's choice alone.

    Returns:
        The directory numba caches into.
    """
    if path is None and os.environ.get("NUMBA_CACHE_DIR"):
        target = Path(os.environ["NUMBA_CACHE_DIR"])
    else:
        target = Path(path) if path is not None else cache_dir("numba")
    target.mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(target)
    if threading_layer and "numba" not in sys.modules:
        os.environ.setdefault("NUMBA_THREADING_LAYER", threading_layer)
    if "numba" in sys.modules:
        import numba

        numba.config.CACHE_DIR = str(target)
    return target


def numba_cache_files(path: str | Path | None = None) -> int:
    """How many compiled-function index files (``*.nbi``) the numba cache holds."""
    root = Path(path) if path is not None else Path(os.environ.get("NUMBA_CACHE_DIR") or cache_dir("numba"))
    return sum(1 for _ in root.rglob("*.nbi")) if root.is_dir() else 0


def import_umap() -> Any:
    """``import umap`` after :func:`configure_numba_cache`, with umap's own numba functions cached on disk.

    umap-learn (0.5) compiles its functions without numba's ``cache=True``,
    so every new kernel compiled them again (most of a first projection's
    time once the neighbours come from :func:`exact_knn`); caching is
    switched on for each of them here, before their first call.

    Returns:
        The ``umap`` module (raises ImportError with a fix when it is missing).
    """
    configure_numba_cache()
    try:
        import umap
    except ImportError as err:  # pragma: no cover - umap-learn is a course dependency
        raise ImportError("UMAP needs the umap-learn package: pip install umap-learn") from err
    _cache_numba_functions("umap.umap_", "umap.layouts", "umap.utils", "umap.distances", "umap.sparse")
    return umap


def _cache_numba_functions(*module_names: str) -> int:
    """Turn on numba's on-disk cache for the not yet compiled jitted functions of these modules; return how many."""
    try:
        from numba.core.caching import NullCache
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # pragma: no cover - numba comes with umap-learn
        return 0
    count = 0
    for name in module_names:
        module = sys.modules.get(name)
        for obj in vars(module).values() if module is not None else ():
            if isinstance(obj, Dispatcher) and isinstance(obj._cache, NullCache) and not obj.overloads:
                try:
                    obj.enable_caching()
                    count += 1
                except Exception:  # noqa: BLE001, S112 - a function numba cannot cache is compiled as before
                    continue
    return count


#: Metrics that scikit-learn's exact neighbour search shares with UMAP (same names, same distances).
_SKLEARN_KNN_METRICS = frozenset({"euclidean", "l2", "manhattan", "l1", "cityblock", "cosine", "chebyshev"})


def exact_knn(x: np.ndarray, *, n_neighbors: int, metric: str = "euclidean") -> tuple[np.ndarray, np.ndarray] | None:
    """Exact nearest neighbours with scikit-learn, in UMAP's ``precomputed_knn`` format.

    Why: at 4,096 points and more UMAP finds neighbours with pynndescent,
    whose numba code costs compilation (or cache loading) in every new
    kernel; numba's cache is fragile upstream. An exact brute-force search
    of 10,000 points compiles nothing and takes about a second.

    Args:
        x: points, float32 ``(N, D)``.
        n_neighbors: neighbours per point, the point itself first.
        metric: a metric name both libraries know; others return ``None``.

    Returns:
        ``(indices int64 (N, k), distances float32 (N, k))`` or ``None``.
    """
    if not isinstance(metric, str) or metric not in _SKLEARN_KNN_METRICS:
        return None
    from sklearn.neighbors import NearestNeighbors

    nn_index = NearestNeighbors(n_neighbors=n_neighbors, metric=metric, algorithm="brute").fit(x)
    dists, idx = nn_index.kneighbors(x)  # querying the training points: each finds itself first (distance 0)
    return idx.astype(np.int64), dists.astype(np.float32)


def _ensure_umap_search_index(model: Any) -> None:
    """Build the pynndescent index ``UMAP.transform`` needs when the fit used :func:`exact_knn` (only then)."""
    if getattr(model, "_small_data", True) or getattr(model, "_knn_search_index", None) is not None:
        return
    from pynndescent import NNDescent

    raw = model._raw_data
    model._knn_search_index = NNDescent(
        raw, n_neighbors=model._n_neighbors, metric=model._input_distance_func if callable(model.metric) else model.metric,
        random_state=model.random_state, n_trees=min(64, 5 + int(round(raw.shape[0] ** 0.5 / 20.0))),
        n_iters=max(5, int(round(np.log2(raw.shape[0])))), max_candidates=60, n_jobs=1, compressed=False,
    )


# --------------------------------------------------------------------------
# projections
# --------------------------------------------------------------------------

#: The defaults of each method (overridden by keyword arguments of :func:`project`).
PROJECTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "pca": {},
    "tsne": {"perplexity": 30.0, "init": "pca", "learning_rate": "auto", "metric": "euclidean"},
    "umap": {"n_neighbors": 15, "min_dist": 0.1, "metric": "euclidean"},
}
_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


@dataclass(frozen=True)
class Projection:
    """A fitted 2-D (or k-D) projection.

    Attributes:
        method: ``"pca"``, ``"tsne"`` or ``"umap"``.
        coords: ``(N, n_components)``.
        params: the parameters used (defaults filled in).
        seconds: fitting time.
        model: the fitted reducer (``sklearn`` PCA / TSNE or ``umap.UMAP``);
            PCA and UMAP can ``transform`` new points, t-SNE cannot.
    """

    method: str
    coords: np.ndarray
    params: dict[str, Any]
    seconds: float
    model: Any = field(repr=False, default=None)

    @property
    def label(self) -> str:
        """A short name for titles: ``"UMAP (n_neighbors=15, min_dist=0.1)"``."""
        shown = {k: v for k, v in self.params.items() if k in ("perplexity", "n_neighbors", "min_dist")}
        inner = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
        return f"{_NAMES[self.method]}" + (f" ({inner})" if inner else "")

    def transform(self, x: ArrayLike) -> np.ndarray:
        """Place new points ``(M, D)`` in the fitted map ``(M, n_components)`` (PCA and UMAP only)."""
        if self.method == "tsne":
            raise ValueError("t-SNE has no transform for new points: refit on all of them (or use PCA/UMAP).")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if self.method == "umap":
                _ensure_umap_search_index(self.model)
            return np.asarray(self.model.transform(_np2d(x).astype(np.float32)), dtype=np.float64)


def project(x: ArrayLike, method: str = "umap", *, n_components: int = 2, seed: int = 0,
            threads: int | None = -1, **params: Any) -> Projection:
    """Project ``(N, D)`` points to ``(N, n_components)``, reproducibly.

    Args:
        x: the points.
        method: ``"pca"``, ``"tsne"`` (scikit-learn) or ``"umap"`` (umap-learn).
        n_components: output dimension.
        seed: ``random_state`` of the method (UMAP then runs single-threaded,
            which is what makes it reproducible).
        **params: method parameters, e.g. ``perplexity=10`` or
            ``n_neighbors=5, min_dist=0.5`` (see :data:`PROJECTION_DEFAULTS`).
            t-SNE's perplexity is capped at ``(N - 1) / 3``.
        threads: limit the OpenMP / BLAS threads of the fit (``threadpoolctl``).
            The default ``-1`` means one thread up to 5,000 points: on small
            data the threads only wait for each other, and scikit-learn's
            OpenMP runtime competing with PyTorch's made a 30-point t-SNE
            take seconds instead of a tenth of one. ``None``: no limit.

    Returns:
        A :class:`Projection`.
    """
    method = method.lower().replace("-", "")
    if method not in PROJECTION_DEFAULTS:
        raise ValueError(f"method={method!r}; use one of {sorted(PROJECTION_DEFAULTS)}.")
    a = _np2d(x)
    if a.shape[0] < 3:
        raise ValueError(f"project needs at least 3 points, got {a.shape[0]}.")
    unknown = set(params) - set(PROJECTION_DEFAULTS[method]) - {"n_epochs", "early_exaggeration", "max_iter",
                                                                 "whiten", "spread", "angle"}
    if unknown:
        raise ValueError(f"{method}: unknown parameters {sorted(unknown)}; "
                         f"known: {sorted(PROJECTION_DEFAULTS[method])}.")
    p = {**PROJECTION_DEFAULTS[method], **params}
    if threads == -1:
        threads = 1 if a.shape[0] <= 5000 else None
    torch_threads = torch.get_num_threads()
    try:
        with _thread_limit(threads):
            return _fit(a, method, n_components, seed, p)
    finally:
        # umap/numba can reset the OpenMP thread count PyTorch uses; small-network
        # training after a projection then ran many times slower (measured 20x on 2 cores)
        torch.set_num_threads(torch_threads)


def _thread_limit(threads: int | None) -> Any:
    import contextlib

    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def _fit(a: np.ndarray, method: str, n_components: int, seed: int, p: dict[str, Any]) -> Projection:
    t0 = time.perf_counter()
    if method == "pca":
        from sklearn.decomposition import PCA

        model = PCA(n_components=n_components, random_state=seed, **p)
        coords = model.fit_transform(a)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        p["perplexity"] = float(min(p["perplexity"], (a.shape[0] - 1) / 3))
        model = TSNE(n_components=n_components, random_state=seed, **p)
        coords = model.fit_transform(a)
    else:
        umap = import_umap()
        p["n_neighbors"] = int(min(p["n_neighbors"], a.shape[0] - 1))
        data = a.astype(np.float32)
        knn = exact_knn(data, n_neighbors=p["n_neighbors"], metric=p["metric"]) if a.shape[0] >= 4096 else None
        extra = {"precomputed_knn": knn} if knn is not None else {}
        model = umap.UMAP(n_components=n_components, random_state=seed, n_jobs=1, **p, **extra)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "n_jobs overridden by random_state", "no search index"
            coords = model.fit_transform(data)
    return Projection(method, np.asarray(coords, dtype=np.float64), p, time.perf_counter() - t0, model)


class ProjectionCache:
    """Fit each (method, parameters) projection of one set of points once, and reuse it.

    ``cache.get("umap", n_neighbors=15)`` fits on the first call and
    returns the same :class:`Projection` afterwards, so a figure, the
    explorer's first frame and a table all share one fit.

    Args:
        x: the points ``(N, D)``.
        seed: passed to :func:`project`.
    """

    def __init__(self, x: ArrayLike, *, seed: int = 0) -> None:
        self.x = _np2d(x)
        self.seed = seed
        self._fits: dict[tuple[Any, ...], Projection] = {}
        self.hits = 0

    @staticmethod
    def _key(method: str, params: Mapping[str, Any]) -> tuple[Any, ...]:
        method = method.lower().replace("-", "")
        full = {**PROJECTION_DEFAULTS.get(method, {}), **params}
        return (method, *sorted((k, float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                                for k, v in full.items()))

    def get(self, method: str, **params: Any) -> Projection:
        """The projection with these parameters (fitted now if it is new)."""
        key = self._key(method, params)
        if key in self._fits:
            self.hits += 1
            return self._fits[key]
        fit = project(self.x, method, seed=self.seed, **params)
        self._fits[key] = fit
        return fit

    def __len__(self) -> int:
        return len(self._fits)

    def __contains__(self, item: tuple[str, Mapping[str, Any]]) -> bool:
        method, params = item
        return self._key(method, params) in self._fits


# --------------------------------------------------------------------------
# what a projection keeps
# --------------------------------------------------------------------------


def silhouette(x: ArrayLike, labels: ArrayLike, *, metric: str = "euclidean") -> float:
    """Mean silhouette ``(b - a) / max(a, b)`` over points (scikit-learn's ``silhouette_score``).

    ``a``: mean distance to the other points of the same label; ``b``: mean
    distance to the nearest other label. +1: tight, well separated
    clusters; 0: overlapping; negative: points closer to another label.
    """
    from sklearn.metrics import silhouette_score

    a = _np2d(x)
    return float(silhouette_score(a, _labels(labels, a.shape[0]), metric=metric))


def trustworthiness(x_high: ArrayLike, x_low: ArrayLike, *, n_neighbors: int = 5, metric: str = "euclidean") -> float:
    """How far the projection avoids *false* neighbours (scikit-learn's ``trustworthiness``).

    1 when every point's ``n_neighbors`` nearest neighbours in 2-D were
    also among its nearest in the full space; lower when the picture puts
    together points that were far apart. ``metric`` is the full space's.
    """
    from sklearn.manifold import trustworthiness as tw

    hi, lo = _np2d(x_high, "x_high"), _np2d(x_low, "x_low")
    if hi.shape[0] != lo.shape[0]:
        raise ValueError(f"x_high and x_low must have the same rows; got {hi.shape[0]} and {lo.shape[0]}.")
    return float(tw(hi, lo, n_neighbors=n_neighbors, metric=metric))


def knn_accuracy_2d(x: ArrayLike, labels: ArrayLike, *, k: int = 5) -> float:
    """Leave-one-out k-NN accuracy with Euclidean distances (as in a scatter plot)."""
    from course_utils.metrics import knn_accuracy

    return knn_accuracy(_np2d(x), labels, k=k, metric="l2")


def separation_table(
    x: ArrayLike,
    projections: Mapping[str, ArrayLike | Projection],
    labels: ArrayLike,
    *,
    k: int = 5,
    n_neighbors: int = 5,
    full_name: str | None = None,
) -> pd.DataFrame:
    """Do the identities separate? The same numbers in the full space and in each projection.

    Args:
        x: the embeddings ``(N, D)``.
        projections: name -> ``(N, 2)`` coordinates (or a :class:`Projection`).
        labels: ``(N,)``.
        k: neighbours of the leave-one-out k-NN vote.
        n_neighbors: neighbourhood size of the trustworthiness.
        full_name: the row name of the full space (default ``"full (D-d)"``).

    Returns:
        One row per space: ``dims``, ``knn_acc`` (Euclidean, leave-one-out),
        ``silhouette`` (Euclidean), ``trustworthiness`` (NaN for the full space).
    """
    a = _np2d(x)
    y = _labels(labels, a.shape[0])
    rows = {full_name or f"full ({a.shape[1]}-d)": {
        "dims": a.shape[1], "knn_acc": knn_accuracy_2d(a, y, k=k), "silhouette": silhouette(a, y),
        "trustworthiness": np.nan}}
    for name, proj in projections.items():
        xy = proj.coords if isinstance(proj, Projection) else _np2d(proj)
        rows[name] = {"dims": xy.shape[1], "knn_acc": knn_accuracy_2d(xy, y, k=k), "silhouette": silhouette(xy, y),
                      "trustworthiness": trustworthiness(a, xy, n_neighbors=n_neighbors)}
    return pd.DataFrame(rows).T.astype({"dims": int, "knn_acc": float, "silhouette": float,
                                        "trustworthiness": float})


def angular_spread(x: ArrayLike, labels: ArrayLike) -> float:
    """Mean angle (degrees) between each point and its class's mean direction."""
    a = _np2d(x)
    y = _labels(labels, a.shape[0])
    u = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    angles = np.empty(a.shape[0])
    for c in np.unique(y):
        m = y == c
        centre = u[m].mean(0)
        centre /= max(np.linalg.norm(centre), 1e-12)
        angles[m] = np.degrees(np.arccos(np.clip(u[m] @ centre, -1.0, 1.0)))
    return float(angles.mean())


# --------------------------------------------------------------------------
# retrieval
# --------------------------------------------------------------------------

_RETRIEVAL_METRICS = ("cosine", "euclidean", "intersection", "chi2")


def _distance_matrix(q: np.ndarray, g: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        gn = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
        return 1.0 - qn @ gn.T
    if metric == "euclidean":
        d2 = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2 * q @ g.T
        return np.sqrt(np.maximum(d2, 0.0))
    if metric == "intersection":  # histograms: 1 - sum_b min(h_b, h'_b) (0 for identical normalised histograms)
        return 1.0 - np.minimum(q[:, None, :], g[None, :, :]).sum(-1)
    if metric == "chi2":  # 0.5 sum_b (h_b - h'_b)^2 / (h_b + h'_b)
        s = q[:, None, :] + g[None, :, :]
        diff = (q[:, None, :] - g[None, :, :]) ** 2
        return 0.5 * np.where(s > 0, diff / np.where(s > 0, s, 1.0), 0.0).sum(-1)
    raise ValueError(f"metric={metric!r}; use one of {_RETRIEVAL_METRICS}.")


def nearest_neighbours(
    queries: ArrayLike,
    gallery: ArrayLike | None = None,
    *,
    k: int = 5,
    metric: str = "cosine",
    leave_out_self: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest gallery items of each query.

    Args:
        queries: ``(Q, D)`` features.
        gallery: ``(G, D)``; ``None`` searches the queries themselves.
        k: neighbours per query.
        metric: ``"cosine"`` / ``"euclidean"`` (features) or
            ``"intersection"`` / ``"chi2"`` (histograms).
        leave_out_self: never return gallery item ``i`` for query ``i``
            (query ``i`` is item ``i``, or a modified copy of it; needs
            ``Q == G``). Default: only when ``gallery`` is ``None``.

    Returns:
        ``(indices, distances)``, each ``(Q, k)``, nearest first (ties: lower index first).
    """
    q = _np2d(queries, "queries")
    g = q if gallery is None else _np2d(gallery, "gallery")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} features, the gallery {g.shape[1]}.")
    leave_out = gallery is None if leave_out_self is None else leave_out_self
    if leave_out and q.shape[0] != g.shape[0]:
        raise ValueError(f"leave_out_self needs as many queries as gallery items; got {q.shape[0]} and {g.shape[0]}.")
    available = g.shape[0] - (1 if leave_out else 0)
    if not 1 <= k <= available:
        raise ValueError(f"k={k} must be between 1 and {available}.")
    d = _distance_matrix(q, g, metric)
    if leave_out:
        np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, axis=1)


def retrieval_precision(features: ArrayLike, labels: ArrayLike, *, k: int = 5, metric: str = "cosine",
                        queries: ArrayLike | None = None) -> float:
    """Leave-one-out precision@k: each item queries all others; the mean share of its top ``k`` with its label.

    Args:
        features: the gallery ``(N, D)``.
        labels: ``(N,)``.
        k: retrieved items per query.
        metric: see :func:`nearest_neighbours`.
        queries: ``(N, D)`` features of modified copies of the items (e.g.
            relit photos) to query with instead; query ``i`` still never
            retrieves item ``i``.
    """
    return float(np.mean(retrieval_hits(features, labels, k=k, metric=metric, queries=queries)))


def color_histograms(images: ArrayLike, *, bins: int = 8) -> np.ndarray:
    """The joint colour histogram of each image, normalised to sum to 1: a pre-CNN retrieval feature.

    Args:
        images: ``(N, C, H, W)``, floats in ``[0, 1]`` or ``uint8``; ``C`` = 1
            (grey: a ``bins``-bin intensity histogram) or 3 (a ``bins**3`` RGB histogram).
        bins: bins per channel.

    Returns:
        float64 ``(N, bins ** C)``; bin index ``sum_c b_c * bins ** (C - 1 - c)``.
    """
    t = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if t.ndim != 4 or t.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, 1 or 3, H, W); got {tuple(t.shape)}.")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}.")
    x = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    b = (x.clamp(0, 1) * bins).long().clamp_(max=bins - 1)  # (N, C, H, W) bin of each channel
    code = torch.zeros_like(b[:, 0])
    for c in range(b.shape[1]):
        code = code * bins + b[:, c]
    n, n_bins = code.shape[0], bins ** b.shape[1]
    flat = code.reshape(n, -1)
    hist = torch.zeros(n, n_bins, dtype=torch.float64)
    hist.scatter_add_(1, flat, torch.ones_like(flat, dtype=torch.float64))
    return (hist / flat.shape[1]).numpy()


# --------------------------------------------------------------------------
# the projection explorer
# --------------------------------------------------------------------------


def projection_explorer(
    cache: ProjectionCache,
    labels: ArrayLike,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    perplexity: float = 30.0,
    k: int = 5,
    static: bool | None = None,
    figsize: tuple[float, float] = (11, 4.6),
) -> Any:
    """Sliders for UMAP ``n_neighbors`` / ``min_dist`` and t-SNE perplexity, with the numbers beside the map.

    Each redraw shows the UMAP and the t-SNE map of ``cache``'s points,
    coloured by ``labels``, and a text line with each map's 2-D k-NN
    accuracy, silhouette and trustworthiness. Fits go through ``cache``:
    values seen before (the first frame, if the notebook already fitted
    the defaults) cost nothing. Headless, it draws once (see
    :func:`course_utils.widgets.interactive_figure`).

    Returns:
        The :class:`course_utils.widgets.Explorer`.
    """
    import ipywidgets as W

    from course_utils.plots import plot_embedding_2d
    from course_utils.widgets import interactive_figure

    y = _labels(labels, cache.x.shape[0])
    n = cache.x.shape[0]

    def render(fig: Any, *, n_neighbors: int, min_dist: float, perplexity: float) -> str:
        u = cache.get("umap", n_neighbors=int(n_neighbors), min_dist=float(min_dist))
        t = cache.get("tsne", perplexity=float(perplexity))
        axes = fig.subplots(1, 2)
        parts = []
        for ax, proj in zip(axes, (u, t)):
            acc = knn_accuracy_2d(proj.coords, y, k=k)
            tw = trustworthiness(cache.x, proj.coords)
            sil = silhouette(proj.coords, y)
            plot_embedding_2d(proj.coords, y, ax=ax, title=f"{proj.label}\n{k}-NN acc {acc:.2f}, trust {tw:.3f}")
            parts.append(f"{_NAMES[proj.method]}: {k}-NN acc {acc:.3f}, silhouette {sil:.3f}, "
                         f"trustworthiness {tw:.3f} ({proj.seconds:.1f} s)")
        return " | ".join(parts)

    controls = {
        "n_neighbors": W.IntSlider(value=n_neighbors, min=2, max=max(3, min(100, n - 1)), description="n_neighbors",
                                   continuous_update=False),
        "min_dist": W.FloatSlider(value=min_dist, min=0.0, max=0.99, step=0.05, description="min_dist",
                                  continuous_update=False),
        "perplexity": W.FloatSlider(value=perplexity, min=2.0, max=max(3.0, min(100.0, (n - 1) / 3)), step=1.0,
                                    description="perplexity", continuous_update=False),
    }
    return interactive_figure(render, controls, figsize=figsize, static=static,
                              title="UMAP and t-SNE: move a slider, watch the map and its numbers")


# --------------------------------------------------------------------------
# per-item numbers for intervals, and a real retrieval pool
# --------------------------------------------------------------------------


def knn_correct(x: ArrayLike, labels: ArrayLike, *, k: int = 5) -> np.ndarray:
    """Per item: is the leave-one-out ``k``-NN majority vote (Euclidean) its own label?

    The mean is :func:`knn_accuracy_2d` (ties go to the smallest label);
    per item, it can be bootstrapped (resample people, not images).

    Returns:
        ``bool`` array ``(N,)``.
    """
    a = _np2d(x)
    y = _labels(labels, a.shape[0])
    classes, codes = np.unique(y, return_inverse=True)
    idx, _ = nearest_neighbours(a, k=k, metric="euclidean")
    votes = np.zeros((a.shape[0], classes.size), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(a.shape[0]), k), codes[idx].ravel()), 1)
    return votes.argmax(axis=1) == codes


def retrieval_hits(features: ArrayLike, labels: ArrayLike, *, k: int = 5, metric: str = "cosine",
                   queries: ArrayLike | None = None) -> np.ndarray:
    """Per query, the share of its ``k`` retrieved items with its label: ``(N,)``; the mean is :func:`retrieval_precision`."""
    a = _np2d(features, "features")
    y = _labels(labels, a.shape[0])
    if queries is None:
        idx, _ = nearest_neighbours(a, k=k, metric=metric)
    else:
        idx, _ = nearest_neighbours(queries, a, k=k, metric=metric, leave_out_self=True)
    return np.mean(y[idx] == y[:, None], axis=1)


def centre_distance_correlation(x: ArrayLike, xy: ArrayLike, labels: ArrayLike) -> float:
    """Spearman correlation of the distances between label centres in ``x`` ``(N, D)`` and in ``xy`` ``(N, 2)``.

    1: the picture orders the distances between people as the full space
    does; near 0: the layout of the clusters says nothing about it.
    """
    from scipy.spatial.distance import pdist
    from scipy.stats import spearmanr

    a, b = _np2d(x, "x"), _np2d(xy, "xy")
    y = _labels(labels, a.shape[0])
    ids = np.unique(y)
    if ids.size < 3:
        raise ValueError(f"need at least 3 labels for a rank correlation of their distances, got {ids.size}.")
    full = pdist(np.stack([a[y == i].mean(0) for i in ids]))
    flat = pdist(np.stack([b[y == i].mean(0) for i in ids]))
    return float(spearmanr(full, flat)[0])


def separation_intervals(x: ArrayLike, labels: ArrayLike, *, identities: ArrayLike | None = None, k: int = 5,
                         n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """k-NN accuracy and silhouette with identity-level bootstrap intervals (people resampled, not images).

    The per-item values (:func:`knn_correct`, scikit-learn's
    ``silhouette_samples``) are computed once on all items; each replicate
    averages them over a resample of people (:func:`course_utils.stats.identity_bootstrap`).
    Two calls with the same ``identities``, ``n_boot`` and ``seed`` give paired
    intervals, so :func:`course_utils.stats.compare` can compare embedders.

    Args:
        x: ``(N, D)``; labels: ``(N,)``; identities: ``(N,)`` person of each
            item (default: the labels).

    Returns:
        ``{"knn_acc": Interval, "silhouette": Interval}``.
    """
    from sklearn.metrics import silhouette_samples

    from course_utils.stats import identity_bootstrap

    a = _np2d(x)
    y = _labels(labels, a.shape[0])
    ids = y if identities is None else _labels(identities, a.shape[0])
    per_item = {"knn_acc": knn_correct(a, y, k=k).astype(np.float64), "silhouette": silhouette_samples(a, y)}
    return {name: identity_bootstrap(np.mean, v, identities=ids, n_boot=n_boot, seed=seed, level=level)
            for name, v in per_item.items()}


def photo_crops(photos: Mapping[str, np.ndarray], *, per_photo: int = 8, size: int = 96, min_scale: float = 0.3,
                max_scale: float = 0.7, seed: int = 0) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """Random square crops of real photos: a retrieval pool whose label is the photo a crop came from.

    Each crop has a side of ``min_scale``..``max_scale`` of the photo's shorter
    side, a random position, a random horizontal flip, and is resized to
    ``size``. Grey photos are repeated to RGB.

    Args:
        photos: ``name -> (H, W)`` or ``(H, W, 3)`` arrays, float in ``[0, 1]`` or ``uint8``.

    Returns:
        ``(images uint8 (N, 3, size, size), labels int64 (N,), names)`` with
        ``N = per_photo * len(photos)`` and ``names[label]`` the photo's name.
    """
    import torch.nn.functional as F

    if per_photo < 2:
        raise ValueError(f"per_photo must be >= 2 (a crop needs another of its photo to find), got {per_photo}.")
    if not 0 < min_scale <= max_scale <= 1:
        raise ValueError(f"need 0 < min_scale <= max_scale <= 1, got {min_scale}, {max_scale}.")
    rng = np.random.default_rng(seed)
    crops, labels, names = [], [], []
    for label, (name, photo) in enumerate(photos.items()):
        arr = np.asarray(photo)
        arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        t = torch.from_numpy(np.ascontiguousarray(arr[..., :3])).permute(2, 0, 1)  # (3, H, W)
        h, w = t.shape[1:]
        for _ in range(per_photo):
            side = round(rng.uniform(min_scale, max_scale) * min(h, w))
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            c = t[:, top:top + side, left:left + side]
            if rng.random() < 0.5:
                c = torch.flip(c, dims=[2])
            c = F.interpolate(c[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
            crops.append((c.clamp(0, 1) * 255).round().to(torch.uint8))
            labels.append(label)
        names.append(name)
    return torch.stack(crops), np.asarray(labels, dtype=np.int64), names
