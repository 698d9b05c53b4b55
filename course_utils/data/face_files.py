"""Shared by the real face data sets: preprocessing, decoding with the tensor cache, scanning files, CSVs.

:func:`preprocess_face` (8-bit, crop, square, resize) and :func:`read_face`
turn a file into a ``uint8`` array; :func:`decode_faces` decodes many files
in threads, skipping or raising on broken ones; :func:`face_transform` is
the train-time augmentation. The private helpers scan folders (natural
order, duplicates), read label CSVs robustly and name what is missing.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import posixpath
import re
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from course_utils.data.cache import (
    DataFormatError,
    DatasetNotFoundError,
    DataWarning,
    ImageDecodeError,
    content_digest,
    fingerprint_files,
    load_or_build,
)
from course_utils.settings import DATASET_MARKERS, data_dir

__all__ = [
    "OnError",
    "Duplicates",
    "PREPROCESS_VERSION",
    "RemoteFile",
    "preprocess_face",
    "read_face",
    "decode_faces",
    "face_transform",
]


OnError = Literal["raise", "skip"]


Duplicates = Literal["warn", "drop", "raise", "ignore"]


Crop = tuple[float, float, float, float]


_README = "data/README.md"


@dataclass(frozen=True)
class RemoteFile:
    """A file with a stable public URL and (where published) its checksum."""

    url: str
    filename: str
    sha256: str | None = None
    md5: str | None = None


def _root(root: Path | str | None) -> Path:
    return data_dir() if root is None else Path(root).expanduser()


def _marker_dir(name: str) -> str:
    """First path component of a data set's marker (its folder in the data directory)."""
    return DATASET_MARKERS[name].split("/")[0]


def _check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error={on_error!r}; use 'raise' or 'skip'.")


def _warn_skipped(what: str, skipped: Sequence[str], total: int, fix: str) -> None:
    if skipped:
        shown = ", ".join(skipped[:3]) + (" ..." if len(skipped) > 3 else "")
        warnings.warn(f"Skipped {len(skipped)} of {total} {what}: {shown}. {fix}", DataWarning, stacklevel=3)


def _crop_box(width: int, height: int, crop: Crop | None) -> tuple[int, int, int, int]:
    """Pixel box: the fractional ``crop`` (whole image if None), then its centred square."""
    left, top, right, bottom = crop or (0.0, 0.0, 1.0, 1.0)
    x0, y0, x1, y1 = left * width, top * height, right * width, bottom * height
    side = min(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))


#: Bumped whenever decoding or preprocessing changes what pixels a file gives (part of every cache key).
PREPROCESS_VERSION = 2


_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}


def _to_8bit(image: Image.Image, *, rgb: bool) -> Image.Image:
    """Any Pillow mode to 8-bit ``"RGB"`` or ``"L"``, scaling (never clipping) deeper pixels.

    16-bit grey (``I;16*``, and ``I`` holding values above 255) is divided by
    257 (65535 -> 255); float (``F``) images in ``[0, 1]`` are multiplied by
    255; transparent pixels are composited onto white.
    """
    mode = image.mode
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        if mode in _SIXTEEN_BIT or (mode == "I" and arr.size and arr.max() > 255):
            arr = arr / 257.0
        elif mode == "F" and arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        image = Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8), mode="L")
    elif mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image.convert("RGB" if rgb else "L")


def preprocess_face(image: Image.Image, *, image_size: int, rgb: bool, crop: Crop | None = None) -> np.ndarray:
    """Crop, square and resize one face image.

    Args:
        image: a PIL image of any mode (16-bit and float images are scaled
            to 8 bits, see :func:`_to_8bit`).
        image_size: side of the output square.
        rgb: three channels (``True``) or grey (``False``).
        crop: ``(left, top, right, bottom)`` as fractions of the image, taken
            before the centred square crop (``None``: whole image).

    Returns:
        ``uint8`` array ``(C, image_size, image_size)``, ``C`` 3 or 1.
    """
    image = _to_8bit(image, rgb=rgb)
    box = _crop_box(image.width, image.height, crop)
    if box != (0, 0, image.width, image.height):
        image = image.crop(box)  # crop first: resize(box=...) would filter in pixels from outside the box
    image = image.resize((image_size, image_size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    arr = np.asarray(image, dtype=np.uint8)
    return arr.transpose(2, 0, 1) if rgb else arr[None]


def read_face(path: Path | str, *, image_size: int, rgb: bool, crop: Crop | None = None) -> np.ndarray:
    """Decode and :func:`preprocess_face` one file.

    Raises:
        ImageDecodeError: the file is missing, corrupted, truncated or not an image.
    """
    try:
        with Image.open(path) as im:
            if im.format == "JPEG":  # decode at a reduced scale when that loses nothing
                fw = (crop[2] - crop[0]) if crop else 1.0
                fh = (crop[3] - crop[1]) if crop else 1.0
                need = math.ceil(image_size / max(min(fw, fh), 1e-3))
                im.draft(im.mode, (need, need))
            im.load()
            oriented = ImageOps.exif_transpose(im)  # phone photos store their rotation in EXIF
            return preprocess_face(oriented, image_size=image_size, rgb=rgb, crop=crop)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ImageDecodeError(
            f"Cannot decode the image {path}: {err}. The file is corrupted, truncated or not an image: "
            "download it again (see data/README.md), delete it, or pass on_error='skip'."
        ) from err


def decode_faces(
    paths: Sequence[Path | str],
    *,
    image_size: int,
    rgb: bool,
    crop: Crop | None = None,
    on_error: OnError = "raise",
    workers: int | None = None,
) -> tuple[torch.Tensor, np.ndarray]:
    """Decode many face images in parallel threads (PIL releases the GIL).

    Returns:
        ``images`` ``uint8`` ``(N, C, S, S)`` (zeros where decoding failed) and
        ``ok`` ``(N,)`` bool. With ``on_error="raise"`` the first failure
        raises :class:`ImageDecodeError`; with ``"skip"`` failures are only
        marked in ``ok`` (the caller warns).
    """
    _check_on_error(on_error)
    channels = 3 if rgb else 1
    out = np.zeros((len(paths), channels, image_size, image_size), dtype=np.uint8)
    ok = np.ones(len(paths), dtype=bool)

    def one(i: int) -> ImageDecodeError | None:
        try:
            out[i] = read_face(paths[i], image_size=image_size, rgb=rgb, crop=crop)
            return None
        except ImageDecodeError as err:
            return err

    n_workers = workers or min(4, os.cpu_count() or 1)
    if n_workers > 1 and len(paths) > 16:
        with ThreadPoolExecutor(n_workers) as pool:
            errors = list(pool.map(one, range(len(paths))))
    else:
        errors = [one(i) for i in range(len(paths))]
    for i, err in enumerate(errors):
        if err is not None:
            if on_error == "raise":
                raise err
            ok[i] = False
    return torch.from_numpy(out), ok


def _decode_cached(
    dataset: str,
    split: str,
    paths: Sequence[Path | str],
    *,
    root: Path,
    image_size: int,
    rgb: bool,
    crop: Crop | None,
    on_error: OnError,
    cache: bool,
) -> tuple[torch.Tensor, np.ndarray]:
    """:func:`decode_faces` through the tensor cache; skipped files warn once per call."""
    options = hashlib.sha1(repr((rgb, crop, PREPROCESS_VERSION)).encode()).hexdigest()[:8]
    key = f"{'rgb' if rgb else 'grey'}-{options}-{fingerprint_files(paths, root=root)}"

    def build() -> dict[str, torch.Tensor]:
        images, ok = decode_faces(paths, image_size=image_size, rgb=rgb, crop=crop, on_error=on_error)
        return {"images": images, "ok": torch.from_numpy(ok)}

    payload = load_or_build(
        dataset,
        split=split,
        image_size=image_size,
        key=key,
        enabled=cache,
        build=build,
    )
    ok = payload["ok"].numpy().astype(bool)
    if not ok.all():
        bad = [str(paths[i]) for i in np.flatnonzero(~ok)]
        if on_error == "raise":
            read_face(Path(bad[0]), image_size=image_size, rgb=rgb, crop=crop)  # raises with the reason
            raise ImageDecodeError(f"Cannot decode the image {bad[0]} (cached result); pass on_error='skip'.")
        _warn_skipped("images that could not be decoded", bad, len(paths),
                      "Download them again or delete them (see data/README.md).")
    return payload["images"], ok


def face_transform(
    *,
    image_size: int | None = None,
    normalize: Literal["imagenet", "half"] | tuple[Sequence[float], Sequence[float]] | None = "imagenet",
    augment: bool = False,
    channels: int = 3,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A transform for float face tensors ``(C, H, W)`` in ``[0, 1]`` (what the datasets return).

    Args:
        image_size: resize to this square side (``None``: keep).
        normalize: ``"imagenet"`` (pretrained torchvision models), ``"half"``
            (to ``[-1, 1]``), ``(mean, std)`` or ``None``.
        augment: random horizontal flip, small crop-and-resize and colour jitter
            (for training).
        channels: channel count of the images (1 or 3), for the statistics.
    """
    from torchvision.transforms import v2  # slow import (torchvision); only this transform pipeline needs it

    steps: list[Any] = []
    if augment:
        size = image_size
        steps += [v2.RandomHorizontalFlip()]
        if size is not None:
            steps += [v2.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True)]
        steps += [v2.ColorJitter(brightness=0.2, contrast=0.2)]
    elif image_size is not None:
        steps.append(v2.Resize((image_size, image_size), antialias=True))
    if normalize == "imagenet":
        mean, std = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]) if channels == 3 else ([0.449], [0.226])
        steps.append(v2.Normalize(mean, std))
    elif normalize == "half":
        steps.append(v2.Normalize([0.5] * channels, [0.5] * channels))
    elif normalize is not None:
        steps.append(v2.Normalize(list(normalize[0]), list(normalize[1])))
    return v2.Compose(steps)


#: Files that are never images and never worth a warning.
_IGNORED_NAMES = {"thumbs.db", "desktop.ini", "readme", "readme.txt", "readme.md", "license", "license.txt"}


_TEXT_SUFFIXES = {".txt", ".csv", ".md", ".json", ".yaml", ".yml", ".xml", ".html", ".pdf", ".py", ".zip", ".tgz",
                  ".gz", ".tar", ".mat", ".pkz", ".npz", ".npy", ".pt", ".pth"}


_NATURAL = re.compile(r"(\d+)")


def _natural_key(text: str) -> tuple[Any, ...]:
    """Sort ``s2`` before ``s10`` and ``img2.jpg`` before ``img10.jpg``."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in _NATURAL.split(text))


def _image_suffixes() -> set[str]:
    Image.init()
    return {ext.lower() for ext in Image.registered_extensions()}


def _is_image_file(path: Path, suffixes: set[str]) -> bool:
    """By extension when it has a known one; otherwise by asking Pillow to read the header."""
    suffix = path.suffix.lower()
    if suffix in suffixes:
        return True
    if suffix in _TEXT_SUFFIXES or path.name.lower() in _IGNORED_NAMES:
        return False
    try:
        with Image.open(path) as im:
            return bool(im.format)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False


def _find_duplicates(paths: Sequence[Path], *, root: Path, names: bool) -> tuple[dict[str, list[int]], list[list[int]]]:
    """Duplicate file names (when ``names``) and byte-identical files among ``paths``.

    Returns:
        ``{file name: [indices]}`` for names found in more than one folder, and
        groups of indices whose bytes are identical (only same-size files are hashed).
    """
    by_name: dict[str, list[int]] = {}
    if names:
        for i, p in enumerate(paths):
            by_name.setdefault(p.name.lower(), []).append(i)
        by_name = {n: ix for n, ix in by_name.items() if len(ix) > 1}
    by_size: dict[int, list[int]] = {}
    for i, p in enumerate(paths):
        by_size.setdefault(os.stat(p).st_size, []).append(i)
    same_bytes: list[list[int]] = []
    for group in by_size.values():
        if len(group) < 2:
            continue
        by_hash: dict[str, list[int]] = {}
        for i in group:
            by_hash.setdefault(content_digest(paths[i]), []).append(i)
        same_bytes += [ix for ix in by_hash.values() if len(ix) > 1]
    return by_name, sorted(same_bytes)


def _handle_duplicates(paths: Sequence[Path], *, root: Path, duplicates: Duplicates, names: bool,
                       what: str) -> np.ndarray:
    """Warn once about duplicated names and byte-identical files; return the mask of files to keep.

    With ``duplicates="drop"`` only the first file of each group (in ``paths``
    order) is kept; ``"warn"`` keeps all; ``"raise"`` raises
    :class:`DataFormatError`; ``"ignore"`` skips the check (and its hashing).
    """
    if duplicates not in ("warn", "drop", "raise", "ignore"):
        raise ValueError(f"duplicates={duplicates!r}; use 'warn', 'drop', 'raise' or 'ignore'.")
    keep = np.ones(len(paths), dtype=bool)
    if duplicates == "ignore" or len(paths) < 2:
        return keep
    by_name, same_bytes = _find_duplicates(paths, root=root, names=names)
    if not by_name and not same_bytes:
        return keep

    def rel(i: int) -> str:
        return os.path.relpath(paths[i], root)

    parts, examples = [], []
    if by_name:
        extra = sum(len(ix) - 1 for ix in by_name.values())
        parts.append(f"{len(by_name)} file name(s) appear in more than one folder ({extra} extra file(s))")
        ix = next(iter(by_name.values()))
        examples.append(" = ".join(rel(i) for i in ix[:3]))
    if same_bytes:
        extra = sum(len(ix) - 1 for ix in same_bytes)
        parts.append(f"{len(same_bytes)} group(s) of byte-identical files ({extra} extra copy/copies)")
        examples.append(" = ".join(rel(i) for i in same_bytes[0][:3]))
    for ix in [*by_name.values(), *same_bytes]:
        keep[ix[1:]] = False
    message = (f"{what} in {root}: " + "; ".join(parts) + f", e.g. {'; '.join(examples)}. Each duplicate counts "
               "an image twice (it shifts group shares and leaks between train and test splits).")
    if duplicates == "raise":
        raise DataFormatError(message + " Remove the copies, or pass duplicates='drop'.")
    if duplicates == "drop":
        warnings.warn(message + f" Dropped {int((~keep).sum())} file(s), keeping the first of each group.",
                      DataWarning, stacklevel=3)
        return keep
    warnings.warn(message + " Remove the copies, or pass duplicates='drop' to keep the first of each.",
                  DataWarning, stacklevel=3)
    return np.ones(len(paths), dtype=bool)


def _read_csv(path: Path, *, what: str) -> pd.DataFrame:
    """Read a CSV as strings, naming the file in every encoding or emptiness error.

    UTF-8 (with or without a byte-order mark) and UTF-16 with a byte-order
    mark (what spreadsheets write as "Unicode text") are read; anything else
    raises :class:`DataFormatError` with the fix.
    """
    raw = path.read_bytes()
    if not raw.strip():
        raise DataFormatError(f"{path} is empty (0 rows, no header). {what}")
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise DataFormatError(
            f"{path} is not UTF-8 text ({err.reason} at byte {err.start}). Save it again as 'CSV UTF-8' "
            f"(in a spreadsheet: Save As > CSV UTF-8). {what}"
        ) from None
    sep = "\t" if encoding == "utf-16" and "\t" in text.splitlines()[0] and "," not in text.splitlines()[0] else ","
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True, sep=sep)
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{path} has no header and no rows. {what}") from None
    except pd.errors.ParserError as err:
        raise DataFormatError(f"{path} is not a well-formed CSV file: {err}. {what}") from None
    table.columns = [str(c).strip() for c in table.columns]
    return table


def _normalise_relpath(value: str) -> str:
    """``val/./1.jpg``, ``val//1.jpg`` and ``val\\\\1.jpg`` all become ``val/1.jpg`` (one image, one key)."""
    value = value.strip().replace("\\", "/")
    if not value:
        return value
    return posixpath.normpath(value)


def _unsafe_relpath(value: str) -> bool:
    return not value or value in (".", "..") or value.startswith(("/", "../"))


def _missing(name: str, folder: Path, how: str) -> DatasetNotFoundError:
    hint = ""
    if not folder.parent.exists():
        hint = f" (the data directory {folder.parent} itself does not exist: create it or set COURSE_DATA_DIR)"
    return DatasetNotFoundError(f"{name} not found at {folder}{hint}. {how} See {_README}.")


def _resize_uint8(images: torch.Tensor, image_size: int) -> torch.Tensor:
    if images.shape[-1] == image_size and images.shape[-2] == image_size:
        return images
    x = F.interpolate(images.float(), size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def _describe_folder(folder: Path, limit: int = 8) -> str:
    """A short listing of what ``folder`` holds, for error messages."""
    if not folder.exists():
        return f"{folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    entries = sorted(folder.iterdir(), key=lambda p: _natural_key(p.name))
    if not entries:
        return f"{folder} is empty"
    shown = [p.name + ("/" if p.is_dir() else "") for p in entries[:limit]]
    more = f" ... ({len(entries)} entries)" if len(entries) > limit else ""
    return f"{folder} holds " + ", ".join(shown) + more
