"""Projections of embeddings to 2-D: PCA, t-SNE and UMAP, with fixed seeds and a cache of fitted reducers.

* :func:`project` maps ``(N, D)`` to ``(N, 2)`` with PCA, t-SNE or UMAP
  (umap-learn), with fixed seeds and sensible defaults; a
  :class:`ProjectionCache` keeps every fitted reducer, so a figure, an
  explorer and a later ``transform`` reuse it instead of refitting.
* UMAP is compiled by numba on first use (tens of seconds).
  :func:`configure_numba_cache` (called by :func:`import_umap`) points
  ``NUMBA_CACHE_DIR`` into the course cache, so the compiled code is kept
  on disk between sessions; :func:`numba_cache_files` counts what is there;
  :func:`exact_knn` gives UMAP exact neighbours without compiling pynndescent.

:func:`course_utils.viz.widgets.projection_explorer` puts sliders for UMAP
``n_neighbors`` / ``min_dist`` and t-SNE perplexity on a :class:`ProjectionCache`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from course_utils.arrays import to_matrix
from course_utils.settings import cache_dir

__all__ = [
    "PROJECTION_DEFAULTS",
    "Projection",
    "project",
    "ProjectionCache",
    "configure_numba_cache",
    "numba_cache_files",
    "import_umap",
    "exact_knn",
]


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

    def transform(self, x: Any) -> np.ndarray:
        """Place new points ``(M, D)`` in the fitted map ``(M, n_components)`` (PCA and UMAP only)."""
        if self.method == "tsne":
            raise ValueError("t-SNE has no transform for new points: refit on all of them (or use PCA/UMAP).")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if self.method == "umap":
                _ensure_umap_search_index(self.model)
            return np.asarray(self.model.transform(to_matrix(x).astype(np.float32)), dtype=np.float64)


def project(x: Any, method: str = "umap", *, n_components: int = 2, seed: int = 0,
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
    a = to_matrix(x)
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
    if threads is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads)


def _fit(a: np.ndarray, method: str, n_components: int, seed: int, p: dict[str, Any]) -> Projection:
    t0 = time.perf_counter()
    if method == "pca":
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

    def __init__(self, x: Any, *, seed: int = 0) -> None:
        self.x = to_matrix(x)
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
