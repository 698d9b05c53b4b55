"""Embeddings (course_utils.evaluation): EmbeddingSet from predict, projections, separation numbers and retrieval, against oracles."""

import os

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness as sk_trustworthiness
from sklearn.metrics import silhouette_score
from torch import nn

from course_utils import evaluation as E
from course_utils.data import TensorImageDataset, photo_crops
from course_utils.train import predict
from course_utils.viz import projection_explorer


def _blobs(n=60, d=10, k=4, seed=0):
    x, y = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=1.0, random_state=seed)
    return x.astype(np.float32), y


def _dataset(n=10):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)
    attrs = pd.DataFrame({"gender": ["a", "b"] * (n // 2), "age": np.arange(n), "file": [f"{i}.png" for i in range(n)]})
    return TensorImageDataset(images, np.arange(n) % 3, attributes=attrs, group_columns=("gender", "age"))


# ------------------------------------------------------------------ extraction
def test_extract_returns_vectors_labels_and_groups_in_dataset_order():
    ds = _dataset(10)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 5))
    out = E.EmbeddingSet.from_predictions(predict(model, ds, device="cpu", batch_size=3), name="lin")
    with torch.no_grad():
        expected = model(ds.float_images())
    assert out.vectors.shape == (10, 5) and out.vectors.dtype == np.float32
    np.testing.assert_allclose(out.vectors, expected.numpy(), atol=1e-6)
    np.testing.assert_array_equal(out.labels, ds.targets)
    assert list(out.groups.columns) == ["gender", "age"]  # the group columns, not the file names
    assert out.groups["age"].tolist() == list(range(10))
    assert out.name == "lin" and out.dim == 5 and len(out) == 10


def test_extract_pools_feature_maps_and_uses_forward_fn():
    ds = _dataset(6)
    conv = nn.Conv2d(1, 4, 3)
    out = E.EmbeddingSet.from_predictions(predict(conv, ds, device="cpu"))
    with torch.no_grad():
        expected = conv(ds.float_images()).mean(dim=(2, 3))
    np.testing.assert_allclose(out.vectors, expected.numpy(), atol=1e-6)
    doubled = E.EmbeddingSet.from_predictions(predict(conv, ds, device="cpu", forward_fn=lambda m, x: 2 * m(x)))
    np.testing.assert_allclose(doubled.vectors, 2 * expected.numpy(), atol=1e-5)


def test_embedding_set_subset_and_normalized():
    ds = _dataset(10)
    e = E.EmbeddingSet.from_predictions(predict(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), ds, device="cpu"))
    sub = e.subset(np.array([1, 3, 5]))
    np.testing.assert_array_equal(sub.vectors, e.vectors[[1, 3, 5]])
    assert sub.groups["age"].tolist() == [1, 3, 5]
    mask = e.labels == 0
    assert len(e.subset(mask)) == mask.sum()
    np.testing.assert_allclose(np.linalg.norm(e.normalized().vectors, axis=1), 1, atol=1e-6)
    with pytest.raises(ValueError):
        E.EmbeddingSet(np.zeros((3, 2), np.float32), np.zeros(4, np.int64))


# ------------------------------------------------------------------ projections
def test_pca_projection_matches_sklearn():
    x, _ = _blobs()
    p = E.project(x, "pca")
    ref = PCA(n_components=2, random_state=0).fit_transform(x.astype(np.float64))
    np.testing.assert_allclose(p.coords, ref, atol=1e-6)
    np.testing.assert_allclose(p.transform(x[:5]), ref[:5], atol=1e-6)


def test_tsne_is_seeded_caps_perplexity_and_has_no_transform():
    x, _ = _blobs(n=30)
    a, b = E.project(x, "tsne", seed=3), E.project(x, "t-SNE", seed=3)
    np.testing.assert_allclose(a.coords, b.coords)
    assert a.params["perplexity"] == pytest.approx(29 / 3)  # capped at (N - 1) / 3
    assert a.coords.shape == (30, 2)
    with pytest.raises(ValueError, match="no transform"):
        a.transform(x)


def test_unknown_method_or_parameter_is_refused():
    x, _ = _blobs()
    with pytest.raises(ValueError, match="method"):
        E.project(x, "isomap")
    with pytest.raises(ValueError, match="unknown parameters"):
        E.project(x, "tsne", n_neighbors=5)


def test_projection_cache_fits_once():
    x, _ = _blobs()
    cache = E.ProjectionCache(x, seed=0)
    a = cache.get("tsne", perplexity=10)
    b = cache.get("tsne", perplexity=10.0)
    assert a is b and cache.hits == 1 and len(cache) == 1
    c = cache.get("tsne", perplexity=12)
    assert c is not a and len(cache) == 2
    assert ("tsne", {"perplexity": 10}) in cache and ("pca", {}) not in cache


def test_configure_numba_cache_sets_the_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    path = E.configure_numba_cache(tmp_path / "nb")
    assert path.is_dir() and os.environ["NUMBA_CACHE_DIR"] == str(path)
    assert E.numba_cache_files(path) == 0
    (path / "sub").mkdir()
    (path / "sub" / "f.nbi").write_bytes(b"")
    assert E.numba_cache_files(path) == 1


@pytest.mark.slow
def test_umap_is_reproducible_and_transforms():
    x, y = _blobs(n=80)
    a, b = E.project(x, "umap", seed=0, n_neighbors=10), E.project(x, "umap", seed=0, n_neighbors=10)
    np.testing.assert_allclose(a.coords, b.coords)
    assert a.coords.shape == (80, 2) and a.params["n_neighbors"] == 10
    placed = a.transform(x[:10])
    assert placed.shape == (10, 2)
    # blobs are far apart: a transformed point lands nearest to points of its own blob
    nearest = np.linalg.norm(placed[:, None] - a.coords[None], axis=2).argmin(1)
    assert np.mean(y[nearest] == y[:10]) >= 0.9


# ------------------------------------------------------------------ separation numbers
def test_silhouette_and_trustworthiness_match_sklearn():
    x, y = _blobs()
    low = x[:, :2] + 0.1
    assert E.silhouette(x, y) == pytest.approx(silhouette_score(x, y))
    assert E.silhouette(x, y, metric="cosine") == pytest.approx(silhouette_score(x, y, metric="cosine"))
    assert E.trustworthiness(x, low, n_neighbors=4) == pytest.approx(sk_trustworthiness(x, low, n_neighbors=4))


def _loop_knn(x, y, k):
    correct = 0
    for i in range(len(x)):
        d = np.linalg.norm(x - x[i], axis=1)
        d[i] = np.inf
        nb = np.argsort(d, kind="stable")[:k]
        votes = np.bincount(y[nb], minlength=y.max() + 1)
        correct += votes.argmax() == y[i]
    return correct / len(x)


def test_separation_table_full_row_and_projection_rows():
    x, y = _blobs(n=50, d=6, k=3, seed=1)
    rng = np.random.default_rng(0)
    pics = {"first two": x[:, :2], "noise": rng.normal(size=(50, 2))}
    t = E.separation_table(x, pics, y, k=3, n_neighbors=4)
    assert list(t.index) == ["full (6-d)", "first two", "noise"]
    assert t.loc["full (6-d)", "knn_acc"] == pytest.approx(_loop_knn(x.astype(float), y, 3))
    assert t.loc["noise", "knn_acc"] == pytest.approx(_loop_knn(pics["noise"], y, 3))
    assert np.isnan(t.loc["full (6-d)", "trustworthiness"])
    assert t.loc["noise", "trustworthiness"] == pytest.approx(sk_trustworthiness(x, pics["noise"], n_neighbors=4))
    assert t.loc["first two", "silhouette"] == pytest.approx(silhouette_score(pics["first two"], y))
    assert t.loc["noise", "trustworthiness"] < t.loc["first two", "trustworthiness"]


def test_angular_spread():
    # class 0 at +-10 degrees around the x axis, class 1 exactly on the y axis
    a = np.radians(10)
    x = np.array([[np.cos(a), np.sin(a)], [np.cos(a), -np.sin(a)], [0, 2.0], [0, 5.0]])
    assert E.angular_spread(x, np.array([0, 0, 1, 1])) == pytest.approx(5.0)


# ------------------------------------------------------------------ retrieval
def _loop_precision(f, y, k, dist):
    out = []
    for i in range(len(f)):
        d = np.array([dist(f[i], f[j]) if j != i else np.inf for j in range(len(f))])
        nb = np.argsort(d, kind="stable")[:k]
        out.append(np.mean(y[nb] == y[i]))
    return float(np.mean(out))


def _cos_dist(a, b):
    return 1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))


def test_retrieval_precision_matches_explicit_loops():
    x, y = _blobs(n=40, k=5, seed=2)
    x = x.astype(np.float64)
    for k in (1, 3, 7):
        assert E.retrieval_precision(x, y, k=k) == pytest.approx(_loop_precision(x, y, k, _cos_dist))
        assert E.retrieval_precision(x, y, k=k, metric="euclidean") == pytest.approx(
            _loop_precision(x, y, k, lambda a, b: np.linalg.norm(a - b)))
    h = np.abs(x) / np.abs(x).sum(1, keepdims=True)
    assert E.retrieval_precision(h, y, k=3, metric="intersection") == pytest.approx(
        _loop_precision(h, y, 3, lambda a, b: 1 - np.minimum(a, b).sum()))
    chi2 = lambda a, b: 0.5 * np.sum((a - b) ** 2 / (a + b))  # noqa: E731
    assert E.retrieval_precision(h, y, k=3, metric="chi2") == pytest.approx(_loop_precision(h, y, 3, chi2))


def test_retrieval_with_modified_queries_leaves_the_original_out():
    x, y = _blobs(n=30, k=3, seed=4)
    x = x.astype(np.float64)
    # identical queries: still leave-one-out, so the same number as without queries
    assert E.retrieval_precision(x, y, k=4, queries=x) == pytest.approx(E.retrieval_precision(x, y, k=4))
    idx, d = E.nearest_neighbours(x + 0.01, x, k=3, metric="euclidean", leave_out_self=True)
    assert not np.any(idx == np.arange(30)[:, None])
    assert np.all(np.diff(d, axis=1) >= 0)
    idx_all, _ = E.nearest_neighbours(x + 0.01, x, k=1, metric="euclidean")
    np.testing.assert_array_equal(idx_all[:, 0], np.arange(30))  # without leaving out, each finds itself
    with pytest.raises(ValueError):
        E.nearest_neighbours(x[:5], x, k=2, leave_out_self=True)
    with pytest.raises(ValueError):
        E.nearest_neighbours(x, k=30)


def test_color_histograms_match_numpy_histograms():
    g = torch.Generator().manual_seed(0)
    grey = torch.rand(3, 1, 6, 5, generator=g)
    h = E.color_histograms(grey, bins=8)
    for i in range(3):
        ref, _ = np.histogram(grey[i].numpy().ravel(), bins=8, range=(0, 1))
        np.testing.assert_allclose(h[i], ref / 30)
    rgb = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8, generator=g)
    h = E.color_histograms(rgb, bins=4)
    assert h.shape == (2, 64)
    for i in range(2):
        pix = rgb[i].reshape(3, -1).T.numpy() / 255.0
        ref, _ = np.histogramdd(pix, bins=(4, 4, 4), range=[(0, 1)] * 3)
        np.testing.assert_allclose(h[i], ref.ravel() / 16)
    np.testing.assert_allclose(E.color_histograms(torch.ones(1, 1, 2, 2), bins=4), [[0, 0, 0, 1]])
    with pytest.raises(ValueError):
        E.color_histograms(torch.rand(2, 2, 4, 4))


def test_projection_explorer_draws_once_headless_and_reuses_fits():
    x, y = _blobs(n=40)
    cache = E.ProjectionCache(x, seed=0)
    cache.get("tsne", perplexity=8)
    ex = projection_explorer(cache, y, perplexity=8, n_neighbors=5, static=True)
    assert ex.figure is not None and "trustworthiness" in ex.info and "t-SNE" in ex.info
    assert cache.hits == 1  # the t-SNE fit was reused; UMAP was fitted once
    ex.update(perplexity=9.0)
    assert len(cache) == 3


# ------------------------------------------------------------------ plots
def test_plot_helpers_draw_what_they_are_given():
    from matplotlib.offsetbox import AnnotationBbox

    from course_utils.viz import plot_embedding_2d, plot_thumbnails, show_retrieval

    rng = np.random.default_rng(0)
    xy, y = rng.normal(size=(30, 2)), np.arange(30) % 3
    ax = plot_embedding_2d(xy, y, title="t")
    assert len(ax.collections) == 3 and ax.get_legend() is not None
    np.testing.assert_allclose(ax.collections[0].get_offsets(), xy[y == 0])
    ax = plot_embedding_2d(xy, np.arange(30), legend=None)  # 30 values: continuous colours, no legend
    assert len(ax.collections) == 30 and ax.get_legend() is None
    with pytest.raises(ValueError):
        plot_embedding_2d(rng.normal(size=(5, 3)), np.arange(5))
    images = torch.rand(30, 1, 8, 8)
    ax = plot_thumbnails(xy, images, labels=y, max_images=12)
    assert sum(isinstance(a, AnnotationBbox) for a in ax.artists) == 12
    ok = np.array([[True, False, True], [False, False, True]])
    ax = show_retrieval(images[:2], images[2:8].reshape(2, 3, 1, 8, 8), ok, row_names=["a", "b"])
    grid = ax.images[0].get_array()
    b = 1  # frame width for 8-pixel images; tiles are 10 px wide with 2 px padding
    assert np.allclose(grid[0, 12 * 1 + 0, :3], (0.1, 0.7, 0.1), atol=1e-6)  # first neighbour of row 0: green
    assert np.allclose(grid[0, 12 * 2 + 0, :3], (0.85, 0.1, 0.1), atol=1e-6)  # second: red
    assert np.allclose(grid[b - 1, 0, :3], (0.2, 0.2, 0.9), atol=1e-6)  # the query: blue


@pytest.mark.slow
def test_project_keeps_torch_threads():
    """UMAP/numba may reset OpenMP's thread count; project() must hand PyTorch its own back."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = np.random.default_rng(0).normal(size=(40, 6))
        E.project(x, "pca")
        assert torch.get_num_threads() == 1
        E.project(x, "umap", n_neighbors=5)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------ per-item numbers, intervals, crops
def test_knn_correct_matches_an_explicit_loop_and_knn_accuracy():
    x, y = _blobs(n=45, d=5, k=4, seed=3)
    x = x + np.random.default_rng(0).normal(scale=2.5, size=x.shape).astype(np.float32)  # some mistakes
    for k in (1, 4, 5):
        per = E.knn_correct(x, y, k=k)
        assert per.dtype == bool and per.shape == (45,)
        assert per.mean() == pytest.approx(_loop_knn(x.astype(float), y, k))
        assert per.mean() == pytest.approx(E.knn_accuracy_2d(x, y, k=k))
    assert 0 < E.knn_correct(x, y, k=5).mean() < 1


def test_retrieval_hits_match_an_explicit_loop():
    x, y = _blobs(n=30, k=3, seed=4)
    x = x.astype(np.float64)
    hits = E.retrieval_hits(x, y, k=4)
    for i in range(len(x)):
        d = np.array([_cos_dist(x[i], x[j]) if j != i else np.inf for j in range(len(x))])
        assert hits[i] == pytest.approx(np.mean(y[np.argsort(d, kind="stable")[:4]] == y[i]))
    assert hits.mean() == pytest.approx(E.retrieval_precision(x, y, k=4))
    q = x + 0.1
    assert E.retrieval_hits(x, y, k=4, queries=q).mean() == pytest.approx(E.retrieval_precision(x, y, k=4, queries=q))


def test_centre_distance_correlation():
    from scipy.stats import spearmanr

    x, y = _blobs(n=60, d=6, k=5, seed=5)
    assert E.centre_distance_correlation(x[:, :2], 3 * x[:, :2] + 1, y) == pytest.approx(1.0)  # scale, shift
    assert E.centre_distance_correlation(x, x, y) == pytest.approx(1.0)
    xy = np.random.default_rng(1).normal(size=(60, 2))
    centres = lambda a: np.stack([a[y == i].mean(0) for i in range(5)])
    full = [np.linalg.norm(centres(x)[i] - centres(x)[j]) for i in range(5) for j in range(i + 1, 5)]
    flat = [np.linalg.norm(centres(xy)[i] - centres(xy)[j]) for i in range(5) for j in range(i + 1, 5)]
    assert E.centre_distance_correlation(x, xy, y) == pytest.approx(spearmanr(full, flat)[0])
    with pytest.raises(ValueError, match="3 labels"):
        E.centre_distance_correlation(x[y < 2], x[y < 2, :2], y[y < 2])


def test_separation_intervals_resample_people():
    from sklearn.metrics import silhouette_samples

    x, y = _blobs(n=40, d=4, k=5, seed=6)
    x = x + np.random.default_rng(2).normal(scale=3.0, size=x.shape).astype(np.float32)
    iv = E.separation_intervals(x, y, n_boot=200, seed=0)
    assert iv["knn_acc"].estimate == pytest.approx(E.knn_accuracy_2d(x, y))
    assert iv["silhouette"].estimate == pytest.approx(silhouette_score(x, y))
    assert iv["knn_acc"].n == 5 and iv["knn_acc"].method == "identity bootstrap"
    assert iv["knn_acc"].low <= iv["knn_acc"].estimate <= iv["knn_acc"].high
    # replicate 0 by hand: people drawn with replacement, their items' values averaged
    draws = np.random.default_rng(0).integers(0, 5, size=(200, 5))[0]
    s = silhouette_samples(x, y)
    assert iv["silhouette"].draws[0] == pytest.approx(np.concatenate([s[y == p] for p in draws]).mean())
    # same people, same n_boot and seed: paired with another embedder's intervals
    other = E.separation_intervals(x[:, :2], y, n_boot=200, seed=0)
    assert other["knn_acc"].key == iv["knn_acc"].key


def test_photo_crops_shapes_labels_and_content():
    photo = np.zeros((40, 60, 3), dtype=np.float32)
    photo[..., 0] = 1.0  # pure red
    grey = np.full((50, 50), 0.4, dtype=np.float32)
    imgs, labels, names = photo_crops({"red": photo, "grey": grey}, per_photo=3, size=16, seed=0)
    assert imgs.shape == (6, 3, 16, 16) and imgs.dtype == torch.uint8
    assert labels.tolist() == [0, 0, 0, 1, 1, 1] and names == ["red", "grey"]
    assert (imgs[:3, 0] == 255).all() and (imgs[:3, 1:] == 0).all()
    assert (imgs[3:].int() - 102).abs().max() <= 1  # 0.4 * 255, up to interpolation rounding
    again, _, _ = photo_crops({"red": photo, "grey": grey}, per_photo=3, size=16, seed=0)
    assert torch.equal(imgs, again)
    with pytest.raises(ValueError, match="per_photo"):
        photo_crops({"red": photo}, per_photo=1)
