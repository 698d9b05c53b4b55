"""UMAP's first call: exact neighbours from scikit-learn instead of pynndescent's per-kernel compilation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import course_utils.evaluation.projections as E


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "manhattan"])
def test_exact_knn_matches_a_brute_force_loop(metric):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    idx, dist = E.exact_knn(x, n_neighbors=4, metric=metric)
    assert idx.shape == dist.shape == (60, 4) and idx.dtype == np.int64 and dist.dtype == np.float32
    for i in range(60):
        if metric == "euclidean":
            d = np.sqrt(((x - x[i]) ** 2).sum(1))
        elif metric == "manhattan":
            d = np.abs(x - x[i]).sum(1)
        else:
            d = 1 - (x @ x[i]) / (np.linalg.norm(x, axis=1) * np.linalg.norm(x[i]))
        order = np.argsort(d, kind="stable")[:4]
        assert idx[i, 0] == i and dist[i, 0] == pytest.approx(0.0, abs=1e-3)  # each point first, as UMAP expects
        np.testing.assert_allclose(dist[i], d[order], rtol=1e-4, atol=1e-4)
    assert E.exact_knn(x, n_neighbors=4, metric="hellinger") is None  # UMAP keeps its own search


def test_project_passes_precomputed_neighbours_from_4096_points(monkeypatch):
    seen = {}

    class FakeUMAP:
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def fit_transform(self, data):
            return np.zeros((len(data), 2))

    monkeypatch.setattr(E, "import_umap", lambda: SimpleNamespace(UMAP=FakeUMAP))
    x = np.random.default_rng(1).normal(size=(4096, 3))
    E.project(x, "umap", n_neighbors=7)
    idx, _ = seen["precomputed_knn"]
    assert idx.shape == (4096, 7) and (idx[:, 0] == np.arange(4096)).all() and seen["n_neighbors"] == 7
    seen.clear()
    E.project(x[:500], "umap", n_neighbors=7)  # small data: UMAP's exact path already compiles little
    assert "precomputed_knn" not in seen
