"""Transfer-learning helpers: freezing, learning-rate groups, cached features, regimes, seeds, SimCLR, multi-task."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from course_utils import transfer as T
from course_utils.cost import count_parameters
from course_utils.scratch import DropBlock2d
from course_utils.metric_learning.losses import NTXentLoss
from course_utils.models import create_model
from course_utils.pretrained.chips import AlignedFaceDataset, aligned_chips, aligned_face_dataset


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))


def small(num_classes=5):
    torch.manual_seed(0)
    return create_model("resnet_small", stem="imagenet", num_classes=num_classes)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


class Blobs(torch.utils.data.Dataset):
    """Tiny image classes that differ in brightness and in where a square sits."""

    def __init__(self, n=48, num_classes=3, size=32, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.targets = np.arange(n) % num_classes
        imgs = 0.1 * torch.rand(n, 3, size, size, generator=g)
        for i, c in enumerate(self.targets):
            off = 4 + 8 * int(c)
            imgs[i, :, off:off + 8, off:off + 8] += 0.8
        self.images_f = imgs.clamp(0, 1)

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return self.images_f[i], int(self.targets[i])


# ------------------------------------------------------------------ freezing


def test_freeze_all_but_head_leaves_only_the_classifier_trainable():
    m = small(7)
    T.freeze_all_but_head(m)
    assert count_parameters(m, trainable_only=True) == n_params(m.classifier) == 64 * 7 + 7
    assert all(not p.requires_grad for p in m.stages.parameters())


def test_frozen_batchnorm_keeps_its_statistics_in_train_mode_and_unfreeze_restores():
    m = small()
    T.freeze_all_but_head(m)
    bn = m.stem[0].norm if hasattr(m.stem[0], "norm") else next(x for x in m.stem.modules() if isinstance(x, nn.BatchNorm2d))
    before = bn.running_mean.clone()
    m.train()
    m(torch.rand(4, 3, 32, 32) * 5)
    assert torch.equal(bn.running_mean, before), "a frozen BN must not update its running statistics"
    assert not bn.training
    T.unfreeze(m)
    m.train()
    m(torch.rand(4, 3, 32, 32) * 5)
    assert not torch.equal(bn.running_mean, before)
    assert count_parameters(m, trainable_only=True) == n_params(m)
    # freezing survives a deep copy, and so does unfreezing the copy
    import copy

    T.freeze(m)
    twin = copy.deepcopy(m)
    twin.train()
    twin(torch.rand(2, 3, 32, 32))
    bn2 = next(x for x in twin.modules() if isinstance(x, nn.BatchNorm2d))
    assert not bn2.training
    T.unfreeze(twin)
    twin.train()
    twin(torch.rand(2, 3, 32, 32))
    assert bn2.training


def test_unfreeze_last_blocks_counts():
    m = small()
    blocks = T.backbone_blocks(m)
    assert [n for n, _ in blocks] == ["stem", "stages.0.0", "stages.0.1", "stages.1.0", "stages.1.1",
                                      "stages.2.0", "stages.2.1"]
    head = n_params(m.classifier)
    assert count_parameters(T.unfreeze_last_blocks(m, 0), trainable_only=True) == head
    assert count_parameters(T.unfreeze_last_blocks(m, 2), trainable_only=True) == head + n_params(blocks[-1][1]) + n_params(blocks[-2][1])
    assert count_parameters(T.unfreeze_last_blocks(m, 99), trainable_only=True) == n_params(m)
    with pytest.raises(ValueError):
        T.unfreeze_last_blocks(m, -1)
    table = T.trainable_table(T.unfreeze_last_blocks(m, 1))
    assert table["params"].sum() == n_params(m)
    assert list(table.loc[table.part == "stages.2.1", "state"]) == ["trainable"]
    assert list(table.loc[table.part == "stem", "state"]) == ["frozen"]


def test_sequential_models_have_blocks_and_a_head():
    seq = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2))
    assert len(T.backbone_blocks(seq)) == 3
    T.freeze_all_but_head(seq)
    assert count_parameters(seq, trainable_only=True) == 10
    with pytest.raises(TypeError):
        T.backbone_blocks(nn.Linear(2, 2))


# ------------------------------------------------------------------ learning rates


def test_param_groups_split_head_and_backbone_and_skip_frozen():
    m = small()
    groups = T.param_groups(m, lr=1e-2, backbone_lr_factor=0.1)
    assert [g["name"] for g in groups] == ["head", "backbone"]
    assert groups[0]["lr"] == 1e-2 and groups[1]["lr"] == pytest.approx(1e-3)
    assert sum(p.numel() for g in groups for p in g["params"]) == n_params(m)
    T.freeze_all_but_head(m)
    assert [g["name"] for g in T.param_groups(m, lr=1e-2)] == ["head"]
    torch.optim.AdamW(T.param_groups(m, lr=1e-2))  # accepted by optimizers


def test_layerwise_lr_groups_decay_towards_the_input():
    m = small()
    groups = T.layerwise_lr_groups(m, lr=1.0, decay=0.5)
    names = [g["name"] for g in groups]
    assert names[0] == "head" and names[1] == "stages.2.1" and names[-1] == "stem"
    lrs = [g["lr"] for g in groups]
    assert lrs == [0.5**i for i in range(len(groups))]
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(m.parameters()))
    with pytest.raises(ValueError):
        T.layerwise_lr_groups(m, lr=1.0, decay=0.0)
    vit = create_model("vit_small_course")
    vgroups = T.layerwise_lr_groups(vit, lr=1.0, decay=0.5)
    assert vgroups[-1]["name"] == "(other)"  # class token and position embedding
    assert sum(p.numel() for g in vgroups for p in g["params"]) == n_params(vit)


# ------------------------------------------------------------------ split and cache


@pytest.mark.parametrize("name", ["resnet_small", "convnext_small_course", "vgg_small"])
def test_split_model_reproduces_the_model(name):
    m = create_model(name).eval()
    for n in (1, 2):
        front, tail = T.split_model(m, n)
        x = torch.rand(2, 3, 32, 32)
        with torch.no_grad():
            assert torch.allclose(tail(front(x)), m(x), atol=1e-5)
            assert tail.features(front(x)).shape == (2, m.num_features)
    with pytest.raises(ValueError):
        T.split_model(m, 0)


def test_cached_features_are_computed_once_and_keyed_by_weights_and_data():
    m = small()
    data = Blobs(12)
    a = T.cached_features(m, data, name="t")
    assert not a.from_cache and a.features.shape == (12, 64) and a.path.is_file()
    b = T.cached_features(m, data, name="t")
    assert b.from_cache and torch.equal(a.features, b.features) and b.path == a.path
    assert torch.equal(b.targets, torch.as_tensor(data.targets))
    with torch.no_grad():
        m.classifier.weight.add_(1.0)
    assert T.cached_features(m, data, name="t").path != a.path
    acts = T.cached_features(m, data, n_last_blocks=2, name="t")
    assert acts.features.shape == (12, 32, 4, 4)  # 32 px: stem /4, stage 2 /2
    assert acts.path != a.path
    assert len(a.subset([0, 3])) == 2


def test_cached_features_refuse_models_whose_blocks_do_not_chain():
    vit = create_model("vit_small_course")
    with pytest.raises(ValueError, match="chain"):
        T.cached_features(vit, Blobs(4), n_last_blocks=1, cache=False)
    assert T.cached_features(vit, Blobs(4), cache=False).features.shape == (4, 64)


def test_linear_probe_learns_separable_features():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(90) % 3
    x = torch.randn(90, 8, generator=g) + 5 * F.one_hot(y, 8).float()
    tr, te = T.FeatureSet(x[:60], y[:60]), T.FeatureSet(x[60:], y[60:])
    head, hist = T.train_linear_probe(tr, te, num_classes=3, epochs=150)
    assert hist.last("val_acc") > 0.9
    assert head(x).shape == (90, 3)


# ------------------------------------------------------------------ regimes


def test_run_regime_all_four_regimes_in_miniature():
    train, test = Blobs(36, seed=0), Blobs(18, seed=1)
    cfg = T.RegimeConfig(epochs=2, probe_epochs=5, batch_size=12)
    results = {r: T.run_regime(r, lambda: small(), train, test, num_classes=3, config=cfg, seed=0,
                               cache_name="mini")
               for r in T.REGIMES}
    for r, res in results.items():
        assert 0 <= res.accuracy <= 1
        assert len(res.curve) == (5 if r == "linear_probe" else 2)
        assert res.regime == r
    assert results["linear_probe"].trainable_params == 64 * 3 + 3
    assert results["linear_probe"].trainable_params < results["finetune_last"].trainable_params \
        < results["finetune_all"].trainable_params == results["scratch"].trainable_params
    with pytest.raises(ValueError):
        T.run_regime("nope", small, train, test, num_classes=3)


def test_finetune_all_uses_a_lower_backbone_learning_rate():
    train = Blobs(12)
    res = T.run_regime("finetune_all", lambda: small(), train, train, num_classes=3,
                       config=T.RegimeConfig(epochs=1, lr=1e-2, backbone_lr_factor=0.1), keep_model=True)
    assert res.model is not None and res.history.last("lr") == pytest.approx(1e-2)


def test_fine_tune_with_layerwise_decay_and_tail_with_dropblock():
    m = small(3)
    hist = T.fine_tune(m, Blobs(12), Blobs(6), epochs=1, layerwise_decay=0.5)
    assert len(hist) == 1
    acts = T.cached_features(m, Blobs(12), n_last_blocks=2, cache=False)
    _, tail = T.split_model(m, 2, pre=DropBlock2d(0.2, block_size=1))
    h = T.train_tail(tail, acts, acts, epochs=1)
    assert math.isfinite(h.last("train_loss"))


# ------------------------------------------------------------------ seeds


def test_summarize_gives_a_student_t_interval():
    v = [0.6, 0.7, 0.8, 0.75]
    s = T.summarize(v)
    half = stats.t.ppf(0.975, 3) * np.std(v, ddof=1) / 2
    assert s.mean == pytest.approx(np.mean(v)) and s.low == pytest.approx(np.mean(v) - half)
    assert s.high == pytest.approx(np.mean(v) + half) and s.n == 4
    assert "±" in str(s)
    one = T.summarize([0.5])
    assert math.isnan(one.low) and "1 seed" in str(one)
    with pytest.raises(ValueError):
        T.summarize([])


def test_run_seeds_calls_each_seed_and_reads_the_value():
    runs = T.run_seeds(lambda s: {"accuracy": s / 10}, 3, value="accuracy")
    assert runs.seeds == (0, 1, 2) and runs.summary.mean == pytest.approx(0.1)
    assert T.run_seeds(lambda s: s, [4, 6]).summary.mean == 5
    assert T.run_seeds(lambda s: (s, 2 * s), [1, 3], value=lambda r: r[1]).summary.mean == 4


# ------------------------------------------------------------------ SimCLR


def test_simclr_augment_is_random_bounded_and_reproducible():
    x = torch.rand(6, 3, 32, 32)
    a = T.SimCLRAugment(generator=torch.Generator().manual_seed(1))(x)
    b = T.SimCLRAugment(generator=torch.Generator().manual_seed(1))(x)
    c = T.SimCLRAugment(generator=torch.Generator().manual_seed(2))(x)
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    ident = T.SimCLRAugment(crop_scale=(1.0, 1.0), flip=False, jitter=0.0, grayscale_prob=0.0)(x)
    assert torch.allclose(ident, x, atol=1e-5)
    grey = T.SimCLRAugment(crop_scale=(1.0, 1.0), flip=False, jitter=0.0, grayscale_prob=1.0)(x)
    assert torch.allclose(grey[:, 0], grey[:, 1])
    with pytest.raises(ValueError):
        T.SimCLRAugment(crop_scale=(0.0, 1.0))


def test_pretrain_simclr_in_miniature_trains_the_backbone():
    backbone = create_model("resnet_small", stem="imagenet", num_classes=0)
    before = backbone.stem[0].conv.weight.clone() if hasattr(backbone.stem[0], "conv") else \
        next(backbone.parameters()).clone()
    model, hist = T.pretrain_simclr(backbone, Blobs(16), epochs=2, batch_size=8, projection_dim=16)
    assert model.backbone is backbone and len(hist) == 2
    assert math.isfinite(hist.last("train_loss"))
    after = next(backbone.parameters())
    assert not torch.equal(before, after)
    z1, z2 = T.simclr_forward_fn(nn.Identity())(model.eval(), torch.rand(4, 3, 32, 32))
    assert z1.shape == (4, 16)
    # identical views give a lower NT-Xent loss than unrelated ones
    assert NTXentLoss(0.2)(z1, z2) < NTXentLoss(0.2)(z1, z2.roll(1, 0))


# ------------------------------------------------------------------ multi-task


def test_multitask_loss_is_the_weighted_sum_of_cross_entropies():
    torch.manual_seed(0)
    out = {"a": torch.randn(5, 2), "b": torch.randn(5, 3)}
    y = torch.stack([torch.randint(0, 2, (5,)), torch.randint(0, 3, (5,))], 1)
    loss = T.MultiTaskLoss(["a", "b"], {"a": 2.0, "b": 0.5})(out, y)
    expected = 2.0 * F.cross_entropy(out["a"], y[:, 0]) + 0.5 * F.cross_entropy(out["b"], y[:, 1])
    assert loss == pytest.approx(float(expected))
    only_a = T.MultiTaskLoss(["a", "b"], {"b": 0.0})(out, y)
    assert only_a == pytest.approx(float(F.cross_entropy(out["a"], y[:, 0])))
    with pytest.raises(ValueError):
        T.MultiTaskLoss(["a"], {"c": 1.0})
    with pytest.raises(ValueError):
        T.MultiTaskLoss(["a", "b"])(out, y[:, 0])
    acc_b = T.task_accuracy("b", 1)(out, y)
    assert acc_b == pytest.approx(float((out["b"].argmax(1) == y[:, 1]).float().mean()))


def test_multitask_model_shares_the_backbone():
    backbone = create_model("resnet_small", stem="imagenet", num_classes=0)
    mt = T.MultiTaskModel(backbone, backbone.num_features, {"g": 2, "a": 3})
    out = mt(torch.rand(2, 3, 32, 32))
    assert out["g"].shape == (2, 2) and out["a"].shape == (2, 3)
    assert n_params(mt) == n_params(backbone) + 64 * 2 + 2 + 64 * 3 + 3
    assert isinstance(out.detach(), T.TaskOutputs) and not out.detach()["g"].requires_grad


def test_multitask_model_trains_with_fit_and_per_task_metrics():
    data = Blobs(24)
    y = torch.as_tensor(data.targets)
    targets = torch.stack([y, (y > 0).long()], 1)
    ds = torch.utils.data.TensorDataset(data.images_f, targets)
    backbone = create_model("resnet_small", stem="imagenet", num_classes=0)
    mt = T.MultiTaskModel(backbone, backbone.num_features, {"cls": 3, "bin": 2})
    from course_utils.train import fit, make_loader

    hist = fit(mt, make_loader(ds, batch_size=8, shuffle=True), loss_fn=T.MultiTaskLoss(["cls", "bin"]),
               optimizer=torch.optim.Adam(mt.parameters(), 1e-3), epochs=1, val_loader=make_loader(ds, batch_size=8),
               metrics={"cls": T.task_accuracy("cls", 0), "bin": T.task_accuracy("bin", 1)}, progress=False)
    assert {"train_cls", "val_cls", "val_bin"} <= set(hist.keys())
    with pytest.raises(ValueError):
        T.MultiTaskModel(backbone, 64, {})


def test_multitask_targets_from_attributes():
    from course_utils.data import make_synthfaces

    ds = make_synthfaces(n_identities=6, images_per_identity=2, image_size=32)
    y, names = T.multitask_targets(ds, ["presentation", "age_group"])
    assert y.shape == (12, 2) and y.dtype == torch.int64
    present = ds.attributes["presentation"].astype(str)
    assert names["presentation"] == sorted(set(present), key=list(names["presentation"]).index)
    assert [names["presentation"][c] for c in y[:, 0]] == list(present)
    # a test set coded with the training set's categories
    y2, names2 = T.multitask_targets(ds.attributes.iloc[:3], ["presentation"], categories={"presentation": ["x", *names["presentation"]]})
    assert names2["presentation"][0] == "x" and int(y2.min()) >= 1
    with pytest.raises(ValueError, match="outside"):
        T.multitask_targets(ds, ["presentation"], categories={"presentation": ["x"]})


# ------------------------------------------------------------------ aligned face chips


class FakeRecognizer:
    """Stands in for FaceRecognizer.align: a constant chip, 'no face' for dark images; counts its calls."""

    def __init__(self, tmp_path):
        from types import SimpleNamespace

        model = tmp_path / "sp5.dat"
        model.write_bytes(b"landmarks v1")
        self.files = {"shape_predictor_5": model}
        self.config = SimpleNamespace(detector="hog", upsample=0)
        self.calls = 0

    def align(self, image, return_found=False):
        self.calls += 1
        found = bool(np.asarray(image).mean() > 50)
        chip = np.full((150, 150, 3), 7, dtype=np.uint8)
        return (chip, found) if return_found else chip


def _faces(n=3, size=40):
    rng = np.random.default_rng(0)
    imgs = [rng.integers(100, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]
    imgs[-1] = imgs[-1] // 10  # dark: the fake detector finds no face
    return imgs


def test_aligned_chips_align_cache_and_fallback(tmp_path):
    fake = FakeRecognizer(tmp_path)
    chips, found = aligned_chips(_faces(), recognizer=fake)
    assert chips.shape == (3, 3, 150, 150) and chips.dtype == torch.uint8
    assert found.tolist() == [True, True, False] and fake.calls == 3
    assert bool((chips == 7).all())  # fallback "image": the recogniser's whole-image chip
    again, found2 = aligned_chips(_faces(), recognizer=fake)  # same content: read from the cache
    assert fake.calls == 3 and torch.equal(again, chips) and found2.tolist() == found.tolist()
    resized, _ = aligned_chips(_faces(), recognizer=fake, fallback="resize")  # another key: recomputed
    assert fake.calls == 6 and bool((resized[:2] == 7).all()) and not bool((resized[2] == 7).all())
    changed = _faces()
    changed[0][0, 0, 0] ^= 1  # one pixel of one image: a new key, no stale chips
    aligned_chips(changed, recognizer=fake)
    assert fake.calls == 9
    fake.files["shape_predictor_5"].write_bytes(b"landmarks v2")  # another landmark model: a new key too
    aligned_chips(_faces(), recognizer=fake)
    assert fake.calls == 12
    with pytest.raises(ValueError, match="fallback"):
        aligned_chips(_faces(), recognizer=fake, fallback="crop")


def test_aligned_chips_of_files_without_alignment(tmp_path):
    from PIL import Image

    paths = []
    for i, img in enumerate(_faces(2, size=60)):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(img).save(paths[-1])
    chips, found = aligned_chips(paths, align=False)
    assert chips.shape == (2, 3, 150, 150) and found.all()
    assert torch.equal(chips, aligned_chips(paths, align=False, cache=False)[0])
    Image.fromarray(np.zeros((60, 60, 3), np.uint8)).save(paths[1])  # the file changes: the chips follow
    assert int(aligned_chips(paths, align=False)[0][1].max()) == 0


def test_aligned_face_dataset_and_tail_param_groups(tmp_path):
    ds = aligned_face_dataset(_faces(), np.array([0, 1, 0]), recognizer=FakeRecognizer(tmp_path))
    x, y = ds[1]
    assert x.shape == (3, 150, 150) and x.dtype == torch.uint8 and int(y) == 1
    sub = ds.subset([2, 0])
    assert sub.targets.tolist() == [0, 0] and sub.found.tolist() == [False, True]
    with pytest.raises(ValueError):
        AlignedFaceDataset(torch.zeros(2, 3, 8, 8), [0, 1])  # float chips
    # train_tail with optimizer groups: a group at learning rate 0 does not move
    torch.manual_seed(0)
    tail = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2))
    feats = T.FeatureSet(torch.randn(32, 6), torch.arange(32) % 2)
    before = [p.detach().clone() for p in tail.parameters()]
    T.train_tail(tail, feats, feats, epochs=2, lr=1e-2, groups=[{"params": tail[0].parameters(), "lr": 0.0},
                                                              {"params": tail[2].parameters()}])
    after = list(tail.parameters())
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
    assert not torch.equal(before[2], after[2])


def test_aligned_chips_match_the_recognizer_when_dlib_is_here():
    from course_utils.pretrained.recognizer import face_recognizer, faces_available

    ok, why = faces_available()
    if not ok:
        pytest.skip(f"dlib's face models are not usable here: {why}")
    import skimage.data

    img = skimage.data.astronaut()
    rec = face_recognizer(cache=False)
    chips, found = aligned_chips([img], recognizer=rec)
    chip, ok = rec.align(img, return_found=True)
    assert found.tolist() == [ok] and torch.equal(chips[0], torch.from_numpy(chip).permute(2, 0, 1))
