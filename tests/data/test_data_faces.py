"""ORL, LFW, UTKFace loaders and face preprocessing on fixtures written in the official formats."""

from __future__ import annotations

import hashlib
import io
import tarfile
import warnings
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import course_utils.data.face_files as face_files
import course_utils.data.lfw as lfw
import course_utils.data.orl as orl
from course_utils.data import (
    DataFormatError,
    DatasetNotFoundError,
    DataWarning,
    ImageDecodeError,
    RemoteFile,
    download_lfw,
    download_orl_faces,
    load_face_identities,
    load_lfw_pairs,
    load_lfw_people,
    load_orl_faces,
    load_utkface,
    parse_lfw_pairs,
    parse_utkface_name,
    utkface_subsample,
    preprocess_face,
)


def expected_square(array: np.ndarray, size: int, crop=None) -> np.ndarray:
    """Oracle: centred square crop then PIL bilinear resize."""
    img = Image.fromarray(array)
    w, h = img.size
    left, top, right, bottom = crop or (0, 0, 1, 1)
    x0, y0, x1, y1 = left * w, top * h, right * w, bottom * h
    side = min(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    box = (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))
    return np.asarray(img.crop(box).resize((size, size), Image.Resampling.BILINEAR))


# ------------------------------------------------------------------ preprocessing
def test_preprocess_face_centre_square_and_channels() -> None:
    arr = np.zeros((112, 92), dtype=np.uint8)
    arr[:10] = 255  # the 10 rows the centred 92 x 92 square drops at the top
    arr[10:56] = 100
    out = preprocess_face(Image.fromarray(arr), image_size=46, rgb=False)
    assert out.shape == (1, 46, 46) and out.dtype == np.uint8
    assert out[0, 0].max() == 100  # no white: the top band was cropped away
    rgb = preprocess_face(Image.fromarray(arr), image_size=46, rgb=True)
    assert rgb.shape == (3, 46, 46) and np.array_equal(rgb[0], rgb[2])


# ------------------------------------------------------------------ ORL
def test_orl_folder_loader_reads_subjects_in_numeric_order(orl_root: Path, fx: SimpleNamespace) -> None:
    ds = load_orl_faces(orl_root, image_size=32)
    n = len(fx.ORL_SUBJECTS) * fx.ORL_IMAGES
    assert len(ds) == n and ds.images.shape == (n, 1, 32, 32) and ds.images.dtype == torch.uint8
    assert ds.classes == ["s1", "s2", "s10"]
    assert ds.targets.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert ds.attributes["image"].tolist()[:4] == [1, 2, 3, 4]
    oracle = expected_square(fx.pattern(100 * 10 + 3, (112, 92)), 32)
    assert np.array_equal(ds.images[10, 0].numpy(), oracle)
    x, y = ds[10]
    assert y == 2 and x.shape == (1, 32, 32) and 0 <= x.min() and x.max() <= 1
    rgb = load_orl_faces(orl_root, image_size=32, rgb=True)
    assert rgb.images.shape == (n, 3, 32, 32) and torch.equal(rgb.images[:, 0], ds.images[:, 0])


def test_orl_uses_the_data_dir_setting(orl_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(orl_root))
    assert len(load_orl_faces(image_size=16)) == 12


def test_orl_second_load_comes_from_the_cache(orl_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_orl_faces(orl_root, image_size=24)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although cached")

    monkeypatch.setattr(face_files, "read_face", no_decoding)
    second = load_orl_faces(orl_root, image_size=24)
    assert torch.equal(first.images, second.images)
    with pytest.raises(AssertionError, match="decoded again"):
        load_orl_faces(orl_root, image_size=20)  # another size is another cache entry
    with pytest.raises(AssertionError, match="decoded again"):
        load_orl_faces(orl_root, image_size=24, cache=False)


def test_orl_cache_is_invalidated_when_a_file_changes(orl_root: Path, fx: SimpleNamespace) -> None:
    before = load_orl_faces(orl_root, image_size=16)
    fx.write_image(orl_root / "orl_faces" / "s1" / "1.pgm", np.full((112, 92), 200, dtype=np.uint8))
    after = load_orl_faces(orl_root, image_size=16)
    assert after.images[0].float().mean().item() == pytest.approx(200)
    assert not torch.equal(before.images[0], after.images[0])


def test_orl_missing_data_dir_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        load_orl_faces(tmp_path / "nowhere")
    message = str(info.value)
    assert "nowhere" in message and "does not exist" in message and "data/README.md" in message
    assert "download_orl_faces" in message


def test_orl_empty_folders_give_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "orl_faces").mkdir()
    with pytest.raises(DataFormatError, match="no subject folders"):
        load_orl_faces(tmp_path, source="folder")
    (tmp_path / "orl_faces" / "s1").mkdir()
    with pytest.raises(DataFormatError, match=r"s1 is empty"):
        load_orl_faces(tmp_path)


def test_orl_corrupted_image_names_the_file(orl_root: Path, fx: SimpleNamespace) -> None:
    bad = orl_root / "orl_faces" / "s2" / "3.pgm"
    fx.truncate(bad, 0.3)
    with pytest.raises(ImageDecodeError) as info:
        load_orl_faces(orl_root)
    assert str(bad) in str(info.value) and "on_error='skip'" in str(info.value)
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ImageDecodeError, match="3.pgm"):
        load_orl_faces(orl_root)


def _olivetti_mat(path: Path, faces: np.ndarray) -> str:
    """Write ``faces`` (N, 64, 64) the way olivettifaces.mat stores them; return its sha256."""
    from scipy.io import savemat

    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), {"faces": faces.transpose(0, 2, 1).reshape(len(faces), -1).T})
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_orl_sklearn_source_reads_the_mat_never_the_pickle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    faces_in = rng.integers(0, 256, (20, 64, 64)).astype(np.float64)
    faces_in[0, 0, 0], faces_in[0, 0, 1] = 0, 255
    src = tmp_path / "src" / "olivettifaces.mat"
    sha = _olivetti_mat(src, faces_in)
    monkeypatch.setattr(orl, "OLIVETTI_MAT", RemoteFile(src.as_uri(), "olivettifaces.mat", sha256=sha))
    home = tmp_path / "scikit_learn_data"
    home.mkdir()
    marker = tmp_path / "pwned"
    import pickle

    class Evil:
        def __reduce__(self):
            return (eval, (f"open({str(marker)!r}, 'w').write('ran')",))

    (home / "olivetti.pkz").write_bytes(pickle.dumps(Evil()))  # a crafted scikit-learn cache
    with pytest.raises(DatasetNotFoundError, match=r"(?s)source='sklearn', download=True.*olivetti.pkz is never read"):
        load_orl_faces(tmp_path)  # auto: no folder, no .mat
    assert not marker.exists()
    ds = load_orl_faces(tmp_path, source="sklearn", download=True, image_size=64)
    assert (home / "olivettifaces.mat").is_file() and not marker.exists()
    assert ds.images.shape == (20, 1, 64, 64) and ds.classes == ["s1", "s2"] and ds.targets.tolist() == [0] * 10 + [1] * 10
    assert np.array_equal(ds.images[5, 0].numpy(), faces_in[5].astype(np.uint8))  # 0..255 scaled back exactly
    small = load_orl_faces(tmp_path, image_size=32, rgb=True)  # auto now finds the .mat
    assert small.images.shape == (20, 3, 32, 32)
    (home / "olivettifaces.mat").write_bytes(b"MATLAB 5.0 tampered")
    with pytest.raises(DataFormatError, match="sha256"):
        load_orl_faces(tmp_path, source="sklearn")


def make_orl_zip(path: Path, fx: SimpleNamespace, *, n_subjects: int = 40, wrapper: str = "att_faces") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{wrapper}/README", "ORL")
        for s in range(1, n_subjects + 1):
            for i in range(1, 11):
                pgm = io.BytesIO()
                Image.fromarray(fx.pattern(s * 10 + i, (12, 10))).save(pgm, format="PPM")  # grey: binary PGM (P5)
                assert pgm.getvalue().startswith(b"P5")
                zf.writestr(f"{wrapper}/s{s}/{i}.pgm", pgm.getvalue())
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def test_download_orl_faces_verifies_structure_atomically(tmp_path: Path, fx: SimpleNamespace) -> None:
    good = make_orl_zip(tmp_path / "good.zip", fx)
    root = tmp_path / "data"
    folder = download_orl_faces(root, remote=RemoteFile((tmp_path / "good.zip").as_uri(), "att_faces.zip",
                                                        sha256=hashlib.sha256(good).hexdigest()))
    assert folder == root / "orl_faces" and len(list(folder.glob("s*/*.pgm"))) == 400
    assert sorted(p.name for p in root.iterdir()) == ["orl_faces"]  # archive removed, nothing else left
    assert len(load_orl_faces(root, image_size=8)) == 400

    make_orl_zip(tmp_path / "short.zip", fx, n_subjects=3)
    root2 = tmp_path / "data2"
    with pytest.raises(DataFormatError, match="s4 has 0 PGM"):
        download_orl_faces(root2, remote=RemoteFile((tmp_path / "short.zip").as_uri(), "att_faces.zip"))
    assert list(root2.iterdir()) == []


# ------------------------------------------------------------------ LFW
def test_lfw_people_min_faces_and_max_people(lfw_root: Path, fx: SimpleNamespace) -> None:
    ds = load_lfw_people(lfw_root, min_faces_per_person=2, image_size=20)
    assert ds.classes == ["Ada_Lovelace", "Alan_Turing", "Grace_Hopper"]
    assert np.bincount(ds.targets).tolist() == [3, 5, 2]
    assert ds.images.shape == (10, 1, 20, 20)
    oracle = expected_square(np.asarray(Image.open(lfw_root / "lfw/Alan_Turing/Alan_Turing_0002.jpg").convert("L")),
                             20, lfw.LFW_CROP)
    assert np.abs(ds.images[4, 0].numpy().astype(int) - oracle.astype(int)).max() <= 1
    top = load_lfw_people(lfw_root, min_faces_per_person=1, max_people=2, image_size=20, rgb=True)
    assert top.classes == ["Ada_Lovelace", "Alan_Turing"] and top.images.shape[1] == 3
    with pytest.raises(ValueError, match="min_faces_per_person"):
        load_lfw_people(lfw_root, min_faces_per_person=50)


def test_lfw_people_skips_corrupted_images_with_one_counted_warning(lfw_root: Path, fx: SimpleNamespace) -> None:
    fx.truncate(lfw_root / "lfw/Alan_Turing/Alan_Turing_0003.jpg", 0.2)
    (lfw_root / "lfw/Alan_Turing/Alan_Turing_0004.jpg").write_bytes(b"")
    with pytest.raises(ImageDecodeError, match="Alan_Turing_0003.jpg"):
        load_lfw_people(lfw_root, min_faces_per_person=2, image_size=16)
    with pytest.warns(DataWarning, match=r"Skipped 2 of 10 images") as record:
        ds = load_lfw_people(lfw_root, min_faces_per_person=2, image_size=16, on_error="skip")
    assert len([w for w in record if issubclass(w.category, DataWarning)]) == 1
    assert len(ds) == 8 and np.bincount(ds.targets).tolist() == [3, 3, 2]
    assert "Alan_Turing_0003.jpg" not in ds.attributes["file"].tolist()


def test_parse_lfw_pairs_folds_and_labels(lfw_root: Path) -> None:
    table = parse_lfw_pairs(lfw_root / "lfw" / "pairs.txt")
    assert table["same"].tolist() == [True, False, True, False]
    assert table["fold"].tolist() == [0, 0, 1, 1]
    assert table.iloc[1].tolist() == ["Ada_Lovelace", 1, "Grace_Hopper", 2, False, 0]
    dev = parse_lfw_pairs(lfw_root / "lfw" / "pairsDevTest.txt")
    assert dev["same"].tolist() == [True, True, False, False] and set(dev["fold"]) == {0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1\t1\nA\t1\t2\nB\t1\n", r"line 3: 'B\\t1' is not a mismatched"),
        ("1\t1\nA\tx\t2\nB\t1\tC\t2\n", r"line 2: .* is not a matched"),
        ("1\t2\nA\t1\t2\nB\t1\tC\t2\n", "announces 4 pairs"),
        ("ten\nA\t1\t2\n", "line 1: header"),
        ("", "is empty"),
    ],
)
def test_parse_lfw_pairs_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=message):
        parse_lfw_pairs(path)


def test_load_lfw_pairs_builds_pairs_over_distinct_images(lfw_root: Path) -> None:
    pairs = load_lfw_pairs("10_folds", lfw_root, image_size=16)
    assert len(pairs) == 4 and pairs.same.tolist() == [True, False, True, False]
    assert pairs.folds.tolist() == [0, 0, 1, 1]
    assert len(pairs.base) == 8  # distinct (name, number) pairs
    (x1, x2), same = pairs[1]
    assert same == 0 and x1.shape == (1, 16, 16)
    i, j = pairs.pairs[1]
    assert pairs.base.attributes.iloc[i].tolist() == ["Ada_Lovelace", 1]
    assert pairs.base.attributes.iloc[j].tolist() == ["Grace_Hopper", 2]
    assert torch.equal(x2, pairs.base[int(j)][0])
    test = load_lfw_pairs("test", lfw_root, image_size=16)
    assert test.same.tolist() == [True, True, False, False]
    with pytest.raises(DatasetNotFoundError, match="pairsDevTrain.txt"):
        load_lfw_pairs("train", lfw_root, source="folder")


def test_load_lfw_pairs_missing_image_is_named(lfw_root: Path) -> None:
    (lfw_root / "lfw/Lone_Person/Lone_Person_0001.jpg").unlink()
    with pytest.raises(DataFormatError, match="Lone_Person_0001.jpg"):
        load_lfw_pairs("10_folds", lfw_root)


def test_download_lfw_from_local_urls(tmp_path: Path, lfw_root: Path) -> None:
    # build an archive like lfw-funneled.tgz (a top folder lfw_funneled/<Name>/...) and local pair files
    archive = tmp_path / "lfw-funneled.tgz"
    with tarfile.open(archive, "w:gz") as tf:
        for person in (lfw_root / "lfw").iterdir():
            if person.is_dir():
                tf.add(person, arcname=f"lfw_funneled/{person.name}")
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    pair_files = {
        key: RemoteFile((lfw_root / "lfw" / name).as_uri(), name, sha256=digest(lfw_root / "lfw" / name))
        for key, name in (("10_folds", "pairs.txt"), ("test", "pairsDevTest.txt"))
    }
    root = tmp_path / "fresh"
    folder = download_lfw(root, archives={True: RemoteFile(archive.as_uri(), archive.name, sha256=digest(archive))},
                          pair_files=pair_files)
    assert folder == root / "lfw" and (folder / "pairs.txt").is_file()
    assert not (root / archive.name).exists()
    assert load_lfw_people(root, min_faces_per_person=2, image_size=8).classes == [
        "Ada_Lovelace", "Alan_Turing", "Grace_Hopper"]
    bad = {True: RemoteFile(archive.as_uri(), archive.name, sha256="0" * 64)}
    root2 = tmp_path / "fresh2"
    with pytest.raises(Exception, match="sha256"):
        download_lfw(root2, archives=bad, pair_files=pair_files)
    assert not (root2 / "lfw").exists() and list(root2.iterdir()) == []


def test_lfw_missing_everywhere_says_how_to_download(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="download_lfw"):
        load_lfw_people(tmp_path)


# ------------------------------------------------------------------ UTKFace
def test_parse_utkface_name() -> None:
    assert parse_utkface_name("25_0_1_20170116174525125.jpg.chip.jpg") == (25, 0, 1)
    assert parse_utkface_name("71_1_4_20170120134639935.jpg") == (71, 1, 4)
    for bad in ("39_1_20170116174525125.jpg.chip.jpg", "25_2_1_2017.jpg", "25_0_5_2017.jpg", "117_0_0_1.jpg", "x.jpg"):
        assert parse_utkface_name(bad) is None


def test_utkface_subsample_is_one_seeded_permutation() -> None:
    """03 and 06 describe the same faces: the rows are the first n of rng(seed).permutation."""
    rows = utkface_subsample(30, 10)
    assert rows.tolist() == np.random.default_rng(0).permutation(30)[:10].tolist()
    assert len(set(rows.tolist())) == 10 and rows.max() < 30
    assert sorted(utkface_subsample(30, None).tolist()) == list(range(30))
    assert utkface_subsample(30, 10, seed=1).tolist() != rows.tolist()
    assert len(utkface_subsample(5, 10)) == 5


def test_utkface_skips_malformed_names_with_one_counted_warning(utk_root: Path, fx: SimpleNamespace) -> None:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = load_utkface(utk_root, image_size=16)
    data_warnings = [w for w in record if issubclass(w.category, DataWarning)]
    assert len(data_warnings) == 1
    assert f"Skipped {len(fx.UTK_BAD)} of {len(fx.UTK_GOOD) + len(fx.UTK_BAD)}" in str(data_warnings[0].message)
    assert len(ds) == len(fx.UTK_GOOD) and ds.images.shape == (5, 3, 16, 16)
    by_file = {Path(f).name: row for f, row in zip(ds.attributes["file"], ds.attributes.itertuples())}
    for name, (age, gender, race) in fx.UTK_GOOD.items():
        row = by_file[name]
        assert row.age == age
        assert row.gender == ("Male", "Female")[gender]
        assert row.race == ("White", "Black", "Asian", "Indian", "Others")[race]
    assert by_file["1_1_2_20161219140623097.jpg.chip.jpg"].age_bin == "0-2"
    assert by_file["71_0_0_20170120134639935.jpg"].age_bin == "more than 70"
    assert ds.classes == ["White", "Black", "Asian", "Indian", "Others"]
    assert ds.targets.tolist() == [ds.classes.index(r) for r in ds.attributes["race"]]
    assert ds.with_target("gender").classes == ["Male", "Female"]


def test_utkface_errors(tmp_path: Path, utk_root: Path, fx: SimpleNamespace) -> None:
    with pytest.raises(DatasetNotFoundError, match="UTKFace"):
        load_utkface(tmp_path / "nothing")
    (tmp_path / "empty" / "utkface").mkdir(parents=True)
    with pytest.raises(DataFormatError, match="no .jpg"):
        load_utkface(tmp_path / "empty")
    fx.truncate(utk_root / "utkface/UTKFace/71_0_0_20170120134639935.jpg", 0.3)
    with pytest.warns(DataWarning), pytest.raises(ImageDecodeError, match="71_0_0"):
        load_utkface(utk_root)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert len(load_utkface(utk_root, on_error="skip", image_size=8)) == 4
    messages = [str(w.message) for w in record if issubclass(w.category, DataWarning)]
    assert len(messages) == 2  # one for the malformed names, one for the undecodable file
    assert "Skipped 1 of 5 images that could not be decoded" in messages[1] and "71_0_0" in messages[1]


# ------------------------------------------------------------------ fallbacks
def test_face_identities_falls_back_to_synthfaces_and_says_so(capsys: pytest.CaptureFixture) -> None:
    ds = load_face_identities(image_size=32)  # the data directory (COURSE_DATA_DIR) has no ORL
    out = capsys.readouterr().out
    assert "ORL/AT&T" in out and "SynthFaces" in out and "data/README.md" in out and "COURSE_DATA_DIR" in out
    assert ds.name == "synthfaces" and ds.images.shape == (400, 1, 32, 32) and ds.n_classes == 40


def test_face_identities_never_replaces_a_folder_you_named(orl_root: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    mine = tmp_path / "mine"
    for k in range(2):
        for name in ("alice", "bob"):
            (mine / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((20, 20), 40 * k + 7 + (name == "bob"), np.uint8)).save(mine / name / f"{k}.png")
    with pytest.raises(DatasetNotFoundError, match=r"(?s)holds alice/, bob/.*Expected .*orl_faces/s1.*'folder'"):
        load_face_identities("orl", root=mine, image_size=16)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_face_identities("orl", root=tmp_path / "typo", image_size=16)
    with pytest.raises(DatasetNotFoundError, match="lfw"):
        load_face_identities("lfw", root=orl_root, image_size=16)
    assert capsys.readouterr().out == ""  # no fallback message: nothing was replaced
    ds = load_face_identities("folder", root=mine, image_size=16)
    assert ds.classes == ["alice", "bob"] and len(ds) == 4


def test_face_identities_uses_real_orl_without_message(orl_root: Path, capsys: pytest.CaptureFixture) -> None:
    ds = load_face_identities(root=orl_root, image_size=16)
    assert ds.name == "orl_faces" and len(ds) == 12
    assert capsys.readouterr().out == ""


def test_lfw_sklearn_source_reads_the_folder_never_the_joblib_cache(lfw_root: Path, tmp_path: Path) -> None:
    """scikit-learn's lfw_home holds the extracted images and a joblib cache (pickles); only the images are read."""
    import pickle
    import shutil

    home = lfw_root / "scikit_learn_data" / "lfw_home"
    home.mkdir(parents=True)
    shutil.move(str(lfw_root / "lfw"), str(home / "lfw_funneled"))
    for name in ("pairs.txt", "pairsDevTest.txt"):
        shutil.move(str(home / "lfw_funneled" / name), str(home / name))
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (eval, (f"open({str(marker)!r}, 'w').write('ran')",))

    cached = home / "joblib" / "sklearn" / "datasets" / "_lfw" / "_fetch_lfw_people" / "abc"
    cached.mkdir(parents=True)
    (cached / "output.pkl").write_bytes(pickle.dumps(Evil()))
    people = load_lfw_people(lfw_root, source="sklearn", image_size=20, min_faces_per_person=2)
    assert people.classes == ["Ada_Lovelace", "Alan_Turing", "Grace_Hopper"] and len(people) == 10
    auto = load_lfw_people(lfw_root, image_size=20, min_faces_per_person=2)  # auto finds scikit-learn's folder
    assert torch.equal(auto.images, people.images)
    pairs = load_lfw_pairs("test", lfw_root, source="sklearn", image_size=20)
    assert len(pairs) == 4 and pairs.same.tolist() == [True, True, False, False]
    assert not marker.exists()
    with pytest.raises(DatasetNotFoundError, match="joblib cache of LFW is never read"):
        load_lfw_people(lfw_root, source="sklearn", funneled=False)
