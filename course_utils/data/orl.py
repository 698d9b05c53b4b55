"""ORL / AT&T faces (40 people x 10 images), from ``orl_faces/s1..s40`` or scikit-learn's Olivetti copy."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import pandas as pd
import torch

from course_utils.data.cache import (
    DataFormatError,
    DataWarning,
    TensorImageDataset,
    download_file,
    extract_archive,
    file_digest,
)
from course_utils.data.face_files import (
    _IGNORED_NAMES,
    Crop,
    Duplicates,
    RemoteFile,
    _decode_cached,
    _describe_folder,
    _handle_duplicates,
    _marker_dir,
    _missing,
    _natural_key,
    _resize_uint8,
    _root,
    read_face,
)
from course_utils.settings import DATASET_MARKERS

__all__ = [
    "load_orl_faces",
    "download_orl_faces",
]

ORL_SUBJECTS, ORL_IMAGES_PER_SUBJECT = 40, 10


# The AT&T archive publishes no checksum: the download is verified by its
# structure instead (40 folders s1..s40 of 10 decodable 92 x 112 PGM images).
#: The original Olivetti faces (scikit-learn's figshare mirror and checksum), 400 x 4096 in a MATLAB file.
OLIVETTI_MAT = RemoteFile(
    "https://ndownloader.figshare.com/files/5976027", "olivettifaces.mat",
    sha256="b612fb967f2dc77c9c62d3e1266e0c73d5fca46a4b8906c18e454d41af987794",
)


ORL_ARCHIVE = RemoteFile("https://www.cl.cam.ac.uk/Research/DTG/attarchive/pub/data/att_faces.zip", "att_faces.zip")


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
