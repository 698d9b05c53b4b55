"""Fixtures for the data-layer tests.

Every test gets its own empty cache directory and a data directory that does
not exist, so nothing depends on the machine. Real data (``COURSE_DATA_DIR``
as set when the tests start, e.g. ``/work/shared/data`` in CI) is reached
only through :func:`real_data`, which skips when it is absent.

The ``*_root`` fixtures write tiny data sets in the official formats into
``tmp_path`` and return the data directory that holds them.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from course_utils.data.fairface import FAIRFACE_AGES, FAIRFACE_GENDERS, FAIRFACE_RACES

_REAL_DATA_DIR = os.environ.get("COURSE_DATA_DIR", "").strip()


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "no_data_here"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ORL fixture holds 3 x 4 images, not 40 x 10: its layout warning is expected, except where tested."""
    for item in items:
        if "orl_root" in getattr(item, "fixturenames", ()) and "layout" not in item.name:
            item.add_marker(pytest.mark.filterwarnings("ignore:.*is not the official ORL layout"))


def real_root(marker: str) -> Path:
    """The real data directory if it holds ``marker``, else skip the test."""
    if not _REAL_DATA_DIR:
        pytest.skip("COURSE_DATA_DIR is not set: real-data test skipped")
    root = Path(_REAL_DATA_DIR).expanduser()
    if not (root / marker).exists():
        pytest.skip(f"{root / marker} is absent: real-data test skipped")
    return root


# ---------------------------------------------------------------- image helpers
def pattern(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """A smooth, seed-specific uint8 image (JPEG-friendly, distinct per seed)."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = 60 + 120 * (0.5 + 0.5 * np.sin(2 * np.pi * (xx * rng.uniform(0.5, 2) + yy * rng.uniform(0.5, 2))))
    if len(shape) == 3:
        base = base[..., None] * rng.uniform(0.6, 1.0, (1, 1, shape[2]))
    return np.clip(base, 0, 255).astype(np.uint8)


def write_image(path: Path, array: np.ndarray, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# ---------------------------------------------------------------- ORL / AT&T
ORL_SUBJECTS = (1, 2, 10)  # numeric order s1, s2, s10 (not lexicographic)
ORL_IMAGES = 4


@pytest.fixture
def orl_root(tmp_path: Path) -> Path:
    """``orl_faces/s1, s2, s10`` with ``1..4.pgm``, 92 x 112 grey PGM (P5) like the original."""
    root = tmp_path / "data"
    for s in ORL_SUBJECTS:
        for i in range(1, ORL_IMAGES + 1):
            write_image(root / "orl_faces" / f"s{s}" / f"{i}.pgm", pattern(100 * s + i, (112, 92)))
    (root / "orl_faces" / "README").write_text("The ORL face database\n")
    return root


# ---------------------------------------------------------------- FairFace
def fairface_rows(split: str, per_cell: int, start: int) -> list[tuple[str, str, str, str, str]]:
    rows = []
    n = start
    for race in FAIRFACE_RACES:
        for gender in FAIRFACE_GENDERS:
            for k in range(per_cell):
                age = FAIRFACE_AGES[(n + k) % len(FAIRFACE_AGES)]
                rows.append((f"{split}/{n}.jpg", age, gender, race, "True" if n % 2 else "False"))
                n += 1
    return rows


def write_csv(path: Path, rows: list[tuple[str, ...]], header: str = "file,age,gender,race,service_test") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


@pytest.fixture
def fairface_root(tmp_path: Path) -> Path:
    """``fairface/`` with 28 train (2 per race x gender) and 14 val images (48 x 48 JPEG), official CSVs,
    and ``labels_full/`` holding longer label files."""
    root = tmp_path / "data"
    ff = root / "fairface"
    for split, per_cell, start in (("train", 2, 1), ("val", 1, 1)):
        rows = fairface_rows(split, per_cell, start)
        write_csv(ff / f"fairface_label_{split}.csv", rows)
        for file, *_ in rows:
            write_image(ff / file, pattern(int(file.split("/")[1][:-4]) + (0 if split == "train" else 5000), (48, 48, 3)),
                        quality=95)
        write_csv(ff / "labels_full" / f"fairface_label_{split}.csv", rows + fairface_rows(split, 1, 10_000))
    return root


# ---------------------------------------------------------------- LFW
LFW_PEOPLE = {"Ada_Lovelace": 3, "Alan_Turing": 5, "Grace_Hopper": 2, "Lone_Person": 1}


@pytest.fixture
def lfw_root(tmp_path: Path) -> Path:
    """``lfw/<Name>/<Name>_000k.jpg`` (60 x 60 JPEG) plus ``pairs.txt`` (2 folds) and ``pairsDevTest.txt``."""
    root = tmp_path / "data"
    lfw = root / "lfw"
    for p, (name, n) in enumerate(LFW_PEOPLE.items()):
        for k in range(1, n + 1):
            write_image(lfw / name / f"{name}_{k:04d}.jpg", pattern(1000 * p + k, (60, 60, 3)), quality=95)
    (lfw / "pairs.txt").write_text(
        "2\t1\n"
        "Alan_Turing\t1\t2\n"
        "Ada_Lovelace\t1\tGrace_Hopper\t2\n"
        "Ada_Lovelace\t2\t3\n"
        "Alan_Turing\t5\tLone_Person\t1\n"
    )
    (lfw / "pairsDevTest.txt").write_text(
        "2\n"
        "Grace_Hopper\t1\t2\n"
        "Alan_Turing\t3\t4\n"
        "Grace_Hopper\t1\tAlan_Turing\t1\n"
        "Lone_Person\t1\tAda_Lovelace\t3\n"
    )
    return root


# ---------------------------------------------------------------- UTKFace
UTK_GOOD = {
    "25_0_1_20170116174525125.jpg.chip.jpg": (25, 0, 1),
    "1_1_2_20161219140623097.jpg.chip.jpg": (1, 1, 2),
    "71_0_0_20170120134639935.jpg": (71, 0, 0),
    "40_1_4_20170117134001234.jpg.chip.jpg": (40, 1, 4),
    "8_0_3_20170109150557335.jpg.chip.jpg": (8, 0, 3),
}
UTK_BAD = (
    "39_1_20170116174525125.jpg.chip.jpg",  # the race field is missing (as in the real release)
    "61_1_20170109142408075.jpg.chip.jpg",
    "24_0_1.jpg",  # no date
    "130_0_0_20170109150557335.jpg.chip.jpg",  # age out of range
)


@pytest.fixture
def utk_root(tmp_path: Path) -> Path:
    """``utkface/UTKFace/`` with 5 well-named and 4 malformed images (40 x 40 JPEG)."""
    root = tmp_path / "data"
    folder = root / "utkface" / "UTKFace"
    for k, name in enumerate([*UTK_GOOD, *UTK_BAD]):
        write_image(folder / name, pattern(k, (40, 40, 3)), quality=95, format="JPEG")
    return root


# ---------------------------------------------------------------- CIFAR-10, FashionMNIST
CIFAR_PER_BATCH = 3


def cifar_batch(seed: int, n: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    return {"batch_label": f"batch {seed}", "labels": [int(v) for v in rng.integers(0, 10, n)],
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "filenames": [f"img{i}.png" for i in range(n)]}


def write_cifar(folder: Path) -> dict[str, dict[str, object]]:
    folder.mkdir(parents=True, exist_ok=True)
    batches = {f"data_batch_{i}": cifar_batch(i, CIFAR_PER_BATCH) for i in range(1, 6)}
    batches["test_batch"] = cifar_batch(99, 4)
    for name, entry in batches.items():
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh, protocol=2)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                     "ship", "truck"], "num_vis": 3072}, fh, protocol=2)
    return batches


def cifar_md5s() -> dict[str, str]:
    """The md5 of each file :func:`write_cifar` writes (the fixture's "official" checksums)."""
    import hashlib

    entries = {f"data_batch_{i}": cifar_batch(i, CIFAR_PER_BATCH) for i in range(1, 6)}
    entries["test_batch"] = cifar_batch(99, 4)
    return {name: hashlib.md5(pickle.dumps(entry, protocol=2)).hexdigest() for name, entry in entries.items()}


@pytest.fixture
def trusted_cifar(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Make the loader accept the fixture's batches as the official ones (it checks md5s before unpickling)."""
    import course_utils.data.images as images_mod

    md5s = cifar_md5s()
    monkeypatch.setattr(images_mod, "_cifar_md5s", lambda: dict(md5s))
    return md5s


@pytest.fixture
def cifar_root(tmp_path: Path, trusted_cifar: dict[str, str]) -> tuple[Path, dict[str, dict[str, object]]]:
    root = tmp_path / "data"
    return root, write_cifar(root / "cifar-10-batches-py")


def idx_images(images: np.ndarray) -> bytes:
    n, h, w = images.shape
    return struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes()


def fmnist_files(seed: int = 0) -> dict[str, tuple[np.ndarray, bytes]]:
    rng = np.random.default_rng(seed)
    out = {}
    for prefix, n in (("train", 6), ("t10k", 3)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        out[f"{prefix}-images-idx3-ubyte"] = (images, idx_images(images))
        out[f"{prefix}-labels-idx1-ubyte"] = (labels, idx_labels(labels))
    return out


@pytest.fixture
def fmnist_root(tmp_path: Path) -> tuple[Path, dict[str, tuple[np.ndarray, bytes]]]:
    """``FashionMNIST/raw/`` with the four unzipped idx files (6 train, 3 test images) and their .gz."""
    root = tmp_path / "data"
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    files = fmnist_files()
    for name, (_, data) in files.items():
        (raw / name).write_bytes(data)
        (raw / f"{name}.gz").write_bytes(gzip.compress(data))
    return root, files


@pytest.fixture
def fx() -> SimpleNamespace:
    """The helpers above, for tests (importing ``conftest`` by name is ambiguous across folders)."""
    return SimpleNamespace(
        pattern=pattern, write_image=write_image, truncate=truncate, write_csv=write_csv,
        fairface_rows=fairface_rows, write_cifar=write_cifar, fmnist_files=fmnist_files, real_root=real_root,
        ORL_SUBJECTS=ORL_SUBJECTS, ORL_IMAGES=ORL_IMAGES, LFW_PEOPLE=LFW_PEOPLE, UTK_GOOD=UTK_GOOD, UTK_BAD=UTK_BAD,
        CIFAR_PER_BATCH=CIFAR_PER_BATCH,
    )
