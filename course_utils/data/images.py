"""General images: offline samples that ship with the dependencies, CIFAR-10, FashionMNIST.

Embedded (no download, ever):

* :func:`sample_images`: scikit-image's sample pictures (astronaut, camera,
  coffee, chelsea, rocket, ...), only those stored inside the installed
  package (the others need ``pooch`` and a network).
* :func:`sklearn_sample_images`: scikit-learn's ``china`` and ``flower``.
* :func:`load_lfw_subset`: scikit-image's 100 LFW faces + 100 non-faces, 25 x 25.
* :func:`load_digits_dataset`: scikit-learn's 1,797 handwritten digits, 8 x 8.
* :func:`photo_crops`: random crops of photos, labelled by their photo (a retrieval pool).

From the data directory (torchvision's layouts, optional checksummed download):

* :func:`load_cifar10` (``cifar-10-batches-py/``) and
  :func:`load_fashion_mnist` (``FashionMNIST/raw/``).
* :func:`load_image_classification`: CIFAR-10 / FashionMNIST when present,
  otherwise the digits, with a message saying so.
"""

from __future__ import annotations

import gzip
import pickle
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import torch
import torch.nn.functional as F

from course_utils.data.cache import (
    DataFormatError,
    DatasetNotFoundError,
    TensorImageDataset,
    atomic_write,
    download_file,
    extract_archive,
    file_digest,
)
from course_utils.data.sampling import stratified_split
from course_utils.settings import DATASET_MARKERS, data_dir

__all__ = [
    "SAMPLE_IMAGE_NAMES",
    "CIFAR10_CLASSES",
    "FASHION_MNIST_CLASSES",
    "sample_images",
    "sklearn_sample_images",
    "load_lfw_subset",
    "load_digits_dataset",
    "load_cifar10",
    "load_fashion_mnist",
    "download_cifar10",
    "download_fashion_mnist",
    "load_image_classification",
    "photo_crops",
]

#: scikit-image samples stored in the package itself (checked with scikit-image 0.26).
SAMPLE_IMAGE_NAMES: tuple[str, ...] = (
    "astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "page", "text", "brick", "grass",
    "gravel", "cell", "clock", "colorwheel", "checkerboard", "hubble_deep_field", "immunohistochemistry", "retina",
)
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_README = "data/README.md"


def _to_float(image: np.ndarray) -> np.ndarray:
    from skimage.util import img_as_float32

    return img_as_float32(image)


def sample_images(names: Sequence[str] | None = None, *, gray: bool = False) -> dict[str, np.ndarray]:
    """scikit-image's bundled sample pictures as float arrays in ``[0, 1]``.

    Args:
        names: which ones (default: all of :data:`SAMPLE_IMAGE_NAMES`).
        gray: convert colour pictures to grey.

    Returns:
        ``name -> array`` of shape ``(H, W, 3)`` (colour) or ``(H, W)`` (grey), ``float32``.
    """
    import skimage.data
    from skimage.color import rgb2gray

    out = {}
    for name in names or SAMPLE_IMAGE_NAMES:
        if name not in SAMPLE_IMAGE_NAMES:
            raise ValueError(f"{name!r} is not a bundled sample; choose from {SAMPLE_IMAGE_NAMES}.")
        image = _to_float(getattr(skimage.data, name)())
        if gray and image.ndim == 3:
            image = rgb2gray(image).astype(np.float32)
        out[name] = image
    return out


def sklearn_sample_images() -> dict[str, np.ndarray]:
    """scikit-learn's two sample photos (``china``, ``flower``), ``(427, 640, 3)`` float32 in ``[0, 1]``."""
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    return {Path(f).stem: img.astype(np.float32) / 255.0 for f, img in zip(bunch.filenames, bunch.images)}


def _upscale(images: torch.Tensor, image_size: int | None) -> torch.Tensor:
    if image_size is None or images.shape[-1] == image_size:
        return images
    x = F.interpolate(images.float(), size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def load_lfw_subset(
    *, image_size: int | None = None, transform: Callable[[torch.Tensor], Any] | None = None
) -> TensorImageDataset:
    """scikit-image's LFW subset: 100 faces and 100 non-faces, grey 25 x 25 (face detection).

    Returns:
        Images ``(200, 1, S, S)``; ``targets`` 1 for a face, 0 for background;
        ``classes`` ``["non-face", "face"]``.
    """
    import skimage.data

    arr = _to_float(skimage.data.lfw_subset())
    images = torch.from_numpy(np.round(arr * 255).astype(np.uint8))[:, None]
    targets = np.r_[np.ones(100, dtype=np.int64), np.zeros(len(arr) - 100, dtype=np.int64)]
    return TensorImageDataset(_upscale(images, image_size), targets, classes=["non-face", "face"],
                              name="lfw_subset", target_name="face", transform=transform)


def load_digits_dataset(
    *,
    image_size: int | None = None,
    rgb: bool = False,
    transform: Callable[[torch.Tensor], Any] | None = None,
) -> TensorImageDataset:
    """scikit-learn's handwritten digits (1,797 images, 8 x 8, ten classes) as a dataset.

    Args:
        image_size: upscale to this side (bilinear), e.g. 28 or 32.
        rgb: repeat the grey channel three times.
        transform: applied to each float image on indexing.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8))[:, None]
    images = _upscale(images, image_size)
    if rgb:
        images = images.expand(-1, 3, -1, -1).contiguous()
    return TensorImageDataset(images, bunch.target, classes=[str(i) for i in range(10)], name="digits",
                              target_name="digit", transform=transform)


# ----------------------------------------------------------------------- CIFAR-10
def _cifar_remote() -> tuple[str, str, str]:
    from torchvision.datasets import CIFAR10

    return CIFAR10.url, CIFAR10.filename, CIFAR10.tgz_md5


def download_cifar10(root: Path | str | None = None, *, fetch: Callable[[str, BinaryIO], None] | None = None) -> Path:
    """Download CIFAR-10 (163 MB, md5-checked) and unpack it to ``root/cifar-10-batches-py``."""
    root = data_dir() if root is None else Path(root)
    folder = root / DATASET_MARKERS["cifar10"]
    if folder.is_dir():
        return folder
    url, filename, md5 = _cifar_remote()
    archive = download_file(url, root / filename, md5=md5, fetch=fetch)
    try:
        return extract_archive(archive, folder)
    finally:
        archive.unlink(missing_ok=True)


def _cifar_md5s() -> dict[str, str]:
    """The official md5 of each CIFAR-10 batch file (torchvision's list)."""
    from torchvision.datasets import CIFAR10

    return {name: md5 for name, md5 in [*CIFAR10.train_list, *CIFAR10.test_list]}


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch, after its md5 matched the official one (an unverified pickle is never loaded).

    The CIFAR-10 batches are Python pickles and unpickling runs code, so a
    crafted file in a shared data directory could run anything; like
    torchvision, only files with the published md5 are unpickled.
    """
    expected = _cifar_md5s().get(path.name)
    got = file_digest(path, "md5")
    if expected is None or got != expected:
        raise DataFormatError(
            f"{path} is not an official CIFAR-10 batch (md5 {got}, expected {expected}); it was not read, because "
            "unpickling an unverified file can run arbitrary code. Delete the folder and call "
            "load_cifar10(download=True), or unpack the official cifar-10-python.tar.gz there."
        )
    try:
        with open(path, "rb") as fh:
            entry = pickle.load(fh, encoding="latin1")  # noqa: S301 - md5-verified official file
        data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64)
    except Exception as err:  # noqa: BLE001 - any unpickling/shape problem is a format problem
        raise DataFormatError(f"{path} is not a CIFAR-10 batch ({err}); download CIFAR-10 again "
                              "(delete the folder and call load_cifar10(download=True)).") from err
    if len(labels) != len(data):
        raise DataFormatError(f"{path}: {len(data)} images but {len(labels)} labels; download CIFAR-10 again.")
    return data, labels


def load_cifar10(
    train: bool = True,
    root: Path | str | None = None,
    *,
    download: bool = False,
    transform: Callable[[torch.Tensor], Any] | None = None,
) -> TensorImageDataset:
    """CIFAR-10 from torchvision's layout ``root/cifar-10-batches-py`` (50,000 + 10,000 images, 32 x 32 RGB).

    Args:
        train: the five training batches, or the test batch.
        root: data directory.
        download: download it (md5-checked, atomic) when missing.
        transform: applied to each float image on indexing.
    """
    root = data_dir() if root is None else Path(root)
    folder = root / DATASET_MARKERS["cifar10"]
    if not folder.is_dir():
        if not download:
            raise DatasetNotFoundError(
                f"CIFAR-10 not found at {folder}. Call load_cifar10(download=True) once (163 MB), or unpack "
                f"cifar-10-python.tar.gz there. See {_README}."
            )
        download_cifar10(root)
    files = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise DatasetNotFoundError(f"{folder} lacks {missing}; unpack the complete CIFAR-10 archive there (see {_README}).")
    parts = [_read_cifar_batch(folder / f) for f in files]
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    targets = np.concatenate([p[1] for p in parts])
    return TensorImageDataset(images, targets, classes=list(CIFAR10_CLASSES), name="cifar10", target_name="class",
                              transform=transform)


# -------------------------------------------------------------------- FashionMNIST
def _gunzip_atomic(src: Path, dest: Path) -> None:
    """Decompress ``src`` into ``dest`` through :func:`atomic_write` (complete or absent)."""
    with gzip.open(src, "rb") as fin, atomic_write(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout, length=1 << 20)


def download_fashion_mnist(root: Path | str | None = None, *, fetch: Callable[[str, BinaryIO], None] | None = None) -> Path:
    """Download FashionMNIST (30 MB, md5-checked) into torchvision's layout ``root/FashionMNIST/raw``."""
    from torchvision.datasets import FashionMNIST

    root = data_dir() if root is None else Path(root)
    raw = root / DATASET_MARKERS["fashion_mnist"]
    raw.mkdir(parents=True, exist_ok=True)
    for filename, md5 in FashionMNIST.resources:
        target = raw / filename[: -len(".gz")]
        if target.is_file():
            continue
        gz = download_file(FashionMNIST.mirrors[0] + filename, raw / filename, md5=md5, fetch=fetch)
        _gunzip_atomic(gz, target)
    return raw


def load_fashion_mnist(
    train: bool = True,
    root: Path | str | None = None,
    *,
    download: bool = False,
    transform: Callable[[torch.Tensor], Any] | None = None,
) -> TensorImageDataset:
    """FashionMNIST read by torchvision from ``root/FashionMNIST/raw`` (60,000 + 10,000 images, 28 x 28 grey)."""
    from torchvision.datasets import FashionMNIST

    root = data_dir() if root is None else Path(root)
    raw = root / DATASET_MARKERS["fashion_mnist"]
    if download:
        download_fashion_mnist(root)
    try:
        tv = FashionMNIST(str(root), train=train, download=False)
    except RuntimeError as err:
        raise DatasetNotFoundError(
            f"FashionMNIST not found at {raw} ({err}). Call load_fashion_mnist(download=True) once (30 MB), or put "
            f"the four unzipped *-ubyte files there. See {_README}."
        ) from err
    images = tv.data.to(torch.uint8)[:, None].contiguous()
    return TensorImageDataset(images, tv.targets.numpy(), classes=list(FASHION_MNIST_CLASSES),
                              name="fashion_mnist", target_name="class", transform=transform)


def load_image_classification(
    prefer: Literal["cifar10", "fashion_mnist", "digits"] = "cifar10",
    *,
    train: bool = True,
    root: Path | str | None = None,
    fallback_size: int = 32,
    transform: Callable[[torch.Tensor], Any] | None = None,
) -> TensorImageDataset:
    """A small image-classification data set: the preferred one if present, else the digits.

    The fallback is scikit-learn's digits upscaled to ``fallback_size``
    (RGB when CIFAR-10 was asked for), split 80 / 20 by class (``train``
    chooses the part); a message names the data set it replaces.
    """
    root_path = data_dir() if root is None else Path(root)
    if prefer not in ("cifar10", "fashion_mnist", "digits"):
        raise ValueError(f"prefer={prefer!r}; use 'cifar10', 'fashion_mnist' or 'digits'.")
    if prefer == "cifar10" and (root_path / DATASET_MARKERS["cifar10"]).is_dir():
        return load_cifar10(train, root_path, transform=transform)
    if prefer == "fashion_mnist" and (root_path / DATASET_MARKERS["fashion_mnist"]).is_dir():
        return load_fashion_mnist(train, root_path, transform=transform)
    if prefer != "digits":
        real = {"cifar10": "CIFAR-10", "fashion_mnist": "FashionMNIST"}[prefer]
        print(
            f"[course_utils] {real} is not in {root_path / DATASET_MARKERS[prefer]}: using scikit-learn's digits "
            + ("(8 x 8) instead.\n" if fallback_size in (None, 8)
               else f"(8 x 8, upscaled to {fallback_size} x {fallback_size}) instead.\n")
            + f"  To use {real}, call load_{prefer}(download=True) once or see {_README}."
        )
    ds = load_digits_dataset(image_size=fallback_size, rgb=prefer == "cifar10", transform=transform)
    split = stratified_split(ds.targets, test_fraction=0.2, seed=0)
    return ds.subset(split.train if train else split.test)


def photo_crops(photos: Mapping[str, np.ndarray], *, per_photo: int = 8, size: int = 96, min_scale: float = 0.3,
                max_scale: float = 0.7, seed: int = 0) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """Random square crops of real photos: a retrieval pool whose label is the photo a crop came from.

    Each crop has a side of ``min_scale``..``max_scale`` of the photo's shorter
    side, a random position, a random horizontal flip, and is resized to
    ``size``. Grey photos are repeated to RGB.

    Args:
        photos: ``name -> (H, W)`` or ``(H, W, 3)`` arrays, float in ``[0, 1]`` or ``uint8``.

    Returns:
        ``(images uint8 (N, 3, size, size), labels int64 (N,), names)`` with
        ``N = per_photo * len(photos)`` and ``names[label]`` the photo's name.
    """
    if per_photo < 2:
        raise ValueError(f"per_photo must be >= 2 (a crop needs another of its photo to find), got {per_photo}.")
    if not 0 < min_scale <= max_scale <= 1:
        raise ValueError(f"need 0 < min_scale <= max_scale <= 1, got {min_scale}, {max_scale}.")
    rng = np.random.default_rng(seed)
    crops, labels, names = [], [], []
    for label, (name, photo) in enumerate(photos.items()):
        arr = np.asarray(photo)
        arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        t = torch.from_numpy(np.ascontiguousarray(arr[..., :3])).permute(2, 0, 1)  # (3, H, W)
        h, w = t.shape[1:]
        for _ in range(per_photo):
            side = round(rng.uniform(min_scale, max_scale) * min(h, w))
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            c = t[:, top:top + side, left:left + side]
            if rng.random() < 0.5:
                c = torch.flip(c, dims=[2])
            c = F.interpolate(c[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
            crops.append((c.clamp(0, 1) * 255).round().to(torch.uint8))
            labels.append(label)
        names.append(name)
    return torch.stack(crops), np.asarray(labels, dtype=np.int64), names
