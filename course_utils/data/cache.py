"""Files in and tensors out: the data layer's plumbing.

* :class:`TensorImageDataset`: the in-memory dataset every loader returns
  (one ``uint8`` tensor ``(N, C, H, W)`` plus label arrays).
* :func:`load_or_build`: the decoded-tensor cache, keyed by data set, split,
  image size and a fingerprint of the source files, stored under
  ``cache_dir("tensors")`` (never in the data directory) and written
  atomically.
* :func:`download_file` / :func:`extract_archive`: downloads that verify a
  checksum and never leave anything half-written (temporary file, verify,
  rename).
* The data-layer errors and :class:`DataWarning`.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import shutil
import tarfile
import time
import urllib.request
import uuid
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from course_utils.settings import cache_dir

__all__ = [
    "DataError",
    "DatasetNotFoundError",
    "DataFormatError",
    "ImageDecodeError",
    "DownloadError",
    "ChecksumError",
    "DataWarning",
    "TensorImageDataset",
    "CACHE_FORMAT",
    "fingerprint_files",
    "content_digest",
    "tensor_cache_path",
    "load_or_build",
    "atomic_path",
    "atomic_write",
    "atomic_save",
    "clean_stale_temp_files",
    "file_digest",
    "download_file",
    "extract_archive",
]

#: Bumped whenever the layout of cached payloads changes (old files are ignored).
CACHE_FORMAT = 1


# --------------------------------------------------------------------------- errors
class DataError(Exception):
    """Base class of the data layer's errors."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A data set (or the data directory) is missing; the message says how to get it."""


class DataFormatError(DataError, ValueError):
    """A file exists but does not have the expected content (columns, labels, names)."""


class ImageDecodeError(DataFormatError):
    """An image file is corrupted, truncated or not an image."""


class DownloadError(DataError, OSError):
    """A download failed; nothing was left in place."""


class ChecksumError(DownloadError):
    """A downloaded file does not match its published checksum."""


class DataWarning(UserWarning):
    """Something was skipped or replaced (a fallback data set, bad rows or files)."""


# --------------------------------------------------------------------------- dataset
class TensorImageDataset(Dataset):
    """Images held in memory as one ``uint8`` tensor, with label arrays beside them.

    Indexing returns ``(image, target)``: ``image`` a float tensor ``(C, H, W)``
    in ``[0, 1]`` (then ``transform`` if given), ``target`` a Python ``int``.

    Attributes:
        images: ``uint8`` tensor ``(N, C, H, W)``.
        targets: ``int64`` array ``(N,)`` (identity or class ids, ``0..n-1``).
        classes: names of the target ids (``classes[targets[i]]``).
        attributes: per-image metadata, ``N`` rows (e.g. race, gender, age).
        group_columns: the columns of ``attributes`` that are demographic groups.
        name: short name of the data set (``"orl_faces"``, ``"synthfaces"`` ...).
        target_name: what ``targets`` holds (``"identity"``, ``"race"`` ...).
        transform: applied to the float image tensor in ``__getitem__``.
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: np.ndarray | Sequence[int],
        *,
        classes: Sequence[str] | None = None,
        attributes: pd.DataFrame | None = None,
        group_columns: Sequence[str] = (),
        name: str = "images",
        target_name: str = "class",
        transform: Callable[[torch.Tensor], Any] | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be a uint8 tensor (N, C, H, W); got {images.dtype} {tuple(images.shape)}")
        targets = np.asarray(targets, dtype=np.int64)
        if targets.shape != (images.shape[0],):
            raise ValueError(f"targets has shape {targets.shape}; expected ({images.shape[0]},)")
        if attributes is None:
            attributes = pd.DataFrame(index=pd.RangeIndex(len(targets)))
        if len(attributes) != len(targets):
            raise ValueError(f"attributes has {len(attributes)} rows; expected {len(targets)}")
        missing = [c for c in group_columns if c not in attributes.columns]
        if missing:
            raise ValueError(f"group_columns {missing} are not columns of attributes")
        if classes is None:
            n = int(targets.max()) + 1 if len(targets) else 0
            classes = [str(i) for i in range(n)]
        self.images = images
        self.targets = targets
        self.classes = list(classes)
        self.attributes = attributes.reset_index(drop=True)
        self.group_columns = tuple(group_columns)
        self.name = name
        self.target_name = target_name
        self.transform = transform

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.images[index].float().div_(255.0)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def groups(self) -> pd.DataFrame:
        """The demographic-like columns of :attr:`attributes` (may have no columns)."""
        return self.attributes.loc[:, list(self.group_columns)]

    def float_images(self) -> torch.Tensor:
        """All images as one float tensor ``(N, C, H, W)`` in ``[0, 1]`` (no transform)."""
        return self.images.float().div_(255.0)

    def subset(self, indices: np.ndarray | Sequence[int]) -> TensorImageDataset:
        """A new dataset with the rows ``indices`` (labels and attributes follow)."""
        idx = np.asarray(indices, dtype=np.int64)
        return TensorImageDataset(
            self.images[torch.from_numpy(idx)],
            self.targets[idx],
            classes=self.classes,
            attributes=self.attributes.iloc[idx],
            group_columns=self.group_columns,
            name=self.name,
            target_name=self.target_name,
            transform=self.transform,
        )

    def with_transform(self, transform: Callable[[torch.Tensor], Any] | None) -> TensorImageDataset:
        """The same data (shared, not copied) with another ``transform``."""
        out = TensorImageDataset.__new__(TensorImageDataset)
        out.__dict__.update(self.__dict__)
        out.transform = transform
        return out

    def with_target(self, column: str) -> TensorImageDataset:
        """The same images with ``targets`` taken from an attribute column (e.g. ``"race"``)."""
        if column not in self.attributes.columns:
            raise KeyError(f"{column!r} is not an attribute; choose one of {list(self.attributes.columns)}.")
        values = self.attributes[column]
        cat = values.astype("category") if not isinstance(values.dtype, pd.CategoricalDtype) else values
        out = self.with_transform(self.transform)
        out.targets = cat.cat.codes.to_numpy().astype(np.int64)
        out.classes = [str(c) for c in cat.cat.categories]
        out.target_name = column
        return out

    def to_grayscale(self) -> TensorImageDataset:
        """The same data set with one channel (ITU-R 601 luma), or itself if already grey."""
        if self.images.shape[1] == 1:
            return self
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        grey = (self.images.float() * weights).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
        out = self.with_transform(self.transform)
        out.images = grey
        return out

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        return (
            f"TensorImageDataset(name={self.name!r}, n={len(self)}, image=({c}, {h}, {w}), "
            f"target={self.target_name!r} ({self.n_classes} classes), groups={list(self.group_columns)})"
        )


# --------------------------------------------------------------------------- cache
_DIGESTS: dict[tuple[str, int, int, int, int], str] = {}


def content_digest(path: Path | str, st: os.stat_result | None = None) -> str:
    """sha1 of a file's bytes, remembered for this process while its size, times and inode stay the same."""
    name = os.fspath(path)
    st = os.stat(name) if st is None else st
    memo = (name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)  # ctime: a write cannot hide from it
    digest = _DIGESTS.get(memo)
    if digest is None:
        digest = _DIGESTS[memo] = file_digest(Path(name), "sha1")
    return digest


def fingerprint_files(paths: Iterable[Path | str], *, root: Path | str | None = None, content: bool = True) -> str:
    """A short hash of file names (relative to ``root``) and contents.

    Changing, adding, removing, renaming or swapping files changes the
    fingerprint, so a stale cache is never reused; touching a file (or
    unzipping it again) does not. With ``content=False`` only sizes and
    modification times are hashed (one ``stat`` per file; two files swapped
    with equal sizes and times go unnoticed). Contents are read once per
    process and file version (about 0.1 s per 100 MB).
    """
    names = [os.fspath(p) for p in paths]
    stats = [os.stat(n) for n in names]
    if content:
        with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:  # hashlib releases the GIL
            digests = list(pool.map(content_digest, names, stats))
    h = hashlib.sha1(b"content" if content else b"stat")
    prefix = os.path.join(str(root), "") if root is not None else ""
    for i, (name, st) in enumerate(zip(names, stats)):
        rel = name[len(prefix):] if prefix and name.startswith(prefix) else name
        tail = digests[i] if content else f"{st.st_size}\0{st.st_mtime_ns}"
        h.update(f"{rel}\0{tail}\n".encode())
    return h.hexdigest()[:16]


def tensor_cache_path(dataset: str, *, split: str, image_size: int, key: str) -> Path:
    """Where the decoded tensors of ``dataset``/``split`` at ``image_size`` are cached."""
    name = f"{dataset}-{split}-{image_size}px-{key}"
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    return cache_dir("tensors") / f"{safe}.pt"


_STALE_AFTER_S = 24 * 3600.0
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]{12}\.(?:tmp|part|extract)$")


def _temp_beside(path: Path, suffix: str) -> Path:
    """A fresh hidden name in ``path``'s folder, ``.<name>.<pid>-<random><suffix>``.

    The process id in the name lets :func:`clean_stale_temp_files` tell the
    leftovers of a killed process from a write in progress.
    """
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}{suffix}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else (or the platform cannot tell): not ours to judge
    return True


def clean_stale_temp_files(folder: Path, *, older_than_s: float = _STALE_AFTER_S) -> list[Path]:
    """Remove the temporary files and folders that killed writers left in ``folder``.

    A leftover is a hidden ``.<name>.<pid>-<random>.{tmp,part,extract}``
    entry whose process no longer runs on this machine, or that is older than
    ``older_than_s`` (a writer on another machine sharing the folder).
    Never raises; returns what was removed.
    """
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = _TEMP_NAME.match(entry.name)
        if m is None:
            continue
        try:
            old = now - entry.lstat().st_mtime > older_than_s
            if not old and _pid_alive(int(m.group("pid"))):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            continue
    return removed


@contextlib.contextmanager
def atomic_path(path: Path | str, *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary name beside ``path`` to write in the block; renamed onto ``path`` only if the block succeeds.

    On any error, or a ``KeyboardInterrupt``, the temporary file is removed,
    so ``path`` is complete or absent, never half-written. Leftovers of killed
    processes are removed by the next write into the same folder. Use it for
    writers that need a path (a downloader); :func:`atomic_write` gives a file.

    Args:
        suffix: ``".tmp"``, ``".part"`` (downloads) or ``".extract"``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temp_files(path.parent)
    tmp = _temp_beside(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_write(path: Path | str, mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO[Any]]:
    """Write ``path`` so that it is complete or absent, never half-written.

    Yields a file opened on a temporary name beside ``path`` (``"wb"`` or
    ``"w"``, see :func:`atomic_path`); when the block ends without an error
    the data is flushed and the file renamed onto ``path`` in one step; on
    any error the temporary file is removed.

    Example:
        ``with atomic_write(path) as fh: torch.save(obj, fh)``
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode={mode!r}; use 'wb' or 'w'.")
    with atomic_path(path) as tmp:
        with open(tmp, "x" + mode[1:], encoding=encoding if mode == "w" else None) as fh:  # "x": the umask applies
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def atomic_save(obj: Any, path: Path) -> Path:
    """``torch.save`` through :func:`atomic_write`: ``path`` is complete or absent."""
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        torch.save(obj, fh)
    return path


def load_or_build(
    dataset: str,
    *,
    split: str,
    image_size: int,
    key: str,
    build: Callable[[], dict[str, torch.Tensor]],
    enabled: bool = True,
    refresh: bool = False,
) -> dict[str, torch.Tensor]:
    """Return the cached tensors for this key, or build, cache and return them.

    Args:
        dataset, split, image_size: the cache key's readable part.
        key: the rest of the key (options and a :func:`fingerprint_files` hash).
        build: computes the payload, a dict of tensors.
        enabled: ``False`` skips the cache entirely (no read, no write).
        refresh: rebuild and overwrite even when a cache file exists.

    Returns:
        The payload dict (loaded with ``torch.load(..., weights_only=True)``).
    """
    if not enabled:
        return build()
    try:
        path = tensor_cache_path(dataset, split=split, image_size=image_size, key=f"{key}-v{CACHE_FORMAT}")
    except Exception as err:  # noqa: BLE001 - the cache is an accelerator, never a dependency
        _cache_warning("the cache directory cannot be created", err)
        return build()
    if not refresh:
        try:
            if path.is_file():
                payload = torch.load(path, map_location="cpu", weights_only=True)
                if isinstance(payload, dict) and all(isinstance(v, torch.Tensor) for v in payload.values()):
                    return payload
                raise DataFormatError(f"{path} holds a {type(payload).__name__}, not a dict of tensors")
        except Exception as err:  # noqa: BLE001 - an unreadable cache file is rebuilt, never fatal
            _cache_warning(f"the cache file {path.name} is unreadable and is rebuilt", err)
            with contextlib.suppress(OSError):
                path.unlink()
    payload = build()
    try:
        atomic_save(payload, path)
    except Exception as err:  # noqa: BLE001 - read-only or full cache: the data is still returned
        _cache_warning(f"the cache file {path.name} cannot be written", err)
    return payload


_CACHE_WARNED: set[str] = set()


def _first_line(err: BaseException) -> str:
    """The first line of an error message, without torch's advice to unpickle untrusted files."""
    line = (str(err).strip().splitlines() or [""])[0]
    if "weights_only" in line or "Weights only load failed" in line:
        return "not a file of tensors (refused by torch.load(weights_only=True))"
    return line[:200]


def _cache_warning(what: str, err: BaseException) -> None:
    """One :class:`DataWarning` per kind of cache problem and process; loading goes on from the source."""
    kind = f"{what.split(' ')[1]}:{type(err).__name__}"
    if kind in _CACHE_WARNED:
        return
    _CACHE_WARNED.add(kind)
    warnings.warn(
        f"Data cache problem: {what} ({type(err).__name__}: {_first_line(err)}). Loading from the source files instead "
        f"(slower, same data). Point COURSE_CACHE_DIR at a writable folder with free space, or pass cache=False.",
        DataWarning, stacklevel=4,
    )


# --------------------------------------------------------------------------- downloads
def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file (``sha256`` or ``md5``), read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _urlopen_fetch(url: str, out: BinaryIO) -> None:
    """Copy ``url`` into ``out``; a body shorter (or longer) than its ``Content-Length`` raises."""
    request = urllib.request.Request(url, headers={"User-Agent": "course_utils"})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - URLs are ours
        announced = response.headers.get("Content-Length")
        written = 0
        while chunk := response.read(1 << 20):
            out.write(chunk)
            written += len(chunk)
    _check_length(url, written, announced)


def _check_length(url: str, written: int, announced: str | int | None) -> None:
    if announced is None or str(announced).strip() == "":
        return
    try:
        expected = int(announced)
    except ValueError:
        return
    if written != expected:
        raise DownloadError(
            f"the server sent {written:,} of the {expected:,} bytes it announced (Content-Length) for {url}: "
            "the connection was cut"
        )


def _verify(path: Path, url: str, *, sha256: str | None, md5: str | None) -> None:
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected is None:
            continue
        got = file_digest(path, algorithm)
        if got.lower() != expected.lower():
            raise ChecksumError(
                f"{url} downloaded, but its {algorithm} is {got}, not {expected}. The file was "
                "discarded. Retry; if it keeps failing the source changed: download it by hand "
                "(see data/README.md)."
            )


def download_file(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    fetch: Callable[[str, BinaryIO], None] | None = None,
    overwrite: bool = False,
) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying its checksum.

    The bytes go to a temporary file beside ``dest``; only after the length
    matches the server's ``Content-Length`` and the checksum matches is it
    renamed to ``dest``. Temporary files that killed processes left in
    ``dest``'s folder are removed first. On any failure (network error,
    interruption, wrong checksum) the temporary file is removed, so nothing
    half-written is ever left at ``dest``.

    Args:
        url: ``https://``, ``http://`` or ``file://`` URL.
        dest: final path of the file.
        sha256, md5: expected hex digests (either or both).
        fetch: ``fetch(url, binary_file)`` writes the bytes; default ``urllib``.
        overwrite: download even when ``dest`` exists and verifies.

    Returns:
        ``dest``.
    """
    dest = Path(dest)
    if dest.is_file() and not overwrite:
        try:
            _verify(dest, url, sha256=sha256, md5=md5)
            return dest
        except ChecksumError:
            pass  # a bad existing file is replaced below
    with atomic_write(dest, "wb") as out:  # verified before it replaces dest; removed on any failure
        try:
            (fetch or _urlopen_fetch)(url, out)
        except (OSError, ValueError, http.client.HTTPException) as err:
            raise DownloadError(
                f"Could not download {url}: {err}. Check the connection and retry, "
                f"or download it by hand to {dest} (see data/README.md)."
            ) from err
        out.flush()
        _verify(Path(out.name), url, sha256=sha256, md5=md5)
    return dest


def _safe_members_zip(zf: zipfile.ZipFile) -> None:
    for name in zf.namelist():
        p = Path(name)
        if p.is_absolute() or ".." in p.parts:
            raise DataFormatError(f"Archive member {name!r} would be written outside the target folder.")


def extract_archive(
    archive: Path,
    dest: Path,
    *,
    find: Callable[[Path], Path] | None = None,
    verify: Callable[[Path], None] | None = None,
) -> Path:
    """Extract a ``.zip``/``.tar(.gz)`` archive so that ``dest`` appears complete or not at all.

    The archive is extracted into a temporary folder beside ``dest``;
    ``find(tmp)`` picks the folder inside it that becomes ``dest`` (default:
    the single top-level folder, or ``tmp`` itself); ``verify(folder)`` may
    raise to reject it. Only then is the folder renamed to ``dest``.

    Raises:
        FileExistsError: ``dest`` already exists (remove it to re-extract).
    """
    archive, dest = Path(archive), Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} already exists; remove it to extract {archive.name} again.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temp_files(dest.parent)
    tmp = _temp_beside(dest, ".extract")
    tmp.mkdir()  # not mkdtemp: its 0700 mode would stick to the renamed data folder
    try:
        try:
            _extract_into(archive, tmp)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as err:
            raise DataFormatError(f"{archive} is damaged or truncated ({type(err).__name__}: {err}); nothing was "
                                  "extracted. Delete it and download it again (see data/README.md).") from err
        if find is not None:
            root = find(tmp)
        else:
            entries = [p for p in tmp.iterdir() if not p.name.startswith(".")]
            root = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        if verify is not None:
            verify(root)
        if root == tmp:
            os.replace(tmp, dest)
        else:
            os.replace(root, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _extract_into(archive: Path, tmp: Path) -> None:
    name = archive.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            _safe_members_zip(zf)
            zf.extractall(tmp)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(tmp, filter="data")
            else:  # Python < 3.10.12: refuse unsafe members ourselves
                for member in tf.getmembers():
                    mp = Path(member.name)
                    if mp.is_absolute() or ".." in mp.parts or member.issym() or member.islnk():
                        raise DataFormatError(f"Archive member {member.name!r} is unsafe to extract.")
                tf.extractall(tmp)
    else:
        raise DataFormatError(f"{archive} is neither a zip nor a tar archive (truncated or not an archive: "
                              "delete it and download it again).")
