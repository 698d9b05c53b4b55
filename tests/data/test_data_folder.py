"""load_face_folder: your own photos, one folder per person; duplicates; image modes; CSV attributes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from course_utils.data import (
    DataFormatError,
    DatasetNotFoundError,
    DataWarning,
    ImageDecodeError,
    load_face_folder,
    preprocess_face,
)


def _photo(seed: int, size: tuple[int, int] = (40, 48)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = 50 + 150 * (0.5 + 0.5 * np.sin(xx * rng.uniform(0.05, 0.3) + yy * rng.uniform(0.05, 0.3)))
    return np.stack([base, base * 0.8, base * 0.6], -1).astype(np.uint8)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """``people/{subject2,subject10,Zoë Ng}`` in JPEG, PNG, extension-less and nested files, plus notes."""
    root = tmp_path / "people"
    (root / "subject2").mkdir(parents=True)
    (root / "subject10" / "holiday").mkdir(parents=True)
    (root / "Zoë Ng").mkdir(parents=True)
    Image.fromarray(_photo(1)).save(root / "subject2" / "a.jpg", quality=95)
    Image.fromarray(_photo(2)).save(root / "subject2" / "IMG_0002", format="PNG")  # no extension
    Image.fromarray(_photo(3)).save(root / "subject10" / "1.PNG")  # upper-case extension
    Image.fromarray(_photo(4)).save(root / "subject10" / "holiday" / "2.webp", lossless=True)
    Image.fromarray(_photo(5)[..., 0]).save(root / "Zoë Ng" / "face.pgm")
    Image.fromarray(_photo(6)).save(root / "Zoë Ng" / "face2.tif")
    (root / "subject2" / "notes.txt").write_text("not a photo")
    (root / "subject2" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "README").write_text("my photos")
    return root


def test_folder_per_person_keeps_names_formats_and_order(folder: Path) -> None:
    with pytest.warns(DataWarning, match=r"Skipped 1 of 7 files that are not images.*notes.txt"):
        ds = load_face_folder(folder, image_size=16, rgb=True)
    assert ds.classes == ["subject2", "subject10", "Zoë Ng"]  # natural order, names kept
    assert ds.targets.tolist() == [0, 0, 1, 1, 2, 2] and ds.target_name == "identity"
    assert ds.attributes["file"].tolist() == ["subject2/a.jpg", "subject2/IMG_0002", "subject10/1.PNG",
                                              "subject10/holiday/2.webp", "Zoë Ng/face2.tif", "Zoë Ng/face.pgm"]
    assert ds.images.shape == (6, 3, 16, 16) and ds.images.dtype == torch.uint8 and ds.name == "people"
    expected = preprocess_face(Image.open(folder / "subject2" / "IMG_0002"), image_size=16, rgb=True)
    assert np.array_equal(ds.images[1].numpy(), expected)
    x, y = ds[3]
    assert x.shape == (3, 16, 16) and y == 1


def test_folder_errors_say_what_was_found(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_face_folder(tmp_path / "nowhere")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "notes.txt").write_text("x")
    Image.fromarray(_photo(1)).save(flat / "1.jpg")
    with pytest.raises(DataFormatError, match=r"(?s)holds 1\.jpg, notes\.txt.*one folder per person"), pytest.warns(DataWarning, match="1.jpg"):
        load_face_folder(flat)


def test_folder_min_images_and_undecodable(folder: Path) -> None:
    (folder / "subject10" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        with pytest.raises(ImageDecodeError, match="broken.jpg"):
            load_face_folder(folder, image_size=8)
        ds = load_face_folder(folder, image_size=8, on_error="skip")
    assert len(ds) == 6 and "subject10/broken.jpg" not in set(ds.attributes["file"])
    (folder / "solo").mkdir()
    Image.fromarray(_photo(9)).save(folder / "solo" / "x.png")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = load_face_folder(folder, image_size=8, min_images_per_person=2, on_error="skip")
    assert "solo" not in ds.classes and ds.n_classes == 3 and set(ds.targets.tolist()) == {0, 1, 2}
    assert any("fewer than 2 images" in str(w.message) and "solo (1)" in str(w.message) for w in record)


def test_folder_duplicates_reported_once_and_dropped(folder: Path) -> None:
    data = (folder / "subject2" / "a.jpg").read_bytes()
    (folder / "Zoë Ng" / "copy_of_a.jpg").write_bytes(data)
    (folder / "subject10" / "a_again.jpg").write_bytes(data)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = load_face_folder(folder, image_size=8)
    dup = [str(w.message) for w in record if "byte-identical" in str(w.message)]
    assert len(dup) == 1 and "1 group(s) of byte-identical files (2 extra copy/copies)" in dup[0]
    assert len(ds) == 8
    with pytest.warns(DataWarning, match="Dropped 2 file"):
        dropped = load_face_folder(folder, image_size=8, duplicates="drop")
    assert len(dropped) == 6 and "subject2/a.jpg" in set(dropped.attributes["file"])
    with pytest.raises(DataFormatError, match="byte-identical"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        load_face_folder(folder, image_size=8, duplicates="raise")


def test_folder_attributes_csv(folder: Path, tmp_path: Path) -> None:
    csv = tmp_path / "attrs.csv"
    csv.write_text("file,group,age\nsubject2/./a.jpg,A,30\nsubject2\\IMG_0002,A,31\nsubject10/1.PNG,B,40\n"
                   "Zoë Ng/face.pgm,C,22\nghost/1.jpg,C,1\n", encoding="utf-8")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = load_face_folder(folder, image_size=8, attributes_csv=csv)
    messages = " | ".join(str(w.message) for w in record)
    assert "ghost/1.jpg" in messages and "2 of 6 images without a row" in messages
    assert ds.group_columns == ("group", "age")
    got = dict(zip(ds.attributes["file"], ds.attributes["group"].fillna("NA")))
    assert got == {"subject2/a.jpg": "A", "subject2/IMG_0002": "A", "subject10/1.PNG": "B",
                   "subject10/holiday/2.webp": "NA", "Zoë Ng/face2.tif": "NA", "Zoë Ng/face.pgm": "C"}
    twice = tmp_path / "twice.csv"
    twice.write_text("file,group\nsubject2/a.jpg,A\nsubject2/./a.jpg,B\n")
    with pytest.raises(DataFormatError, match="one image, one label"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        load_face_folder(folder, image_size=8, attributes_csv=twice)
    escape = tmp_path / "escape.csv"
    escape.write_text("file,group\n../outside.jpg,A\n")
    with pytest.raises(DataFormatError, match="outside the folder"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        load_face_folder(folder, image_size=8, attributes_csv=escape)


# ---------------------------------------------------------------- image modes
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path: Path, suffix: str) -> None:
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    path = tmp_path / "person" / f"deep{suffix}"
    path.parent.mkdir()
    Image.fromarray(ramp).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I")  # Pillow opens it as 16/32-bit integers
        out = preprocess_face(im, image_size=64, rgb=False)[0]
    oracle = np.clip(np.round(ramp / 257.0), 0, 255).astype(np.uint8)
    assert np.abs(out.astype(int) - oracle.astype(int)).max() <= 1
    assert (out == 255).mean() < 0.01  # clipping made 94 % of such pixels 255
    ds = load_face_folder(tmp_path, image_size=64)
    assert np.abs(ds.images[0, 0].numpy().astype(int) - oracle.astype(int)).max() <= 1


def test_float_and_transparent_images(tmp_path: Path) -> None:
    f = Image.fromarray(np.full((8, 8), 0.5, np.float32), mode="F")
    assert preprocess_face(f, image_size=8, rgb=False).max() == 128  # [0, 1] floats scaled by 255
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:4, :, 3] = 255  # the lower half is fully transparent
    out = preprocess_face(Image.fromarray(rgba, mode="RGBA"), image_size=8, rgb=True)
    assert out[:, 0, 0].tolist() == [200, 0, 0] and out[:, 7, 0].tolist() == [255, 255, 255]


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "p" / "phone.jpg"
    path.parent.mkdir()
    im.save(path, exif=exif, quality=95)
    ds = load_face_folder(tmp_path, image_size=20, rgb=False, cache=False)
    img = ds.images[0, 0].numpy()
    assert img[:5].mean() > 200 and img[-5:].mean() < 50  # white on top after rotation
