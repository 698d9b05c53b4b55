"""Distances, DeepFace normalisation and the chi-square verifier, against loop oracles."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.svm import LinearSVC

from course_utils.metric_learning import distances as D


def _rand(n: int, d: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype)


def _loop_pairwise(x: torch.Tensor, y: torch.Tensor, fn) -> torch.Tensor:
    out = torch.empty(x.shape[0], y.shape[0], dtype=x.dtype)
    for i in range(x.shape[0]):
        for j in range(y.shape[0]):
            out[i, j] = fn(x[i], y[j])
    return out


ORACLES = {
    "squared_l2": lambda a, b: ((a - b) ** 2).sum(),
    "l2": lambda a, b: ((a - b) ** 2).sum().sqrt(),
    "l1": lambda a, b: (a - b).abs().sum(),
    "cosine": lambda a, b: 1 - (a @ b) / (a.norm() * b.norm()),
}


@pytest.mark.parametrize("metric", D.METRICS)
def test_pairwise_matches_loops(metric):
    x, y = _rand(7, 5, 0), _rand(4, 5, 1)
    expected = _loop_pairwise(x, y, ORACLES[metric])
    got = D.pairwise_distance(x, y, metric=metric)
    assert got.shape == (7, 4)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("metric", D.METRICS)
def test_paired_matches_loops(metric):
    x, y = _rand(6, 3, 2), _rand(6, 3, 3)
    expected = torch.stack([ORACLES[metric](x[i], y[i]) for i in range(6)])
    torch.testing.assert_close(D.paired_distance(x, y, metric=metric), expected)


def test_named_functions_match_dispatch_and_torch():
    x, y = _rand(5, 4, 4), _rand(5, 4, 5)
    torch.testing.assert_close(D.squared_l2(x, y), ((x - y) ** 2).sum(1))
    torch.testing.assert_close(D.l2(x, y), F.pairwise_distance(x, y, eps=0.0))
    torch.testing.assert_close(D.l1(x, y), F.pairwise_distance(x, y, p=1, eps=0.0))
    torch.testing.assert_close(D.cosine_similarity(x, y), F.cosine_similarity(x, y))
    torch.testing.assert_close(D.cosine_distance(x, y), 1 - F.cosine_similarity(x, y))
    torch.testing.assert_close(D.pairwise_l2(x, y), torch.cdist(x, y))
    torch.testing.assert_close(D.pairwise_l1(x, y), torch.cdist(x, y, p=1))
    torch.testing.assert_close(D.pairwise_squared_l2(x, y), torch.cdist(x, y) ** 2)
    sim = D.pairwise_cosine_similarity(x, y)
    torch.testing.assert_close(sim, F.cosine_similarity(x[:, None], y[None], dim=2))
    torch.testing.assert_close(D.pairwise_cosine_distance(x, y), 1 - sim)


def test_self_distance_has_exact_zero_diagonal_and_finite_grad():
    x = _rand(6, 8, 6, dtype=torch.float32).mul(100).requires_grad_()
    for metric in ("squared_l2", "l2", "cosine"):
        d = D.pairwise_distance(x, metric=metric)
        assert torch.equal(torch.diagonal(d), torch.zeros(6))
        (grad,) = torch.autograd.grad(d.sum(), x)
        assert torch.isfinite(grad).all()


def test_l2_of_identical_rows_has_zero_not_nan_gradient():
    x = torch.ones(3, 4, requires_grad=True)
    y = torch.ones(3, 4)
    d = D.l2(x, y)
    d.sum().backward()
    assert torch.equal(d.detach(), torch.zeros(3))
    assert torch.equal(x.grad, torch.zeros(3, 4))


def test_unit_vectors_squared_l2_is_two_minus_two_cos():
    x = F.normalize(_rand(50, 16, 7), dim=1)
    y = F.normalize(_rand(50, 16, 8), dim=1)
    torch.testing.assert_close(D.squared_l2(x, y), 2 - 2 * D.cosine_similarity(x, y))
    torch.testing.assert_close(D.pairwise_squared_l2(x, y), 2 - 2 * D.pairwise_cosine_similarity(x, y))


def test_numpy_in_numpy_out():
    x = np.random.default_rng(0).normal(size=(4, 3))
    y = np.random.default_rng(1).normal(size=(5, 3))
    got = D.pairwise_distance(x, y, metric="l2")
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(got, np.linalg.norm(x[:, None] - y[None], axis=2))
    assert isinstance(D.cosine_similarity(x[:4], y[:4]), np.ndarray)


@pytest.mark.parametrize(
    "call",
    [
        lambda: D.pairwise_distance(torch.zeros(3, 4), torch.zeros(3, 5)),
        lambda: D.pairwise_distance(torch.zeros(3)),
        lambda: D.paired_distance(torch.zeros(3, 4), torch.zeros(2, 4)),
        lambda: D.cosine_similarity(torch.zeros(3, 4), torch.zeros(3, 4, 1)),
        lambda: D.pairwise_distance(torch.zeros(3, 4), metric="chebyshev"),
    ],
)
def test_bad_shapes_and_metrics_raise(call):
    with pytest.raises(ValueError, match=r"shape|metric"):
        call()


def test_bad_shape_message_names_the_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(2, 4\)"):
        D.paired_distance(torch.zeros(3, 4), torch.zeros(2, 4))


# --------------------------------------------------------------------------- DeepFace
def test_deepface_normalizer_matches_loops():
    rng = np.random.default_rng(0)
    train = np.abs(rng.normal(size=(20, 6)))
    train[:, 3] = 0.0  # a dead component
    test = np.abs(rng.normal(size=(5, 6)))
    norm = D.DeepFaceNormalizer().fit(train)
    got = norm.transform(test)
    expected = np.empty_like(test)
    for i in range(5):
        row = np.empty(6)
        for k in range(6):
            m = max(train[:, k])
            row[k] = test[i, k] / m if m > 0 else test[i, k]
        expected[i] = row / np.sqrt(sum(v * v for v in row))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0)
    # torch in, torch out, same numbers
    got_t = norm.transform(torch.from_numpy(test))
    assert isinstance(got_t, torch.Tensor)
    np.testing.assert_allclose(got_t.numpy(), expected, rtol=1e-12)
    # fit_transform of the training set: per-component max after scaling is <= 1
    assert np.all(D.DeepFaceNormalizer().fit_transform(train) <= 1.0 + 1e-12)


def test_deepface_normalizer_errors():
    with pytest.raises(RuntimeError, match="fit"):
        D.DeepFaceNormalizer().transform(np.ones((2, 3)))
    norm = D.DeepFaceNormalizer().fit(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        norm.transform(np.ones((2, 4)))
    with pytest.raises(ValueError, match="shape"):
        D.DeepFaceNormalizer().fit(np.ones(3))


def test_chi_square_features_match_loops_and_handle_zeros():
    rng = np.random.default_rng(1)
    f1 = np.abs(rng.normal(size=(4, 5)))
    f2 = np.abs(rng.normal(size=(4, 5)))
    f1[0, 0] = f2[0, 0] = 0.0  # 0/0 -> 0
    got = D.chi_square_features(f1, f2)
    for i in range(4):
        for k in range(5):
            s = f1[i, k] + f2[i, k]
            want = 0.0 if s == 0 else (f1[i, k] - f2[i, k]) ** 2 / s
            assert got[i, k] == pytest.approx(want)
    w = rng.normal(size=5)
    np.testing.assert_allclose(D.weighted_chi_square_distance(f1, f2, w), got @ w)
    with pytest.raises(ValueError, match="non-negative"):
        D.chi_square_features(-f1, f2)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        D.weighted_chi_square_distance(f1, f2, np.ones(3))


def _face_pairs(n: int, seed: int):
    """Non-negative features where only the first 3 of 10 components carry identity."""
    rng = np.random.default_rng(seed)
    ident = np.abs(rng.normal(size=(n, 10)))
    same = rng.integers(0, 2, size=n)
    other = np.abs(rng.normal(size=(n, 10)))
    f1 = ident.copy()
    f2 = np.where(same[:, None] == 1, ident, other)
    f2[:, :3] += 0.05 * np.abs(rng.normal(size=(n, 3)))
    f1[:, 3:] = np.abs(rng.normal(size=(n, 7)))  # noise components, unrelated to identity
    f2[:, 3:] = np.abs(rng.normal(size=(n, 7)))
    return f1, f2, same


@pytest.mark.parametrize("classifier", ["logistic", "linear_svm"])
def test_chi_square_verifier_equals_sklearn_on_loop_features(classifier):
    f1, f2, same = _face_pairs(300, 0)
    feats = np.array([[(a - b) ** 2 / (a + b) if a + b > 0 else 0.0 for a, b in zip(r1, r2)] for r1, r2 in zip(f1, f2)])
    ref = (
        LogisticRegression(C=1.0, max_iter=2000, random_state=0)
        if classifier == "logistic"
        else LinearSVC(C=1.0, max_iter=2000, random_state=0)
    ).fit(feats, same)
    ver = D.ChiSquareVerifier(classifier, C=1.0).fit(f1, f2, same)
    np.testing.assert_allclose(ver.decision_function(f1, f2), ref.decision_function(feats), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ver.weights, ref.coef_.ravel(), rtol=1e-6, atol=1e-8)


def test_chi_square_verifier_learns_which_components_matter():
    f1, f2, same = _face_pairs(400, 1)
    ver = D.ChiSquareVerifier("logistic").fit(f1, f2, same)
    t1, t2, t_same = _face_pairs(400, 2)
    assert roc_auc_score(t_same, ver.decision_function(t1, t2)) > 0.95  # higher score = same
    w = ver.weights
    assert np.all(w[:3] < 0)  # large chi-square on identity components -> different
    assert np.abs(w[:3]).min() > np.abs(w[3:]).max()
    assert set(np.unique(ver.predict(t1, t2))) <= {0, 1}


def test_chi_square_verifier_errors():
    with pytest.raises(ValueError, match="classifier"):
        D.ChiSquareVerifier("forest")
    with pytest.raises(RuntimeError, match="fit"):
        D.ChiSquareVerifier().decision_function(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="both"):
        D.ChiSquareVerifier().fit(np.ones((2, 3)), np.ones((2, 3)), np.ones(2))
    with pytest.raises(ValueError, match=r"\(2,\)"):
        D.ChiSquareVerifier().fit(np.ones((2, 3)), np.ones((2, 3)), np.ones(3))
