"""Data that fails loudly, never silently: cache failures, kills, truncated downloads, odd layouts, duplicates."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import course_utils.data.cache as cache_mod
import course_utils.data.face_files as face_files
import course_utils.settings as settings
from course_utils.data import (
    DataFormatError,
    DataWarning,
    DownloadError,
    download_file,
    extract_archive,
    load_or_build,
    load_orl_faces,
    load_utkface,
    tensor_cache_path,
)
from course_utils.data.cache import atomic_write, clean_stale_temp_files


@pytest.fixture(autouse=True)
def _fresh_cache_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "_CACHE_WARNED", set())


def _payload() -> dict[str, torch.Tensor]:
    return {"images": torch.arange(12, dtype=torch.uint8).reshape(1, 3, 2, 2)}


# ------------------------------------------------------------------ the cache is an accelerator
def test_unwritable_cache_warns_once_and_loads_from_source(monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(cache_mod, "atomic_save", read_only)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(3):
            assert torch.equal(load_or_build("toy", split="a", image_size=2, key="k", build=_payload)["images"],
                               _payload()["images"])
    messages = [str(w.message) for w in record if issubclass(w.category, DataWarning)]
    assert len(messages) == 1 and "cannot be written" in messages[0] and "Read-only" in messages[0]
    assert "COURSE_CACHE_DIR" in messages[0]


def test_full_disk_and_missing_cache_dir_do_not_break_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = torch.save

    def full_disk(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04partial")
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.warns(DataWarning, match="cannot be written.*file write failed"):
        load_or_build("toy", split="b", image_size=2, key="k", build=_payload)
    folder = tensor_cache_path("toy", split="b", image_size=2, key="k").parent
    assert list(folder.iterdir()) == []  # nothing half-written
    monkeypatch.setattr(torch, "save", real_save)

    def no_dir(*parts: str) -> Path:
        raise PermissionError(13, "Permission denied", "/repo/.cache")

    monkeypatch.setattr(cache_mod, "cache_dir", no_dir)
    with pytest.warns(DataWarning, match="cannot be created"):
        assert load_or_build("toy", split="c", image_size=2, key="k", build=_payload)["images"].shape == (1, 3, 2, 2)


def test_corrupted_cache_file_is_rebuilt_with_a_warning_never_advising_unsafe_loading() -> None:
    load_or_build("toy", split="d", image_size=2, key="k", build=_payload)
    path = tensor_cache_path("toy", split="d", image_size=2, key=f"k-v{cache_mod.CACHE_FORMAT}")
    path.write_bytes(path.read_bytes()[:40])  # truncated zip
    with pytest.warns(DataWarning, match="unreadable and is rebuilt") as record:
        out = load_or_build("toy", split="d", image_size=2, key="k", build=_payload)
    assert torch.equal(out["images"], _payload()["images"])
    assert all("weights_only=False" not in str(w.message) for w in record)


def test_swapped_files_with_equal_size_and_mtime_are_not_served_stale(orl_root: Path) -> None:
    before = load_orl_faces(orl_root, image_size=16)
    a, b = orl_root / "orl_faces/s1/1.pgm", orl_root / "orl_faces/s1/2.pgm"
    st_a, st_b = a.stat(), b.stat()
    data_a, data_b = a.read_bytes(), b.read_bytes()
    assert len(data_a) == len(data_b)
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    os.utime(a, ns=(st_a.st_atime_ns, st_a.st_mtime_ns))  # as after unzipping: same sizes and times
    os.utime(b, ns=(st_b.st_atime_ns, st_b.st_mtime_ns))
    after = load_orl_faces(orl_root, image_size=16)
    assert torch.equal(after.images[0], before.images[1]) and torch.equal(after.images[1], before.images[0])


def test_preprocessing_version_is_part_of_the_key(orl_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = face_files.decode_faces
    monkeypatch.setattr(face_files, "decode_faces", lambda *a, **k: calls.append(1) or real(*a, **k))
    load_orl_faces(orl_root, image_size=16)
    load_orl_faces(orl_root, image_size=16)
    assert len(calls) == 1
    monkeypatch.setattr(face_files, "PREPROCESS_VERSION", face_files.PREPROCESS_VERSION + 1)
    load_orl_faces(orl_root, image_size=16)
    assert len(calls) == 2


def test_default_cache_dir_leaves_a_read_only_repository(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    writable = settings._writable
    monkeypatch.delenv("COURSE_CACHE_DIR")
    monkeypatch.setattr(settings, "IN_REPO", True)
    monkeypatch.setattr(settings, "_writable", lambda folder: True)
    assert settings.get_settings().cache_dir == settings._REPO_ROOT / ".cache"
    monkeypatch.setattr(settings, "_writable", lambda folder: False)
    import platformdirs

    assert settings.get_settings().cache_dir == Path(platformdirs.user_cache_dir("course_utils", appauthor=False))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert writable(tmp_path / "new" / "deeper")
        if os.geteuid() != 0:  # root may write anywhere
            assert not writable(ro / ".cache")
    finally:
        ro.chmod(0o700)


# ------------------------------------------------------------------ kills and downloads
def test_a_killed_writer_leaves_nothing_that_survives_the_next_run(tmp_path: Path) -> None:
    target = tmp_path / "big.pt"
    target.write_bytes(b"old complete file")
    code = textwrap.dedent(f"""
        import sys, time
        from course_utils.data.cache import atomic_write
        with atomic_write({str(target)!r}) as fh:
            fh.write(b"x" * 100000)
            fh.flush()
            print("writing", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and target.read_bytes() == b"old complete file"
    with atomic_write(target) as fh:  # the next run
        fh.write(b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.pt"] and target.read_bytes() == b"new"


def test_stale_part_files_are_cleaned_and_live_ones_kept(tmp_path: Path) -> None:
    dead = tmp_path / ".x.zip.999999999-aaaaaaaaaaaa.part"
    dead.write_bytes(b"half")
    (tmp_path / ".x.zip.999999999-bbbbbbbbbbbb.extract").mkdir()
    live = tmp_path / f".x.zip.{os.getpid()}-cccccccccccc.part"
    live.write_bytes(b"in progress")
    old_live = tmp_path / f".y.zip.{os.getpid()}-dddddddddddd.part"
    old_live.write_bytes(b"ancient")
    os.utime(old_live, (time.time() - 3 * 86400,) * 2)
    unrelated = tmp_path / "keep.part"
    unrelated.write_bytes(b"not ours")
    removed = clean_stale_temp_files(tmp_path)
    assert sorted(p.name for p in removed) == sorted([dead.name, ".x.zip.999999999-bbbbbbbbbbbb.extract",
                                                      old_live.name])
    assert live.exists() and unrelated.exists()
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    dead.write_bytes(b"half")
    download_file(src.as_uri(), tmp_path / "x.zip")
    assert not dead.exists()


class _CutHandler(http.server.BaseHTTPRequestHandler):
    body = bytes(range(256)) * 1200

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body[: len(self.body) // 3])  # then the server closes the connection
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def test_download_checks_content_length(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CutHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/att_faces.zip"
        with pytest.raises(DownloadError, match=r"sent 102,400 of the 307,200 bytes.*Content-Length"):
            download_file(url, tmp_path / "att_faces.zip")  # no checksum published: length is the only check
    finally:
        server.shutdown()
    assert list(tmp_path.iterdir()) == []


def test_truncated_archive_is_a_clear_error(tmp_path: Path) -> None:
    archive = tmp_path / "att_faces.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("s1/1.pgm", os.urandom(20000))
    archive.write_bytes(archive.read_bytes()[:5000])
    with pytest.raises(DataFormatError, match="damaged or truncated.*download it again"):
        extract_archive(archive, tmp_path / "orl_faces")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["att_faces.zip"]


# ------------------------------------------------------------------ ORL layout
def _orl(root: Path, fx: SimpleNamespace, subjects: list[str], images: int = 10) -> Path:
    for s in subjects:
        for i in range(1, images + 1):
            seed = 100 * int(s[1:]) + i + (5000 if s.startswith("s0") else 0)
            fx.write_image(root / "orl_faces" / s / f"{i}.pgm", fx.pattern(seed, (12, 10)))
    return root


def test_orl_layout_official_is_silent(tmp_path: Path, fx: SimpleNamespace) -> None:
    root = _orl(tmp_path, fx, [f"s{k}" for k in range(1, 41)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        ds = load_orl_faces(root, image_size=8, cache=False)
    assert len(ds) == 400 and ds.classes[:3] == ["s1", "s2", "s3"]


@pytest.mark.parametrize("change", ["s41", "drop_s7", "upper_case", "stray"])
def test_orl_layout_deviations_are_named(tmp_path: Path, fx: SimpleNamespace, change: str) -> None:
    root = _orl(tmp_path, fx, [f"s{k}" for k in range(1, 41)])
    folder = root / "orl_faces"
    if change == "s41":
        _orl(root, fx, ["s41"])
        expected, n = r"found 41 subject\(s\).*extra subject folder\(s\) s41", 410
    elif change == "drop_s7":
        for f in (folder / "s7").iterdir():
            f.unlink()
        (folder / "s7").rmdir()
        expected, n = r"found 39 subject\(s\).*missing subject folder\(s\) s7", 390
    elif change == "upper_case":
        (folder / "s3" / "3.pgm").rename(folder / "s3" / "3.PGM")
        n = 400
        with warnings.catch_warnings():
            warnings.simplefilter("error", DataWarning)
            assert len(load_orl_faces(root, image_size=8, cache=False)) == n  # 3.PGM counts, silently
        return
    else:
        (folder / "s5" / "11.jpg").write_bytes(b"x")
        (folder / "extra").mkdir()
        expected, n = r"ignored entries: extra/, s5/11.jpg", 400
    with pytest.warns(DataWarning, match=expected):
        assert len(load_orl_faces(root, image_size=8, cache=False)) == n


def test_orl_two_folders_for_one_subject_raise(tmp_path: Path, fx: SimpleNamespace) -> None:
    root = _orl(tmp_path, fx, ["s1", "s01", "s2"], images=2)
    with pytest.raises(DataFormatError, match="two folders for the same subject: s1 and s01|s01 and s1"):
        load_orl_faces(root, cache=False)


# ------------------------------------------------------------------ duplicates
def test_utkface_second_folder_of_reencoded_copies(utk_root: Path, fx: SimpleNamespace) -> None:
    from PIL import Image

    src = utk_root / "utkface" / "UTKFace"
    copies = utk_root / "utkface" / "crop_part1"
    copies.mkdir()
    names = sorted(fx.UTK_GOOD)[:3]
    for name in names:  # re-encoded: same names, other bytes
        Image.open(src / name).save(copies / name, format="JPEG", quality=70)
    (src / "30_1_2_20170101000000000.jpg.chip.jpg").write_bytes((src / names[3 % len(names)]).read_bytes())
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = load_utkface(utk_root, image_size=8)
    dup = [str(w.message) for w in record if "more than one folder" in str(w.message)]
    assert len(dup) == 1
    assert "3 file name(s) appear in more than one folder (3 extra file(s))" in dup[0]
    assert "1 group(s) of byte-identical files (1 extra copy/copies)" in dup[0]
    assert len(ds) == 5 + 3 + 1  # counted twice, but said so
    with pytest.warns(DataWarning, match="Dropped 4 file"):
        clean = load_utkface(utk_root, image_size=8, duplicates="drop")
    assert len(clean) == 5 and clean.attributes["file"].str.startswith("UTKFace/").all()
