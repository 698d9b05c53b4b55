"""TensorImageDataset, the decoded-tensor cache, atomic checksummed downloads and extraction."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from course_utils.data import (
    ChecksumError,
    DataFormatError,
    DownloadError,
    TensorImageDataset,
    atomic_save,
    download_file,
    extract_archive,
    fingerprint_files,
    load_or_build,
    tensor_cache_path,
)
from course_utils.settings import get_settings


def small_dataset() -> TensorImageDataset:
    images = torch.arange(4 * 3 * 2 * 2, dtype=torch.uint8).reshape(4, 3, 2, 2) * 5
    attrs = pd.DataFrame({"group": pd.Categorical(["a", "b", "a", "b"]), "x": [10, 11, 12, 13]})
    return TensorImageDataset(images, [0, 0, 1, 2], classes=["p", "q", "r"], attributes=attrs,
                              group_columns=("group",), name="toy", target_name="identity")


def test_dataset_items_are_float_in_unit_range_with_int_targets() -> None:
    ds = small_dataset()
    x, y = ds[3]
    assert x.dtype == torch.float32 and x.shape == (3, 2, 2)
    assert torch.allclose(x, ds.images[3].float() / 255)
    assert y == 2 and isinstance(y, int)
    assert len(ds) == 4 and ds.image_shape == (3, 2, 2) and ds.n_classes == 3
    assert list(ds.groups.columns) == ["group"]
    assert ds.with_transform(lambda t: t * 0 + 7)[0][0].max().item() == 7
    assert ds.transform is None  # with_transform does not change the original


def test_dataset_subset_with_target_and_grayscale() -> None:
    ds = small_dataset()
    sub = ds.subset([2, 0])
    assert sub.targets.tolist() == [1, 0]
    assert sub.attributes["x"].tolist() == [12, 10]
    assert torch.equal(sub.images[0], ds.images[2])
    by_group = ds.with_target("group")
    assert by_group.targets.tolist() == [0, 1, 0, 1] and by_group.classes == ["a", "b"]
    assert by_group.target_name == "group" and ds.target_name == "identity"
    grey = ds.to_grayscale()
    expected = (ds.images.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True).round()
    assert grey.images.shape == (4, 1, 2, 2) and torch.equal(grey.images, expected.to(torch.uint8))
    with pytest.raises(KeyError, match="not an attribute"):
        ds.with_target("nope")


def test_dataset_rejects_inconsistent_inputs() -> None:
    with pytest.raises(ValueError, match="uint8"):
        TensorImageDataset(torch.zeros(2, 1, 2, 2), [0, 1])
    with pytest.raises(ValueError, match="targets"):
        TensorImageDataset(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), [0, 1, 2])
    with pytest.raises(ValueError, match="group_columns"):
        TensorImageDataset(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), [0, 1], group_columns=("race",))


def test_cache_builds_once_then_loads(tmp_path: Path) -> None:
    calls = []

    def build() -> dict[str, torch.Tensor]:
        calls.append(1)
        return {"images": torch.full((2, 1, 3, 3), 9, dtype=torch.uint8), "ok": torch.tensor([True, False])}

    first = load_or_build("toy", split="train", image_size=3, key="k1", build=build)
    second = load_or_build("toy", split="train", image_size=3, key="k1", build=build)
    assert len(calls) == 1
    assert torch.equal(first["images"], second["images"]) and second["ok"].tolist() == [True, False]
    path = tensor_cache_path("toy", split="train", image_size=3, key="k1-v1")
    assert path.is_file() and path.parent == get_settings().cache_dir / "tensors"
    assert not list(path.parent.glob(".*tmp"))  # no temporary file left behind
    load_or_build("toy", split="train", image_size=3, key="k2", build=build)  # another key: rebuilt
    load_or_build("toy", split="train", image_size=3, key="k1", build=build, refresh=True)
    load_or_build("toy", split="train", image_size=3, key="k1", build=build, enabled=False)
    assert len(calls) == 4


def test_cache_rebuilds_an_unreadable_cache_file() -> None:
    build = lambda: {"v": torch.tensor([1, 2, 3])}  # noqa: E731
    load_or_build("toy", split="x", image_size=1, key="k", build=build)
    path = tensor_cache_path("toy", split="x", image_size=1, key="k-v1")
    path.write_bytes(b"garbage")
    assert load_or_build("toy", split="x", image_size=1, key="k", build=build)["v"].tolist() == [1, 2, 3]
    assert torch.load(path, weights_only=True)["v"].tolist() == [1, 2, 3]


def test_atomic_save_keeps_the_old_file_when_saving_fails(tmp_path: Path) -> None:
    target = tmp_path / "x.pt"
    atomic_save({"a": torch.tensor([1])}, target)

    class Unpicklable:
        def __reduce__(self):  # noqa: D105
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_save({"a": Unpicklable()}, target)
    assert torch.load(target, weights_only=True)["a"].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]


def test_fingerprint_changes_with_content_and_file_list(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(b"1")
    b.write_bytes(b"2")
    f1 = fingerprint_files([a, b], root=tmp_path)
    assert f1 == fingerprint_files([str(a), str(b)], root=str(tmp_path))
    assert fingerprint_files([a], root=tmp_path) != f1
    b.write_bytes(b"22")
    assert fingerprint_files([a, b], root=tmp_path) != f1


# ------------------------------------------------------------------ downloads
def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_file_url_verifies_sha256_and_md5(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    payload = bytes(range(256)) * 100
    src.write_bytes(payload)
    dest = tmp_path / "out" / "file.bin"
    got = download_file(src.as_uri(), dest, sha256=sha256(payload), md5=hashlib.md5(payload).hexdigest())
    assert got == dest and dest.read_bytes() == payload
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]


def test_download_with_wrong_checksum_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello")
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(ChecksumError, match="sha256"):
        download_file(src.as_uri(), dest, sha256="0" * 64)
    assert list(dest.parent.iterdir()) == []


def test_interrupted_download_leaves_nothing(tmp_path: Path) -> None:
    def fetch(url: str, out: io.BufferedWriter) -> None:
        out.write(b"partial data")
        raise KeyboardInterrupt  # e.g. the student stops the cell mid-download

    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(KeyboardInterrupt):
        download_file("https://example.invalid/file.bin", dest, sha256="0" * 64, fetch=fetch)
    assert list(dest.parent.iterdir()) == []


def test_network_error_becomes_download_error_naming_url_and_destination(tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError, match="missing.bin") as info:
        download_file((tmp_path / "missing.bin").as_uri(), dest)
    assert str(dest) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_existing_verified_file_is_not_downloaded_again(tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"ok")
    calls = []
    download_file("https://x.invalid/f", dest, sha256=sha256(b"ok"), fetch=lambda u, o: calls.append(u))
    assert calls == []
    # a corrupted existing file is replaced
    download_file("https://x.invalid/f", dest, sha256=sha256(b"ok"), fetch=lambda u, o: o.write(b"ok") and None)
    dest.write_bytes(b"bad")
    download_file("https://x.invalid/f", dest, sha256=sha256(b"ok"), fetch=lambda u, o: o.write(b"ok") and None)
    assert dest.read_bytes() == b"ok"


# ------------------------------------------------------------------ archives
def make_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_extract_tar_moves_the_single_top_folder_into_place(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tgz", {"top/x.txt": b"x", "top/sub/y.txt": b"y"})
    dest = extract_archive(archive, tmp_path / "data" / "thing")
    assert (dest / "x.txt").read_bytes() == b"x" and (dest / "sub" / "y.txt").read_bytes() == b"y"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["thing"]
    with pytest.raises(FileExistsError):
        extract_archive(archive, dest)


def test_extract_zip_verification_failure_leaves_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/1.txt", "1")

    def verify(folder: Path) -> None:
        raise DataFormatError("not the expected archive")

    with pytest.raises(DataFormatError, match="expected archive"):
        extract_archive(archive, tmp_path / "data" / "x", verify=verify)
    assert list((tmp_path / "data").iterdir()) == []


def test_extract_zip_refuses_path_traversal(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(DataFormatError, match="outside"):
        extract_archive(archive, tmp_path / "data" / "x")
    assert not (tmp_path / "escape.txt").exists() and list((tmp_path / "data").iterdir()) == []


def test_extract_rejects_non_archives(tmp_path: Path) -> None:
    bogus = tmp_path / "a.bin"
    bogus.write_bytes(np.arange(100, dtype=np.uint8).tobytes())
    with pytest.raises(DataFormatError, match="neither"):
        extract_archive(bogus, tmp_path / "x")
    assert not (tmp_path / "x").exists()
