"""UTKFace: faces labelled by age, gender and race in their file names (:func:`load_utkface`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from course_utils.data.cache import (
    DataFormatError,
    TensorImageDataset,
)
from course_utils.data.face_files import (
    _README,
    Crop,
    Duplicates,
    OnError,
    _decode_cached,
    _handle_duplicates,
    _marker_dir,
    _missing,
    _root,
    _warn_skipped,
)
from course_utils.data.fairface import FAIRFACE_AGES
from course_utils.data.sampling import balanced_indices

__all__ = [
    "UTKFACE_RACES",
    "UTKFACE_GENDERS",
    "parse_utkface_name",
    "load_utkface",
    "utkface_subsample",
]


UTKFACE_RACES: tuple[str, ...] = ("White", "Black", "Asian", "Indian", "Others")


UTKFACE_GENDERS: tuple[str, ...] = ("Male", "Female")


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


def utkface_subsample(n_images: int, n: int | None, *, seed: int = 0) -> np.ndarray:
    """Row indices ``(min(n, n_images),)`` of the UTKFace subsample the notebooks describe.

    One rule for every notebook (03 and 06 describe the same faces, so the
    descriptor cache serves both): a seeded permutation of the rows of
    :func:`load_utkface` (sorted by file name), first ``n`` kept; ``None``
    keeps all, permuted.
    """
    order = np.random.default_rng(seed).permutation(n_images)
    return order if n is None else order[:n]
