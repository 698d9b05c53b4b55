"""Real face data sets in their official layouts, plus fallbacks to SynthFaces.

Every loader reads from the data directory (``COURSE_DATA_DIR``, see
``data/README.md`` for the layouts) and returns a
:class:`~course_utils.data.cache.TensorImageDataset` whose images are decoded
once, preprocessed (crop, square, resize) and kept in the tensor cache.

=================  =====================================  ==================
data set           layout under the data directory         labels
=================  =====================================  ==================
ORL / AT&T         ``orl_faces/s1..s40/1..10.pgm``          identity
(Olivetti)         or scikit-learn's ``olivetti`` cache     identity
LFW                ``lfw/<name>/<name>_0001.jpg``,          identity, pairs
                   ``lfw/pairs.txt`` (+ DevTrain/DevTest)
FairFace           ``fairface/{train,val}/*.jpg``,          race, gender, age
                   ``fairface/fairface_label_{train,val}.csv``
UTKFace            ``utkface/**/age_gender_race_date.jpg``  age, gender, race
=================  =====================================  ==================

Fallbacks for notebooks: :func:`load_face_identities` (ORL or LFW, else
SynthFaces) and :func:`load_face_attributes` (FairFace or UTKFace, else
SynthFaces); both print which real data set was replaced and how to get it.
"""

from __future__ import annotations

import hashlib
import math
import os
import posixpath
import re
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

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
    TensorImageDataset,
    content_digest,
    download_file,
    extract_archive,
    file_digest,
    fingerprint_files,
    load_or_build,
)
from course_utils.data.sampling import PairDataset, balanced_indices
from course_utils.data.synthfaces import SynthFacesConfig, make_synthfaces
from course_utils.settings import DATASET_MARKERS, data_dir

__all__ = [
    "OnError",
    "Duplicates",
    "PREPROCESS_VERSION",
    "RemoteFile",
    "FAIRFACE_RACES",
    "FAIRFACE_GENDERS",
    "FAIRFACE_AGES",
    "FAIRFACE_COLUMNS",
    "UTKFACE_RACES",
    "UTKFACE_GENDERS",
    "LFW_CROP",
    "preprocess_face",
    "read_face",
    "decode_faces",
    "face_transform",
    "load_face_folder",
    "load_orl_faces",
    "load_lfw_people",
    "load_lfw_pairs",
    "parse_lfw_pairs",
    "load_fairface_labels",
    "load_fairface",
    "parse_utkface_name",
    "load_utkface",
    "download_orl_faces",
    "download_lfw",
    "load_face_identities",
    "load_face_attributes",
]

OnError = Literal["raise", "skip"]
Duplicates = Literal["warn", "drop", "raise", "ignore"]
Crop = tuple[float, float, float, float]

FAIRFACE_RACES: tuple[str, ...] = (
    "White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern",
)
FAIRFACE_GENDERS: tuple[str, ...] = ("Male", "Female")
FAIRFACE_AGES: tuple[str, ...] = (
    "0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70",
)
FAIRFACE_COLUMNS: tuple[str, ...] = ("file", "age", "gender", "race", "service_test")
UTKFACE_RACES: tuple[str, ...] = ("White", "Black", "Asian", "Indian", "Others")
UTKFACE_GENDERS: tuple[str, ...] = ("Male", "Female")
#: Square crop around the face of a 250 x 250 LFW image, as fractions (left, top, right, bottom).
LFW_CROP: Crop = (0.28, 0.308, 0.72, 0.748)
_README = "data/README.md"


@dataclass(frozen=True)
class RemoteFile:
    """A file with a stable public URL and (where published) its checksum."""

    url: str
    filename: str
    sha256: str | None = None
    md5: str | None = None


# Figshare mirrors used by scikit-learn (same checksums as sklearn.datasets._lfw).
LFW_ARCHIVES: dict[bool, RemoteFile] = {
    True: RemoteFile(
        "https://ndownloader.figshare.com/files/5976015", "lfw-funneled.tgz",
        sha256="b47c8422c8cded889dc5a13418c4bc2abbda121092b3533a83306f90d900100a",
    ),
    False: RemoteFile(
        "https://ndownloader.figshare.com/files/5976018", "lfw.tgz",
        sha256="055f7d9c632d7370e6fb4afc7468d40f970c34a80d4c6f50ffec63f5a8d536c0",
    ),
}
LFW_PAIR_FILES: dict[str, RemoteFile] = {
    "train": RemoteFile(
        "https://ndownloader.figshare.com/files/5976012", "pairsDevTrain.txt",
        sha256="1d454dada7dfeca0e7eab6f65dc4e97a6312d44cf142207be28d688be92aabfa",
    ),
    "test": RemoteFile(
        "https://ndownloader.figshare.com/files/5976009", "pairsDevTest.txt",
        sha256="7cb06600ea8b2814ac26e946201cdb304296262aad67d046a16a7ec85d0ff87c",
    ),
    "10_folds": RemoteFile(
        "https://ndownloader.figshare.com/files/5976006", "pairs.txt",
        sha256="ea42330c62c92989f9d7c03237ed5d591365e89b3e649747777b70e692dc1592",
    ),
}
# The AT&T archive publishes no checksum: the download is verified by its
# structure instead (40 folders s1..s40 of 10 decodable 92 x 112 PGM images).
#: The original Olivetti faces (scikit-learn's figshare mirror and checksum), 400 x 4096 in a MATLAB file.
OLIVETTI_MAT = RemoteFile(
    "https://ndownloader.figshare.com/files/5976027", "olivettifaces.mat",
    sha256="b612fb967f2dc77c9c62d3e1266e0c73d5fca46a4b8906c18e454d41af987794",
)
ORL_ARCHIVE = RemoteFile("https://www.cl.cam.ac.uk/Research/DTG/attarchive/pub/data/att_faces.zip", "att_faces.zip")


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


# ------------------------------------------------------------------- preprocessing
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
    from torchvision.transforms import v2

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


# ------------------------------------------------------------------ files on disk
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
    import io

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


# ------------------------------------------------------------ one folder per person
def _scan_face_folder(folder: Path) -> tuple[list[Path], list[int], list[str], list[str]]:
    """``(paths, person index, person names, ignored files)`` of ``folder/<person>/<image>``."""
    suffixes = _image_suffixes()
    people = sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith((".", "_"))),
                    key=lambda d: _natural_key(d.name))
    paths: list[Path] = []
    person: list[int] = []
    names: list[str] = []
    ignored: list[str] = []
    loose = [f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")]
    ignored += [f.name for f in loose if _is_image_file(f, suffixes)]  # images outside any person folder
    for d in people:
        files = sorted((f for f in d.rglob("*") if f.is_file() and not any(
            part.startswith(".") for part in f.relative_to(d).parts)), key=lambda f: _natural_key(str(f.relative_to(d))))
        images = []
        for f in files:
            if _is_image_file(f, suffixes):
                images.append(f)
            elif f.name.lower() not in _IGNORED_NAMES:
                ignored.append(str(f.relative_to(folder)))
        if not images:
            continue
        paths += images
        person += [len(names)] * len(images)
        names.append(d.name)
    return paths, person, names, ignored


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


def load_face_folder(
    root: Path | str,
    *,
    image_size: int = 64,
    rgb: bool = False,
    min_images_per_person: int = 1,
    attributes_csv: Path | str | None = None,
    group_columns: Sequence[str] | None = None,
    crop: Crop | None = None,
    on_error: OnError = "raise",
    duplicates: Duplicates = "warn",
    name: str | None = None,
    transform: Callable[[torch.Tensor], Any] | None = None,
    cache: bool = True,
) -> TensorImageDataset:
    """Your own photos, one folder per person: ``root/<person>/<any image>``.

    Every file Pillow can read counts, with or without an extension (JPEG,
    PNG, PGM, TIFF, WebP, HEIC only with a plugin ...); EXIF rotation is
    applied; 16-bit images are scaled to 8 bits. Folder names become the
    class names (natural order: ``s2`` before ``s10``). Images in
    sub-folders of a person's folder belong to that person.

    Args:
        root: the folder that holds one folder per person.
        image_size: side of the square output (centred square crop, then resize).
        rgb: colour (``True``) or grey.
        min_images_per_person: leave out people with fewer images (with a warning).
        attributes_csv: optional CSV with a ``file`` column (paths relative to
            ``root``, e.g. ``alice/1.jpg``) and any other per-image columns
            (``age``, ``group`` ...), merged into ``attributes``.
        group_columns: which CSV columns are demographic groups (default: all
            columns of the CSV except ``file``).
        crop: fractional crop before the centred square.
        on_error: ``"skip"`` drops undecodable images with one counted warning.
        duplicates: byte-identical files are reported in one warning
            (``"warn"``), dropped (``"drop"``, first kept), refused
            (``"raise"``) or not looked for (``"ignore"``).
        name: the data set's name (default: the folder's name).
        transform, cache: as for :func:`load_orl_faces`.

    Returns:
        The same kind of data set as :func:`load_orl_faces`: images ``(N, C, S, S)``
        sorted by person, ``targets`` person index, ``classes`` folder names,
        ``attributes`` ``name``, ``file`` (relative to ``root``) plus the CSV's columns.

    Raises:
        DatasetNotFoundError: ``root`` does not exist.
        DataFormatError: no person folder with images (the message lists what
            ``root`` holds), or an attributes CSV that does not fit.
    """
    _check_on_error(on_error)
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"No face folder at {folder} ({_describe_folder(folder)}). Expected one folder per person, "
            f"e.g. {folder}/alice/1.jpg, {folder}/bob/photo.png."
        )
    paths, person, names, ignored = _scan_face_folder(folder)
    if ignored:
        _warn_skipped("files that are not images in a person folder (or images directly in the root)", ignored,
                      len(paths) + len(ignored), "Move images into a folder named after the person.")
    if not paths:
        raise DataFormatError(
            f"{folder} has no person folders with images: {_describe_folder(folder)}. Expected one folder per "
            f"person with image files inside, e.g. {folder}/alice/1.jpg (any format Pillow reads)."
        )
    person_arr = np.asarray(person, dtype=np.int64)
    counts = np.bincount(person_arr, minlength=len(names))
    few = [f"{names[k]} ({counts[k]})" for k in np.flatnonzero(counts < min_images_per_person)]
    if few:
        _warn_skipped(f"people with fewer than {min_images_per_person} images", few, len(names), "They are left out.")
        keep_people = counts >= min_images_per_person
        mask = keep_people[person_arr]
        if not mask.any():
            raise DataFormatError(f"No person in {folder} has >= {min_images_per_person} images; lower "
                                  "min_images_per_person.")
        paths = [p for p, m in zip(paths, mask) if m]
        remap = np.cumsum(keep_people) - 1
        person_arr = remap[person_arr[mask]]
        names = [n for n, k in zip(names, keep_people) if k]
    keep = _handle_duplicates(paths, root=folder, duplicates=duplicates, names=False, what="Face folder")
    if not keep.all():
        paths = [p for p, k in zip(paths, keep) if k]
        person_arr = person_arr[keep]
    files = [p.relative_to(folder).as_posix() for p in paths]
    attributes = pd.DataFrame({"name": [names[k] for k in person_arr], "file": files})
    groups: tuple[str, ...] = ()
    if attributes_csv is not None:
        attributes, groups = _merge_attributes(attributes, Path(attributes_csv), folder, group_columns)
    images, ok = _decode_cached(f"folder-{folder.name}", hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:8],
                                paths, root=folder, image_size=image_size, rgb=rgb, crop=crop, on_error=on_error,
                                cache=cache)
    ds = TensorImageDataset(images, person_arr, classes=names, attributes=attributes, group_columns=groups,
                            name=name or folder.name, target_name="identity", transform=transform)
    return ds if ok.all() else ds.subset(np.flatnonzero(ok))


def _merge_attributes(attributes: pd.DataFrame, csv: Path, folder: Path,
                      group_columns: Sequence[str] | None) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Left-join a per-image CSV (``file`` + columns) onto ``attributes`` by normalised path."""
    fix = "The attributes CSV needs a 'file' column with paths relative to the face folder (alice/1.jpg)."
    if not csv.is_file():
        raise DatasetNotFoundError(f"The attributes CSV {csv} does not exist. {fix}")
    table = _read_csv(csv, what=fix)
    if "file" not in table.columns:
        raise DataFormatError(f"{csv} has no 'file' column; it has {list(table.columns)}. {fix}")
    keys = table["file"].map(_normalise_relpath)
    unsafe = [f"row {i + 1}: {table['file'].iat[i]!r}" for i in np.flatnonzero(keys.map(_unsafe_relpath).to_numpy())]
    dup = keys.duplicated(keep=False).to_numpy()
    if unsafe or dup.any():
        listed = unsafe + [f"row {i + 1}: {table['file'].iat[i]!r} (= {keys.iat[i]})" for i in np.flatnonzero(dup)]
        raise DataFormatError(f"{csv}: {len(unsafe)} path(s) outside the folder and {int(dup.sum())} row(s) naming "
                              f"an image more than once (one image, one label): " + "; ".join(listed[:5]) + f". {fix}")
    extra = [c for c in table.columns if c != "file" and c not in ("name",)]
    table = table.assign(file=keys).set_index("file")[extra]
    unmatched = sorted(set(table.index) - set(attributes["file"]))
    if unmatched:
        _warn_skipped(f"rows of {csv.name} that name no image in {folder}", unmatched, len(table),
                      "Check the paths (relative to the face folder).")
    merged = attributes.join(table, on="file")
    unlabelled = merged[extra].isna().all(axis=1) if extra else pd.Series(False, index=merged.index)
    if unlabelled.any():
        _warn_skipped(f"images without a row in {csv.name}", list(merged.loc[unlabelled, "file"]), len(merged),
                      "Their attributes are missing (NA).")
    groups = tuple(extra if group_columns is None else group_columns)
    missing = [c for c in groups if c not in merged.columns]
    if missing:
        raise ValueError(f"group_columns {missing} are not columns of {csv}; it has {extra}.")
    return merged, groups


# ----------------------------------------------------------------------------- ORL
def _missing(name: str, folder: Path, how: str) -> DatasetNotFoundError:
    hint = ""
    if not folder.parent.exists():
        hint = f" (the data directory {folder.parent} itself does not exist: create it or set COURSE_DATA_DIR)"
    return DatasetNotFoundError(f"{name} not found at {folder}{hint}. {how} See {_README}.")


ORL_SUBJECTS, ORL_IMAGES_PER_SUBJECT = 40, 10


def _scan_orl(folder: Path) -> tuple[list[Path], np.ndarray, list[str], np.ndarray]:
    """Paths, subject index, subject names and image numbers of ``folder/sN/K.pgm``.

    Case is ignored (``3.PGM`` counts). Two folders or files for the same
    number (``s01`` next to ``s1``) raise; anything else unexpected (not 40
    subjects x 10 images, other folders or files) is named in one warning.
    """
    if not folder.is_dir():
        raise _missing(
            "The ORL/AT&T faces", folder,
            "Put the folders s1 ... s40 (each with 1.pgm ... 10.pgm) there, call "
            "download_orl_faces(), or use load_orl_faces(source='sklearn', download=True).",
        )
    by_number: dict[int, list[Path]] = {}
    odd: list[str] = []
    for d in sorted(folder.iterdir(), key=lambda p: _natural_key(p.name)):
        m = re.fullmatch(r"s(\d+)", d.name, flags=re.IGNORECASE) if d.is_dir() else None
        if m:
            by_number.setdefault(int(m.group(1)), []).append(d)
        elif not d.name.startswith(".") and d.name.lower() not in _IGNORED_NAMES:
            odd.append(d.name + ("/" if d.is_dir() else ""))
    clash = [" and ".join(p.name for p in ds) for ds in by_number.values() if len(ds) > 1]
    if clash:
        raise DataFormatError(f"{folder} has two folders for the same subject: {'; '.join(clash)}. Keep one of each "
                              "(the official layout is s1 ... s40).")
    if not by_number:
        raise DataFormatError(f"{folder} has no subject folders s1 ... s40 ({_describe_folder(folder)}). Unpack the "
                              f"ORL archive so that {folder}/s1/1.pgm exists, or use load_face_folder() for "
                              "other layouts.")
    subjects = sorted((n, ds[0]) for n, ds in by_number.items())
    paths, subject_idx, numbers, counts = [], [], [], {}
    for k, (_, d) in enumerate(subjects):
        images: dict[int, list[Path]] = {}
        for f in d.iterdir():
            m = re.fullmatch(r"(\d+)\.pgm", f.name, flags=re.IGNORECASE) if f.is_file() else None
            if m:
                images.setdefault(int(m.group(1)), []).append(f)
            elif not f.name.startswith(".") and f.name.lower() not in _IGNORED_NAMES:
                odd.append(f"{d.name}/{f.name}")
        twice = [" and ".join(sorted(p.name for p in fs)) for fs in images.values() if len(fs) > 1]
        if twice:
            raise DataFormatError(f"{d} has two files for the same image: {'; '.join(twice)}. Keep one of each.")
        if not images:
            raise DataFormatError(f"The ORL subject folder {d} is empty: expected 1.pgm ... 10.pgm. Restore it from "
                                  "the archive or delete it.")
        counts[d.name] = len(images)
        for number in sorted(images):
            paths.append(images[number][0])
            subject_idx.append(k)
            numbers.append(number)
    _warn_orl_layout(folder, [n for n, _ in subjects], counts, odd)
    return paths, np.asarray(subject_idx), [d.name for _, d in subjects], np.asarray(numbers)


def _warn_orl_layout(folder: Path, numbers: list[int], counts: dict[str, int], odd: list[str]) -> None:
    """One warning naming every deviation from s1 ... s40 x 1.pgm ... 10.pgm."""
    expected = set(range(1, ORL_SUBJECTS + 1))
    problems = []
    missing = sorted(expected - set(numbers))
    extra = sorted(set(numbers) - expected)
    if missing:
        problems.append(f"missing subject folder(s) {', '.join(f's{n}' for n in missing[:10])}"
                        + (" ..." if len(missing) > 10 else ""))
    if extra:
        problems.append(f"extra subject folder(s) {', '.join(f's{n}' for n in extra[:10])}")
    uneven = [f"{name} ({c})" for name, c in counts.items() if c != ORL_IMAGES_PER_SUBJECT]
    if uneven:
        problems.append(f"folders without {ORL_IMAGES_PER_SUBJECT} images: {', '.join(uneven[:10])}"
                        + (" ..." if len(uneven) > 10 else ""))
    if odd:
        problems.append(f"ignored entries: {', '.join(odd[:10])}" + (" ..." if len(odd) > 10 else ""))
    if problems:
        warnings.warn(
            f"{folder} is not the official ORL layout ({ORL_SUBJECTS} folders s1 ... s{ORL_SUBJECTS} of "
            f"{ORL_IMAGES_PER_SUBJECT} images 1.pgm ... {ORL_IMAGES_PER_SUBJECT}.pgm): found {len(numbers)} "
            f"subject(s) and {sum(counts.values())} image(s); " + "; ".join(problems) + ". Loaded what is there; "
            "restore the archive (download_orl_faces()) or use load_face_folder() for your own layout.",
            DataWarning, stacklevel=4,
        )


def _resize_uint8(images: torch.Tensor, image_size: int) -> torch.Tensor:
    if images.shape[-1] == image_size and images.shape[-2] == image_size:
        return images
    x = F.interpolate(images.float(), size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def _olivetti(home: Path, *, download: bool) -> tuple[torch.Tensor, np.ndarray] | None:
    """The 400 Olivetti faces from the original ``olivettifaces.mat`` (sha256-checked), never from a pickle.

    scikit-learn's ``fetch_olivetti_faces`` converts the ``.mat`` into
    ``olivetti.pkz``, a joblib pickle it writes itself (no published
    checksum), and unpickling runs code: a crafted file in a shared data
    directory could run anything. So the ``.mat`` is kept and read with
    ``scipy.io.loadmat``, and a ``.pkz`` is never opened.
    """
    from scipy.io import loadmat

    mat = home / OLIVETTI_MAT.filename
    if not mat.is_file():
        if not download:
            return None
        download_file(OLIVETTI_MAT.url, mat, sha256=OLIVETTI_MAT.sha256)
    elif OLIVETTI_MAT.sha256 and file_digest(mat) != OLIVETTI_MAT.sha256:
        raise DataFormatError(f"{mat} does not have the published sha256 {OLIVETTI_MAT.sha256}; delete it and call "
                              "load_orl_faces(source='sklearn', download=True).")
    try:
        faces = np.asarray(loadmat(str(mat))["faces"], dtype=np.float32).T
    except (KeyError, ValueError, OSError) as err:
        raise DataFormatError(f"{mat} is not the Olivetti faces file ({err}); delete it and download again.") from err
    faces = faces - faces.min()  # scikit-learn's scaling, then (N, 64, 64) in row-major order
    faces /= max(float(faces.max()), 1e-12)
    faces = faces.reshape(-1, 64, 64).transpose(0, 2, 1)
    images = torch.from_numpy(np.round(faces * 255.0).clip(0, 255).astype(np.uint8))[:, None]
    return images, np.arange(len(faces), dtype=np.int64) // 10


def load_orl_faces(
    root: Path | str | None = None,
    *,
    image_size: int = 64,
    rgb: bool = False,
    source: Literal["auto", "folder", "sklearn"] = "auto",
    download: bool = False,
    crop: Crop | None = None,
    duplicates: Duplicates = "warn",
    transform: Callable[[torch.Tensor], Any] | None = None,
    cache: bool = True,
) -> TensorImageDataset:
    """The ORL / AT&T Database of Faces: 40 people x 10 images (identity labels).

    Args:
        root: data directory (default ``data_dir()``); the folder layout is
            ``root/orl_faces/s1..s40/1..10.pgm`` (92 x 112 grey PGM).
        image_size: side of the square output images.
        rgb: repeat the grey channel three times (for ImageNet models).
        source: ``"folder"``, ``"sklearn"`` (the original
            ``root/scikit_learn_data/olivettifaces.mat`` that scikit-learn
            downloads, read with ``scipy.io.loadmat``; 64 x 64 crops of the
            same faces; its ``olivetti.pkz`` pickle is never read) or
            ``"auto"`` (folder if present, else the ``.mat``).
        download: let the sklearn source download the ``.mat`` (figshare, sha256-checked).
        crop: fractional crop before the centred square (folder source only).
        duplicates: byte-identical images are named in one warning
            (``"warn"``), dropped (``"drop"``), refused (``"raise"``) or not
            looked for (``"ignore"``); the same option in every loader.
            A layout other than 40 x 10 is named in one warning too.
        transform: applied to each float image on indexing.
        cache: use the decoded-tensor cache.

    Returns:
        Images ``(N, C, S, S)``, ``targets`` subject index, ``classes``
        ``["s1", ...]``, ``attributes`` columns ``subject``, ``image``.
    """
    root = _root(root)
    folder = root / _marker_dir("orl_faces")
    if source not in ("auto", "folder", "sklearn"):
        raise ValueError(f"source={source!r}; use 'auto', 'folder' or 'sklearn'.")
    use_folder = source == "folder" or (source == "auto" and (root / DATASET_MARKERS["orl_faces"]).exists())
    if use_folder:
        paths, subject, names, numbers = _scan_orl(folder)
        keep = _handle_duplicates(paths, root=folder, duplicates=duplicates, names=False, what="ORL faces")
        if not keep.all():
            paths, subject, numbers = [p for p, k in zip(paths, keep) if k], subject[keep], numbers[keep]
        images, _ = _decode_cached("orl_faces", "all", paths, root=folder, image_size=image_size, rgb=rgb,
                                   crop=crop, on_error="raise", cache=cache)
        attributes = pd.DataFrame({"subject": [names[s] for s in subject], "image": numbers})
    else:
        home = root / "scikit_learn_data"
        got = _olivetti(home, download=download)
        if got is None:
            raise _missing(
                "The ORL/AT&T faces", folder,
                f"Neither the folder layout nor the Olivetti file {home / OLIVETTI_MAT.filename} is there. Put "
                "s1 ... s40 in the folder, call download_orl_faces(), or load_orl_faces(source='sklearn', "
                "download=True)." + (" (scikit-learn's olivetti.pkz is never read: unpickling it could run code.)"
                                     if (home / "olivetti.pkz").is_file() else ""),
            )
        images, subject = got
        images = _resize_uint8(images, image_size)
        if rgb:
            images = images.expand(-1, 3, -1, -1).contiguous()
        names = [f"s{i + 1}" for i in range(int(subject.max()) + 1)]
        numbers = np.zeros(len(subject), dtype=np.int64)
        for s in np.unique(subject):  # image number within each subject, in sklearn's order
            numbers[subject == s] = np.arange(1, int((subject == s).sum()) + 1)
        attributes = pd.DataFrame({"subject": [names[s] for s in subject], "image": numbers})
    if rgb and images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1).contiguous()
    return TensorImageDataset(images, subject, classes=names, attributes=attributes, name="orl_faces",
                              target_name="identity", transform=transform)


def download_orl_faces(root: Path | str | None = None, *, fetch: Callable[[str, BinaryIO], None] | None = None,
                       remote: RemoteFile = ORL_ARCHIVE) -> Path:
    """Download the AT&T archive and unpack it to ``root/orl_faces`` (atomically).

    The archive has no published checksum, so the unpacked tree is verified
    instead (folders ``s1..s40``, 10 decodable PGM images each) before it is
    renamed into place. The archive is deleted afterwards.
    """
    root = _root(root)
    dest = root / _marker_dir("orl_faces")
    if (root / DATASET_MARKERS["orl_faces"]).exists():
        return dest
    archive = download_file(remote.url, root / remote.filename, sha256=remote.sha256, md5=remote.md5, fetch=fetch)

    def find(tmp: Path) -> Path:
        for candidate in [tmp, *sorted(p.parent for p in tmp.rglob("s1"))]:
            if (candidate / "s1").is_dir():
                return candidate
        raise DataFormatError(f"{remote.filename} holds no folder s1: not the ORL archive.")

    def verify(folder: Path) -> None:
        for s in range(1, 41):
            files = sorted((folder / f"s{s}").glob("*.pgm"))
            if len(files) != 10:
                raise DataFormatError(f"{remote.filename}: s{s} has {len(files)} PGM images, expected 10.")
            read_face(files[0], image_size=8, rgb=False)

    try:
        return extract_archive(archive, dest, find=find, verify=verify)
    finally:
        archive.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- LFW
def _lfw_folder(root: Path) -> Path:
    return root / _marker_dir("lfw")


def _scan_lfw(folder: Path) -> dict[str, list[Path]]:
    if not folder.is_dir():
        raise _missing("LFW", folder, "Call download_lfw(), or unpack lfw.tgz / lfw-funneled.tgz there "
                       "(one folder per person), or pass source='sklearn', download=True.")
    people = {}
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(f for f in d.iterdir() if f.suffix.lower() == ".jpg")
        if files:
            people[d.name] = files
    if not people:
        raise DataFormatError(f"{folder} holds no person folders with .jpg images (expected {folder}/<Name>/<Name>_0001.jpg).")
    return people


def load_lfw_people(
    root: Path | str | None = None,
    *,
    image_size: int = 64,
    rgb: bool = False,
    min_faces_per_person: int = 20,
    max_people: int | None = None,
    source: Literal["auto", "folder", "sklearn"] = "auto",
    download: bool = False,
    funneled: bool = True,
    crop: Crop | None = LFW_CROP,
    on_error: OnError = "raise",
    duplicates: Duplicates = "warn",
    transform: Callable[[torch.Tensor], Any] | None = None,
    cache: bool = True,
) -> TensorImageDataset:
    """Labeled Faces in the Wild, people with at least ``min_faces_per_person`` images.

    Args:
        root: data directory; folder layout ``root/lfw/<Name>/<Name>_0001.jpg``.
        image_size: side of the square output.
        rgb: colour (``True``) or grey.
        min_faces_per_person: keep people with at least this many images.
        max_people: keep only the people with the most images (ties by name).
        source: ``"folder"``, ``"sklearn"`` (the image folder scikit-learn
            extracted into ``root/scikit_learn_data/lfw_home``; its joblib
            cache is never unpickled) or ``"auto"`` (``root/lfw`` if present,
            else scikit-learn's folder).
        download: download when missing (folder: :func:`download_lfw`).
        funneled: the funneled (aligned) variant when downloading / via sklearn.
        crop: fractional face crop of the 250 x 250 images (:data:`LFW_CROP`).
        on_error: ``"skip"`` drops undecodable images with one warning.
        duplicates, transform, cache: as for :func:`load_orl_faces`.

    Returns:
        Images ``(N, C, S, S)`` sorted by person, ``targets`` person index,
        ``classes`` folder names (``George_W_Bush``), ``attributes`` ``name``, ``file``.
    """
    root = _root(root)
    folder, _ = _lfw_location(root, source=source, funneled=funneled, download=download)
    people = _scan_lfw(folder)
    kept = {n: f for n, f in people.items() if len(f) >= min_faces_per_person}
    if max_people is not None:
        kept = dict(sorted(sorted(kept.items()), key=lambda kv: -len(kv[1]))[:max_people])
    if not kept:
        raise ValueError(f"No person in {folder} has >= {min_faces_per_person} images; lower min_faces_per_person.")
    names = sorted(kept)
    paths = [f for n in names for f in kept[n]]
    targets = np.concatenate([np.full(len(kept[n]), i) for i, n in enumerate(names)])
    keep = _handle_duplicates(paths, root=folder, duplicates=duplicates, names=False, what="LFW")
    if not keep.all():
        paths, targets = [p for p, k in zip(paths, keep) if k], targets[keep]
    split = f"people-min{min_faces_per_person}-max{max_people}"
    images, ok = _decode_cached("lfw", split, paths, root=folder, image_size=image_size, rgb=rgb, crop=crop,
                                on_error=on_error, cache=cache)
    attributes = pd.DataFrame({"name": [names[t] for t in targets], "file": [p.name for p in paths]})
    ds = TensorImageDataset(images, targets, classes=names, attributes=attributes, name="lfw",
                            target_name="identity", transform=transform)
    return ds if ok.all() else ds.subset(np.flatnonzero(ok))


def _lfw_location(root: Path, *, source: str, funneled: bool, download: bool) -> tuple[Path, Path]:
    """``(image folder, folder of the pairs files)`` for ``source``; downloads with :func:`download_lfw` if asked.

    ``"sklearn"`` reads the folders scikit-learn extracted into
    ``root/scikit_learn_data/lfw_home`` (``lfw_funneled/`` or ``lfw/`` and the
    pairs files), never its joblib cache: unpickling that could run code.
    """
    if source not in ("auto", "folder", "sklearn"):
        raise ValueError(f"source={source!r}; use 'auto', 'folder' or 'sklearn'.")
    own = _lfw_folder(root)
    home = root / "scikit_learn_data" / "lfw_home"
    sk = home / ("lfw_funneled" if funneled else "lfw")
    if source in ("auto", "sklearn") and not (source == "auto" and own.is_dir()) and sk.is_dir():
        return sk, home
    if source == "sklearn" and not download:
        raise _missing("scikit-learn's LFW folder", sk, "Call load_lfw_people(download=True) or download_lfw() "
                       "(scikit-learn's joblib cache of LFW is never read: unpickling it could run code).")
    if download and not own.is_dir():
        download_lfw(root, funneled=funneled)
    if not own.is_dir():
        raise _missing("LFW", own, "Call download_lfw() (or load_lfw_people(download=True)).")
    return own, own


def parse_lfw_pairs(path: Path | str) -> pd.DataFrame:
    """Parse an LFW pairs file (``pairs.txt``, ``pairsDevTrain.txt``, ``pairsDevTest.txt``).

    Format: a header ``<folds>\\t<n>`` (or just ``<n>``), then per fold ``n``
    matched lines ``name\\ti\\tj`` and ``n`` mismatched lines ``name1\\ti\\tname2\\tj``.

    Returns:
        DataFrame with ``name1, image1, name2, image2`` (1-based image
        numbers), ``same`` (bool) and ``fold``.

    Raises:
        DataFormatError: naming the line that does not fit.
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    if not lines:
        raise DataFormatError(f"{path} is empty; download the pairs file again (see {_README}).")
    header = lines[0].split()
    try:
        folds, per_fold = (1, int(header[0])) if len(header) == 1 else (int(header[0]), int(header[1]))
        if len(header) > 2:
            raise ValueError
    except ValueError:
        raise DataFormatError(f"{path}, line 1: header {lines[0]!r} is not '<folds> <pairs per fold>' or '<pairs>'.") from None
    rows = []
    body = [(i + 2, ln) for i, ln in enumerate(lines[1:]) if ln.strip()]
    expected = folds * 2 * per_fold
    if len(body) != expected:
        raise DataFormatError(f"{path}: the header announces {expected} pairs ({folds} folds x 2 x {per_fold}), but there are {len(body)} pair lines.")
    for k, (lineno, ln) in enumerate(body):
        parts = ln.split("\t") if "\t" in ln else ln.split()
        matched = (k // per_fold) % 2 == 0
        try:
            if len(parts) == 3 and matched:
                row = (parts[0], int(parts[1]), parts[0], int(parts[2]), True)
            elif len(parts) == 4 and not matched:
                row = (parts[0], int(parts[1]), parts[2], int(parts[3]), False)
            else:
                raise ValueError
        except ValueError:
            kind = "matched 'name i j'" if matched else "mismatched 'name1 i name2 j'"
            raise DataFormatError(f"{path}, line {lineno}: {ln!r} is not a {kind} pair.") from None
        rows.append((*row, k // (2 * per_fold)))
    return pd.DataFrame(rows, columns=["name1", "image1", "name2", "image2", "same", "fold"])


def load_lfw_pairs(
    subset: Literal["train", "test", "10_folds"] = "test",
    root: Path | str | None = None,
    *,
    image_size: int = 64,
    rgb: bool = False,
    source: Literal["auto", "folder", "sklearn"] = "auto",
    download: bool = False,
    funneled: bool = True,
    crop: Crop | None = LFW_CROP,
    transform: Callable[[torch.Tensor], Any] | None = None,
    cache: bool = True,
) -> PairDataset:
    """The LFW verification protocol as a :class:`~course_utils.data.sampling.PairDataset`.

    Args:
        subset: ``"train"`` (``pairsDevTrain.txt``), ``"test"``
            (``pairsDevTest.txt``) or ``"10_folds"`` (``pairs.txt``), read from
            ``root/lfw/``.
        other arguments: as for :func:`load_lfw_people`.

    Returns:
        Items ``((x1, x2), same)``; ``.pairs`` index ``.base`` (the distinct
        images, a TensorImageDataset), ``.same`` and ``.folds`` are arrays.
    """
    if subset not in LFW_PAIR_FILES:
        raise ValueError(f"subset={subset!r}; use one of {list(LFW_PAIR_FILES)}.")
    root = _root(root)
    folder, pairs_dir = _lfw_location(root, source=source, funneled=funneled, download=download)
    pairs_file = pairs_dir / LFW_PAIR_FILES[subset].filename
    if download and not pairs_file.is_file():
        download_lfw(root, funneled=funneled)
    if not pairs_file.is_file():
        raise _missing(f"The LFW pairs file {pairs_file.name}", pairs_file, "Call download_lfw().")
    table = parse_lfw_pairs(pairs_file)
    keys = sorted(set(zip(table.name1, table.image1)) | set(zip(table.name2, table.image2)))
    paths = [folder / name / f"{name}_{num:04d}.jpg" for name, num in keys]
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise DataFormatError(f"{pairs_file} names {len(absent)} images that are not in {folder}, e.g. {absent[0]}. "
                              "Is the image archive complete (see data/README.md)?")
    images, _ = _decode_cached("lfw", f"pairs-{subset}", paths, root=folder, image_size=image_size, rgb=rgb,
                               crop=crop, on_error="raise", cache=cache)
    names = sorted({n for n, _ in keys})
    name_idx = {n: i for i, n in enumerate(names)}
    base = TensorImageDataset(images, [name_idx[n] for n, _ in keys], classes=names,
                              attributes=pd.DataFrame({"name": [n for n, _ in keys], "image": [k for _, k in keys]}),
                              name="lfw", target_name="identity", transform=transform)
    index = {k: i for i, k in enumerate(keys)}
    pairs = np.array([[index[(a, i)], index[(b, j)]] for a, i, b, j in
                      zip(table.name1, table.image1, table.name2, table.image2)], dtype=np.int64)
    return PairDataset(base, pairs=pairs, same=table.same.to_numpy(), folds=table.fold.to_numpy())


def download_lfw(
    root: Path | str | None = None,
    *,
    funneled: bool = True,
    fetch: Callable[[str, BinaryIO], None] | None = None,
    archives: dict[bool, RemoteFile] | None = None,
    pair_files: dict[str, RemoteFile] | None = None,
) -> Path:
    """Download LFW (about 230 MB) and its pairs files into ``root/lfw`` (atomically, checksummed)."""
    root = _root(root)
    folder = _lfw_folder(root)
    remote = (archives or LFW_ARCHIVES)[funneled]
    if not folder.is_dir():
        archive = download_file(remote.url, root / remote.filename, sha256=remote.sha256, md5=remote.md5, fetch=fetch)
        try:
            extract_archive(archive, folder)
        finally:
            archive.unlink(missing_ok=True)
    for rf in (pair_files or LFW_PAIR_FILES).values():
        download_file(rf.url, folder / rf.filename, sha256=rf.sha256, md5=rf.md5, fetch=fetch)
    return folder


# ------------------------------------------------------------------------ FairFace
def _fairface_folder(root: Path) -> Path:
    return root / _marker_dir("fairface")


_DATE_LIKE = re.compile(
    r"^(?:\d{1,2}-(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*(?:-\d{2,4})?|"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*-\d{1,4}|"
    r"\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}(?:[ t]\d{1,2}:\d{2}(?::\d{2})?)?)$",
    re.IGNORECASE,
)
#: Spreadsheet spellings of the optional ``service_test`` column.
_BOOLEAN_SPELLINGS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False,
                      "wahr": True, "falsch": False, "vrai": True, "faux": False, "verdadero": True, "falso": False}


def _bad_rows_message(csv: Path, bad: dict[int, list[tuple[str, str]]], allowed: dict[str, Sequence[str]],
                      n_rows: int) -> str:
    """One line per invalid row (all its bad cells), the first 5 rows shown, plus hints."""
    lines = []
    for row in sorted(bad)[:5]:
        cells = "; ".join(f"{column}={value!r}" for column, value in bad[row])
        lines.append(f"  row {row} (line {row + 1}): {cells}")
    more = f"\n  ... and {len(bad) - 5} more row(s)" if len(bad) > 5 else ""
    columns = sorted({c for cells in bad.values() for c, _ in cells})
    allowed_lines = [f"  {c}: {', '.join(allowed[c])}" for c in columns if c in allowed]
    hints = []
    dates = [v for cells in bad.values() for c, v in cells if c == "age" and _DATE_LIKE.match(v.strip())]
    if dates:
        hints.append(f"{len(dates)} age value(s) look like dates (e.g. {dates[0]!r}): a spreadsheet turned age bins "
                     "such as '3-9' and '10-19' into dates. Re-download the CSV, or import the age column as Text "
                     "before saving.")
    return (f"{csv} has {len(bad)} invalid row(s) of {n_rows}:\n" + "\n".join(lines) + more
            + ("\nAllowed values:\n" + "\n".join(allowed_lines) if allowed_lines else "")
            + ("\n" + "\n".join(hints) if hints else "")
            + "\nFix or delete those rows, re-download the official label file, or pass on_error='skip'.")


def load_fairface_labels(
    split: Literal["train", "val"] = "train",
    root: Path | str | None = None,
    *,
    full: bool = False,
    on_error: OnError = "raise",
) -> pd.DataFrame:
    """Read and validate an official FairFace label file.

    Args:
        split: ``"train"`` or ``"val"``.
        root: data directory (files ``root/fairface/fairface_label_<split>.csv``).
        full: read the complete official files from ``fairface/labels_full/``
            (86,744 train and 10,954 val rows) instead of the local sample's.
        on_error: ``"skip"`` drops invalid rows with one counted warning.

    The file may be UTF-8 (with a byte-order mark) or UTF-16, as
    spreadsheets save it; ``service_test`` (unused by the course) accepts
    ``TRUE``/``FALSE``/``1``/``0``/``yes``/``no`` and empty cells, and an
    unreadable value there only becomes NA. Paths are normalised
    (``val/./1.jpg`` is ``val/1.jpg``), so one image cannot carry two labels.

    Returns:
        DataFrame with ``file`` (str, relative to ``fairface/``), ``age``
        (ordered categorical of :data:`FAIRFACE_AGES`), ``gender``, ``race``
        (categorical) and ``service_test`` (nullable bool). Rows are
        numbered as in the file (row 1 = first data line).

    Raises:
        DatasetNotFoundError: the file is missing.
        DataFormatError: an empty, non-UTF-8/16 or malformed file, missing
            columns; or invalid rows with ``on_error="raise"`` (counted by
            row, each row listed once with all its bad cells).
    """
    _check_on_error(on_error)
    if split not in ("train", "val"):
        raise ValueError(f"split={split!r}; use 'train' or 'val'.")
    folder = _fairface_folder(_root(root))
    csv = (folder / "labels_full" if full else folder) / f"fairface_label_{split}.csv"
    if not csv.is_file():
        what = "The full FairFace label files" if full else "The FairFace label file"
        raise _missing(what, csv, "Download the label CSVs from https://github.com/joojs/fairface and put them there.")
    table = _read_csv(csv, what=f"Re-download the official FairFace label file (see {_README}).")
    missing = [c for c in FAIRFACE_COLUMNS[:4] if c not in table.columns]
    if missing:
        raise DataFormatError(
            f"{csv} lacks the column(s) {missing}; it has {list(table.columns)}. The official FairFace label files "
            f"have the header {','.join(FAIRFACE_COLUMNS)}: re-download them (see {_README})."
        )
    if table.empty:
        raise DataFormatError(f"{csv} has a header but no rows; re-download it (see {_README}).")
    for column in ("age", "gender", "race"):
        table[column] = table[column].str.strip()
    allowed: dict[str, Sequence[str]] = {"age": FAIRFACE_AGES, "gender": FAIRFACE_GENDERS, "race": FAIRFACE_RACES}
    bad: dict[int, list[tuple[str, str]]] = {}
    for column, values in allowed.items():
        for i in np.flatnonzero(~table[column].isin(values).to_numpy()):
            bad.setdefault(int(i) + 1, []).append((column, table[column].iat[i]))
    raw_files = table["file"]
    files = raw_files.map(_normalise_relpath)
    wrong_file = files.map(_unsafe_relpath) | ~files.str.lower().str.endswith((".jpg", ".jpeg", ".png"))
    for i in np.flatnonzero(wrong_file.to_numpy()):
        bad.setdefault(int(i) + 1, []).append(("file", raw_files.iat[i]))
    repeated = files.duplicated(keep="first") & ~wrong_file
    for i in np.flatnonzero(repeated.to_numpy()):
        first = int(np.flatnonzero((files == files.iat[i]).to_numpy())[0]) + 1
        bad.setdefault(int(i) + 1, []).append(("file", f"{raw_files.iat[i]} (the image of row {first} again)"))
    invalid = np.zeros(len(table), dtype=bool)
    invalid[[r - 1 for r in bad]] = True
    if bad:
        if on_error == "raise":
            raise DataFormatError(_bad_rows_message(csv, bad, allowed, len(table)))
        _warn_skipped(f"rows of {csv.name} with invalid values",
                      [f"row {r}: " + ", ".join(f"{c}={v!r}" for c, v in bad[r]) for r in sorted(bad)],
                      len(table), "Fix those rows or re-download the official label file.")
    service = _service_test(table, csv)
    row_numbers = np.arange(1, len(table) + 1)[~invalid]
    keep = ~invalid
    out = pd.DataFrame({
        "file": files[keep].astype(str).to_numpy(),
        "age": pd.Categorical(table["age"][keep], categories=list(FAIRFACE_AGES), ordered=True),
        "gender": pd.Categorical(table["gender"][keep], categories=list(FAIRFACE_GENDERS)),
        "race": pd.Categorical(table["race"][keep], categories=list(FAIRFACE_RACES)),
        "service_test": service[keep].reset_index(drop=True),
    })
    out.index = pd.Index(row_numbers, name="row")
    out.attrs["source"] = str(csv)
    return out


def _service_test(table: pd.DataFrame, csv: Path) -> pd.Series:
    """The optional ``service_test`` column as nullable booleans; unreadable cells become NA with one warning."""
    if "service_test" not in table.columns:
        return pd.Series(pd.array([pd.NA] * len(table), dtype="boolean"))
    raw = table["service_test"].str.strip().str.lower()
    values = raw.map(_BOOLEAN_SPELLINGS)
    unknown = raw.ne("") & values.isna()
    if unknown.any():
        rows = [f"row {i + 1}: {table['service_test'].iat[i]!r}" for i in np.flatnonzero(unknown.to_numpy())]
        _warn_skipped(f"service_test values of {csv.name} (set to NA; the column is not used for labels)", rows,
                      len(table), "Use True/False.")
    return pd.Series(pd.array(values.tolist(), dtype="boolean"))


def load_fairface(
    split: Literal["train", "val", "all"] = "train",
    root: Path | str | None = None,
    *,
    image_size: int = 64,
    rgb: bool = True,
    on_error: OnError = "raise",
    max_per_group: int | None = None,
    target: Literal["race", "gender", "age"] = "race",
    crop: Crop | None = None,
    seed: int = 0,
    duplicates: Duplicates = "warn",
    transform: Callable[[torch.Tensor], Any] | None = None,
    cache: bool = True,
) -> TensorImageDataset:
    """FairFace images with race, gender and age labels (no identities).

    Args:
        split: ``"train"``, ``"val"`` or ``"all"`` (both, with a ``split`` column).
        root: data directory (``root/fairface/...``, see :func:`load_fairface_labels`).
        image_size: side of the square output (the 224 x 224 images keep
            their 0.25 margin unless ``crop`` is given).
        rgb: colour (default) or grey.
        on_error: ``"skip"`` drops invalid label rows, missing and
            undecodable images, each kind with one counted warning.
        max_per_group: keep at most this many images per race x gender cell.
        target: the attribute returned as ``targets``.
        crop: fractional crop before resizing, e.g. ``(0.17, 0.17, 0.83, 0.83)``
            for the face without the margin.
        seed: which images ``max_per_group`` keeps.
        duplicates, transform, cache: as for :func:`load_orl_faces`.

    Returns:
        Images ``(N, C, S, S)`` in file order, ``targets`` codes of
        ``target``, ``classes`` its values, ``attributes`` the label table
        (``file, age, gender, race, service_test``), group columns
        ``race, gender, age``.
    """
    if target not in ("race", "gender", "age"):
        raise ValueError(f"target={target!r}; use 'race', 'gender' or 'age'.")
    if split == "all":
        parts = [load_fairface(s, root, image_size=image_size, rgb=rgb, on_error=on_error, max_per_group=max_per_group,
                               target=target, crop=crop, seed=seed, duplicates=duplicates, transform=transform,
                               cache=cache)
                 for s in ("train", "val")]
        attributes = pd.concat([p.attributes.assign(split=s) for p, s in zip(parts, ("train", "val"))], ignore_index=True)
        return TensorImageDataset(torch.cat([p.images for p in parts]), np.concatenate([p.targets for p in parts]),
                                  classes=parts[0].classes, attributes=attributes, group_columns=parts[0].group_columns,
                                  name="fairface", target_name=target, transform=transform)
    root = _root(root)
    folder = _fairface_folder(root)
    labels = load_fairface_labels(split, root, on_error=on_error)
    if max_per_group is not None:
        labels = labels.iloc[balanced_indices(labels[["race", "gender"]], max_per_group=max_per_group, seed=seed)]
    base = os.path.join(str(folder), "")
    paths = [base + f for f in labels["file"]]  # plain strings: pathlib is slow for thousands of files
    exists = np.fromiter((os.path.isfile(p) for p in paths), dtype=bool, count=len(paths))
    if not exists.all():
        absent = [f"{paths[i]} (row {labels.index[i]})" for i in np.flatnonzero(~exists)]
        if on_error == "raise":
            raise DataFormatError(
                f"{len(absent)} image(s) listed in fairface_label_{split}.csv are missing, e.g. {absent[0]}. "
                f"Unpack the FairFace images into {folder} (see {_README}) or pass on_error='skip'."
            )
        _warn_skipped("images listed in the labels but missing", absent, len(paths), f"Unpack them into {folder}.")
        labels = labels.loc[exists]
        paths = [p for p, e in zip(paths, exists) if e]
    if not paths:
        raise DataFormatError(f"No FairFace images are left for split {split!r} in {folder}.")
    keep = _handle_duplicates([Path(p) for p in paths], root=folder, duplicates=duplicates, names=False,
                              what=f"FairFace {split}")
    if not keep.all():
        labels, paths = labels.loc[keep], [p for p, k in zip(paths, keep) if k]
    images, ok = _decode_cached("fairface", split, paths, root=folder, image_size=image_size, rgb=rgb, crop=crop,
                                on_error=on_error, cache=cache)
    labels = labels.loc[ok]
    images = images[torch.from_numpy(np.flatnonzero(ok))] if not ok.all() else images
    attributes = labels.reset_index()
    ds = TensorImageDataset(images, np.zeros(len(labels), dtype=np.int64), attributes=attributes,
                            group_columns=("race", "gender", "age"), name="fairface", transform=transform)
    return ds.with_target(target)


# ------------------------------------------------------------------------- UTKFace
_UTK_NAME = re.compile(r"^(\d{1,3})_([01])_([0-4])_(\d+)\.jpg(?:\.chip\.jpg)?$", re.IGNORECASE)


def parse_utkface_name(name: str) -> tuple[int, int, int] | None:
    """``(age, gender, race)`` codes from ``age_gender_race_date.jpg[.chip.jpg]``, or ``None`` if malformed."""
    m = _UTK_NAME.match(name)
    if m is None:
        return None
    age, gender, race = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if age > 116:
        return None
    return age, gender, race


def _age_bin(age: np.ndarray) -> pd.Categorical:
    edges = [0, 3, 10, 20, 30, 40, 50, 60, 70, 10_000]
    codes = np.searchsorted(edges, age, side="right") - 1
    return pd.Categorical.from_codes(codes, categories=list(FAIRFACE_AGES), ordered=True)


def load_utkface(
    root: Path | str | None = None,
    *,
    image_size: int = 64,
    rgb: bool = True,
    on_error: OnError = "raise",
    max_per_group: int | None = None,
    target: Literal["race", "gender", "age_bin"] = "race",
    crop: Crop | None = None,
    seed: int = 0,
    duplicates: Duplicates = "warn",
    transform: Callable[[torch.Tensor], Any] | None = None,
    cache: bool = True,
) -> TensorImageDataset:
    """UTKFace: labels from file names ``age_gender_race_date.jpg`` (aligned: ``.jpg.chip.jpg``).

    Files anywhere under ``root/utkface/`` are read. Malformed names
    (missing or out-of-range fields, which the official release contains)
    are always skipped with one warning that counts them. A file name
    found in two folders (a copy that ships a second, re-encoded folder of
    the same faces) or byte-identical files under different names are
    reported in one warning; ``duplicates="drop"`` keeps the first of each
    (sorted by path), as for :func:`load_orl_faces`.

    Returns:
        Images ``(N, C, S, S)`` sorted by file name; ``attributes`` ``file``,
        ``age`` (int), ``age_bin`` (FairFace's bins), ``gender`` (Male/Female,
        codes 0/1), ``race`` (White, Black, Asian, Indian, Others, codes 0-4).
    """
    root = _root(root)
    folder = root / _marker_dir("utkface")
    if not folder.is_dir():
        raise _missing("UTKFace", folder, "Download UTKFace (https://susanqq.github.io/UTKFace/) and unpack it there.")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.lower().endswith(".jpg"))
    if not files:
        raise DataFormatError(f"{folder} holds no .jpg images; unpack UTKFace there (see {_README}).")
    parsed = [(p, parse_utkface_name(p.name)) for p in files]
    malformed = [p.name for p, v in parsed if v is None]
    _warn_skipped("UTKFace files with malformed names (expected age_gender_race_date.jpg)", malformed, len(files),
                  "They are left out.")
    good = [(p, v) for p, v in parsed if v is not None]
    if not good:
        raise DataFormatError(f"No file in {folder} is named age_gender_race_date.jpg.")
    keep = _handle_duplicates([p for p, _ in good], root=folder, duplicates=duplicates, names=True, what="UTKFace")
    good = [g for g, k in zip(good, keep) if k]
    paths = [p for p, _ in good]
    codes = np.array([v for _, v in good], dtype=np.int64)
    labels = pd.DataFrame({
        "file": [str(p.relative_to(folder)) for p in paths],
        "age": codes[:, 0],
        "age_bin": _age_bin(codes[:, 0]),
        "gender": pd.Categorical.from_codes(codes[:, 1], categories=list(UTKFACE_GENDERS)),
        "race": pd.Categorical.from_codes(codes[:, 2], categories=list(UTKFACE_RACES)),
    })
    if max_per_group is not None:
        keep = balanced_indices(labels[["race", "gender"]], max_per_group=max_per_group, seed=seed)
        labels, paths = labels.iloc[keep].reset_index(drop=True), [paths[i] for i in keep]
    images, ok = _decode_cached("utkface", "all", paths, root=folder, image_size=image_size, rgb=rgb, crop=crop,
                                on_error=on_error, cache=cache)
    ds = TensorImageDataset(images, np.zeros(len(paths), dtype=np.int64), attributes=labels,
                            group_columns=("race", "gender", "age_bin"), name="utkface", transform=transform)
    ds = ds if ok.all() else ds.subset(np.flatnonzero(ok))
    return ds.with_target(target)


# ---------------------------------------------------------------------- fallbacks
def _fallback_message(real: str, where: Path, replacement: str) -> None:
    print(
        f"[course_utils] {real} is not in {where}: using {replacement} instead.\n"
        f"  To use the real data, put it there in its official layout (see {_README}) "
        "or point COURSE_DATA_DIR at the folder that holds it."
    )


def _synth_size(image_size: int) -> int:
    return min(128, max(32, image_size))


def _synth_resized(ds: TensorImageDataset, image_size: int) -> TensorImageDataset:
    """SynthFaces renders 32 to 128 pixels; other sizes are resized so fallbacks match the request."""
    if ds.images.shape[-1] != image_size:
        ds.images = _resize_uint8(ds.images, image_size)
    return ds


def load_face_identities(
    prefer: Literal["orl", "lfw", "folder", "synthfaces"] = "orl",
    *,
    root: Path | str | None = None,
    image_size: int = 64,
    rgb: bool = False,
    min_faces_per_person: int = 20,
    synth: SynthFacesConfig | None = None,
    transform: Callable[[torch.Tensor], Any] | None = None,
) -> TensorImageDataset:
    """Faces with identity labels: the preferred real data set if present, else SynthFaces.

    Args:
        prefer: ``"orl"`` (40 x 10 images), ``"lfw"``, ``"folder"`` (your
            own photos, one folder per person: ``root`` is that folder, see
            :func:`load_face_folder`) or ``"synthfaces"``.
        root: data directory (for ``"folder"``: the face folder itself).
            When you name it, nothing is replaced by synthetic faces: a
            missing or wrong layout raises, saying what is there and what
            was expected.
        image_size, rgb: output format (SynthFaces is converted to grey when ``rgb=False``).
        min_faces_per_person: for LFW.
        synth: SynthFaces config for the fallback (default: 40 identities x
            10 images, like ORL).
        transform: applied on indexing.

    Prints which real data set was replaced (and how to get it) on fallback,
    which happens only when ``root`` is ``None`` (the data directory).
    """
    if prefer not in ("orl", "lfw", "folder", "synthfaces"):
        raise ValueError(f"prefer={prefer!r}; use 'orl', 'lfw', 'folder' or 'synthfaces'.")
    if prefer == "folder":
        if root is None:
            raise ValueError("prefer='folder' needs root=<the folder that holds one folder per person>.")
        return load_face_folder(root, image_size=image_size, rgb=rgb, transform=transform)
    root_path = _root(root)
    if prefer == "orl" and (root_path / DATASET_MARKERS["orl_faces"]).exists():
        return load_orl_faces(root_path, image_size=image_size, rgb=rgb, transform=transform)
    if prefer == "lfw" and _lfw_folder(root_path).is_dir():
        return load_lfw_people(root_path, image_size=image_size, rgb=rgb, min_faces_per_person=min_faces_per_person,
                               transform=transform)
    if prefer != "synthfaces" and root is not None:
        expected = {"orl": f"{root_path}/orl_faces/s1 ... s40/1.pgm ... 10.pgm",
                    "lfw": f"{root_path}/lfw/<Name>/<Name>_0001.jpg"}[prefer]
        where = root_path / {"orl": _marker_dir("orl_faces"), "lfw": _marker_dir("lfw")}[prefer]
        found = _describe_folder(where if where.exists() else root_path)
        raise DatasetNotFoundError(
            f"You asked for {prefer!r} faces in {root_path}, but {found}. Expected {expected}. For your own "
            f"photos in one folder per person use load_face_identities('folder', root=...) or load_face_folder(); "
            f"for synthetic faces leave root unset or use prefer='synthfaces'. See {_README}."
        )
    config = synth or SynthFacesConfig(n_identities=40, images_per_identity=10, image_size=_synth_size(image_size))
    if prefer != "synthfaces":
        real = {"orl": "The ORL/AT&T face data set", "lfw": "LFW (Labeled Faces in the Wild)"}[prefer]
        where = root_path / {"orl": _marker_dir("orl_faces"), "lfw": _marker_dir("lfw")}[prefer]
        _fallback_message(real, where, f"SynthFaces ({config.n_identities} synthetic identities x "
                                       f"{config.images_per_identity} images)")
    ds = _synth_resized(make_synthfaces(config, transform=transform), image_size)
    return ds if rgb else ds.to_grayscale()


_SYNTH_TARGETS = {"race": "skin_tone", "gender": "presentation", "age": "age_group", "age_bin": "age_group"}


def load_face_attributes(
    prefer: Literal["fairface", "utkface", "synthfaces"] = "fairface",
    *,
    split: Literal["train", "val", "all"] = "train",
    root: Path | str | None = None,
    image_size: int = 64,
    target: Literal["race", "gender", "age"] = "race",
    max_per_group: int | None = None,
    synth: SynthFacesConfig | None = None,
    transform: Callable[[torch.Tensor], Any] | None = None,
) -> TensorImageDataset:
    """Faces with demographic labels: FairFace or UTKFace if present, else SynthFaces.

    On fallback, SynthFaces' ``skin_tone`` / ``presentation`` / ``age_group``
    stand in for ``race`` / ``gender`` / ``age`` (``target`` is mapped), and
    a message names the real data set and how to get it. Check
    ``ds.name`` and ``ds.group_columns`` to see which one you got.
    """
    root_path = _root(root)
    if prefer == "fairface" and (root_path / DATASET_MARKERS["fairface"]).exists():
        return load_fairface(split, root_path, image_size=image_size, max_per_group=max_per_group, target=target,
                             transform=transform)
    if prefer == "utkface" and (root_path / _marker_dir("utkface")).is_dir():
        return load_utkface(root_path, image_size=image_size, max_per_group=max_per_group,
                            target="age_bin" if target == "age" else target, transform=transform)
    if prefer not in ("fairface", "utkface", "synthfaces"):
        raise ValueError(f"prefer={prefer!r}; use 'fairface', 'utkface' or 'synthfaces'.")
    n_ids = {"train": 525, "val": 175, "all": 700}.get(split, 525)
    config = synth or SynthFacesConfig(n_identities=n_ids, images_per_identity=4, image_size=_synth_size(image_size),
                                       seed={"train": 0, "val": 1, "all": 2}.get(split, 0))
    if prefer != "synthfaces":
        real = {"fairface": "FairFace", "utkface": "UTKFace"}[prefer]
        _fallback_message(real, root_path / _marker_dir(prefer),
                          f"SynthFaces attributes (skin_tone, presentation, age_group stand in for race, gender, age; "
                          f"{config.n_images} images)")
    ds = _synth_resized(make_synthfaces(config, transform=transform), image_size)
    return ds.with_target(_SYNTH_TARGETS[target])
