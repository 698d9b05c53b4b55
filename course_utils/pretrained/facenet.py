"""A published face recogniser: FaceNet's Inception-ResNet-v1 trained on VGGFace2.

:class:`InceptionResnetV1` reproduces the layout of ``facenet-pytorch``
(Tim Esler's port of David Sandberg's TensorFlow FaceNet), module for
module, so that its state dict has the same keys and shapes as the
published file ``20180402-114759-vggface2.pt`` (512-d embeddings; 99.65 %
on LFW according to its authors; a ``logits`` layer over the 8,631
VGGFace2 training identities). :func:`load_facenet` reads that file with
``weights_only=True`` from a path or the torch cache (downloading it only
when asked), checks every key and shape, and says precisely what differs
when a file does not fit.

Inputs: aligned face crops, RGB, 160 x 160 pixels, standardised as
``(x * 255 - 127.5) / 128`` for ``x`` in ``[0, 1]`` (:func:`facenet_preprocess`;
facenet-pytorch's ``fixed_image_standardization``). Outputs: unit-norm
``(N, 512)`` embeddings compared with cosines.

Offline (no file, no internet) :func:`try_facenet` returns ``None`` and
says so; the notebooks then use the course's own face embedder
(``course_utils/checkpoints/faces_supervised.pt``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_utils.data.cache import atomic_path
from course_utils.pretrained.imagenet import (
    socket_timeout,  # one place sets a download timeout
)

__all__ = [
    "InceptionResnetV1",
    "FaceNetWeights",
    "FACENET_WEIGHTS",
    "facenet_preprocess",
    "facenet_cache_paths",
    "check_facenet_state_dict",
    "load_facenet",
    "try_facenet",
    "FaceWeightsUnavailableError",
]


class _BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm (eps 1e-3, TensorFlow's) -> ReLU; keys ``conv.*``, ``bn.*``."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int | tuple[int, int], stride: int,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=kernel_size, stride=stride, padding=padding,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_planes, eps=0.001, momentum=0.1, affine=True)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class _Block35(nn.Module):
    """Inception-ResNet-A on 256 channels: three branches, 1x1 up-projection, ``relu(x + scale * r)``."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = _BasicConv2d(256, 32, 1, 1)
        self.branch1 = nn.Sequential(_BasicConv2d(256, 32, 1, 1), _BasicConv2d(32, 32, 3, 1, 1))
        self.branch2 = nn.Sequential(_BasicConv2d(256, 32, 1, 1), _BasicConv2d(32, 32, 3, 1, 1),
                                     _BasicConv2d(32, 32, 3, 1, 1))
        self.conv2d = nn.Conv2d(96, 256, kernel_size=1, stride=1)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        r = self.conv2d(torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1))
        return self.relu(r * self.scale + x)


class _Block17(nn.Module):
    """Inception-ResNet-B on 896 channels (factorised 1x7 / 7x1 convolutions)."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = _BasicConv2d(896, 128, 1, 1)
        self.branch1 = nn.Sequential(_BasicConv2d(896, 128, 1, 1), _BasicConv2d(128, 128, (1, 7), 1, (0, 3)),
                                     _BasicConv2d(128, 128, (7, 1), 1, (3, 0)))
        self.conv2d = nn.Conv2d(256, 896, kernel_size=1, stride=1)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        r = self.conv2d(torch.cat((self.branch0(x), self.branch1(x)), 1))
        return self.relu(r * self.scale + x)


class _Block8(nn.Module):
    """Inception-ResNet-C on 1792 channels; the last one has no ReLU."""

    def __init__(self, scale: float = 1.0, no_relu: bool = False) -> None:
        super().__init__()
        self.scale = scale
        self.no_relu = no_relu
        self.branch0 = _BasicConv2d(1792, 192, 1, 1)
        self.branch1 = nn.Sequential(_BasicConv2d(1792, 192, 1, 1), _BasicConv2d(192, 192, (1, 3), 1, (0, 1)),
                                     _BasicConv2d(192, 192, (3, 1), 1, (1, 0)))
        self.conv2d = nn.Conv2d(384, 1792, kernel_size=1, stride=1)
        if not no_relu:
            self.relu = nn.ReLU(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2d(torch.cat((self.branch0(x), self.branch1(x)), 1)) * self.scale + x
        return out if self.no_relu else self.relu(out)


class _Mixed6a(nn.Module):
    """Reduction-A: 256 -> 896 channels, half the resolution."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = _BasicConv2d(256, 384, 3, 2)
        self.branch1 = nn.Sequential(_BasicConv2d(256, 192, 1, 1), _BasicConv2d(192, 192, 3, 1, 1),
                                     _BasicConv2d(192, 256, 3, 2))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class _Mixed7a(nn.Module):
    """Reduction-B: 896 -> 1792 channels, half the resolution."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(_BasicConv2d(896, 256, 1, 1), _BasicConv2d(256, 384, 3, 2))
        self.branch1 = nn.Sequential(_BasicConv2d(896, 256, 1, 1), _BasicConv2d(256, 256, 3, 2))
        self.branch2 = nn.Sequential(_BasicConv2d(896, 256, 1, 1), _BasicConv2d(256, 256, 3, 1, 1),
                                     _BasicConv2d(256, 256, 3, 2))
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class InceptionResnetV1(nn.Module):
    """FaceNet's Inception-ResNet-v1, in facenet-pytorch's module layout (same state-dict keys).

    Args:
        num_classes: size of the ``logits`` layer (8631 for the VGGFace2
            file, 10575 for CASIA-WebFace); 0 for none.
        classify: ``forward`` returns logits instead of embeddings.
        dropout_prob: dropout before the embedding layer (training only).

    Shapes: ``(N, 3, 160, 160)`` standardised faces -> ``(N, 512)`` unit
    vectors (or ``(N, num_classes)`` logits). Other sizes work down to about
    80 pixels; the published weights were trained at 160.
    """

    def __init__(self, *, num_classes: int = 0, classify: bool = False, dropout_prob: float = 0.6) -> None:
        super().__init__()
        if classify and not num_classes:
            raise ValueError("InceptionResnetV1: classify=True needs num_classes > 0.")
        self.classify = classify
        self.conv2d_1a = _BasicConv2d(3, 32, 3, 2)
        self.conv2d_2a = _BasicConv2d(32, 32, 3, 1)
        self.conv2d_2b = _BasicConv2d(32, 64, 3, 1, 1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = _BasicConv2d(64, 80, 1, 1)
        self.conv2d_4a = _BasicConv2d(80, 192, 3, 1)
        self.conv2d_4b = _BasicConv2d(192, 256, 3, 2)
        self.repeat_1 = nn.Sequential(*[_Block35(scale=0.17) for _ in range(5)])
        self.mixed_6a = _Mixed6a()
        self.repeat_2 = nn.Sequential(*[_Block17(scale=0.10) for _ in range(10)])
        self.mixed_7a = _Mixed7a()
        self.repeat_3 = nn.Sequential(*[_Block8(scale=0.20) for _ in range(5)])
        self.block8 = _Block8(no_relu=True)
        self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout_prob)
        self.last_linear = nn.Linear(1792, 512, bias=False)
        self.last_bn = nn.BatchNorm1d(512, eps=0.001, momentum=0.1, affine=True)
        if num_classes:
            self.logits = nn.Linear(512, num_classes)
        self.num_features = 512

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` -> the last feature map ``(N, 1792, h, w)`` (3 x 3 for 160-pixel inputs)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"InceptionResnetV1 expects (N, 3, H, W) RGB faces, got {tuple(x.shape)}.")
        for name in ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b",
                     "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8"):
            x = getattr(self, name)(x)
        return x

    def pooled_features(self, x: Tensor) -> Tensor:
        """The penultimate layer: average-pooled ``(N, 1792)``."""
        return self.avgpool_1a(self.forward_features(x)).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        """Standardised faces ``(N, 3, H, W)`` -> unit embeddings ``(N, 512)`` (or logits when ``classify``)."""
        e = self.last_bn(self.last_linear(self.dropout(self.pooled_features(x))))
        if self.classify:
            return self.logits(e)
        return F.normalize(e, p=2, dim=1)


def facenet_preprocess(images: Tensor, *, size: int = 160) -> Tensor:
    """Faces ``(N, C, H, W)`` in ``[0, 1]`` (C = 1 or 3) -> ``(N, 3, size, size)`` standardised for FaceNet.

    Grey images are repeated to three channels; the image is resized
    (bilinear) and mapped with ``(x * 255 - 127.5) / 128``.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"facenet_preprocess expects (N, 1 or 3, H, W), got {tuple(images.shape)}.")
    x = images.float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (x * 255.0 - 127.5) / 128.0


@dataclass(frozen=True)
class FaceNetWeights:
    """A published FaceNet state dict.

    Attributes:
        name: ``"vggface2"`` or ``"casia-webface"``.
        url: where facenet-pytorch publishes it.
        filename: the file name (also its name in the torch cache).
        num_classes: rows of its ``logits`` layer (training identities).
        sha256: expected SHA-256 of the file, or ``None`` when the course
            has no trusted value (then only keys and shapes are checked).
        lfw_accuracy: accuracy on LFW reported by the authors.
    """

    name: str
    url: str
    filename: str
    num_classes: int
    sha256: str | None
    lfw_accuracy: float


#: The published weights. facenet-pytorch publishes no checksums and the course was built
#: offline, so no SHA-256 is pinned (a value copied from elsewhere and never verified could
#: refuse the genuine file): the loader checks every key and shape instead. Once you have
#: verified a download, pin its hash here to have later loads checked.
FACENET_WEIGHTS: dict[str, FaceNetWeights] = {
    "vggface2": FaceNetWeights(
        "vggface2",
        "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",
        "20180402-114759-vggface2.pt", 8631, None, 0.9965),
    "casia-webface": FaceNetWeights(
        "casia-webface",
        "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180408-102900-casia-webface.pt",
        "20180408-102900-casia-webface.pt", 10575, None, 0.9905),
}


class FaceWeightsUnavailableError(RuntimeError):
    """The published face weights are neither on disk nor downloadable."""


def facenet_cache_paths(weights: FaceNetWeights) -> list[Path]:
    """Where the file may already be: facenet-pytorch's ``$TORCH_HOME/checkpoints`` and torch hub's cache."""
    torch_home = Path(os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"),
                                                                              "torch"))))
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    paths = [torch_home / "checkpoints" / weights.filename, hub / weights.filename]
    return list(dict.fromkeys(paths))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_facenet_state_dict(state_dict: Mapping[str, Tensor], model: InceptionResnetV1) -> list[str]:
    """The differences between a state dict and ``model``'s (missing, unexpected, wrong shape); empty if it fits.

    ``num_batches_tracked`` buffers are ignored (TensorFlow conversions lack them).
    """
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    theirs = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    problems = [f"missing: {k} {tuple(own[k].shape)}" for k in own if k not in theirs]
    problems += [f"unexpected: {k} {tuple(theirs[k].shape)}" for k in theirs if k not in own]
    problems += [f"shape of {k}: file {tuple(theirs[k].shape)}, model {tuple(own[k].shape)}"
                 for k in own if k in theirs and tuple(theirs[k].shape) != tuple(own[k].shape)]
    return problems


def _find_or_download(weights: FaceNetWeights, download: bool, timeout: float) -> Path:
    for p in facenet_cache_paths(weights):
        if p.is_file():
            return p
    target = facenet_cache_paths(weights)[0]
    if not download:
        raise FaceWeightsUnavailableError(
            f"{weights.filename} is not in {', '.join(str(p.parent) for p in facenet_cache_paths(weights))} and "
            f"download=False. Download it from {weights.url} into {target.parent}, or pass download=True.")
    try:
        with socket_timeout(timeout), atomic_path(target, suffix=".part") as tmp:
            torch.hub.download_url_to_file(weights.url, str(tmp), progress=False)
    except Exception as err:  # noqa: BLE001 - any network or HTTP error means "unavailable"
        raise FaceWeightsUnavailableError(
            f"Could not download {weights.url} ({type(err).__name__}: {err}). Copy the file to {target} by hand."
        ) from err
    return target


def load_facenet(
    source: str | Path | Mapping[str, Tensor] = "vggface2",
    *,
    download: bool = False,
    check_hash: bool = True,
    keep_logits: bool = False,
    timeout: float = 30.0,
) -> InceptionResnetV1:
    """The published FaceNet (Inception-ResNet-v1) with its weights, in eval mode.

    Args:
        source: ``"vggface2"`` / ``"casia-webface"`` (looked up in the torch
            caches, downloaded when ``download``), a path to a state-dict
            file, or a state dict.
        download: allow a download (about 107 MB) when the file is not cached.
        check_hash: verify the file's SHA-256 when a trusted value is known
            (named weights only).
        keep_logits: keep the classification layer over the training identities.
        timeout: seconds before a silent network gives up.

    Raises:
        FaceWeightsUnavailableError: not on disk and no download.
        ValueError: the file's keys or shapes do not match (the message lists them),
            or its hash differs from the published one.
    """
    expected_hash = None
    if isinstance(source, Mapping):
        sd = dict(source)
        where = "the given state dict"
    else:
        if isinstance(source, str) and source in FACENET_WEIGHTS:
            w = FACENET_WEIGHTS[source]
            path = _find_or_download(w, download, timeout)
            expected_hash = w.sha256 if check_hash else None
        else:
            path = Path(source)
            if not path.is_file():
                raise FaceWeightsUnavailableError(f"No file {path}; name one of {sorted(FACENET_WEIGHTS)} or a path.")
        if expected_hash is not None:
            got = _sha256(path)
            if got != expected_hash:
                raise ValueError(f"{path} has SHA-256 {got}, expected {expected_hash}: a different or corrupted "
                                 "file. Delete it and download again (or pass check_hash=False).")
        sd = torch.load(path, map_location="cpu", weights_only=True)
        where = str(path)
    if not isinstance(sd, Mapping) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise ValueError(f"{where} does not hold a state dict of tensors.")
    n_logits = int(sd["logits.weight"].shape[0]) if "logits.weight" in sd else 0
    model = InceptionResnetV1(num_classes=n_logits)
    problems = check_facenet_state_dict(sd, model)
    if problems:
        shown = "\n  ".join(problems[:12]) + (f"\n  ... and {len(problems) - 12} more" if len(problems) > 12 else "")
        raise ValueError(f"{where} does not fit facenet-pytorch's InceptionResnetV1:\n  {shown}")
    model.load_state_dict(sd, strict=False)  # num_batches_tracked may be absent
    if n_logits and not keep_logits:
        del model.logits
    return model.eval()


def try_facenet(name: str = "vggface2", **kwargs: Any) -> InceptionResnetV1 | None:
    """:func:`load_facenet`, or ``None`` after printing why (offline and not cached)."""
    try:
        return load_facenet(name, **kwargs)
    except FaceWeightsUnavailableError as err:
        print(f"[course_utils] published FaceNet weights unavailable: {err}\n"
              "  Using the course's own face embedder (course_utils/checkpoints/faces_supervised.pt) instead.")
        return None
