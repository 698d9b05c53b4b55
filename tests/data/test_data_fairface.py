"""FairFace labels and images on fixtures in the official format (``file,age,gender,race,service_test``)."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import course_utils.data.face_files as face_files
from course_utils.data import (
    FAIRFACE_RACES,
    DataFormatError,
    DatasetNotFoundError,
    DataWarning,
    ImageDecodeError,
    load_face_attributes,
    load_fairface,
    load_fairface_labels,
)


def csv_path(root: Path, split: str = "train") -> Path:
    return root / "fairface" / f"fairface_label_{split}.csv"


def data_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, DataWarning)]


def test_labels_are_validated_and_typed(fairface_root: Path) -> None:
    labels = load_fairface_labels("train", fairface_root)
    assert len(labels) == 28 and list(labels.columns) == ["file", "age", "gender", "race", "service_test"]
    assert labels.index.tolist() == list(range(1, 29))  # row numbers as in the file
    assert labels["race"].cat.categories.tolist() == list(FAIRFACE_RACES)
    assert labels["age"].cat.ordered and labels["age"].cat.categories[-1] == "more than 70"
    assert labels.iloc[0].tolist() == ["train/1.jpg", "3-9", "Male", "White", True]
    assert labels["service_test"].tolist()[:2] == [True, False]
    assert labels.groupby(["race", "gender"], observed=True).size().eq(2).all()


def test_full_label_files(fairface_root: Path, tmp_path: Path) -> None:
    assert len(load_fairface_labels("val", fairface_root, full=True)) == 14 + 14
    empty = tmp_path / "other"
    (empty / "fairface").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="labels_full"):
        load_fairface_labels("train", empty, full=True)


def test_wrong_columns_are_named(fairface_root: Path, fx: SimpleNamespace) -> None:
    fx.write_csv(csv_path(fairface_root), [("train/1.jpg", "3-9", "Male")], header="file,age,sex")
    with pytest.raises(DataFormatError) as info:
        load_fairface_labels("train", fairface_root)
    message = str(info.value)
    assert "['gender', 'race']" in message and "file,age,gender,race,service_test" in message
    with pytest.raises(DataFormatError, match="lacks the column"):
        load_fairface_labels("train", fairface_root, on_error="skip")  # columns cannot be skipped


def test_unknown_label_values_name_the_row(fairface_root: Path, fx: SimpleNamespace) -> None:
    rows = fx.fairface_rows("train", 2, 1)
    rows[4] = (rows[4][0], rows[4][1], rows[4][2], "Martian", rows[4][4])
    rows[9] = (rows[9][0], "70+", *rows[9][2:])
    fx.write_csv(csv_path(fairface_root), rows)
    with pytest.raises(DataFormatError) as info:
        load_fairface_labels("train", fairface_root)
    message = str(info.value)
    assert "2 invalid row(s)" in message
    assert "row 5 (line 6): race='Martian'" in message and "East Asian" in message
    assert "row 10 (line 11): age='70+'" in message
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        labels = load_fairface_labels("train", fairface_root, on_error="skip")
    assert len(labels) == 26 and 5 not in labels.index and 10 not in labels.index
    (msg,) = data_warnings(record)
    assert "Skipped 2 of 28" in msg and "Martian" in msg


def test_bad_file_entries_and_duplicates(fairface_root: Path, fx: SimpleNamespace) -> None:
    rows = fx.fairface_rows("train", 2, 1)
    rows[1] = ("../secret.jpg", *rows[1][1:])
    rows[2] = (rows[0][0], *rows[2][1:])  # duplicate of row 1
    fx.write_csv(csv_path(fairface_root), rows)
    with pytest.raises(DataFormatError) as info:
        load_fairface_labels("train", fairface_root)
    assert "row 2 (line 3): file='../secret.jpg'" in str(info.value)
    assert "row 3 (line 4): file='train/1.jpg (the image of row 1 again)'" in str(info.value)


def test_alias_paths_cannot_give_one_image_two_labels(fairface_root: Path, fx: SimpleNamespace) -> None:
    rows = fx.fairface_rows("val", 1, 1)
    rows[3] = ("val/./1.jpg", *rows[3][1:])  # the image of row 1 under another spelling
    rows[5] = ("val\\6.jpg", *rows[5][1:])  # a Windows separator is the same image as val/6.jpg
    fx.write_csv(csv_path(fairface_root, "val"), rows)
    with pytest.raises(DataFormatError, match=r"row 4 \(line 5\): file='val/\./1.jpg \(the image of row 1 again\)'"):
        load_fairface_labels("val", fairface_root)
    with pytest.warns(DataWarning, match="Skipped 1 of 14"):
        labels = load_fairface_labels("val", fairface_root, on_error="skip")
    assert labels.loc[6, "file"] == "val/6.jpg" and labels["file"].is_unique


def test_spreadsheet_saved_csv(fairface_root: Path, fx: SimpleNamespace) -> None:
    """TRUE/FALSE in the unused service_test column, age bins turned into dates, rows counted once."""
    rows = fx.fairface_rows("train", 2, 1)
    rows = [(f, a, g, r, "TRUE" if st == "True" else "FALSE") for f, a, g, r, st in rows]
    rows[2] = (rows[2][0], "09-Mar", rows[2][2], "Martian", rows[2][4])  # two bad cells in one row
    rows[7] = (rows[7][0], "Oct-19", *rows[7][2:])
    rows[8] = (*rows[8][:4], "maybe")
    fx.write_csv(csv_path(fairface_root), rows)
    with pytest.raises(DataFormatError) as info:
        load_fairface_labels("train", fairface_root)
    message = str(info.value)
    assert "has 2 invalid row(s) of 28" in message  # rows, not cells
    assert message.count("row 3 (line 4)") == 1 and "age='09-Mar'; race='Martian'" in message
    assert "2 age value(s) look like dates" in message and "'3-9'" in message
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        labels = load_fairface_labels("train", fairface_root, on_error="skip")
    assert len(labels) == 26  # not every row: TRUE/FALSE are fine
    expected_true = sum(1 for i, r in enumerate(rows) if r[4] == "TRUE" and i not in (2, 7))
    assert labels["service_test"].isna().sum() == 1 and labels["service_test"].sum() == expected_true
    msgs = data_warnings(record)
    assert any("maybe" in m and "set to NA" in m for m in msgs)


@pytest.mark.parametrize("kind", ["utf16", "latin1", "empty", "blank"])
def test_encodings_and_empty_files_name_the_file(fairface_root: Path, fx: SimpleNamespace, kind: str) -> None:
    path = csv_path(fairface_root)
    text = "file,age,gender,race,service_test\n" + "".join(",".join(r) + "\n" for r in fx.fairface_rows("train", 2, 1))
    if kind == "utf16":
        path.write_bytes(text.encode("utf-16"))  # "Unicode text" from a spreadsheet, with a BOM
        assert len(load_fairface_labels("train", fairface_root)) == 28
        return
    if kind == "latin1":
        path.write_bytes(text.replace("Male", "Mâle", 1).encode("latin-1"))
        match = "not UTF-8.*CSV UTF-8"
    else:
        path.write_bytes(b"" if kind == "empty" else b"\n\n  \n")
        match = "is empty"
    with pytest.raises(DataFormatError, match=match) as info:
        load_fairface_labels("train", fairface_root)
    assert str(path) in str(info.value)


def test_empty_and_missing_label_files(fairface_root: Path, tmp_path: Path) -> None:
    csv_path(fairface_root).write_text("file,age,gender,race,service_test\n")
    with pytest.raises(DataFormatError, match="no rows"):
        load_fairface_labels("train", fairface_root)
    with pytest.raises(DatasetNotFoundError) as info:
        load_fairface_labels("val", tmp_path / "missing")
    assert "does not exist" in str(info.value) and "github.com/joojs/fairface" in str(info.value)
    with pytest.raises(ValueError, match="split"):
        load_fairface_labels("test", fairface_root)


def test_load_fairface_images_and_targets(fairface_root: Path, fx: SimpleNamespace) -> None:
    ds = load_fairface("train", fairface_root, image_size=24)
    assert ds.images.shape == (28, 3, 24, 24) and ds.name == "fairface"
    assert ds.classes == list(FAIRFACE_RACES) and ds.group_columns == ("race", "gender", "age")
    assert np.bincount(ds.targets).tolist() == [4] * 7
    assert ds.attributes.loc[5, "file"] == "train/6.jpg" and ds.attributes.loc[5, "row"] == 6
    from PIL import Image

    oracle = np.asarray(Image.open(fairface_root / "fairface" / "train" / "6.jpg").convert("RGB").resize((24, 24), Image.Resampling.BILINEAR))
    diff = np.abs(ds.images[5].permute(1, 2, 0).numpy().astype(int) - oracle.astype(int))
    assert diff.max() <= 8 and diff.mean() < 2  # JPEG decoded at reduced scale (draft mode): close, not equal
    other = np.abs(ds.images[6].permute(1, 2, 0).numpy().astype(int) - oracle.astype(int))
    assert other.mean() > 5 * diff.mean()
    gender = load_fairface("val", fairface_root, image_size=24, target="gender", rgb=False)
    assert gender.classes == ["Male", "Female"] and gender.images.shape == (14, 1, 24, 24)
    assert gender.targets.tolist() == [0 if g == "Male" else 1 for g in gender.attributes["gender"]]


def test_load_fairface_all_and_max_per_group(fairface_root: Path) -> None:
    both = load_fairface("all", fairface_root, image_size=16)
    assert len(both) == 42 and both.attributes["split"].value_counts().to_dict() == {"train": 28, "val": 14}
    capped = load_fairface("train", fairface_root, image_size=16, max_per_group=1, seed=3)
    assert len(capped) == 14
    assert capped.attributes.groupby(["race", "gender"], observed=True).size().eq(1).all()
    assert set(capped.attributes["file"]) <= set(load_fairface_labels("train", fairface_root)["file"])


def test_load_fairface_second_run_does_not_decode(fairface_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_fairface("train", fairface_root, image_size=20)
    monkeypatch.setattr(face_files, "read_face", lambda *a, **k: (_ for _ in ()).throw(AssertionError("decoded")))
    second = load_fairface("train", fairface_root, image_size=20)
    assert torch.equal(first.images, second.images)


def test_truncated_image_raises_or_is_skipped_with_one_warning(fairface_root: Path, fx: SimpleNamespace) -> None:
    fx.truncate(fairface_root / "fairface" / "train" / "3.jpg", 0.4)
    (fairface_root / "fairface" / "train" / "4.jpg").write_bytes(b"\xff\xd8garbage")
    with pytest.raises(ImageDecodeError) as info:
        load_fairface("train", fairface_root, image_size=16)
    assert "train/3.jpg" in str(info.value) and "on_error='skip'" in str(info.value)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = load_fairface("train", fairface_root, image_size=16, on_error="skip")
    (msg,) = data_warnings(record)
    assert "Skipped 2 of 28 images" in msg and "3.jpg" in msg
    assert len(ds) == 26 and "train/3.jpg" not in set(ds.attributes["file"])
    # the skip is remembered by the cache: a cached load still warns, and "raise" still raises
    with pytest.warns(DataWarning, match="Skipped 2 of 28"):
        assert len(load_fairface("train", fairface_root, image_size=16, on_error="skip")) == 26
    with pytest.raises(ImageDecodeError, match="3.jpg"):
        load_fairface("train", fairface_root, image_size=16)


def test_missing_image_file_is_named(fairface_root: Path) -> None:
    (fairface_root / "fairface" / "val" / "7.jpg").unlink()
    with pytest.raises(DataFormatError) as info:
        load_fairface("val", fairface_root)
    assert "val/7.jpg (row 7)" in str(info.value)
    with pytest.warns(DataWarning, match="Skipped 1 of 14 images listed in the labels but missing"):
        assert len(load_fairface("val", fairface_root, image_size=8, on_error="skip")) == 13


def test_face_attributes_fallback_names_fairface(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ds = load_face_attributes(root=tmp_path / "empty", split="val", image_size=32, target="gender")
    out = capsys.readouterr().out
    assert "FairFace is not in" in out and "data/README.md" in out
    assert ds.name == "synthfaces" and ds.target_name == "presentation" and ds.classes == ["feminine", "masculine"]
    assert len(ds) == 700 and ds.group_columns == ("skin_tone", "presentation", "age_group")


def test_face_attributes_uses_fairface_when_present(fairface_root: Path, capsys: pytest.CaptureFixture) -> None:
    ds = load_face_attributes(root=fairface_root, image_size=16)
    assert ds.name == "fairface" and len(ds) == 28 and capsys.readouterr().out == ""
