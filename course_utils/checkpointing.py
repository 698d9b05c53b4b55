"""Checkpoints: weights with their architecture name and metadata, written atomically, read safely.

:func:`save_checkpoint` writes ``{"format", "arch", "state_dict", "meta"[, "optimizer"]}``
through :func:`course_utils.data.cache.atomic_write` (a temporary file, then a
rename); :func:`load_checkpoint` reads it (or a bare state dict) with
``torch.load(..., weights_only=True)`` and explains, in one message, a file
that is empty, truncated, a web page, pickled objects, or weights that do not
fit the model. Re-exported by :mod:`course_utils.train`.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils.data.cache import atomic_write

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointMismatchError",
    "CheckpointLoadError",
    "save_checkpoint",
    "load_checkpoint",
]

CHECKPOINT_FORMAT = "course_utils.checkpoint/1"


class CheckpointMismatchError(RuntimeError):
    """Raised when a checkpoint does not fit the model it is loaded into."""


class CheckpointLoadError(RuntimeError):
    """Raised when a checkpoint file cannot be read (empty, truncated, HTML, not a checkpoint)."""


def _arch_name(model: nn.Module) -> str:
    return str(getattr(model, "arch_name", None) or type(model).__qualname__)


def save_checkpoint(path: str | Path, model: nn.Module, *, optimizer: torch.optim.Optimizer | None = None,
                    meta: Mapping[str, Any] | None = None, arch: str | None = None) -> Path:
    """Save weights (and optionally optimizer state and metadata) atomically.

    The file is written to a temporary file in the same folder, then renamed,
    so an interruption never leaves a half-written checkpoint.

    Args:
        path: destination ``.pt`` file.
        model: its ``state_dict`` is saved (moved to CPU).
        optimizer: its ``state_dict`` is saved too when given.
        meta: plain values (numbers, strings, lists, dicts) kept with the
            weights: recipe, accuracy, seed ...
        arch: architecture name; default ``model.arch_name`` or the class name.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "arch": arch or _arch_name(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(meta or {}),
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    with atomic_write(path, "wb") as fh:
        torch.save(payload, fh)
    return path


def _unreadable_checkpoint(path: Path, err: BaseException) -> str:
    """Say what the file looks like and what to do (never to unpickle it with ``weights_only=False``)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(512)
    text = head.lstrip().lower()
    redo = ("Download it again (or re-run the cell that saved it); delete the file if it is not needed.")
    if size == 0:
        what = "is empty (0 bytes): the download or save was interrupted"
    elif text.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"{")) or b"<html" in text:
        kind = "a JSON text" if text.startswith(b"{") else "a web page (HTML)"
        what = (f"is {kind}, not a checkpoint: the download saved an error or login page (check the URL; "
                "for Google Drive or GitHub use the direct/raw download link)")
    elif head.startswith(b"PK\x03\x04"):
        if not zipfile.is_zipfile(path):
            what = f"is truncated ({size:,} bytes; its zip directory is missing): the download or save was cut short"
        else:
            what = f"is a zip file that torch cannot read as a checkpoint ({_short(err)})"
    elif head[:1] == b"\x80":
        what = ("holds pickled Python objects other than tensors and plain values; it was not loaded because "
                "unpickling them can run arbitrary code. Re-save it as tensors: "
                "save_checkpoint(path, model) or torch.save(model.state_dict(), path)")
        redo = "Ask whoever made it for a state_dict file if you cannot re-save it yourself."
    else:
        what = f"is not a PyTorch checkpoint ({size:,} bytes starting with {head[:16]!r}; {_short(err)})"
    return f"Cannot load the checkpoint {path}: it {what}. {redo}"


def _short(err: BaseException) -> str:
    line = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if "weights_only" in line or "Weights only load failed" in line:
        return "not a file of tensors"
    return f"{type(err).__name__}: {line[:160]}"


def _describe_mismatch(model_sd: Mapping[str, torch.Tensor], ckpt_sd: Mapping[str, torch.Tensor]) -> list[str]:
    missing = [k for k in model_sd if k not in ckpt_sd]
    unexpected = [k for k in ckpt_sd if k not in model_sd]
    shapes = [f"{k}: checkpoint {tuple(ckpt_sd[k].shape)} vs model {tuple(v.shape)}"
              for k, v in model_sd.items() if k in ckpt_sd and tuple(ckpt_sd[k].shape) != tuple(v.shape)]
    out = []
    if missing:
        out.append(f"{len(missing)} missing key(s), e.g. {missing[:3]}")
    if unexpected:
        out.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[:3]}")
    if shapes:
        out.append(f"{len(shapes)} shape mismatch(es), e.g. {shapes[:3]}")
    return out


def load_checkpoint(path: str | Path, model: nn.Module | None = None, *,
                    optimizer: torch.optim.Optimizer | None = None,
                    map_location: str | torch.device = "cpu", strict: bool = True) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (or a bare state dict).

    Uses ``torch.load(weights_only=True)``: only tensors and plain values are
    unpickled, never arbitrary code.

    Args:
        path: the ``.pt`` file.
        model: when given, the weights are loaded into it.
        optimizer: when given and saved, its state is restored.
        map_location: where tensors go (default CPU; move the model after).
        strict: require an exact match of keys and shapes.

    Returns:
        The checkpoint dict (``arch``, ``state_dict``, ``meta`` ...).

    Raises:
        FileNotFoundError: no such file.
        CheckpointLoadError: the file is empty, truncated, a web page, or
            holds objects other than tensors (the message says which, and
            what to do).
        CheckpointMismatchError: the weights do not fit ``model``; the
            message names the architecture and the first differences.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}.")
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - every failure becomes one message that names the file
        raise CheckpointLoadError(_unreadable_checkpoint(path, err)) from None
    if isinstance(raw, Mapping) and "state_dict" in raw:
        ckpt = dict(raw)
    elif isinstance(raw, Mapping):
        ckpt = {"format": "state_dict", "arch": None, "state_dict": dict(raw), "meta": {}}
    else:
        raise CheckpointMismatchError(f"{path} holds a {type(raw).__name__}, not a state dict or checkpoint.")
    if model is not None:
        problems = _describe_mismatch(model.state_dict(), ckpt["state_dict"])
        relevant = problems if strict else [p for p in problems if "shape" in p]
        if relevant:
            saved = ckpt.get("arch")
            built = _arch_name(model)
            hint = (f"It was saved from {saved!r}, but the model is {built!r}: build a {saved!r} model to load it."
                    if saved and saved != built else
                    "Build the model with the same architecture and sizes (e.g. num_classes) as when it was saved.")
            raise CheckpointMismatchError(f"Checkpoint {path.name} does not fit the model: "
                                          + "; ".join(problems) + ". " + hint)
        model.load_state_dict(ckpt["state_dict"], strict=strict)
    if optimizer is not None and "optimizer" in ckpt:
        optimizer.load_state_dict(ckpt["optimizer"])
    return ckpt
