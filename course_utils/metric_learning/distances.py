"""Distances between embeddings, and DeepFace's normalisation and chi-square verifier.

Two families of functions, all vectorised (no Python loop over rows):

* **paired** distances compare row ``i`` of ``x`` with row ``i`` of ``y``:
  ``(N, D), (N, D) -> (N,)`` (for verification pairs);
* **pairwise** distances compare every row of ``x`` with every row of ``y``:
  ``(N, D), (M, D) -> (N, M)`` (for mining and identification);
  ``y=None`` means ``y = x``, and then the diagonal is exactly zero.

Metric names used across the package (``metric=`` arguments):
``"squared_l2"`` (``||x - y||^2``), ``"l2"`` (``||x - y||``), ``"l1"``
(``sum |x - y|``) and ``"cosine"`` (the cosine *distance* ``1 - cos(x, y)``).
For unit vectors ``||x - y||^2 = 2 - 2 cos(x, y)``, so squared L2 and cosine
distance rank pairs identically once embeddings are L2-normalised.

Every function accepts torch tensors or NumPy arrays and returns the type it
was given (computation happens in PyTorch on the input's device). Square roots
are guarded so that identical rows give distance 0 with a finite (zero)
gradient, never NaN.

DeepFace (Taigman et al., 2014) verifies with two extra tools, both here:
:class:`DeepFaceNormalizer` (divide each component by its training-set
maximum, then L2-normalise) and :class:`ChiSquareVerifier` (a linear classifier
learned on the chi-square features ``(f1 - f2)^2 / (f1 + f2)``, i.e. a
*weighted* chi-square distance with learned weights).
"""

from __future__ import annotations

from typing import Any, Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from torch import Tensor

__all__ = [
    "METRICS",
    "squared_l2",
    "l2",
    "l1",
    "cosine_similarity",
    "cosine_distance",
    "paired_distance",
    "pairwise_squared_l2",
    "pairwise_l2",
    "pairwise_l1",
    "pairwise_cosine_similarity",
    "pairwise_cosine_distance",
    "pairwise_distance",
    "DeepFaceNormalizer",
    "chi_square_features",
    "weighted_chi_square_distance",
    "ChiSquareVerifier",
]

ArrayLike = Tensor | np.ndarray
Metric = Literal["squared_l2", "l2", "l1", "cosine"]

#: The metric names accepted by ``metric=`` arguments in the package.
METRICS: tuple[str, ...] = ("squared_l2", "l2", "l1", "cosine")


# --------------------------------------------------------------------------- helpers
def _as_tensor(x: Any, name: str) -> tuple[Tensor, bool]:
    """Return ``(tensor, was_numpy)``; floats are kept, ints become float32."""
    if isinstance(x, Tensor):
        t = x
        was_numpy = False
    elif isinstance(x, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(x))
        was_numpy = True
    else:
        raise TypeError(f"{name} must be a torch.Tensor or a numpy.ndarray, got {type(x).__name__}.")
    if not torch.is_floating_point(t):
        t = t.to(torch.get_default_dtype())
    return t, was_numpy


def _back(t: Tensor, was_numpy: bool) -> ArrayLike:
    return t.detach().cpu().numpy() if was_numpy else t


def _check_2d(x: Tensor, name: str) -> None:
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got shape {tuple(x.shape)}.")


def _check_paired(x: Tensor, y: Tensor) -> None:
    _check_2d(x, "x")
    _check_2d(y, "y")
    if x.shape != y.shape:
        raise ValueError(
            f"paired distances need x and y of the same shape (N, D); got {tuple(x.shape)} and {tuple(y.shape)}."
        )


def _pairwise_inputs(x: ArrayLike, y: ArrayLike | None) -> tuple[Tensor, Tensor | None, bool]:
    """``(x, y or None, x was NumPy)`` as checked tensors, ``y`` on ``x``'s device and dtype."""
    xt, was_np = _as_tensor(x, "x")
    if y is None:
        _check_2d(xt, "x")
        return xt, None, was_np
    yt, _ = _as_tensor(y, "y")
    _check_pairwise(xt, yt)
    return xt, yt.to(device=xt.device, dtype=xt.dtype), was_np


def _check_pairwise(x: Tensor, y: Tensor) -> None:
    _check_2d(x, "x")
    _check_2d(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"pairwise distances need x of shape (N, D) and y of shape (M, D) with the same D; "
            f"got shapes {tuple(x.shape)} and {tuple(y.shape)}."
        )


def _safe_sqrt(d2: Tensor) -> Tensor:
    """``sqrt`` of a non-negative tensor whose gradient at 0 is 0 instead of inf/NaN."""
    d2 = d2.clamp_min(0.0)
    zero = d2 == 0
    return torch.sqrt(d2 + zero.to(d2.dtype)) * (~zero).to(d2.dtype)


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; use one of {METRICS}.")


# --------------------------------------------------------------------------- paired
def _paired_sq(x: Tensor, y: Tensor) -> Tensor:
    return (x - y).pow(2).sum(dim=1)


def _paired_cos(x: Tensor, y: Tensor) -> Tensor:
    return (F.normalize(x, dim=1) * F.normalize(y, dim=1)).sum(dim=1)


_PAIRED: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "squared_l2": _paired_sq,
    "l2": lambda x, y: _safe_sqrt(_paired_sq(x, y)),
    "l1": lambda x, y: (x - y).abs().sum(dim=1),
    "cosine": lambda x, y: 1.0 - _paired_cos(x, y),
}


def paired_distance(x: ArrayLike, y: ArrayLike, *, metric: Metric = "squared_l2") -> ArrayLike:
    """Distance between row ``i`` of ``x`` and row ``i`` of ``y``.

    Args:
        x: embeddings, shape (N, D).
        y: embeddings, shape (N, D).
        metric: one of :data:`METRICS`.

    Returns:
        Distances, shape (N,).
    """
    _check_metric(metric)
    xt, was_np = _as_tensor(x, "x")
    yt, _ = _as_tensor(y, "y")
    _check_paired(xt, yt)
    return _back(_PAIRED[metric](xt, yt.to(device=xt.device, dtype=xt.dtype)), was_np)


def squared_l2(x: ArrayLike, y: ArrayLike) -> ArrayLike:
    """Squared Euclidean distance ``||x_i - y_i||^2``: (N, D), (N, D) -> (N,)."""
    return paired_distance(x, y, metric="squared_l2")


def l2(x: ArrayLike, y: ArrayLike) -> ArrayLike:
    """Euclidean distance ``||x_i - y_i||``: (N, D), (N, D) -> (N,)."""
    return paired_distance(x, y, metric="l2")


def l1(x: ArrayLike, y: ArrayLike) -> ArrayLike:
    """Manhattan distance ``sum_k |x_ik - y_ik|``: (N, D), (N, D) -> (N,)."""
    return paired_distance(x, y, metric="l1")


def cosine_distance(x: ArrayLike, y: ArrayLike) -> ArrayLike:
    """Cosine distance ``1 - cos(x_i, y_i)`` in [0, 2]: (N, D), (N, D) -> (N,)."""
    return paired_distance(x, y, metric="cosine")


def cosine_similarity(x: ArrayLike, y: ArrayLike) -> ArrayLike:
    """Cosine similarity ``cos(x_i, y_i)`` in [-1, 1]: (N, D), (N, D) -> (N,).

    A zero row has similarity 0 with everything (its normalised form is 0).
    """
    xt, was_np = _as_tensor(x, "x")
    yt, _ = _as_tensor(y, "y")
    _check_paired(xt, yt)
    return _back(_paired_cos(xt, yt.to(device=xt.device, dtype=xt.dtype)), was_np)


# --------------------------------------------------------------------------- pairwise
def _pw_sq(x: Tensor, y: Tensor | None) -> Tensor:
    same = y is None
    y = x if y is None else y
    d2 = (x * x).sum(1, keepdim=True) + (y * y).sum(1).unsqueeze(0) - 2.0 * (x @ y.T)
    d2 = d2.clamp_min(0.0)
    if same:
        d2 = d2 * (1.0 - torch.eye(x.shape[0], dtype=x.dtype, device=x.device))
    return d2


def _pw_cos(x: Tensor, y: Tensor | None) -> Tensor:
    xn = F.normalize(x, dim=1)
    yn = xn if y is None else F.normalize(y, dim=1)
    return xn @ yn.T


def _pw_l1(x: Tensor, y: Tensor | None) -> Tensor:
    return torch.cdist(x, x if y is None else y, p=1.0)


def _pw_cos_dist(x: Tensor, y: Tensor | None) -> Tensor:
    d = 1.0 - _pw_cos(x, y)
    if y is None:
        d = d * (1.0 - torch.eye(x.shape[0], dtype=x.dtype, device=x.device))
    return d


_PAIRWISE: dict[str, Callable[[Tensor, Tensor | None], Tensor]] = {
    "squared_l2": _pw_sq,
    "l2": lambda x, y: _safe_sqrt(_pw_sq(x, y)),
    "l1": _pw_l1,
    "cosine": _pw_cos_dist,
}


def pairwise_distance(x: ArrayLike, y: ArrayLike | None = None, *, metric: Metric = "squared_l2") -> ArrayLike:
    """Distance between every row of ``x`` and every row of ``y``.

    Squared L2 uses ``||x||^2 + ||y||^2 - 2 x.y`` (one matrix product), clamped
    at 0. With ``y=None`` the distances are within ``x`` and the diagonal is
    exactly 0.

    Args:
        x: embeddings, shape (N, D).
        y: embeddings, shape (M, D), or ``None`` for ``x`` itself.
        metric: one of :data:`METRICS`.

    Returns:
        Distance matrix, shape (N, M) (or (N, N)).
    """
    _check_metric(metric)
    xt, yt, was_np = _pairwise_inputs(x, y)
    return _back(_PAIRWISE[metric](xt, yt), was_np)


def pairwise_squared_l2(x: ArrayLike, y: ArrayLike | None = None) -> ArrayLike:
    """Squared Euclidean distances: (N, D), (M, D) -> (N, M)."""
    return pairwise_distance(x, y, metric="squared_l2")


def pairwise_l2(x: ArrayLike, y: ArrayLike | None = None) -> ArrayLike:
    """Euclidean distances: (N, D), (M, D) -> (N, M)."""
    return pairwise_distance(x, y, metric="l2")


def pairwise_l1(x: ArrayLike, y: ArrayLike | None = None) -> ArrayLike:
    """Manhattan distances: (N, D), (M, D) -> (N, M)."""
    return pairwise_distance(x, y, metric="l1")


def pairwise_cosine_distance(x: ArrayLike, y: ArrayLike | None = None) -> ArrayLike:
    """Cosine distances ``1 - cos``: (N, D), (M, D) -> (N, M)."""
    return pairwise_distance(x, y, metric="cosine")


def pairwise_cosine_similarity(x: ArrayLike, y: ArrayLike | None = None) -> ArrayLike:
    """Cosine similarities: (N, D), (M, D) -> (N, M). Higher means more alike."""
    xt, yt, was_np = _pairwise_inputs(x, y)
    return _back(_pw_cos(xt, yt), was_np)


# --------------------------------------------------------------------------- DeepFace
class DeepFaceNormalizer:
    """DeepFace feature normalisation: divide by the training maximum, then L2-normalise.

    ``fit`` stores, for each component ``k``, the largest ``|f_k|`` over the
    training set (for DeepFace's non-negative ReLU features this is simply the
    maximum). ``transform`` divides each component by it (components that are
    zero on the whole training set are left alone) and scales every row to
    unit L2 norm, so that all components live on comparable scales and the
    result is insensitive to illumination-like global scaling.

    Example:
        ``norm = DeepFaceNormalizer().fit(train_feats); f = norm.transform(test_feats)``

    Attributes:
        max_: per-component training maximum, shape (D,), after ``fit``.
    """

    def __init__(self, *, eps: float = 1e-12) -> None:
        """Configure the DeepFaceNormalizer.

        Args:
            eps: guard of the L2 normalisation (rows of zeros stay zero).
        """
        self.eps = eps
        self.max_: Tensor | None = None

    def fit(self, features: ArrayLike) -> DeepFaceNormalizer:
        """Learn the per-component maxima from training features of shape (N, D)."""
        f, _ = _as_tensor(features, "features")
        _check_2d(f, "features")
        if f.shape[0] == 0:
            raise ValueError("DeepFaceNormalizer.fit needs at least one training row; got shape (0, D).")
        m = f.detach().abs().amax(dim=0)
        self.max_ = torch.where(m > 0, m, torch.ones_like(m))
        return self

    def transform(self, features: ArrayLike) -> ArrayLike:
        """Normalise features of shape (N, D) -> (N, D), same type as given."""
        if self.max_ is None:
            raise RuntimeError("DeepFaceNormalizer is not fitted yet: call fit(train_features) first.")
        f, was_np = _as_tensor(features, "features")
        _check_2d(f, "features")
        if f.shape[1] != self.max_.shape[0]:
            raise ValueError(
                f"features have shape {tuple(f.shape)} but the normaliser was fitted on D={self.max_.shape[0]}."
            )
        scaled = f / self.max_.to(device=f.device, dtype=f.dtype)
        return _back(F.normalize(scaled, dim=1, eps=self.eps), was_np)

    def fit_transform(self, features: ArrayLike) -> ArrayLike:
        """``fit`` then ``transform`` the same features (N, D) -> (N, D)."""
        return self.fit(features).transform(features)


def chi_square_features(f1: ArrayLike, f2: ArrayLike) -> ArrayLike:
    """DeepFace's chi-square feature vector ``(f1 - f2)^2 / (f1 + f2)`` per component.

    Components where ``f1 + f2 == 0`` (both zero) contribute 0. The features
    must be non-negative (as DeepFace's ReLU features are).

    Args:
        f1: features, shape (N, D), non-negative.
        f2: features, shape (N, D), non-negative.

    Returns:
        Chi-square features, shape (N, D); their sum is the chi-square distance.
    """
    a, was_np = _as_tensor(f1, "f1")
    b, _ = _as_tensor(f2, "f2")
    _check_paired(a, b)
    b = b.to(device=a.device, dtype=a.dtype)
    if bool((a < 0).any()) or bool((b < 0).any()):
        raise ValueError(
            "chi-square features need non-negative inputs (DeepFace applies them to ReLU outputs); "
            "got negative values."
        )
    s = a + b
    pos = s > 0
    out = torch.where(pos, (a - b).pow(2) / torch.where(pos, s, torch.ones_like(s)), torch.zeros_like(s))
    return _back(out, was_np)


def weighted_chi_square_distance(f1: ArrayLike, f2: ArrayLike, weights: ArrayLike) -> ArrayLike:
    """``sum_k w_k (f1_k - f2_k)^2 / (f1_k + f2_k)``: (N, D), (N, D), (D,) -> (N,)."""
    feats = chi_square_features(f1, f2)
    ft, was_np = _as_tensor(feats, "features")
    w, _ = _as_tensor(weights, "weights")
    if w.shape != (ft.shape[1],):
        raise ValueError(f"weights must have shape ({ft.shape[1]},), got {tuple(w.shape)}.")
    return _back(ft @ w.to(device=ft.device, dtype=ft.dtype), was_np)


class ChiSquareVerifier:
    """DeepFace's learned weighted chi-square verifier.

    A linear classifier (scikit-learn ``LogisticRegression`` or ``LinearSVC``)
    is trained on :func:`chi_square_features` of labelled pairs, so that its
    decision value ``b + sum_k w_k chi2_k`` is a weighted chi-square distance
    with learned weights ``w`` (negative for discriminative components).
    Label 1 means "same identity", so **a higher decision value means more
    likely the same person**, the package's score convention.

    Attributes:
        classifier_: the fitted scikit-learn estimator, after ``fit``.
    """

    def __init__(
        self,
        classifier: Literal["logistic", "linear_svm"] = "logistic",
        *,
        C: float = 1.0,
        max_iter: int = 2000,
        random_state: int | None = 0,
    ) -> None:
        """Configure the ChiSquareVerifier.

        Args:
            classifier: ``"logistic"`` (LogisticRegression) or ``"linear_svm"`` (LinearSVC).
            C: inverse regularisation strength of the classifier.
            max_iter: iteration budget of the solver.
            random_state: seed passed to the solver.
        """
        if classifier not in ("logistic", "linear_svm"):
            raise ValueError(f"classifier must be 'logistic' or 'linear_svm', got {classifier!r}.")
        self.classifier = classifier
        self.C = C
        self.max_iter = max_iter
        self.random_state = random_state
        self.classifier_: Any = None

    def _features(self, f1: ArrayLike, f2: ArrayLike) -> np.ndarray:
        feats = chi_square_features(f1, f2)
        return feats.detach().cpu().numpy() if isinstance(feats, Tensor) else feats

    def fit(self, f1: ArrayLike, f2: ArrayLike, same: ArrayLike) -> ChiSquareVerifier:
        """Learn the weights from pairs.

        Args:
            f1: first features of each pair, shape (N, D), non-negative.
            f2: second features of each pair, shape (N, D), non-negative.
            same: 1 when the pair shows the same identity, else 0; shape (N,).
        """
        x = self._features(f1, f2)
        y = same.detach().cpu().numpy() if isinstance(same, Tensor) else np.asarray(same)
        if y.shape != (x.shape[0],):
            raise ValueError(f"same must have shape ({x.shape[0]},), got {y.shape}.")
        y = y.astype(int)
        if set(np.unique(y).tolist()) != {0, 1}:
            raise ValueError("same must contain both 0 (different) and 1 (same) pairs.")
        if self.classifier == "logistic":
            clf = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.random_state)
        else:
            clf = LinearSVC(C=self.C, max_iter=self.max_iter, random_state=self.random_state)
        self.classifier_ = clf.fit(x, y)
        return self

    @property
    def weights(self) -> np.ndarray:
        """Learned per-component weights, shape (D,)."""
        if self.classifier_ is None:
            raise RuntimeError("ChiSquareVerifier is not fitted yet: call fit(f1, f2, same) first.")
        return np.asarray(self.classifier_.coef_).ravel()

    def decision_function(self, f1: ArrayLike, f2: ArrayLike) -> np.ndarray:
        """Scores of pairs (N, D), (N, D) -> (N,); higher = more likely the same identity."""
        if self.classifier_ is None:
            raise RuntimeError("ChiSquareVerifier is not fitted yet: call fit(f1, f2, same) first.")
        return np.asarray(self.classifier_.decision_function(self._features(f1, f2)), dtype=float)

    def predict(self, f1: ArrayLike, f2: ArrayLike) -> np.ndarray:
        """Hard decisions (N,): 1 = same identity, 0 = different."""
        return (self.decision_function(f1, f2) > 0).astype(int)
