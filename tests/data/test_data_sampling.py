"""Pairs, triplets, P x K batches, identity-disjoint and stratified splits, and describe()."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from course_utils.data import (
    PairDataset,
    PKBatchSampler,
    TensorImageDataset,
    TripletDataset,
    balanced_indices,
    describe,
    identity_split,
    make_pairs,
    make_triplets,
    stratified_split,
)


def toy(n_ids: int = 6, per_id: tuple[int, ...] = (5, 4, 3, 2, 1, 6)) -> TensorImageDataset:
    targets = np.concatenate([np.full(k, i) for i, k in enumerate(per_id[:n_ids])])
    n = len(targets)
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    group = np.where(targets % 2 == 0, "even", "odd")
    attrs = pd.DataFrame({"group": pd.Categorical(group), "colour": np.where(np.arange(n) % 3 == 0, "red", "blue")})
    return TensorImageDataset(images, targets, attributes=attrs, group_columns=("group",), name="toy",
                              target_name="identity")


def test_make_pairs_labels_are_correct() -> None:
    targets = toy().targets
    pairs, same = make_pairs(targets, 400, positive_fraction=0.25, seed=1)
    assert pairs.shape == (400, 2) and same.sum() == 100
    assert np.array_equal(targets[pairs[:, 0]] == targets[pairs[:, 1]], same)
    assert (pairs[same, 0] != pairs[same, 1]).all()  # a positive pair is two different images
    assert not np.isin(pairs[same].ravel(), np.flatnonzero(targets == 4)).any()  # the single-image identity
    again, _ = make_pairs(targets, 400, positive_fraction=0.25, seed=1)
    assert np.array_equal(pairs, again)
    with pytest.raises(ValueError, match="two identities"):
        make_pairs(np.zeros(5), 3)
    with pytest.raises(ValueError, match="at least two images"):
        make_pairs(np.arange(5), 4)


def test_pair_dataset_items() -> None:
    ds = toy()
    pairs = PairDataset(ds, n_pairs=50, seed=0)
    (x1, x2), same = pairs[3]
    i, j = pairs.pairs[3]
    assert torch.equal(x1, ds[int(i)][0]) and torch.equal(x2, ds[int(j)][0])
    assert same == int(ds.targets[i] == ds.targets[j])
    batch = next(iter(DataLoader(pairs, batch_size=8)))
    (b1, b2), s = batch
    assert b1.shape == (8, 1, 2, 2) and s.dtype == torch.int64
    explicit = PairDataset(ds, pairs=np.array([[0, 1], [0, 5]]), same=np.array([True, False]))
    assert len(explicit) == 2 and explicit.targets.tolist() == [1, 0]


def test_triplets() -> None:
    ds = toy()
    trip = make_triplets(ds.targets, 300, seed=2)
    t = ds.targets
    assert (t[trip[:, 0]] == t[trip[:, 1]]).all() and (t[trip[:, 0]] != t[trip[:, 2]]).all()
    assert (trip[:, 0] != trip[:, 1]).all()
    dataset = TripletDataset(ds, n_triplets=10)
    (a, p, n), anchor_id = dataset[4]
    assert anchor_id == dataset.targets[4] and a.shape == (1, 2, 2)


def test_pk_batch_sampler() -> None:
    ds = toy()
    sampler = PKBatchSampler(ds.targets, p=3, k=4, n_batches=20, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 20
    seen = set()
    for batch in batches:
        ids = ds.targets[batch].reshape(3, 4)
        assert (ids == ids[:, :1]).all()  # k images of each identity, grouped
        assert len(set(ids[:, 0])) == 3
        seen |= set(ids[:, 0])
    assert 4 not in seen and seen == {0, 1, 2, 3, 5}  # single-image identity left out, the others all visited
    # identity 3 has only 2 images: both appear, topped up with repeats
    for batch in batches:
        idx = [i for i in batch if ds.targets[i] == 3]
        if idx:
            assert set(idx) == set(np.flatnonzero(ds.targets == 3))
    epoch2 = list(sampler)
    assert epoch2 != batches  # a new order every epoch
    sampler.set_epoch(0)
    assert list(sampler) == batches  # reproducible
    loader = DataLoader(ds, batch_sampler=PKBatchSampler(ds.targets, p=2, k=2))
    x, y = next(iter(loader))
    assert x.shape == (4, 1, 2, 2)
    with pytest.raises(ValueError, match="p=9 identities"):
        PKBatchSampler(ds.targets, p=9, k=2)


def test_identity_split_is_open_set_and_stratified() -> None:
    targets = np.repeat(np.arange(40), 3)
    groups = np.repeat(np.where(np.arange(40) < 30, "a", "b"), 3)
    split = identity_split(targets, test_fraction=0.2, val_fraction=0.1, groups=groups, seed=0)
    parts = [set(targets[idx]) for idx in split]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert sum(len(p) for p in parts) == 40
    assert np.array_equal(np.sort(np.concatenate(list(split))), np.arange(120))
    test_groups = pd.Series(groups[split.test]).value_counts() / 3
    assert test_groups.to_dict() == {"a": 6, "b": 2}  # 20 % of 30 and of 10 identities
    assert split.sizes() == {"train": 3 * 28, "val": 3 * 4, "test": 3 * 8}
    assert not np.array_equal(identity_split(targets, seed=1).test, identity_split(targets, seed=2).test)
    with pytest.raises(ValueError, match="vary within identities"):
        identity_split([0, 0, 1], groups=["a", "b", "a"])
    with pytest.raises(ValueError, match="sum to < 1"):
        identity_split(targets, test_fraction=0.6, val_fraction=0.5)


def test_stratified_split_keeps_group_shares() -> None:
    frame = pd.DataFrame({"race": np.repeat(["x", "y", "z"], [50, 30, 20]), "sex": np.tile(["m", "f"], 50)})
    split = stratified_split(frame, test_fraction=0.2, seed=0)
    test = frame.iloc[split.test]
    assert len(test) == 20 and len(split.val) == 0
    assert test.groupby(["race", "sex"]).size().to_dict() == {
        ("x", "f"): 5, ("x", "m"): 5, ("y", "f"): 3, ("y", "m"): 3, ("z", "f"): 2, ("z", "m"): 2}
    assert not set(split.train) & set(split.test)


def test_balanced_indices_caps_each_cell() -> None:
    groups = np.array(["a"] * 10 + ["b"] * 3)
    keep = balanced_indices(groups, max_per_group=4, seed=0)
    assert (np.diff(keep) > 0).all()
    assert pd.Series(groups[keep]).value_counts().to_dict() == {"a": 4, "b": 3}


def test_describe_counts_per_identity_and_group() -> None:
    ds = toy()
    buf = io.StringIO()
    table = describe(ds, file=buf)
    text = buf.getvalue()
    assert "toy: 21 items of 1x2x2" in text and "6 identity values" in text and "min 1, median 3, max 6" in text
    rows = table.set_index("value")
    assert rows.loc["even", "images"] == 5 + 3 + 1 and rows.loc["even", "identities"] == 3
    assert rows.loc["odd", "images"] == 4 + 2 + 6
    assert rows["share"].sum() == pytest.approx(1.0)
    colours = describe(ds, columns=["colour"], file=io.StringIO()).set_index("value")["images"].to_dict()
    assert colours == {"blue": 14, "red": 7}
    with pytest.raises(KeyError, match="not an attribute"):
        describe(ds, columns=["race"], file=io.StringIO())
    pairs = PairDataset(ds, n_pairs=10)
    buf = io.StringIO()
    describe(pairs, file=buf)
    assert "pairs: 5 same identity, 5 different" in buf.getvalue()
