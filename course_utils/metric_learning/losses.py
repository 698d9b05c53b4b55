"""Metric-learning and classification losses, each a small ``nn.Module``.

Every loss checks the shapes it is given and raises a ``ValueError`` that
names them. Losses over pairs or triplets return an exact zero that is still
connected to the graph (``embeddings.sum() * 0``) when the batch holds no
valid pair or triplet, so ``loss.backward()`` works and gives zero, finite
gradients instead of NaN.

* :class:`ContrastiveLoss`: ``y d^2 + (1 - y) max(0, m - d)^2`` over pairs (Hadsell et al., 2006).
* :class:`TripletLoss`: ``max(0, d(a,p) - d(a,n) + m)`` with squared L2, optional miner (FaceNet).
* :class:`CenterLoss`: ``1/2 ||x_i - c_{y_i}||^2`` with learnable class centres (Wen et al., 2016).
* :class:`ArcFaceLoss`, :class:`CosFaceLoss`: additive angular / cosine margin softmax.
* :class:`SiamesePairClassifier`: ``|f1 - f2|`` (or distance) -> linear -> sigmoid, with BCE.
* :class:`LabelSmoothingCrossEntropy`: cross-entropy against ``(1 - a) onehot + a / K``.
* :class:`NTXentLoss`: SimCLR's normalised temperature-scaled cross-entropy.
* :class:`SoftmaxCenterLoss`: softmax cross-entropy plus a weighted :class:`CenterLoss` in one module.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_utils.metric_learning.distances import (
    METRICS,
    Metric,
    paired_distance,
    pairwise_cosine_similarity,
    pairwise_distance,
)
from course_utils.metric_learning.miners import (
    AllTripletsMiner,
    BatchHardMiner,
    MinedPairs,
    MinedTriplets,
    PairMiner,
    SemiHardMiner,
    check_embeddings_labels,
)

__all__ = [
    "ContrastiveLoss",
    "TripletLoss",
    "CenterLoss",
    "ArcFaceLoss",
    "CosFaceLoss",
    "SiamesePairClassifier",
    "LabelSmoothingCrossEntropy",
    "NTXentLoss",
    "SoftmaxCenterLoss",
]

Reduction = Literal["mean", "sum"]


# --------------------------------------------------------------------------- checks
def _check_pair_batch(x1: Tensor, x2: Tensor, who: str) -> None:
    if x1.ndim != 2 or x1.shape != x2.shape:
        raise ValueError(
            f"{who}: the two embeddings of each pair must both have shape (N, D); "
            f"got {tuple(x1.shape)} and {tuple(x2.shape)}."
        )


def _check_targets(same: Tensor, n: int, who: str, name: str = "same") -> None:
    if same.ndim != 1 or same.shape[0] != n:
        raise ValueError(f"{who}: {name} must have shape (N,) = ({n},), got shape {tuple(same.shape)}.")


def _check_class_targets(logits_or_emb: Tensor, targets: Tensor, num_classes: int, who: str) -> None:
    if targets.ndim != 1 or targets.shape[0] != logits_or_emb.shape[0]:
        raise ValueError(
            f"{who}: targets must have shape (N,) = ({logits_or_emb.shape[0]},) to match input of shape "
            f"{tuple(logits_or_emb.shape)}; got shape {tuple(targets.shape)}."
        )
    if targets.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise ValueError(f"{who}: targets must be integer class indices, got dtype {targets.dtype}.")
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise ValueError(
            f"{who}: targets must lie in [0, {num_classes - 1}], got values in "
            f"[{int(targets.min())}, {int(targets.max())}]."
        )


def _zero(x: Tensor) -> Tensor:
    """A zero that keeps the graph (finite zero gradient, never NaN)."""
    return x.sum() * 0.0


def _reduce(values: Tensor, reduction: str) -> Tensor:
    return values.sum() if reduction == "sum" else values.mean()


def _check_reduction(reduction: str, allowed: tuple[str, ...] = ("mean", "sum")) -> None:
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}.")


# --------------------------------------------------------------------------- contrastive
class ContrastiveLoss(nn.Module):
    """Contrastive loss over pairs: ``y d^2 + (1 - y) max(0, margin - d)^2``.

    ``d`` is the Euclidean distance and ``y = 1`` for a same-identity pair.
    Positive pairs are pulled together; negative pairs are pushed apart until
    they are ``margin`` away, after which they cost nothing.

    Two ways to call it:

    * ``loss(embeddings, labels)``: a batch ``(N, D)`` with labels ``(N,)``;
      the pairs come from ``pairs=`` (a :class:`~course_utils.metric_learning.miners.MinedPairs`
      or ``(first, second)`` index tensors), else from the miner given at
      construction, else all pairs ``i < j``.
    * ``loss.forward_pairs(x1, x2, same)``: explicit Siamese pairs.

    Attributes:
        last_active_fraction: fraction of pairs with a positive loss in the last call.
    """

    def __init__(self, margin: float = 1.0, *, miner: PairMiner | None = None, reduction: Reduction = "mean") -> None:
        """Configure the ContrastiveLoss.

        Args:
            margin: distance beyond which negative pairs cost nothing (> 0).
            miner: optional pair miner used when ``forward`` gets no ``pairs``.
            reduction: ``"mean"`` over pairs or ``"sum"``.
        """
        super().__init__()
        if margin <= 0:
            raise ValueError(f"ContrastiveLoss: margin must be > 0, got {margin}.")
        _check_reduction(reduction)
        self.margin = float(margin)
        self.miner = miner
        self.reduction = reduction
        self.last_active_fraction = 0.0

    def _pair_losses(self, d2: Tensor, same: Tensor, *, mask: Tensor | None = None) -> Tensor:
        """Per-pair losses from squared distances; ``mask`` marks the pairs that count (for the active fraction)."""
        d = torch.sqrt(d2.clamp_min(1e-12))
        neg = F.relu(self.margin - d).pow(2)
        losses = torch.where(same, d2, neg)
        if mask is None:
            self.last_active_fraction = float((losses > 0).float().mean()) if losses.numel() else 0.0
        else:
            self.last_active_fraction = float(((losses > 0) & mask).sum()) / max(int(mask.sum()), 1)
        return losses

    def _all_pairs(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """All pairs ``i < j`` from the (N, N) distance matrix: no (P, D) copies of the pairs' vectors.

        Same values as gathering the N(N-1)/2 pairs and calling
        :meth:`forward_pairs`, about 20x faster at N = 256, D = 128.
        """
        n = embeddings.shape[0]
        if n < 2:
            self.last_active_fraction = 0.0
            return _zero(embeddings)
        d2 = pairwise_distance(embeddings, metric="squared_l2")  # (N, N), differentiable
        same = labels.view(-1, 1) == labels.view(1, -1)
        upper = torch.ones(n, n, dtype=torch.bool, device=embeddings.device).triu_(1)
        losses = self._pair_losses(d2, same, mask=upper)
        total = losses.masked_fill(~upper, 0.0).sum()
        return total / (n * (n - 1) // 2) if self.reduction == "mean" else total

    def forward_pairs(self, x1: Tensor, x2: Tensor, same: Tensor) -> Tensor:
        """Loss of explicit pairs.

        Args:
            x1: first embeddings, shape (N, D).
            x2: second embeddings, shape (N, D).
            same: 1/True for a same-identity pair, shape (N,).

        Returns:
            Scalar loss (0 with a finite gradient when N == 0).
        """
        _check_pair_batch(x1, x2, "ContrastiveLoss")
        _check_targets(same, x1.shape[0], "ContrastiveLoss")
        if x1.shape[0] == 0:
            self.last_active_fraction = 0.0
            return _zero(x1) + _zero(x2)
        d2 = paired_distance(x1, x2, metric="squared_l2")
        return _reduce(self._pair_losses(d2, same.bool()), self.reduction)

    def forward(
        self, embeddings: Tensor, labels: Tensor, *, pairs: MinedPairs | tuple[Tensor, Tensor] | None = None
    ) -> Tensor:
        """Loss over pairs of a batch.

        Args:
            embeddings: shape (N, D).
            labels: identity labels, shape (N,).
            pairs: optional pair indices into the batch.

        Returns:
            Scalar loss (0 with a finite gradient when there is no pair).
        """
        check_embeddings_labels(embeddings, labels, who="ContrastiveLoss")
        if pairs is None and self.miner is None:
            return self._all_pairs(embeddings, labels)
        if pairs is None:
            pairs = self.miner(embeddings, labels)
        i, j = tuple(pairs)[:2]
        if i.numel() == 0:
            self.last_active_fraction = 0.0
            return _zero(embeddings)
        return self.forward_pairs(embeddings[i], embeddings[j], labels[i] == labels[j])


# --------------------------------------------------------------------------- triplet
class TripletLoss(nn.Module):
    """Triplet loss ``max(0, d(a, p) - d(a, n) + margin)``, squared L2 by default (FaceNet).

    Call it on a batch, ``loss(embeddings, labels)``. The triplets come from
    ``triplets=`` (a :class:`~course_utils.metric_learning.miners.MinedTriplets` or
    ``(anchors, positives, negatives)`` index tensors), else from the miner
    given at construction, else all valid triplets (no mining).

    Attributes:
        last_active_fraction: fraction of the used triplets with a positive loss (last call).
        last_num_triplets: number of triplets used in the last call.
    """

    def __init__(
        self,
        margin: float = 0.2,
        *,
        metric: Metric = "squared_l2",
        miner: AllTripletsMiner | BatchHardMiner | SemiHardMiner | Any | None = None,
        reduction: Literal["mean", "mean_active", "sum"] = "mean",
    ) -> None:
        """Configure the TripletLoss.

        Args:
            margin: required gap between negative and positive distances (>= 0).
            metric: ``"squared_l2"`` (FaceNet) or another of :data:`course_utils.metric_learning.distances.METRICS`.
            miner: optional callable ``(embeddings, labels) -> (anchors, positives, negatives)``.
            reduction: ``"mean"`` over triplets, ``"mean_active"`` over triplets with a
                positive loss (avoids dilution by easy triplets), or ``"sum"``.
        """
        super().__init__()
        if margin < 0:
            raise ValueError(f"TripletLoss: margin must be >= 0, got {margin}.")
        if metric not in METRICS:
            raise ValueError(f"TripletLoss: unknown metric {metric!r}; use one of {METRICS}.")
        _check_reduction(reduction, ("mean", "mean_active", "sum"))
        self.margin = float(margin)
        self.metric = metric
        self.miner = miner
        self.reduction = reduction
        self.last_active_fraction = 0.0
        self.last_num_triplets = 0

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        *,
        triplets: MinedTriplets | tuple[Tensor, Tensor, Tensor] | None = None,
    ) -> Tensor:
        """Loss over triplets of a batch.

        Args:
            embeddings: shape (N, D).
            labels: identity labels, shape (N,).
            triplets: optional ``(anchors, positives, negatives)`` indices, each (T,).

        Returns:
            Scalar loss (0 with a finite gradient when T == 0).
        """
        check_embeddings_labels(embeddings, labels, who="TripletLoss")
        if triplets is None:
            miner = self.miner or AllTripletsMiner(margin=self.margin, metric=self.metric)
            triplets = miner(embeddings, labels)
        a, p, n = tuple(triplets)[:3]
        if not (a.shape == p.shape == n.shape) or a.ndim != 1:
            raise ValueError(
                f"TripletLoss: anchors, positives, negatives must be index tensors of the same shape (T,); "
                f"got {tuple(a.shape)}, {tuple(p.shape)}, {tuple(n.shape)}."
            )
        self.last_num_triplets = int(a.numel())
        if a.numel() == 0:
            self.last_active_fraction = 0.0
            return _zero(embeddings)
        d_ap = paired_distance(embeddings[a], embeddings[p], metric=self.metric)
        d_an = paired_distance(embeddings[a], embeddings[n], metric=self.metric)
        losses = F.relu(d_ap - d_an + self.margin)
        active = losses > 0
        self.last_active_fraction = float(active.float().mean())
        if self.reduction == "mean_active":
            n_active = int(active.sum())
            return losses.sum() / n_active if n_active else _zero(embeddings)
        return _reduce(losses, self.reduction)


# --------------------------------------------------------------------------- center
class CenterLoss(nn.Module):
    """Center loss ``1/2 mean_i ||x_i - c_{y_i}||^2`` with one learnable centre per class.

    Used *together with* a softmax loss (``total = ce + lam * center``): the
    softmax separates classes, the centre loss makes each class compact.

    The centres are an ``nn.Parameter`` of shape (K, D). Wen et al. update them
    with their own rate ``alpha``, so give them their own optimizer parameter
    group with :meth:`param_group`::

        center = CenterLoss(num_classes=40, embedding_dim=128)
        opt = torch.optim.SGD(
            [{"params": model.parameters()}, center.param_group(lr=0.5)], lr=0.01
        )

    With SGD the centre ``c_j`` then moves by ``lr * lam / N * sum_{y_i=j} (x_i - c_j)``
    per step, so a larger centre learning rate (e.g. ``alpha / lam``) is usual.
    Don't use weight decay on the centres.
    """

    def __init__(self, num_classes: int, *, embedding_dim: int) -> None:
        """Configure the CenterLoss.

        Args:
            num_classes: number of classes K.
            embedding_dim: embedding size D.
        """
        super().__init__()
        if num_classes < 1 or embedding_dim < 1:
            raise ValueError(
                f"CenterLoss: need num_classes >= 1 and embedding_dim >= 1, got {num_classes}, {embedding_dim}."
            )
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.centers = nn.Parameter(torch.randn(num_classes, embedding_dim) * 0.01)

    def param_group(self, *, lr: float, weight_decay: float = 0.0) -> dict[str, Any]:
        """An optimizer parameter group holding only the centres, with their own learning rate."""
        return {"params": [self.centers], "lr": lr, "weight_decay": weight_decay}

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            embeddings: shape (N, D).
            labels: class indices, shape (N,), in [0, K).

        Returns:
            Scalar loss (0 with a finite gradient when N == 0).
        """
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_dim:
            raise ValueError(
                f"CenterLoss: embeddings must have shape (N, {self.embedding_dim}), got {tuple(embeddings.shape)}."
            )
        _check_class_targets(embeddings, labels, self.num_classes, "CenterLoss")
        if embeddings.shape[0] == 0:
            return _zero(embeddings) + _zero(self.centers)
        diff = embeddings - self.centers[labels.long()]
        return 0.5 * diff.pow(2).sum(dim=1).mean()


# --------------------------------------------------------------------------- margin softmax
class _MarginSoftmaxLoss(nn.Module):
    """Shared machinery: a normalised weight matrix W (K, D) and ``s * cos`` logits."""

    def __init__(self, num_classes: int, *, embedding_dim: int, s: float, m: float) -> None:
        super().__init__()
        if embedding_dim < 1 or num_classes < 2:
            raise ValueError(
                f"{type(self).__name__}: need num_classes >= 2 and embedding_dim >= 1, "
                f"got {num_classes}, {embedding_dim}."
            )
        if s <= 0 or m < 0:
            raise ValueError(f"{type(self).__name__}: need scale s > 0 and margin m >= 0, got s={s}, m={m}.")
        self.embedding_dim = embedding_dim
        self.num_classes = num_classes
        self.s = float(s)
        self.m = float(m)
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        nn.init.xavier_uniform_(self.weight)

    def _check(self, embeddings: Tensor) -> None:
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_dim:
            raise ValueError(
                f"{type(self).__name__}: embeddings must have shape (N, {self.embedding_dim}), "
                f"got {tuple(embeddings.shape)}."
            )

    def cosine(self, embeddings: Tensor) -> Tensor:
        """Cosine between each embedding and each class weight: (N, D) -> (N, K)."""
        self._check(embeddings)
        return F.normalize(embeddings, dim=1) @ F.normalize(self.weight, dim=1).T

    def _target_logit(self, cos: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def logits(self, embeddings: Tensor, labels: Tensor | None = None) -> Tensor:
        """Scaled logits (N, D) -> (N, K); with labels, the margin is applied to the target class.

        Without labels (inference), the logits are ``s * cos``; their argmax is the prediction.
        """
        cos = self.cosine(embeddings)
        if labels is None:
            return self.s * cos
        _check_class_targets(embeddings, labels, self.num_classes, type(self).__name__)
        onehot = F.one_hot(labels.long(), self.num_classes).bool()
        return self.s * torch.where(onehot, self._target_logit(cos), cos)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Cross-entropy of the margin logits: (N, D), (N,) -> scalar."""
        return F.cross_entropy(self.logits(embeddings, labels), labels.long())


class ArcFaceLoss(_MarginSoftmaxLoss):
    """ArcFace (additive angular margin): the target logit is ``s cos(theta + m)``.

    Embeddings and the class weights W (K, D) are L2-normalised, so logits
    depend only on angles. When ``theta + m > pi`` the usual fallback
    ``cos(theta) - m sin(m)`` keeps the target logit decreasing in theta.
    """

    def __init__(self, num_classes: int, *, embedding_dim: int, s: float = 64.0, m: float = 0.5) -> None:
        """Configure the ArcFaceLoss.

        Args:
            num_classes: number of training identities K.
            embedding_dim: embedding size D.
            s: scale (radius of the hypersphere).
            m: additive angular margin in radians.
        """
        super().__init__(num_classes, embedding_dim=embedding_dim, s=s, m=m)
        self._cos_m, self._sin_m = math.cos(m), math.sin(m)
        self._th = math.cos(math.pi - m)
        self._mm = math.sin(math.pi - m) * m

    def _target_logit(self, cos: Tensor) -> Tensor:
        c = cos.clamp(-1.0 + 1e-7, 1.0 - 1e-7)
        sin = torch.sqrt(1.0 - c * c)
        phi = c * self._cos_m - sin * self._sin_m
        return torch.where(c > self._th, phi, c - self._mm)


class CosFaceLoss(_MarginSoftmaxLoss):
    """CosFace (large margin cosine): the target logit is ``s (cos(theta) - m)``."""

    def __init__(self, num_classes: int, *, embedding_dim: int, s: float = 64.0, m: float = 0.35) -> None:
        """Configure the CosFaceLoss.

        Args:
            num_classes: number of training identities K.
            embedding_dim: embedding size D.
            s: scale.
            m: additive cosine margin.
        """
        super().__init__(num_classes, embedding_dim=embedding_dim, s=s, m=m)

    def _target_logit(self, cos: Tensor) -> Tensor:
        return cos - self.m


# --------------------------------------------------------------------------- siamese head
class SiamesePairClassifier(nn.Module):
    """Siamese verification head: pair features -> linear -> sigmoid, trained with BCE.

    ``mode="abs_diff"`` feeds ``|f1 - f2|`` (D features) to the linear layer;
    ``mode="distance"`` feeds the Euclidean distance (1 feature), as the Keras
    Siamese example does. ``forward`` returns *logits* (use
    :meth:`predict_proba` for probabilities); :meth:`loss` is binary
    cross-entropy with label 1 = same identity, so the output is a score where
    higher means more likely the same person.
    """

    def __init__(self, embedding_dim: int, *, mode: Literal["abs_diff", "distance"] = "abs_diff") -> None:
        """Configure the SiamesePairClassifier.

        Args:
            embedding_dim: embedding size D.
            mode: ``"abs_diff"`` or ``"distance"``.
        """
        super().__init__()
        if mode not in ("abs_diff", "distance"):
            raise ValueError(f"SiamesePairClassifier: mode must be 'abs_diff' or 'distance', got {mode!r}.")
        self.embedding_dim = embedding_dim
        self.mode = mode
        self.linear = nn.Linear(embedding_dim if mode == "abs_diff" else 1, 1)
        if mode == "distance":  # start with "closer = more likely same"
            with torch.no_grad():
                self.linear.weight.fill_(-1.0)
                self.linear.bias.fill_(1.0)

    def _check(self, f1: Tensor, f2: Tensor) -> None:
        _check_pair_batch(f1, f2, "SiamesePairClassifier")
        if f1.shape[1] != self.embedding_dim:
            raise ValueError(
                f"SiamesePairClassifier: embeddings must have shape (N, {self.embedding_dim}), got {tuple(f1.shape)}."
            )

    def forward(self, f1: Tensor, f2: Tensor) -> Tensor:
        """Logits that the pairs match: (N, D), (N, D) -> (N,)."""
        self._check(f1, f2)
        if self.mode == "abs_diff":
            feats = (f1 - f2).abs()
        else:
            feats = paired_distance(f1, f2, metric="l2").unsqueeze(1)
        return self.linear(feats).squeeze(1)

    def predict_proba(self, f1: Tensor, f2: Tensor) -> Tensor:
        """Probability that each pair shows the same identity: (N,)."""
        return torch.sigmoid(self(f1, f2))

    def loss(self, f1: Tensor, f2: Tensor, same: Tensor) -> Tensor:
        """Binary cross-entropy of the pairs: (N, D), (N, D), (N,) -> scalar (mean)."""
        logits = self(f1, f2)
        _check_targets(same, f1.shape[0], "SiamesePairClassifier")
        if f1.shape[0] == 0:
            return _zero(logits)
        return F.binary_cross_entropy_with_logits(logits, same.to(logits.dtype))


# --------------------------------------------------------------------------- label smoothing
class LabelSmoothingCrossEntropy(nn.Module):
    """Cross-entropy against smoothed targets ``y_ls = (1 - a) onehot(y) + a / K``.

    Equal to ``F.cross_entropy(logits, y, label_smoothing=a)``; written out
    so the formula is visible: ``-(1 - a) log p_y - (a / K) sum_k log p_k``.
    """

    def __init__(self, smoothing: float = 0.1, *, reduction: Reduction = "mean") -> None:
        """Configure the LabelSmoothingCrossEntropy.

        Args:
            smoothing: the smoothing ``a`` in [0, 1).
            reduction: ``"mean"`` or ``"sum"`` over the batch.
        """
        super().__init__()
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"LabelSmoothingCrossEntropy: smoothing must be in [0, 1), got {smoothing}.")
        _check_reduction(reduction)
        self.smoothing = float(smoothing)
        self.reduction = reduction

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            logits: shape (N, K).
            targets: class indices, shape (N,).

        Returns:
            Scalar loss.
        """
        if logits.ndim != 2:
            raise ValueError(f"LabelSmoothingCrossEntropy: logits must have shape (N, K), got {tuple(logits.shape)}.")
        _check_class_targets(logits, targets, logits.shape[1], "LabelSmoothingCrossEntropy")
        if logits.shape[0] == 0:
            return _zero(logits)
        logp = F.log_softmax(logits, dim=1)
        nll = -logp.gather(1, targets.long().unsqueeze(1)).squeeze(1)
        uniform = -logp.mean(dim=1)
        return _reduce((1.0 - self.smoothing) * nll + self.smoothing * uniform, self.reduction)


# --------------------------------------------------------------------------- NT-Xent
class NTXentLoss(nn.Module):
    """SimCLR's NT-Xent loss for two augmented views of the same N images.

    The 2N projections are L2-normalised; for each one, its other view is the
    positive and the remaining 2N - 2 are negatives::

        l_i = -log( exp(cos(z_i, z_j(i)) / t) / sum_{k != i} exp(cos(z_i, z_k) / t) )

    and the loss is the mean of ``l_i`` over all 2N projections.
    """

    def __init__(self, temperature: float = 0.5) -> None:
        """Configure the NTXentLoss.

        Args:
            temperature: the temperature ``t`` > 0 (smaller = sharper).
        """
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"NTXentLoss: temperature must be > 0, got {temperature}.")
        self.temperature = float(temperature)

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            z1: projections of the first views, shape (N, D).
            z2: projections of the second views, shape (N, D); row i pairs with row i of z1.

        Returns:
            Scalar loss (0 with a finite gradient when N == 0).
        """
        _check_pair_batch(z1, z2, "NTXentLoss")
        n = z1.shape[0]
        if n == 0:
            return _zero(z1) + _zero(z2)
        z = torch.cat([z1, z2], dim=0)
        logits = pairwise_cosine_similarity(z) / self.temperature
        eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(eye, float("-inf"))
        target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
        return F.cross_entropy(logits, target)


class SoftmaxCenterLoss(nn.Module):
    """Softmax cross-entropy plus ``center_weight`` x center loss (Wen et al., 2016).

    A linear classifier over the training identities separates them; the
    center loss pulls each embedding towards its identity's centre, so that
    the classes become compact, which is what verification of *new* people
    needs. Only the embedding is kept after training.

    Give the centres their own learning rate::

        crit = SoftmaxCenterLoss(30, embedding_dim=64, center_weight=0.01)
        opt = torch.optim.Adam([*net.parameters(), *crit.classifier.parameters()], lr=1e-3)
        opt.add_param_group(crit.center.param_group(lr=0.5))   # or use SGD for both

    Attributes:
        classifier: ``nn.Linear(embedding_dim, num_classes)``.
        center: the :class:`CenterLoss`.
        last_ce, last_center: the two terms of the last call (floats).
    """

    def __init__(self, num_classes: int, *, embedding_dim: int, center_weight: float = 0.01) -> None:
        super().__init__()
        if center_weight < 0:
            raise ValueError(f"center_weight must be >= 0, got {center_weight}.")
        self.classifier = nn.Linear(embedding_dim, num_classes)
        self.center = CenterLoss(num_classes, embedding_dim=embedding_dim)
        self.center_weight = float(center_weight)
        self.last_ce = 0.0
        self.last_center = 0.0

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """``ce(classifier(e), y) + center_weight * center(e, y)``: (N, D), (N,) -> scalar."""
        ce = F.cross_entropy(self.classifier(embeddings), labels.long())
        center = self.center(embeddings, labels)
        self.last_ce, self.last_center = float(ce.detach()), float(center.detach())
        return ce + self.center_weight * center
