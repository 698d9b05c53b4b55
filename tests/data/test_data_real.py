"""Loaders on the real samples in ``COURSE_DATA_DIR`` (CI: ../shared/data); skipped when absent."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import course_utils.data.face_files as face_files
from course_utils.data import (
    FAIRFACE_RACES,
    identity_split,
    load_face_identities,
    load_fairface,
    load_fairface_labels,
    load_orl_faces,
)
from course_utils.settings import DATASET_MARKERS


def test_real_orl_faces(fx: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fx.real_root(DATASET_MARKERS["orl_faces"])
    ds = load_orl_faces(root, image_size=64)
    assert ds.images.shape == (400, 1, 64, 64) and ds.n_classes == 40
    assert np.bincount(ds.targets).tolist() == [10] * 40
    assert ds.classes[:3] == ["s1", "s2", "s3"] and ds.classes[-1] == "s40"
    assert 40 < ds.images.float().mean().item() < 200  # real faces, not blank
    # different people differ more than two images of one person (on average)
    x = ds.images.float().reshape(40, 10, -1)
    within = (x[:, 0] - x[:, 1]).abs().mean().item()
    between = (x[:-1, 0] - x[1:, 0]).abs().mean().item()
    assert between > within
    monkeypatch.setattr(face_files, "read_face", lambda *a, **k: (_ for _ in ()).throw(AssertionError("decoded")))
    assert torch.equal(load_orl_faces(root, image_size=64).images, ds.images)  # from the cache
    split = identity_split(ds.targets, test_fraction=0.25)
    assert len(set(ds.targets[split.test])) == 10 and not set(ds.targets[split.test]) & set(ds.targets[split.train])


def test_real_orl_is_what_the_fallback_helper_returns(fx: SimpleNamespace, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    root = fx.real_root(DATASET_MARKERS["orl_faces"])
    monkeypatch.setenv("COURSE_DATA_DIR", str(root))
    ds = load_face_identities(image_size=32)
    assert ds.name == "orl_faces" and len(ds) == 400 and capsys.readouterr().out == ""


def test_real_fairface_sample(fx: SimpleNamespace) -> None:
    root = fx.real_root(DATASET_MARKERS["fairface"])
    t = time.perf_counter()
    train = load_fairface("train", root, image_size=32)
    first = time.perf_counter() - t
    assert train.images.shape == (2100, 3, 32, 32) and train.classes == list(FAIRFACE_RACES)
    cells = train.attributes.groupby(["race", "gender"], observed=True).size()
    assert len(cells) == 14 and cells.eq(150).all()
    t = time.perf_counter()
    again = load_fairface("train", root, image_size=32)
    assert torch.equal(again.images, train.images)
    assert time.perf_counter() - t < first  # the cache is faster than decoding
    val = load_fairface("val", root, image_size=32, max_per_group=10)
    assert len(val) == 140
    assert val.attributes.groupby(["race", "gender"], observed=True).size().eq(10).all()


def test_real_fairface_full_labels(fx: SimpleNamespace) -> None:
    root = fx.real_root(DATASET_MARKERS["fairface_full_labels"])
    train = load_fairface_labels("train", root, full=True)
    val = load_fairface_labels("val", root, full=True)
    assert (len(train), len(val)) == (86_744, 10_954)
    assert set(train["race"]) == set(FAIRFACE_RACES) and not train["age"].isna().any()
    sample = load_fairface_labels("train", root)
    assert set(sample["file"]) <= set(train["file"])  # the sample is a subset of the release
