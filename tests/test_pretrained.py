"""Pretrained sources: torchvision-format state dicts, ImageNet weights offline, the course checkpoints and their recipe."""

import argparse
import json
import pickle
import urllib.error

import pytest
import torch
import torchvision

from course_utils import pretrained as P
from course_utils.models import create_model
from course_utils.train import CheckpointMismatchError, load_checkpoint


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tv_resnet18_file(tmp_path_factory):
    """A torchvision ResNet-18 state dict saved the way torchvision's .pth files are (a plain dict)."""
    torch.manual_seed(0)
    tv = torchvision.models.resnet18()
    with torch.no_grad():  # non-trivial BN statistics so that buffers matter too
        for m in tv.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("tv") / "resnet18-random.pth"
    torch.save(tv.state_dict(), path)
    return path, tv.eval()


# ------------------------------------------------------------------ torchvision-format state dicts


def test_torchvision_file_loads_into_the_zoo_model_and_gives_the_same_outputs(tv_resnet18_file):
    path, tv = tv_resnet18_file
    model = create_model("resnet18").eval()
    report = P.load_torchvision_state_dict(model, path)
    assert report.loaded == len(model.state_dict()) and report.skipped == ()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), tv(x), atol=1e-5)
        # the zoo interface works on the loaded weights
        emb = model.forward_head(model.forward_features(x), pre_logits=True)
    assert emb.shape == (2, 512)


def test_torchvision_file_loads_into_torchvision_and_a_new_head_is_skipped(tv_resnet18_file):
    path, tv = tv_resnet18_file
    other = torchvision.models.resnet18().eval()
    assert P.load_torchvision_state_dict(other, path).skipped == ()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(other(x), tv(x), atol=1e-5)
    seven = create_model("resnet18", num_classes=7)
    report = P.load_torchvision_state_dict(seven, path)  # head="auto": 1000 != 7, keep the new head
    assert report.skipped == ("classifier.weight", "classifier.bias")
    assert torch.equal(next(iter(seven.state_dict().values())), tv.conv1.weight)
    tv7 = torchvision.models.resnet18(num_classes=7)
    assert P.load_torchvision_state_dict(tv7, path).skipped == ("fc.weight", "fc.bias")
    with pytest.raises(CheckpointMismatchError):
        P.load_torchvision_state_dict(create_model("resnet18", num_classes=7), path, head="load")


def test_other_architectures_are_refused_with_a_clear_error(tv_resnet18_file):
    path, _ = tv_resnet18_file
    with torch.device("meta"):
        r50 = create_model("resnet50")
    with pytest.raises(CheckpointMismatchError, match="another architecture"):
        P.load_torchvision_state_dict(r50, path)
    with pytest.raises(ValueError):
        P.load_torchvision_state_dict(create_model("resnet18"), path, head="maybe")


@pytest.mark.parametrize("name", ["vit_b_16", "convnext_tiny", "mobilenet_v2", "efficientnet_b0"])
def test_key_mapping_for_other_families_on_the_meta_device(name):
    with torch.device("meta"):
        tv = torchvision.models.get_model(name)
        ours = create_model(name)
    sd, report = P.torchvision_to_course(tv.state_dict(), ours)
    own = ours.state_dict()
    assert set(sd) == set(own) and report.skipped == ()
    assert all(tuple(sd[k].shape) == tuple(v.shape) for k, v in own.items())
    if name == "vit_b_16":
        assert sd["pos_embed"].shape == (1, 197, 768)
    if name == "convnext_tiny":
        assert report.reshaped and all("layer_scale" in k for k in report.reshaped)


def test_state_dict_files_are_read_with_weights_only(tmp_path):
    path = tmp_path / "evil.pth"  # an arbitrary Python object: refused by the weights-only unpickler
    torch.save({"conv1.weight": torch.zeros(1), "payload": argparse.Namespace(run="code")}, path)
    with pytest.raises(pickle.UnpicklingError):
        P.load_torchvision_state_dict(create_model("resnet18"), path)
    with pytest.raises(FileNotFoundError):
        P.load_torchvision_state_dict(create_model("resnet18"), tmp_path / "missing.pth")


# ------------------------------------------------------------------ ImageNet weights, offline


def test_imagenet_weights_describe_the_file_and_preprocessing():
    w = P.imagenet_weights("resnet18")
    assert w.url.endswith(".pth") and P.weights_cache_path(w).name == w.url.rsplit("/", 1)[1]
    assert w.meta["num_params"] == 11689512
    out = w.transforms()(torch.rand(3, 48, 48))
    assert out.shape == (3, 224, 224)
    with pytest.raises(ValueError):
        P.imagenet_weights("resnet18", "NOPE")
    with pytest.raises(ValueError):
        P.imagenet_weights("not_a_model")


def test_without_internet_the_error_is_clear_and_try_returns_none(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))

    def no_network(url, model_dir, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(P.imagenet, "_download", no_network)
    with pytest.raises(P.PretrainedUnavailableError, match="Could not download"):
        P.load_imagenet_model("resnet18")
    with pytest.raises(P.PretrainedUnavailableError, match="download=False"):
        P.load_imagenet_model("resnet18", download=False)
    assert P.try_imagenet_model("resnet18") is None
    assert "offline checkpoints" in capsys.readouterr().out


def test_cached_imagenet_file_is_used_without_network(tmp_path, monkeypatch, tv_resnet18_file):
    _, tv = tv_resnet18_file
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    monkeypatch.setattr(P.imagenet, "_download", lambda *a: pytest.fail("must not download"))
    w = P.imagenet_weights("resnet18")
    target = P.weights_cache_path(w)
    target.parent.mkdir(parents=True)
    torch.save(tv.state_dict(), target)
    got = P.load_imagenet_model("resnet18")
    assert got.source == "cache" and got.path == target and not got.model.training
    x = got.transforms(torch.rand(3, 48, 48))[None]
    with torch.no_grad():
        assert torch.allclose(got.model(x), tv(x), atol=1e-4)
    tv_model = P.load_imagenet_model("resnet18", course_model=False).model
    assert isinstance(tv_model, torchvision.models.ResNet)
    with pytest.raises(ValueError, match="no model matching"):
        P.imagenet._zoo_name("alexnet")


# ------------------------------------------------------------------ course checkpoints: the recipe in miniature


def test_recipe_validation_and_replace():
    r = P.RECIPES["faces_supervised"]
    assert r.replace(epochs=1).epochs == 1 and r.replace(epochs=1).name == r.name
    with pytest.raises(ValueError):
        P.SourceRecipe("x", data="imagenet")
    with pytest.raises(ValueError):
        P.SourceRecipe("x", method="moco")
    with pytest.raises(Exception):
        r.epochs = 3  # frozen
    assert set(P.RECIPES) == {"faces_supervised", "digits_supervised", "faces_simclr"}


MINI = {"n_identities": 6, "images_per_identity": 6, "image_size": 32, "epochs": 1, "batch_size": 16}


@pytest.mark.parametrize("name", ["faces_supervised", "faces_simclr", "digits_supervised"])
def test_recipe_runs_in_miniature_and_round_trips(name, tmp_path):
    recipe = P.RECIPES[name].replace(**MINI)
    if recipe.data == "digits":
        recipe = recipe.replace(max_train_images=48)
    result = P.train_source_model(recipe, device="cpu", progress=False)
    meta = result.meta
    for key in ("recipe", "data", "seed", "accuracy", "linear_probe_accuracy", "training_seconds", "torch"):
        assert key in meta
    assert 0 <= meta["accuracy"] <= 1 and meta["recipe"]["epochs"] == 1
    assert meta["data"]["labels_used"] == (recipe.method == "supervised")
    assert result.model.num_classes == 0
    pt, js = P.save_source_checkpoint(result, tmp_path)
    info = json.loads(js.read_text())
    assert info["size_bytes"] == pt.stat().st_size and len(info["sha256"]) == 64
    assert P.list_sources(tmp_path) == [name]
    loaded = P.load_source_model(name, num_classes=3, directory=tmp_path)
    assert loaded.num_classes == 3 and loaded.source_meta["name"] == name
    x = torch.rand(2, 3, 32, 32)
    loaded.eval()
    with torch.no_grad():
        a = loaded.forward_head(loaded.forward_features(x), pre_logits=True)
        b = result.model.eval()(x)
    assert torch.allclose(a, b, atol=1e-5)
    assert list(P.sources_table(tmp_path).index) == [name]


def test_recipe_is_reproducible():
    recipe = P.RECIPES["digits_supervised"].replace(image_size=32, epochs=1, max_train_images=32, batch_size=16)
    a = P.train_source_model(recipe, device="cpu", progress=False).model.state_dict()
    b = P.train_source_model(recipe, device="cpu", progress=False).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_missing_checkpoint_names_the_available_ones(tmp_path):
    with pytest.raises(FileNotFoundError, match="make_checkpoints"):
        P.load_source_model("nothing", directory=tmp_path)
    with pytest.raises(FileNotFoundError):
        P.source_info("nothing", directory=tmp_path)


# ------------------------------------------------------------------ the shipped checkpoints


def test_shipped_checkpoints_are_small_documented_and_load_with_weights_only():
    names = P.list_sources()
    assert set(names) >= set(P.RECIPES), f"missing checkpoints: run scripts/make_checkpoints.py ({names})"
    total = 0
    for name in P.RECIPES:
        info = P.source_info(name)
        path = P.CHECKPOINT_DIR / f"{name}.pt"
        assert path.stat().st_size == info["size_bytes"] < 1_000_000
        total += info["size_bytes"]
        assert info["recipe"] == P.RECIPES[name].to_dict(), f"{name}.pt was made by another recipe: remake it"
        assert info["accuracy"] > 2 * info["chance_accuracy"], f"{name} learned little"
        assert info["training_seconds"] > 0 and info["seed"] == P.RECIPES[name].seed
        ckpt = load_checkpoint(path)  # weights_only=True inside
        assert ckpt["meta"]["name"] == name
        model = P.load_source_model(name, num_classes=4)
        assert model.num_classes == 4
        with torch.no_grad():
            assert model.eval()(torch.rand(1, 3, 48, 48)).shape == (1, 4)
    assert total < 3_000_000


# ------------------------------------------------------------------ one record for both ImageNet sources


def test_torchvision_and_offline_records_carry_the_same_fields(tmp_path, monkeypatch, tv_resnet18_file):
    _, tv = tv_resnet18_file
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    monkeypatch.setattr(P.imagenet, "_download", lambda *a: pytest.fail("must not download"))
    target = P.weights_cache_path(P.imagenet_weights("resnet18"))
    target.parent.mkdir(parents=True)
    torch.save(tv.state_dict(), target)
    records = [P.load_imagenet_model("resnet18")]
    if P.try_imagenet_model("efficientnet_lite0") is not None:  # the `imagenet` extra is installed
        records.append(P.load_imagenet_model("efficientnet_lite0"))
    for rec in records:
        assert isinstance(rec, P.ImageNetModel) and not rec.model.training
        assert len(rec.categories) == 1000 and rec.categories == P.imagenet_categories()
        assert rec.name in ("resnet18", "efficientnet_lite0") and rec.meta["top1"] > 60
        assert rec.transforms(torch.rand(3, 300, 260)).shape == (3, 224, 224)
        assert rec.transforms_at(112)(torch.rand(3, 300, 260)).shape == (3, 112, 112)
        assert len(rec.top_k([torch.rand(3, 64, 64)], k=3)[0]) == 3
