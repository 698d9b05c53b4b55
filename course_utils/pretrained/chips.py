"""Aligned face chips, the input of dlib's face recogniser, computed once and cached by content.

:func:`aligned_chips` runs ``face_recognizer().align`` once per image;
:class:`AlignedFaceDataset` holds the chips and labels for
:func:`~course_utils.transfer.cached_features`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import TensorDataset
from tqdm.auto import tqdm

from course_utils.data.cache import file_digest, fingerprint_files, load_or_build
from course_utils.pretrained.recognizer import (
    CHIP_PADDING,
    CHIP_SIZE,
    _resized_chip,
    _to_rgb,
    face_recognizer,
)
from course_utils.train import progress_enabled

__all__ = ["aligned_chips", "AlignedFaceDataset", "aligned_face_dataset"]


def _chip_key(images: Sequence[Any], recognizer: Any, align: bool, fallback: str) -> str:
    """Digest of the images' content (file bytes for paths, pixels for arrays) and of the alignment settings."""
    h = hashlib.sha1()
    if align:
        c = recognizer.config
        files = [recognizer.files["shape_predictor_5"]] + ([recognizer.files["cnn_detector"]] if c.detector == "cnn" else [])
        h.update(f"align|{c.detector}|up{c.upsample}|{CHIP_SIZE}|{CHIP_PADDING}|{fallback}|".encode())
        h.update("".join(file_digest(Path(f)) for f in files).encode())
    else:
        h.update(f"resize|{CHIP_SIZE}|".encode())
    if images and all(isinstance(x, (str, Path)) for x in images):
        h.update(fingerprint_files(images).encode())  # names and bytes: a changed file gives a new key
    else:
        for x in images:
            rgb = _to_rgb(x)
            h.update(str(rgb.shape).encode())
            h.update(memoryview(rgb).cast("B"))
    return h.hexdigest()[:20]


def aligned_chips(images: Sequence[Any], *, recognizer: Any = None, align: bool = True,
                  fallback: str = "image", name: str = "faces", cache: bool = True,
                  progress: bool | None = None) -> tuple[Tensor, np.ndarray]:
    """The 150 x 150 face chips dlib's network reads, one per image, computed once and cached.

    Each image is aligned with ``recognizer.align`` (dlib's detector, five
    landmarks, ``get_face_chip``; the whole image when no face is found), or
    with ``align=False`` only resized to 150 x 150 (for images that already
    are dlib chips, such as FairFace's). The chips are cached through
    :func:`course_utils.data.cache.load_or_build` under a key made of the
    images' content (file bytes for paths, pixels for arrays) and the
    alignment settings, so changing an image or a model file never reuses
    stale chips.

    Args:
        images: paths, PIL images or ``uint8`` arrays.
        recognizer: a :class:`~course_utils.pretrained.recognizer.FaceRecognizer`
            (default :func:`~course_utils.pretrained.recognizer.face_recognizer`).
        align: detect and align (default) or only resize.
        fallback: where no face is detected, ``"image"`` aligns on the whole
            image as :meth:`~course_utils.pretrained.recognizer.FaceRecognizer.align`
            does, ``"resize"`` resizes the whole image instead (right for
            images that already are face crops, e.g. FairFace's).
        name: readable prefix of the cache file.
        cache: read and write ``cache_dir("tensors")``.
        progress: a progress bar (default as ``fit``'s).

    Returns:
        ``(chips, found)``: ``uint8`` RGB ``(N, 3, 150, 150)`` (feed them to
        :class:`~course_utils.models.dlib_resnet.DlibFaceResNet` as they are: it
        normalises 0-255 input itself) and a ``bool`` array ``(N,)``, ``False``
        where no face was detected.

    Raises:
        FaceModelUnavailableError: ``align=True`` and dlib or its models are missing or disabled.
    """
    images = list(images)
    if fallback not in ("image", "resize"):
        raise ValueError(f"fallback={fallback!r}; use 'image' or 'resize'.")
    if align and recognizer is None:
        recognizer = face_recognizer()

    def build() -> dict[str, Tensor]:
        chips = torch.empty((len(images), 3, 150, 150), dtype=torch.uint8)
        found = torch.ones(len(images), dtype=torch.bool)
        show = progress_enabled() if progress is None else progress
        for i, x in enumerate(tqdm(images, desc="aligning faces", disable=not show, leave=False)):
            rgb = _to_rgb(x)
            if align:
                chip, ok = recognizer.align(rgb, return_found=True)
                if not ok and fallback == "resize":
                    chip = _resized_chip(rgb)
            else:
                chip, ok = _resized_chip(rgb), True
            chips[i] = torch.tensor(chip).permute(2, 0, 1)  # a copy: decoded arrays may be read-only
            found[i] = bool(ok)
        return {"chips": chips, "found": found}

    if not images:
        out = build()
    else:
        out = load_or_build(name, split="chips" if align else "resized", image_size=150,
                            key=_chip_key(images, recognizer, align, fallback), build=build, enabled=cache)
    return out["chips"], out["found"].numpy().astype(bool)


class AlignedFaceDataset(TensorDataset):
    """Aligned face chips and labels: ``(uint8 chip (3, 150, 150), target)`` pairs.

    Attributes:
        chips: ``uint8`` ``(N, 3, 150, 150)``.
        targets: ``int64`` ``(N,)``.
        found: ``bool`` array ``(N,)``, ``False`` where no face was detected.
    """

    def __init__(self, chips: Tensor, targets: Any, found: np.ndarray | None = None) -> None:
        targets = torch.tensor(np.asarray(targets), dtype=torch.long)  # a copy: label arrays may be read-only
        if chips.dtype != torch.uint8 or chips.ndim != 4 or targets.shape != (chips.shape[0],):
            raise ValueError(f"chips must be uint8 (N, 3, H, W) with N targets; got {chips.dtype} "
                             f"{tuple(chips.shape)} and targets {tuple(targets.shape)}.")
        super().__init__(chips, targets)
        self.chips, self.targets = chips, targets
        self.found = np.ones(len(targets), dtype=bool) if found is None else np.asarray(found, dtype=bool)

    def subset(self, indices: Any) -> AlignedFaceDataset:
        """The rows ``indices``."""
        idx = np.asarray(indices, dtype=np.int64)
        t = torch.from_numpy(idx)
        return AlignedFaceDataset(self.chips[t], self.targets[t], self.found[idx])


def aligned_face_dataset(images: Sequence[Any], targets: Any, **kwargs: Any) -> AlignedFaceDataset:
    """:func:`aligned_chips` of ``images`` with their ``targets``, as a data set for
    :func:`cached_features` (``kwargs`` go to :func:`aligned_chips`)."""
    chips, found = aligned_chips(images, **kwargs)
    return AlignedFaceDataset(chips, targets, found)
