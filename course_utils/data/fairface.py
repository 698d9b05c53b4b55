"""FairFace: face crops with race, gender and age labels (:func:`load_fairface`, :func:`load_fairface_labels`)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
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
    _check_on_error,
    _decode_cached,
    _handle_duplicates,
    _marker_dir,
    _missing,
    _normalise_relpath,
    _read_csv,
    _root,
    _unsafe_relpath,
    _warn_skipped,
)
from course_utils.data.sampling import balanced_indices

__all__ = [
    "FAIRFACE_RACES",
    "FAIRFACE_GENDERS",
    "FAIRFACE_AGES",
    "FAIRFACE_COLUMNS",
    "load_fairface_labels",
    "load_fairface",
]


FAIRFACE_RACES: tuple[str, ...] = (
    "White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern",
)


FAIRFACE_GENDERS: tuple[str, ...] = ("Male", "Female")


FAIRFACE_AGES: tuple[str, ...] = (
    "0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70",
)


FAIRFACE_COLUMNS: tuple[str, ...] = ("file", "age", "gender", "race", "service_test")


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
