"""Online miners: choose the pairs and triplets a metric-learning loss trains on.

A miner looks at a batch of embeddings ``(N, D)`` with identity labels
``(N,)`` and returns *indices into the batch*, never new tensors, so the loss
recomputes the selected distances with gradients. Mining itself runs under
``torch.no_grad()`` and is fully vectorised (masks over the ``(N, N)``
distance matrix; no Python loop over anchors or triplets).

A triplet ``(a, p, n)`` is *valid* when ``a != p``, ``label[a] == label[p]``
and ``label[n] != label[a]``. It is *active* when its triplet loss is
positive: ``d(a, p) - d(a, n) + margin > 0``. The fraction of active triplets
is the key diagnostic of triplet training: with all triplets it quickly falls
towards zero (most triplets are already easy, and averaging over them dilutes
the gradient); hard mining keeps it high.

Miners:

* :class:`AllTripletsMiner`: every valid triplet (``O(N^3)``; fine for N <= 256).
* :class:`BatchHardMiner`: per anchor, the farthest positive and the closest
  negative (Hermans et al., 2017).
* :class:`SemiHardMiner`: per positive pair, the closest negative that is
  farther than the positive (FaceNet, Schroff et al., 2015; same rule as
  ``tfa.losses.TripletSemiHardLoss``).
* :class:`PairMiner`: all positive and negative pairs, for the contrastive loss.

Each returns a small result object that unpacks like a tuple,
``anchors, positives, negatives = miner(embeddings, labels)``, and carries
``active_fraction`` and counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor

from course_utils.metric_learning.distances import METRICS, Metric, pairwise_distance

__all__ = [
    "Miner",
    "check_embeddings_labels",
    "MinedTriplets",
    "MinedPairs",
    "AllTripletsMiner",
    "BatchHardMiner",
    "SemiHardMiner",
    "PairMiner",
    "valid_triplet_mask",
    "active_triplet_fraction",
]


def check_embeddings_labels(embeddings: Tensor, labels: Tensor, *, who: str = "") -> None:
    """Raise unless ``embeddings`` is an ``(N, D)`` tensor and ``labels`` an ``(N,)`` one (``who`` prefixes the message)."""
    prefix = f"{who}: " if who else ""
    if not isinstance(embeddings, Tensor) or not isinstance(labels, Tensor):
        raise TypeError(f"{prefix}embeddings and labels must be torch tensors.")
    if embeddings.ndim != 2:
        raise ValueError(f"{prefix}embeddings must have shape (N, D), got shape {tuple(embeddings.shape)}.")
    if labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"{prefix}labels must have shape (N,) = ({embeddings.shape[0]},) to match embeddings of shape "
            f"{tuple(embeddings.shape)}; got labels of shape {tuple(labels.shape)}."
        )


def _check_margin_metric(margin: float, metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; use one of {METRICS}.")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}.")


@dataclass(frozen=True, eq=False)
class MinedTriplets:
    """Indices of mined triplets, each of shape (T,), plus diagnostics.

    Unpacks as ``anchors, positives, negatives = mined``.

    Attributes:
        anchors: anchor indices into the batch, shape (T,), int64.
        positives: positive indices, shape (T,).
        negatives: negative indices, shape (T,).
        num_active: how many of the T triplets have a positive loss.
        active_fraction: ``num_active / T`` (0.0 when T == 0).
    """

    anchors: Tensor
    positives: Tensor
    negatives: Tensor
    num_active: int
    active_fraction: float

    def __iter__(self) -> Iterator[Tensor]:
        return iter((self.anchors, self.positives, self.negatives))

    @property
    def num_triplets(self) -> int:
        """Number of mined triplets T."""
        return int(self.anchors.numel())


@dataclass(frozen=True, eq=False)
class MinedPairs:
    """Indices of mined pairs, each of shape (P,), plus diagnostics.

    Unpacks as ``first, second, is_positive = mined``.

    Attributes:
        first: index of the first element of each pair, shape (P,), int64.
        second: index of the second element, shape (P,).
        is_positive: True where both have the same label, shape (P,), bool.
        num_active: pairs whose contrastive loss is positive (positives at a
            non-zero distance; negatives closer than the margin).
        active_fraction: ``num_active / P`` (0.0 when P == 0).
    """

    first: Tensor
    second: Tensor
    is_positive: Tensor
    num_active: int
    active_fraction: float

    def __iter__(self) -> Iterator[Tensor]:
        return iter((self.first, self.second, self.is_positive))

    @property
    def num_pairs(self) -> int:
        """Number of mined pairs P."""
        return int(self.first.numel())


def _masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Positive mask (same label, not self) and negative mask, both (N, N) bool."""
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def valid_triplet_mask(labels: Tensor) -> Tensor:
    """Boolean mask of valid triplets: (N,) -> (N, N, N) indexed ``[a, p, n]``."""
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (N,), got shape {tuple(labels.shape)}.")
    pos, neg = _masks(labels)
    return pos.unsqueeze(2) & neg.unsqueeze(1)


def _triplets(
    d: Tensor, a: Tensor, p: Tensor, n: Tensor, margin: float
) -> MinedTriplets:
    t = int(a.numel())
    if t == 0:
        return MinedTriplets(a, p, n, 0, 0.0)
    active = int((d[a, p] - d[a, n] + margin > 0).sum())
    return MinedTriplets(a, p, n, active, active / t)


def active_triplet_fraction(
    embeddings: Tensor, labels: Tensor, *, margin: float, metric: Metric = "squared_l2"
) -> float:
    """Fraction of *all* valid triplets of a batch whose triplet loss is positive.

    Args:
        embeddings: shape (N, D).
        labels: shape (N,).
        margin: triplet margin.
        metric: distance used by the triplet loss.

    Returns:
        The fraction in [0, 1]; 0.0 when the batch has no valid triplet.
    """
    return AllTripletsMiner(margin=margin, metric=metric)(embeddings, labels).active_fraction


class Miner:
    """The base of the miners: a margin and a distance; ``miner(embeddings (N, D), labels (N,))`` mines.

    Args:
        margin: the loss's margin, used to count active pairs or triplets.
        metric: distance (see :data:`course_utils.metric_learning.distances.METRICS`).
    """

    def __init__(self, *, margin: float = 0.2, metric: Metric = "squared_l2") -> None:
        _check_margin_metric(margin, metric)
        self.margin = margin
        self.metric = metric

    def __call__(self, embeddings: Tensor, labels: Tensor) -> MinedTriplets | MinedPairs:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(margin={self.margin}, metric={self.metric!r})"


class AllTripletsMiner(Miner):
    """Every valid triplet of the batch (optionally only the active ones)."""

    def __init__(self, *, margin: float = 0.2, metric: Metric = "squared_l2", active_only: bool = False) -> None:
        """Configure the AllTripletsMiner.

        Args:
            margin: triplet margin, used to count (or keep only) active triplets.
            metric: distance (see :data:`course_utils.metric_learning.distances.METRICS`).
            active_only: return only triplets with a positive loss; the reported
                ``active_fraction`` is then still the fraction among all valid triplets.
        """
        super().__init__(margin=margin, metric=metric)
        self.active_only = active_only

    def __call__(self, embeddings: Tensor, labels: Tensor) -> MinedTriplets:
        """Mine (N, D) embeddings with (N,) labels -> :class:`MinedTriplets`."""
        check_embeddings_labels(embeddings, labels)
        with torch.no_grad():
            d = pairwise_distance(embeddings.detach(), metric=self.metric)
            mask = valid_triplet_mask(labels)
            a, p, n = mask.nonzero(as_tuple=True)
            mined = _triplets(d, a, p, n, self.margin)
            if self.active_only and mined.num_triplets:
                keep = d[a, p] - d[a, n] + self.margin > 0
                # active_fraction stays the fraction among *all* valid triplets
                mined = MinedTriplets(a[keep], p[keep], n[keep], mined.num_active, mined.active_fraction)
        return mined


class BatchHardMiner(Miner):
    """Batch-hard mining: one triplet per anchor, with its hardest positive and negative.

    For each anchor that has at least one positive and one negative in the
    batch: the positive at the *largest* distance and the negative at the
    *smallest* distance. Use it with P identities x K images per batch.
    """

    def __call__(self, embeddings: Tensor, labels: Tensor) -> MinedTriplets:
        """Mine (N, D) embeddings with (N,) labels -> :class:`MinedTriplets` (T <= N)."""
        check_embeddings_labels(embeddings, labels)
        with torch.no_grad():
            d = pairwise_distance(embeddings.detach(), metric=self.metric)
            pos, neg = _masks(labels)
            hardest_pos = d.masked_fill(~pos, float("-inf")).argmax(dim=1)
            hardest_neg = d.masked_fill(~neg, float("inf")).argmin(dim=1)
            a = (pos.any(dim=1) & neg.any(dim=1)).nonzero(as_tuple=True)[0]
            return _triplets(d, a, hardest_pos[a], hardest_neg[a], self.margin)


class SemiHardMiner(Miner):
    """FaceNet semi-hard mining: one triplet per positive pair.

    For every positive pair ``(a, p)``, the negative is the *closest* one that
    is still farther from the anchor than the positive (``d(a, n) > d(a, p)``);
    when the margin is larger than that gap the triplet is active. If no
    negative is farther than the positive, the farthest negative is used
    (the rule of ``tfa.losses.TripletSemiHardLoss``). Anchors without any
    negative in the batch are skipped.
    """

    def __call__(self, embeddings: Tensor, labels: Tensor) -> MinedTriplets:
        """Mine (N, D) embeddings with (N,) labels -> :class:`MinedTriplets` (one per positive pair)."""
        check_embeddings_labels(embeddings, labels)
        with torch.no_grad():
            d = pairwise_distance(embeddings.detach(), metric=self.metric)
            pos, neg = _masks(labels)
            pos = pos & neg.any(dim=1, keepdim=True)  # anchors need a negative
            a, p = pos.nonzero(as_tuple=True)
            d_an = d[a]  # (P, N)
            d_ap = d[a, p].unsqueeze(1)  # (P, 1)
            neg_a = neg[a]
            farther = neg_a & (d_an > d_ap)
            closest_farther = d_an.masked_fill(~farther, float("inf")).argmin(dim=1)
            farthest = d_an.masked_fill(~neg_a, float("-inf")).argmax(dim=1)
            n = torch.where(farther.any(dim=1), closest_farther, farthest)
            return _triplets(d, a, p, n, self.margin)


class PairMiner(Miner):
    """All positive and all negative pairs ``(i, j)`` with ``i < j``, for the contrastive loss."""

    def __init__(self, *, margin: float = 1.0, metric: Metric = "l2") -> None:
        """Configure the PairMiner.

        Args:
            margin: contrastive margin, used to count active negative pairs.
            metric: distance (see :data:`course_utils.metric_learning.distances.METRICS`).
        """
        super().__init__(margin=margin, metric=metric)

    def __call__(self, embeddings: Tensor, labels: Tensor) -> MinedPairs:
        """Mine (N, D) embeddings with (N,) labels -> :class:`MinedPairs` (P = N(N-1)/2)."""
        check_embeddings_labels(embeddings, labels)
        with torch.no_grad():
            n = embeddings.shape[0]
            i, j = torch.triu_indices(n, n, offset=1, device=embeddings.device)
            is_pos = labels[i] == labels[j]
            if i.numel() == 0:
                return MinedPairs(i, j, is_pos, 0, 0.0)
            d = pairwise_distance(embeddings.detach(), metric=self.metric)[i, j]
            active = torch.where(is_pos, d > 0, d < self.margin)
            num_active = int(active.sum())
            return MinedPairs(i, j, is_pos, num_active, num_active / int(i.numel()))
