"""Pairs, triplets, P x K batches, and splits that respect identities and groups.

* :func:`make_pairs` / :class:`PairDataset`: positive and negative pairs
  (``((x1, x2), same)``) for contrastive losses and verification.
* :func:`make_triplets` / :class:`TripletDataset`: anchor, positive, negative.
* :class:`PKBatchSampler`: batches of ``P`` identities x ``K`` images, for
  online (batch-hard) triplet mining; :class:`DistributedPKBatchSampler`
  gives each rank of a ``torchrun`` job disjoint identities at every step.
* :func:`identity_split`: open-set splits (test identities never seen in
  training), optionally stratified by a per-identity group.
* :func:`stratified_split`: per-image splits keeping group proportions.
* :func:`balanced_indices`: at most ``n`` images per group (cell).

Everything is a deterministic function of ``seed``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

__all__ = [
    "Split",
    "identity_split",
    "stratified_split",
    "balanced_indices",
    "make_pairs",
    "make_triplets",
    "PairDataset",
    "TripletDataset",
    "PKBatchSampler",
    "DistributedPKBatchSampler",
]

ArrayLike = np.ndarray | Sequence[Any] | pd.Series


@dataclass(frozen=True)
class Split:
    """Index arrays (sorted, disjoint) of a train / validation / test split."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.train, self.val, self.test))

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def _group_keys(groups: ArrayLike | pd.DataFrame) -> np.ndarray:
    """One integer key per row; a DataFrame's columns are combined into cells."""
    if isinstance(groups, pd.DataFrame):
        if groups.shape[1] == 0:
            return np.zeros(len(groups), dtype=np.int64)
        return groups.groupby(list(groups.columns), observed=True, sort=True).ngroup().to_numpy()
    return pd.factorize(pd.Series(np.asarray(groups)), sort=True)[0].astype(np.int64)


def _check_fractions(test_fraction: float, val_fraction: float) -> None:
    if test_fraction < 0 or val_fraction < 0 or test_fraction + val_fraction >= 1:
        raise ValueError(
            f"test_fraction={test_fraction} and val_fraction={val_fraction} must be >= 0 and sum to < 1."
        )


def _allocate(items: np.ndarray, keys: np.ndarray, test_fraction: float, val_fraction: float,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``items`` stratum by stratum (``keys``), rounding each stratum's counts."""
    train, val, test = [], [], []
    for key in np.unique(keys):
        members = rng.permutation(items[keys == key])
        n = len(members)
        n_test = int(round(n * test_fraction))
        n_val = int(round(n * val_fraction))
        if n_test + n_val >= n and n > 1:  # keep at least one training item per stratum
            n_val = max(0, min(n_val, n - 1 - n_test))
            n_test = min(n_test, n - 1 - n_val)
        test.append(members[:n_test])
        val.append(members[n_test : n_test + n_val])
        train.append(members[n_test + n_val :])
    cat = lambda parts: np.sort(np.concatenate(parts)).astype(np.int64)  # noqa: E731
    return cat(train), cat(val), cat(test)


def identity_split(
    targets: ArrayLike,
    *,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    groups: ArrayLike | pd.DataFrame | None = None,
    seed: int = 0,
) -> Split:
    """Split images so that every identity falls in exactly one part (open set).

    Args:
        targets: ``(N,)`` identity of each image.
        test_fraction, val_fraction: shares of *identities* in test and validation.
        groups: optional ``(N,)`` group of each image (or a DataFrame of group
            columns); it must be constant within an identity. Identities are
            then split group by group, so each part keeps the group mix.
        seed: random seed.

    Returns:
        A :class:`Split` of image indices.

    Raises:
        ValueError: a group varies within an identity, or bad fractions.
    """
    _check_fractions(test_fraction, val_fraction)
    targets = np.asarray(targets)
    ids, inverse = np.unique(targets, return_inverse=True)
    if groups is None:
        id_keys = np.zeros(len(ids), dtype=np.int64)
    else:
        keys = _group_keys(groups)
        if len(keys) != len(targets):
            raise ValueError(f"groups has {len(keys)} rows; targets has {len(targets)}.")
        id_keys = np.full(len(ids), -1, dtype=np.int64)
        id_keys[inverse] = keys
        if not np.array_equal(id_keys[inverse], keys):
            bad = ids[np.unique(inverse[id_keys[inverse] != keys])][:5]
            raise ValueError(f"groups vary within identities {list(bad)}; an identity-disjoint split needs one group per identity.")
    rng = np.random.default_rng(seed)
    id_train, id_val, id_test = _allocate(np.arange(len(ids)), id_keys, test_fraction, val_fraction, rng)
    pick = lambda chosen: np.flatnonzero(np.isin(inverse, chosen))  # noqa: E731
    return Split(pick(id_train), pick(id_val), pick(id_test))


def stratified_split(
    groups: ArrayLike | pd.DataFrame,
    *,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    seed: int = 0,
) -> Split:
    """Split images at random while keeping the share of every group (or cell) in each part.

    Args:
        groups: ``(N,)`` labels, or a DataFrame whose columns are combined
            into cells (e.g. race x gender).
        test_fraction, val_fraction: shares of images in test and validation.
        seed: random seed.
    """
    _check_fractions(test_fraction, val_fraction)
    keys = _group_keys(groups)
    rng = np.random.default_rng(seed)
    return Split(*_allocate(np.arange(len(keys)), keys, test_fraction, val_fraction, rng))


def balanced_indices(groups: ArrayLike | pd.DataFrame, *, max_per_group: int, seed: int = 0) -> np.ndarray:
    """Sorted indices keeping at most ``max_per_group`` rows of each group (or cell)."""
    if max_per_group < 1:
        raise ValueError("max_per_group must be >= 1.")
    keys = _group_keys(groups)
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(keys == k))[:max_per_group] for k in np.unique(keys)]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def _by_identity(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Images sorted by identity: (order, start of each image's identity, count, position in its identity)."""
    order = np.argsort(targets, kind="stable")
    ids, first, counts = np.unique(targets[order], return_index=True, return_counts=True)
    rank = np.empty(len(targets), dtype=np.int64)
    rank[order] = np.arange(len(targets)) - np.repeat(first, counts)
    idx = np.searchsorted(ids, targets)
    return order, first[idx], counts[idx], rank


def _negatives(targets: np.ndarray, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    other = rng.integers(0, len(targets), len(anchors))
    for _ in range(100):
        clash = targets[other] == targets[anchors]
        if not clash.any():
            return other
        other[clash] = rng.integers(0, len(targets), int(clash.sum()))
    raise ValueError("Could not draw negatives: one identity holds almost all images.")


def make_pairs(
    targets: ArrayLike, n_pairs: int, *, positive_fraction: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw positive (same identity) and negative pairs of image indices.

    Args:
        targets: ``(N,)`` identity of each image.
        n_pairs: number of pairs.
        positive_fraction: share of positive pairs (rounded).
        seed: random seed.

    Returns:
        ``pairs`` ``(n_pairs, 2)`` int64 and ``same`` ``(n_pairs,)`` bool,
        shuffled. The two images of a positive pair are always different images.

    Raises:
        ValueError: fewer than two identities, or no identity with two images.
    """
    targets = np.asarray(targets)
    if len(np.unique(targets)) < 2:
        raise ValueError("Pairs need at least two identities.")
    rng = np.random.default_rng(seed)
    n_pos = int(round(n_pairs * positive_fraction))
    order, start, count, rank = _by_identity(targets)
    eligible = np.flatnonzero(count >= 2)
    if n_pos and len(eligible) == 0:
        raise ValueError("Positive pairs need an identity with at least two images.")
    a = rng.choice(eligible, n_pos) if n_pos else np.zeros(0, dtype=np.int64)
    shift = rng.integers(1, np.maximum(count[a], 2))
    b = order[start[a] + (rank[a] + shift) % count[a]]
    neg_a = rng.integers(0, len(targets), n_pairs - n_pos)
    neg_b = _negatives(targets, neg_a, rng)
    pairs = np.concatenate([np.stack([a, b], 1), np.stack([neg_a, neg_b], 1)]).astype(np.int64)
    same = np.concatenate([np.ones(n_pos, bool), np.zeros(n_pairs - n_pos, bool)])
    perm = rng.permutation(n_pairs)
    return pairs[perm], same[perm]


def make_triplets(targets: ArrayLike, n_triplets: int, *, seed: int = 0) -> np.ndarray:
    """Draw ``(anchor, positive, negative)`` index triplets, ``(n_triplets, 3)`` int64."""
    targets = np.asarray(targets)
    if len(np.unique(targets)) < 2:
        raise ValueError("Triplets need at least two identities.")
    rng = np.random.default_rng(seed)
    order, start, count, rank = _by_identity(targets)
    eligible = np.flatnonzero(count >= 2)
    if len(eligible) == 0:
        raise ValueError("Triplets need an identity with at least two images.")
    a = rng.choice(eligible, n_triplets)
    p = order[start[a] + (rank[a] + rng.integers(1, count[a])) % count[a]]
    n = _negatives(targets, a, rng)
    return np.stack([a, p, n], 1).astype(np.int64)


class PairDataset(Dataset):
    """Pairs of images of a base dataset: ``((x1, x2), same)`` with ``same`` 1 or 0.

    Attributes:
        base: the dataset images come from (``base[i][0]`` is an image).
        pairs: ``(n, 2)`` indices into ``base``.
        same: ``(n,)`` bool, whether the two images show the same identity.
        folds: ``(n,)`` fold of each pair (``-1`` if none; LFW uses 10).
    """

    def __init__(
        self,
        base: Dataset,
        *,
        n_pairs: int | None = None,
        positive_fraction: float = 0.5,
        seed: int = 0,
        pairs: np.ndarray | None = None,
        same: np.ndarray | None = None,
        folds: np.ndarray | None = None,
    ) -> None:
        if pairs is None:
            targets = np.asarray(getattr(base, "targets"))
            n = n_pairs if n_pairs is not None else len(targets)
            pairs, same = make_pairs(targets, n, positive_fraction=positive_fraction, seed=seed)
        elif same is None:
            raise ValueError("Pass `same` together with `pairs`.")
        self.base = base
        self.pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        self.same = np.asarray(same, dtype=bool)
        self.folds = np.full(len(self.pairs), -1) if folds is None else np.asarray(folds)
        if len(self.same) != len(self.pairs) or len(self.folds) != len(self.pairs):
            raise ValueError("pairs, same and folds must have the same length.")

    @property
    def targets(self) -> np.ndarray:
        """``same`` as ``int64`` (1 = same identity), for stratification."""
        return self.same.astype(np.int64)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[tuple[torch.Tensor, torch.Tensor], int]:
        i, j = self.pairs[index]
        return (self.base[int(i)][0], self.base[int(j)][0]), int(self.same[index])


class TripletDataset(Dataset):
    """Triplets ``((anchor, positive, negative), anchor_identity)`` from a base dataset.

    Attributes:
        triplets: ``(n, 3)`` indices into ``base``.
    """

    def __init__(self, base: Dataset, *, n_triplets: int | None = None, seed: int = 0) -> None:
        self.base = base
        self.base_targets = np.asarray(getattr(base, "targets"))
        n = n_triplets if n_triplets is not None else len(self.base_targets)
        self.triplets = make_triplets(self.base_targets, n, seed=seed)

    @property
    def targets(self) -> np.ndarray:
        """Identity of each triplet's anchor."""
        return self.base_targets[self.triplets[:, 0]]

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, index: int) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], int]:
        a, p, n = (int(i) for i in self.triplets[index])
        return (self.base[a][0], self.base[p][0], self.base[n][0]), int(self.base_targets[a])


class PKBatchSampler(Sampler[list[int]]):
    """Batches of ``p`` identities x ``k`` images (for batch-hard triplet mining).

    Use as ``DataLoader(ds, batch_sampler=PKBatchSampler(ds.targets, p=8, k=4))``.
    Identities are visited in a fresh random order every epoch, so each one
    appears about equally often. An identity with fewer than ``k`` images
    contributes all of them plus repeats; identities with fewer than
    ``min_images`` images are left out (they cannot form positives).

    Args:
        targets: ``(N,)`` identity of each image.
        p: identities per batch.
        k: images per identity.
        n_batches: batches per epoch (default: about one pass over the images).
        min_images: smallest number of images an identity needs to take part.
        seed: random seed; epoch ``e`` uses ``(seed, e)``.
    """

    def __init__(
        self, targets: ArrayLike, *, p: int, k: int, n_batches: int | None = None, min_images: int = 2, seed: int = 0
    ) -> None:
        if p < 1 or k < 1:
            raise ValueError("p and k must be >= 1.")
        targets = np.asarray(targets)
        ids, counts = np.unique(targets, return_counts=True)
        self.identities = ids[counts >= min_images]
        if len(self.identities) < p:
            raise ValueError(
                f"P x K sampling needs p={p} identities with >= {min_images} images each; only "
                f"{len(self.identities)} exist. Lower p or use more data."
            )
        self.members = {int(i): np.flatnonzero(targets == i) for i in self.identities}
        n_usable = int(sum(len(m) for m in self.members.values()))
        self.targets, self.min_images = targets, min_images
        self.p, self.k, self.seed = p, k, seed
        self.n_batches = n_batches if n_batches is not None else max(1, n_usable // (p * k))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose batches the next iteration yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        queue: list[int] = []
        for _ in range(self.n_batches):
            chosen: list[int] = []
            while len(chosen) < self.p:
                if not queue:
                    queue = [int(i) for i in rng.permutation(self.identities)]
                ident = queue.pop()
                if ident not in chosen:
                    chosen.append(ident)
            batch: list[int] = []
            for ident in chosen:
                members = self.members[ident]
                if len(members) >= self.k:
                    picked = rng.choice(members, self.k, replace=False)
                else:  # all of them, topped up with repeats
                    picked = np.concatenate([members, rng.choice(members, self.k - len(members))])
                batch.extend(int(i) for i in picked)
            yield batch


def _rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """``(rank, world_size)``: the values given, else those of the initialised process group, else ``(0, 1)``."""
    ready = torch.distributed.is_available() and torch.distributed.is_initialized()
    world = world_size if world_size is not None else (torch.distributed.get_world_size() if ready else 1)
    rank = rank if rank is not None else (torch.distributed.get_rank() if ready else 0)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"rank={rank}, world_size={world}: need world_size >= 1 and 0 <= rank < world_size.")
    return rank, world


class DistributedPKBatchSampler(PKBatchSampler):
    """P x K batches for one rank of a distributed run; the ranks' identities never overlap within a step.

    Step ``t`` of all ranks together is batch ``t`` of
    ``PKBatchSampler(targets, p=world_size * p, k=k)`` with the same seed:
    rank ``r`` takes identities ``r*p .. r*p + p - 1`` of it. So every rank
    sees its own ``p`` identities x ``k`` images (a batch its miner can use
    alone), the union over ranks is an ordinary P x K batch of
    ``world_size * p`` identities, and over an epoch the identities are
    visited about equally often. Every rank must use the same ``seed``.

    Args:
        targets, k, min_images, seed: as for :class:`PKBatchSampler`.
        p: identities per batch *on this rank*.
        n_batches: steps per epoch (default: about one pass over the images
            by all ranks together).
        rank, world_size: default: those of the initialised process group
            (``torch.distributed``), else 0 and 1.
    """

    def __init__(
        self, targets: ArrayLike, *, p: int, k: int, n_batches: int | None = None, min_images: int = 2,
        seed: int = 0, rank: int | None = None, world_size: int | None = None,
    ) -> None:
        rank, world = _rank_and_world(rank, world_size)
        if p < 1:
            raise ValueError("p and k must be >= 1.")
        try:
            super().__init__(targets, p=world * p, k=k, n_batches=n_batches, min_images=min_images, seed=seed)
        except ValueError as err:
            raise ValueError(f"{world} rank(s) x p={p}: {err}") from err
        self.rank, self.world_size, self.p_per_rank = rank, world, p

    @classmethod
    def from_sampler(cls, sampler: PKBatchSampler, *, rank: int | None = None,
                     world_size: int | None = None) -> DistributedPKBatchSampler:
        """The distributed version of a :class:`PKBatchSampler`: same ``p`` per rank, ``k``, seed,
        and about the same number of images per epoch (``n_batches // world_size`` steps)."""
        rank, world = _rank_and_world(rank, world_size)
        return cls(sampler.targets, p=sampler.p, k=sampler.k, n_batches=max(1, sampler.n_batches // world),
                   min_images=sampler.min_images, seed=sampler.seed, rank=rank, world_size=world)

    def __iter__(self) -> Iterator[list[int]]:
        size = self.p_per_rank * self.k
        for batch in super().__iter__():
            yield batch[self.rank * size : (self.rank + 1) * size]
