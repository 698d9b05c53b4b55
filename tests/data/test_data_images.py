"""Embedded images (scikit-image, scikit-learn) and CIFAR-10 / FashionMNIST on official-format fixtures."""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import course_utils.data.images as images_mod
from course_utils.data import (
    CIFAR10_CLASSES,
    SAMPLE_IMAGE_NAMES,
    DataFormatError,
    DatasetNotFoundError,
    download_cifar10,
    download_fashion_mnist,
    load_cifar10,
    load_digits_dataset,
    load_fashion_mnist,
    load_image_classification,
    load_lfw_subset,
    sample_images,
    sklearn_sample_images,
)


def test_sample_images_ship_offline_as_unit_floats() -> None:
    imgs = sample_images()
    assert tuple(imgs) == SAMPLE_IMAGE_NAMES
    assert imgs["astronaut"].shape == (512, 512, 3) and imgs["camera"].shape == (512, 512)
    for name, img in imgs.items():
        assert img.dtype == np.float32 and 0.0 <= img.min() and img.max() <= 1.0, name
    import skimage.data

    assert np.allclose(imgs["coffee"], skimage.data.coffee() / 255.0, atol=1e-6)
    grey = sample_images(["chelsea"], gray=True)
    assert grey["chelsea"].shape == (300, 451)
    with pytest.raises(ValueError, match="not a bundled sample"):
        sample_images(["eagle"])  # needs a download in recent scikit-image


def test_sklearn_sample_images() -> None:
    imgs = sklearn_sample_images()
    assert set(imgs) == {"china", "flower"} and imgs["china"].shape == (427, 640, 3)
    assert 0 <= imgs["flower"].min() and imgs["flower"].max() <= 1


def test_lfw_subset_faces_then_backgrounds() -> None:
    ds = load_lfw_subset()
    assert ds.images.shape == (200, 1, 25, 25) and ds.targets.tolist() == [1] * 100 + [0] * 100
    import skimage.data

    assert np.allclose(ds.images[7, 0].numpy() / 255.0, skimage.data.lfw_subset()[7], atol=1 / 255)
    assert load_lfw_subset(image_size=64).images.shape == (200, 1, 64, 64)


def test_digits_dataset_matches_sklearn() -> None:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    ds = load_digits_dataset()
    assert ds.images.shape == (1797, 1, 8, 8) and np.array_equal(ds.targets, bunch.target)
    assert np.array_equal(ds.images[10, 0].numpy(), np.round(bunch.images[10] * 255 / 16).astype(np.uint8))
    big = load_digits_dataset(image_size=32, rgb=True)
    assert big.images.shape == (1797, 3, 32, 32)
    assert big.images[0].float().mean().item() == pytest.approx(ds.images[0].float().mean().item(), rel=0.1)


def test_cifar10_reads_the_official_batches(cifar_root: tuple[Path, dict], fx: SimpleNamespace) -> None:
    root, batches = cifar_root
    train = load_cifar10(True, root)
    n = 5 * fx.CIFAR_PER_BATCH
    assert train.images.shape == (n, 3, 32, 32) and train.classes == list(CIFAR10_CLASSES)
    first = batches["data_batch_1"]
    assert train.targets[:3].tolist() == first["labels"]
    assert np.array_equal(train.images[1].numpy().reshape(-1), first["data"][1])  # channel-major rows
    test = load_cifar10(False, root)
    assert len(test) == 4 and test.targets.tolist() == batches["test_batch"]["labels"]


def test_cifar10_missing_and_corrupt(tmp_path: Path, cifar_root: tuple[Path, dict]) -> None:
    with pytest.raises(DatasetNotFoundError, match="download=True"):
        load_cifar10(True, tmp_path / "none")
    root, _ = cifar_root
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataFormatError, match="data_batch_3.*md5"):
        load_cifar10(True, root)
    (root / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DatasetNotFoundError, match="test_batch"):
        load_cifar10(False, root)


def test_download_cifar10_from_a_local_archive(tmp_path: Path, fx: SimpleNamespace, monkeypatch: pytest.MonkeyPatch,
                                               trusted_cifar: dict) -> None:
    src = tmp_path / "src" / "cifar-10-batches-py"
    fx.write_cifar(src)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src, arcname="cifar-10-batches-py")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setattr(images_mod, "_cifar_remote", lambda: (archive.as_uri(), archive.name, md5))
    root = tmp_path / "data"
    ds = load_cifar10(True, root, download=True)
    assert len(ds) == 5 * fx.CIFAR_PER_BATCH
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py"]
    monkeypatch.setattr(images_mod, "_cifar_remote", lambda: (archive.as_uri(), archive.name, "0" * 32))
    with pytest.raises(Exception, match="md5"):
        download_cifar10(tmp_path / "data2")
    assert list((tmp_path / "data2").iterdir()) == []


def test_cifar10_never_unpickles_an_unverified_file(tmp_path: Path, cifar_root: tuple[Path, dict]) -> None:
    """A crafted batch that runs code when unpickled (CI's data directory may be a shared folder)."""
    import pickle

    root, _ = cifar_root
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (eval, (f"open({str(marker)!r}, 'w').write('ran')",))

    (root / "cifar-10-batches-py" / "data_batch_2").write_bytes(pickle.dumps({"data": Evil(), "labels": []}))
    with pytest.raises(DataFormatError, match=r"data_batch_2 is not an official CIFAR-10 batch.*arbitrary code"):
        load_cifar10(True, root)
    assert not marker.exists()


def test_cifar10_md5s_are_torchvisions() -> None:
    from torchvision.datasets import CIFAR10

    md5s = images_mod._cifar_md5s()
    assert md5s["data_batch_1"] == "c99cafc152244af753f735de768cd75f" and len(md5s) == 6
    assert md5s["test_batch"] == dict(CIFAR10.test_list)["test_batch"]


def test_fashion_mnist_via_torchvision(fmnist_root: tuple[Path, dict]) -> None:
    root, files = fmnist_root
    train = load_fashion_mnist(True, root)
    images, _ = files["train-images-idx3-ubyte"]
    labels, _ = files["train-labels-idx1-ubyte"]
    assert train.images.shape == (6, 1, 28, 28) and train.classes[0] == "T-shirt/top"
    assert np.array_equal(train.images[:, 0].numpy(), images) and np.array_equal(train.targets, labels)
    assert len(load_fashion_mnist(False, root)) == 3


def test_fashion_mnist_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="download=True"):
        load_fashion_mnist(True, tmp_path)


def test_download_fashion_mnist_checks_md5_and_unzips(tmp_path: Path, fx: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import FashionMNIST

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    resources = []
    for name, (_, data) in fx.fmnist_files().items():
        gz = gzip.compress(data)
        (mirror / f"{name}.gz").write_bytes(gz)
        resources.append((f"{name}.gz", hashlib.md5(gz).hexdigest()))
    monkeypatch.setattr(FashionMNIST, "mirrors", [mirror.as_uri() + "/"])
    monkeypatch.setattr(FashionMNIST, "resources", resources)
    root = tmp_path / "data"
    ds = load_fashion_mnist(True, root, download=True)
    assert len(ds) == 6
    raw = root / "FashionMNIST" / "raw"
    assert (raw / "train-images-idx3-ubyte").is_file() and not list(raw.glob(".*"))
    resources[0] = (resources[0][0], "0" * 32)
    monkeypatch.setattr(FashionMNIST, "resources", resources)
    with pytest.raises(Exception, match="md5"):
        download_fashion_mnist(tmp_path / "data2")
    assert list((tmp_path / "data2" / "FashionMNIST" / "raw").iterdir()) == []


def test_image_classification_falls_back_to_digits(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    train = load_image_classification(root=tmp_path)
    out = capsys.readouterr().out
    assert "CIFAR-10 is not in" in out and "digits" in out and "load_cifar10(download=True)" in out
    test = load_image_classification(root=tmp_path, train=False)
    assert train.images.shape[1:] == (3, 32, 32) and len(train) + len(test) == 1797
    assert abs(len(test) / 1797 - 0.2) < 0.01
    grey = load_image_classification("fashion_mnist", root=tmp_path, fallback_size=28)
    assert grey.images.shape[1:] == (1, 28, 28) and "FashionMNIST" in capsys.readouterr().out


def test_image_classification_prefers_real_data(cifar_root: tuple[Path, dict], capsys: pytest.CaptureFixture) -> None:
    root, _ = cifar_root
    ds = load_image_classification(root=root)
    assert ds.name == "cifar10" and capsys.readouterr().out == ""
    assert torch.is_tensor(ds[0][0])
