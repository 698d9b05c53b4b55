"""ImageNet weights through torchvision's weights API.

:func:`imagenet_weights` and :func:`load_imagenet_model` read the file
torchvision downloads (``<torch hub dir>/checkpoints/<name>-<hash>.pth``, the
usual torch cache) with ``weights_only=True``, together with the weights' own
preprocessing (``weights.transforms()``). The file can be loaded into the
course zoo's model of the same architecture (whose parameters line up with
torchvision's one for one, see :func:`load_torchvision_state_dict`) or into
torchvision's model. Without internet access and without a cached file,
:class:`PretrainedUnavailableError` says so; :func:`try_imagenet_model` prints
that and returns ``None`` so a notebook can fall back to another source.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils.models import create_model
from course_utils.models.zoo import list_models, model_info
from course_utils.train import CheckpointMismatchError

__all__ = [
    "PretrainedUnavailableError",
    "ImageNetModel",
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
# ImageNet weights (real path)
# --------------------------------------------------------------------------


class PretrainedUnavailableError(RuntimeError):
    """The ImageNet weights are neither in the torch cache nor downloadable (e.g. no internet)."""


@dataclass
class ImageNetModel:
    """An ImageNet-pretrained network with its preprocessing.

    Attributes:
        model: the network (course zoo or torchvision), in eval mode.
        transforms: ``weights.transforms()``: resize, centre crop, normalise
            with ImageNet's mean and standard deviation.
        weights: the torchvision weights enum member (``.meta`` has accuracy, categories ...).
        path: the cached ``.pth`` file.
        source: ``"cache"`` (already there) or ``"download"``.
    """

    model: nn.Module
    transforms: Any
    weights: Any
    path: Path
    source: str
    report: LoadReport | None = None


def imagenet_weights(name: str = "resnet18", weights: str = "DEFAULT") -> Any:
    """torchvision's weights enum member for ``name`` (``"DEFAULT"``, ``"IMAGENET1K_V1"`` ...).

    Nothing is downloaded: the member only describes the file (``.url``),
    its preprocessing (``.transforms()``) and its ImageNet results (``.meta``).
    """
    import torchvision

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
    for name in list_models(size="full"):
        if model_info(name).torchvision_name == torchvision_name:
            return name
    known = sorted(filter(None, (model_info(n).torchvision_name for n in list_models(size="full"))))
    raise ValueError(f"The zoo has no model matching torchvision's {torchvision_name!r}; it has {known}. "
                     "Use course_model=False for torchvision's own model.")


def load_imagenet_model(name: str = "resnet18", *, weights: str = "DEFAULT", course_model: bool = True,
                        download: bool = True, timeout: float = 10.0) -> ImageNetModel:
    """ImageNet-pretrained ``name`` from the torch cache, downloading it once if needed.

    Args:
        name: a torchvision model name (``"resnet18"``, ``"mobilenet_v2"`` ...).
        weights: which weights (``"DEFAULT"`` = the best torchvision ships).
        course_model: load into the course zoo's equivalent (same forward,
            plus ``forward_features``/``forward_head``/``reset_classifier``);
            ``False`` gives torchvision's model.
        download: allow a download when the file is not cached.
        timeout: seconds before a silent network gives up.

    Raises:
        PretrainedUnavailableError: not cached, and the download is not
            allowed or failed (the message says how to fix it).
    """
    import torchvision

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
                f"Connect to the internet once (they are cached in {path.parent}), or copy the file there by hand."
            ) from err
        source = "download"
    if course_model:
        with torch.device("meta"):
            model = create_model(_zoo_name(name))
        model = model.to_empty(device="cpu")
    else:
        model = torchvision.models.get_model(name, weights=None)
    report = load_torchvision_state_dict(model, sd, head="load")
    return ImageNetModel(model.eval(), w.transforms(), w, path, source, report)


def try_imagenet_model(name: str = "resnet18", **kwargs: Any) -> ImageNetModel | None:
    """:func:`load_imagenet_model`, or ``None`` after printing why the weights are not available."""
    try:
        return load_imagenet_model(name, **kwargs)
    except PretrainedUnavailableError as err:
        print(f"[course_utils] ImageNet weights unavailable: {err}\n"
              "  Using the course's offline checkpoints (course_utils/checkpoints) instead.")
        return None


