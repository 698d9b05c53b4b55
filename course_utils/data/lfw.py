"""Labeled Faces in the Wild: people (:func:`load_lfw_people`) and the official pairs (:func:`load_lfw_pairs`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import pandas as pd
import torch

from course_utils.data.cache import (
    DataFormatError,
    TensorImageDataset,
    download_file,
    extract_archive,
)
from course_utils.data.face_files import (
    _README,
    Crop,
    Duplicates,
    OnError,
    RemoteFile,
    _decode_cached,
    _handle_duplicates,
    _marker_dir,
    _missing,
    _root,
)
from course_utils.data.sampling import PairDataset

__all__ = [
    "LFW_CROP",
    "load_lfw_people",
    "load_lfw_pairs",
    "parse_lfw_pairs",
    "download_lfw",
]


#: Square crop around the face of a 250 x 250 LFW image, as fractions (left, top, right, bottom).
LFW_CROP: Crop = (0.28, 0.308, 0.72, 0.748)


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
