"""Your own photos: one folder per person (:func:`load_face_folder`), with an optional attributes CSV."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from course_utils.data.cache import (
    DataFormatError,
    DatasetNotFoundError,
    TensorImageDataset,
)
from course_utils.data.face_files import (
    _IGNORED_NAMES,
    Crop,
    Duplicates,
    OnError,
    _check_on_error,
    _decode_cached,
    _describe_folder,
    _handle_duplicates,
    _image_suffixes,
    _is_image_file,
    _natural_key,
    _normalise_relpath,
    _read_csv,
    _unsafe_relpath,
    _warn_skipped,
)

__all__ = [
    "load_face_folder",
]


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
