"""course_utils.pretrained.facenet: FaceNet's Inception-ResNet-v1 in facenet-pytorch's layout, and its loader."""

import hashlib

import pytest
import torch
import torch.nn.functional as F

from course_utils.pretrained import facenet as FM

# Keys and shapes of facenet-pytorch's published 20180402-114759-vggface2.pt, written out here by hand
# (from facenet-pytorch's models/inception_resnet_v1.py) as an oracle independent of the module under test.
PUBLISHED_SHAPES = {
    "conv2d_1a.conv.weight": (32, 3, 3, 3),
    "conv2d_1a.bn.running_var": (32,),
    "conv2d_2b.conv.weight": (64, 32, 3, 3),
    "conv2d_3b.conv.weight": (80, 64, 1, 1),
    "conv2d_4b.conv.weight": (256, 192, 3, 3),
    "repeat_1.4.branch2.2.conv.weight": (32, 32, 3, 3),
    "repeat_1.0.conv2d.weight": (256, 96, 1, 1),
    "repeat_1.0.conv2d.bias": (256,),
    "mixed_6a.branch0.conv.weight": (384, 256, 3, 3),
    "mixed_6a.branch1.2.conv.weight": (256, 192, 3, 3),
    "repeat_2.9.branch1.1.conv.weight": (128, 128, 1, 7),
    "repeat_2.9.branch1.2.conv.weight": (128, 128, 7, 1),
    "repeat_2.0.conv2d.weight": (896, 256, 1, 1),
    "mixed_7a.branch0.1.conv.weight": (384, 256, 3, 3),
    "mixed_7a.branch2.2.conv.weight": (256, 256, 3, 3),
    "repeat_3.4.branch1.1.conv.weight": (192, 192, 1, 3),
    "repeat_3.4.branch1.2.conv.weight": (192, 192, 3, 1),
    "block8.conv2d.weight": (1792, 384, 1, 1),
    "last_linear.weight": (512, 1792),
    "last_bn.weight": (512,),
    "last_bn.running_mean": (512,),
    "logits.weight": (8631, 512),
    "logits.bias": (8631,),
}


@pytest.fixture(scope="module")
def published_file(tmp_path_factory):
    """A file in the published format: the same keys and shapes, seeded random values, BN stats non-trivial."""
    torch.manual_seed(0)
    sd = FM.InceptionResnetV1(num_classes=8631).state_dict()
    g = torch.Generator().manual_seed(1)
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            continue  # the TensorFlow conversion has none; the loader must cope
        if k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        elif k.endswith("running_mean") or k.endswith("bias"):
            out[k] = torch.randn(v.shape, generator=g) * 0.1
        else:
            out[k] = v.clone()
    path = tmp_path_factory.mktemp("torch") / "checkpoints" / FM.FACENET_WEIGHTS["vggface2"].filename
    path.parent.mkdir(parents=True)
    torch.save(out, path)
    return path, out


def test_layout_has_the_published_keys_and_shapes():
    sd = FM.InceptionResnetV1(num_classes=8631).state_dict()
    for key, shape in PUBLISHED_SHAPES.items():
        assert key in sd, key
        assert tuple(sd[key].shape) == shape, key
    convs = [k for k in sd if k.endswith(".conv.weight")]
    # 6 stem convs, 5 x 6 (Block35), 4 (Mixed_6a), 10 x 4 (Block17), 7 (Mixed_7a), 6 x 4 (Block8)
    assert len(convs) == 6 + 5 * 6 + 4 + 10 * 4 + 7 + 6 * 4
    assert all(m.eps == 1e-3 for m in FM.InceptionResnetV1().modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_load_file_in_published_format(published_file):
    path, sd = published_file
    model = FM.load_facenet(path)
    assert not model.training and not hasattr(model, "logits")
    for k, v in model.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(v, sd[k]), k
    x = FM.facenet_preprocess(torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(2)))
    with torch.no_grad():
        e = model(x)
    assert e.shape == (3, 512)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(3))
    kept = FM.load_facenet(path, keep_logits=True)
    assert kept.logits.weight.shape == (8631, 512)


def test_named_weights_found_in_the_torch_cache_with_hash_check(published_file, monkeypatch):
    path, _ = published_file
    monkeypatch.setenv("TORCH_HOME", str(path.parent.parent))
    assert FM.facenet_cache_paths(FM.FACENET_WEIGHTS["vggface2"])[0] == path
    # no hash pinned: keys and shapes are checked, the file loads
    assert FM.FACENET_WEIGHTS["vggface2"].sha256 is None
    assert FM.load_facenet("vggface2").last_linear.weight.shape == (512, 1792)
    # a pinned hash that differs from the file's must refuse it ...
    monkeypatch.setitem(FM.FACENET_WEIGHTS, "vggface2",
                        FM.FaceNetWeights("vggface2", "http://invalid", path.name, 8631, "0" * 64, 0.9965))
    with pytest.raises(ValueError, match="SHA-256"):
        FM.load_facenet("vggface2")
    assert FM.load_facenet("vggface2", check_hash=False).last_linear.weight.shape == (512, 1792)
    # ... and accept it when the pinned hash is the file's
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(FM.FACENET_WEIGHTS, "vggface2",
                        FM.FaceNetWeights("vggface2", "http://invalid", path.name, 8631, digest, 0.9965))
    assert FM.load_facenet("vggface2").last_linear.weight.shape == (512, 1792)


def test_missing_weights_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FM.FaceWeightsUnavailableError, match="download=False"):
        FM.load_facenet("vggface2")
    assert FM.try_facenet("vggface2") is None
    assert "course's own face embedder" in capsys.readouterr().out


def test_download_failure_is_reported_and_leaves_no_partial_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def fail(url, dst, progress=False):
        with open(dst, "wb") as f:
            f.write(b"partial")
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)
    with pytest.raises(FM.FaceWeightsUnavailableError, match="no network"):
        FM.load_facenet("vggface2", download=True)
    assert not any((tmp_path / "checkpoints").iterdir())


def test_mismatching_state_dict_is_refused_with_the_differences(published_file):
    _, sd = published_file
    bad = dict(sd)
    bad["last_linear.weight"] = torch.zeros(128, 1792)
    del bad["block8.conv2d.bias"]
    bad["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError) as err:
        FM.load_facenet(bad)
    msg = str(err.value)
    assert "shape of last_linear.weight" in msg and "missing: block8.conv2d.bias" in msg and "unexpected: extra" in msg
    casia = dict(sd)
    casia["logits.weight"], casia["logits.bias"] = torch.zeros(10575, 512), torch.zeros(10575)
    assert FM.load_facenet(casia, keep_logits=True).logits.out_features == 10575


def test_block35_is_a_scaled_residual():
    torch.manual_seed(0)
    block = FM._Block35(scale=0.17).eval()
    x = torch.randn(1, 256, 5, 5)
    with torch.no_grad():
        branches = torch.cat([block.branch0(x), block.branch1(x), block.branch2(x)], 1)
        expected = F.relu(x + 0.17 * block.conv2d(branches))
        torch.testing.assert_close(block(x), expected)


def test_forward_shapes_and_preprocessing():
    grey = torch.full((2, 1, 40, 40), 0.5)
    x = FM.facenet_preprocess(grey)
    assert x.shape == (2, 3, 160, 160)
    torch.testing.assert_close(x, torch.full_like(x, (0.5 * 255 - 127.5) / 128))
    assert FM.facenet_preprocess(torch.ones(1, 3, 160, 160)).max().item() == pytest.approx(127.5 / 128)
    model = FM.InceptionResnetV1().eval()
    with torch.no_grad():
        assert model.forward_features(x[:1]).shape == (1, 1792, 3, 3)  # 160 px -> a 3 x 3 map
        assert model.pooled_features(x[:1, :, :96, :96]).shape == (1, 1792)
    with pytest.raises(ValueError):
        model(torch.zeros(1, 1, 160, 160))
    with pytest.raises(ValueError):
        FM.InceptionResnetV1(classify=True)
