"""dlib's published face recogniser, ready to use: detect, align, embed, compare.

The network behind it (``dlib_face_recognition_resnet_model_v1.dat``, see
``docs/models/dlib_face_recognition.md``) was trained by dlib's author on about
3 million faces of 7,485 people and maps an aligned 150 x 150 face chip to a
128-d descriptor; two descriptors closer than :data:`THRESHOLD` (0.6,
Euclidean, on the raw descriptors) are the same person by dlib's published
rule. Nothing here trains: it is the "model trained on millions of faces" the
notebooks compare their own small models with.

Pipeline of :meth:`FaceRecognizer.embed`, per image:

1. decode (path, PIL image or ``uint8`` array; grey becomes RGB);
2. detect faces (dlib's HOG detector, or its CNN detector with
   ``detector="cnn"``) and keep the largest; when none is found the whole
   image is the face box and the ``found`` mask says so (an image is never
   skipped, so row ``i`` of the result always belongs to image ``i``);
3. five landmarks from ``shape_predictor_5_face_landmarks.dat`` and
   ``dlib.get_face_chip(size=150, padding=0.25)``, exactly as dlib's own
   ``compute_face_descriptor`` aligns;
4. the descriptor, by one of two engines: ``"torch"`` (the PyTorch port
   :class:`course_utils.models.dlib_resnet.DlibFaceResNet`, run through
   :func:`course_utils.train.predict` in batches on any device) or ``"dlib"``
   (dlib's own C++ network on the CPU).

Descriptors are cached on disk under ``cache_dir("face_descriptors")``: one
file per setting (engine, precision, detector, alignment, model files' hash)
holding a table content-hash -> descriptor, where the content hash is that of
the decoded pixels. The cache only saves time: a file that cannot be read is
reported once and rebuilt.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from course_utils.data.cache import ImageDecodeError, atomic_save, file_digest
from course_utils.pretrained.dlib_format import (
    INSTALL_HINT,
    FaceModelUnavailableError,
    dlib_model_files,
    faces_disabled,
    load_dlib_resnet,
)
from course_utils.settings import cache_dir, resolve_device
from course_utils.train import make_loader, predict, progress_enabled

__all__ = [
    "CHIP_PADDING",
    "CHIP_SIZE",
    "DESCRIPTOR_DIM",
    "FACES_INSTALL_HINT",
    "THRESHOLD",
    "FaceRecognizer",
    "RecognizerConfig",
    "default_engine",
    "face_distance",
    "face_recognizer",
    "faces_available",
]

#: dlib's published same-person rule: Euclidean distance below 0.6 on the raw
#: (not normalised) 128-d descriptors.
THRESHOLD = 0.6
DESCRIPTOR_DIM = 128
#: Chip side and padding used by dlib's ``compute_face_descriptor``.
CHIP_SIZE = 150
CHIP_PADDING = 0.25
#: Bumped when the layout of the descriptor cache files changes.
_CACHE_FORMAT = 1

#: :data:`~course_utils.pretrained.dlib_format.INSTALL_HINT` with what to do where dlib-bin has no wheel.
FACES_INSTALL_HINT = (
    f"Install the face extra: {INSTALL_HINT} (dlib-bin wheels exist for Python >= 3.11 on "
    "Windows, Linux x86-64 and Apple-silicon macOS). On Linux ARM, Intel macOS or Python 3.10, install dlib "
    "from source (pip install dlib, needs CMake and a C++ compiler) or from conda-forge (conda install -c "
    "conda-forge dlib), then pip install face-recognition-models. On Colab dlib is preinstalled: "
    "pip install face-recognition-models."
)

ImageLike = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor
Engine = Literal["torch", "dlib"]
Detector = Literal["hog", "cnn"]


# --------------------------------------------------------------------------- availability
def _import_dlib() -> Any:
    """The ``dlib`` module, or :class:`FaceModelUnavailableError` with the install command."""
    if faces_disabled():
        raise FaceModelUnavailableError(
            f"COURSE_DISABLE_FACES is set: the face models are turned off. {FACES_INSTALL_HINT}"
        )
    try:
        import dlib
    except ImportError as err:
        raise FaceModelUnavailableError(f"dlib is not installed ({err}). {FACES_INSTALL_HINT}") from err
    return dlib


def faces_available() -> tuple[bool, str]:
    """Whether dlib and its face models can be used here, and why not when they cannot.

    Honours ``COURSE_DISABLE_FACES=1`` (as if nothing were installed), so a
    notebook's fallback path can be tested on a machine that has dlib.

    Returns:
        ``(True, "dlib <version>, models in <folder>")`` or ``(False, reason)``,
        where ``reason`` includes the install command.
    """
    try:
        dlib = _import_dlib()
        files = dlib_model_files()
    except FaceModelUnavailableError as err:
        return False, str(err)
    return True, f"dlib {dlib.__version__}, models in {files['recognition'].parent}"


def _torch_port_importable() -> bool:
    return importlib.util.find_spec("course_utils.models.dlib_resnet") is not None


def default_engine() -> Engine:
    """``"torch"`` when the PyTorch port of dlib's network is importable, else ``"dlib"``."""
    return "torch" if _torch_port_importable() else "dlib"


def face_distance(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> np.ndarray:
    """Euclidean distance between descriptors, broadcast over leading axes.

    Args:
        a, b: descriptors ``(..., 128)`` (e.g. ``(N, 128)`` and ``(N, 128)``, or
            ``(N, 1, 128)`` and ``(1, M, 128)`` for an ``(N, M)`` matrix).

    Returns:
        ``float32`` distances of the broadcast shape without the last axis.
        Compare with :data:`THRESHOLD` on raw descriptors (never normalise first).
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    return np.sqrt(np.sum((a - b) ** 2, axis=-1, dtype=np.float64)).astype(np.float32)


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class RecognizerConfig:
    """How faces are found, aligned and described.

    Attributes:
        engine: ``"torch"`` (the PyTorch port through ``course_utils.train.predict``)
            or ``"dlib"`` (dlib's C++ network, CPU).
        detector: ``"hog"`` (fast, frontal faces) or ``"cnn"`` (dlib's MMOD CNN:
            more poses, slow on a CPU).
        upsample: times the detector upsamples the image first (finds
            smaller faces, slower). 0 suits the course's data, whose faces
            fill most of the image (ORL, FairFace, UTKFace).
        precision: ``"fp32"``, or ``"amp"`` (bf16/fp16 autocast on CUDA; torch engine only).
        batch_size: chips per forward pass of the torch engine.
    """

    engine: Engine = "torch"
    detector: Detector = "hog"
    upsample: int = 0
    precision: Literal["fp32", "amp"] = "fp32"
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.engine not in ("torch", "dlib"):
            raise ValueError(f"engine={self.engine!r}; use 'torch' or 'dlib'.")
        if self.detector not in ("hog", "cnn"):
            raise ValueError(f"detector={self.detector!r}; use 'hog' or 'cnn'.")
        if self.precision not in ("fp32", "amp"):
            raise ValueError(f"precision={self.precision!r}; use 'fp32' or 'amp'.")
        if self.precision == "amp" and self.engine == "dlib":
            raise ValueError("precision='amp' needs engine='torch'; dlib's engine computes in fp32.")
        if self.upsample < 0 or self.batch_size < 1:
            raise ValueError(
                f"upsample={self.upsample}, batch_size={self.batch_size}: use upsample >= 0, batch_size >= 1."
            )


# --------------------------------------------------------------------------- images
def _name(image: Any) -> str:
    return os.fspath(image) if isinstance(image, (str, os.PathLike)) else f"<{type(image).__name__}>"


def _to_rgb(image: ImageLike) -> np.ndarray:
    """Decode one image into a contiguous ``uint8`` array ``(H, W, 3)``.

    Accepts a path, a PIL image, a ``uint8`` array ``(H, W)``, ``(H, W, 1|3|4)``
    or a ``uint8`` tensor ``(C, H, W)`` (the course's layout).

    Raises:
        ImageDecodeError: a file is missing, corrupted or not an image (the message names it).
        TypeError, ValueError: an array of another dtype or shape.
    """
    if isinstance(image, (str, os.PathLike)):
        try:
            with Image.open(image) as im:
                im.load()
                return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            raise ImageDecodeError(
                f"Cannot decode the image {os.fspath(image)}: {err}. The file is missing, corrupted, truncated "
                "or not an image: download it again, or leave it out."
            ) from err
    if isinstance(image, Image.Image):
        return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    if isinstance(image, torch.Tensor):
        if image.dim() == 3 and image.shape[0] in (1, 3, 4) and image.shape[-1] not in (1, 3, 4):
            image = image.permute(1, 2, 0)
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"Cannot read a face from {type(image).__name__}; pass a path, a PIL image or a uint8 array.")
    if image.dtype != np.uint8:
        raise TypeError(
            f"Image arrays must be uint8 (0-255), got {image.dtype}; convert with (x * 255).round().astype(np.uint8)."
        )
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"Image array of shape {image.shape}; use (H, W), (H, W, 1), (H, W, 3) or (H, W, 4).")
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def _as_list(images: ImageLike | Iterable[ImageLike]) -> list[ImageLike]:
    """One image becomes a list of one; a 4-D array ``(N, H, W, C)`` or tensor ``(N, C, H, W)`` a list of N."""
    if isinstance(images, (str, os.PathLike, Image.Image)):
        return [images]
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    if isinstance(images, torch.Tensor):
        return list(images) if images.dim() == 4 else [images]
    return list(images)


def _content_key(rgb: np.ndarray) -> str:
    """Hash of an image's decoded pixels (shape and bytes): the descriptor cache's key."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(rgb.shape).encode())
    h.update(memoryview(np.ascontiguousarray(rgb)).cast("B"))
    return h.hexdigest()


@functools.lru_cache(maxsize=16)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    return file_digest(Path(path))


def _file_hash(path: Path) -> str:
    st = os.stat(path)
    return _digest(os.fspath(path), st.st_size, st.st_mtime_ns)


def _shared(kind: str, path: Path | None, *, device: str = "cpu") -> Any:
    """One loaded model per (kind, file version, device) in this process, shared by all recognisers."""
    if path is None:
        return _load_shared(kind, "", 0, 0, device)
    st = os.stat(path)
    return _load_shared(kind, os.fspath(path), st.st_size, st.st_mtime_ns, device)


@functools.lru_cache(maxsize=8)
def _load_shared(kind: str, path: str, size: int, mtime_ns: int, device: str) -> Any:
    if kind == "torch":  # eval mode; only ever run through predict (no gradients, weights never change)
        return load_dlib_resnet(device=device, path=path)
    dlib = _import_dlib()
    if kind == "hog":
        return dlib.get_frontal_face_detector()
    if kind == "cnn_detector":
        return dlib.cnn_face_detection_model_v1(path)
    if kind == "shape_predictor_5":
        return dlib.shape_predictor(path)
    return dlib.face_recognition_model_v1(path)


# --------------------------------------------------------------------------- descriptor cache
_WARNED: set[str] = set()


class _DescriptorStore:
    """One cache file: content hash -> (descriptor (128,), found)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, tuple[np.ndarray, bool]] = {}
        self.dirty = False
        self._mtime: int | None = None
        self._read()

    def _read(self) -> None:
        if not self.path.is_file():
            return
        try:
            st = os.stat(self.path)
            payload = torch.load(self.path, map_location="cpu", weights_only=True)
            if payload.get("format") != _CACHE_FORMAT:
                return
            desc = payload["descriptors"].numpy().astype(np.float32, copy=False)
            found = payload["found"].numpy().astype(bool, copy=False)
            keys = payload["keys"]
            if desc.shape != (len(keys), DESCRIPTOR_DIM) or found.shape != (len(keys),):
                raise ValueError(f"inconsistent shapes {desc.shape}, {found.shape} for {len(keys)} keys")
        except Exception as err:  # noqa: BLE001 - the cache accelerates, it never decides
            if os.fspath(self.path) not in _WARNED:
                _WARNED.add(os.fspath(self.path))
                warnings.warn(f"The face-descriptor cache {self.path} cannot be read ({err}); "
                              "descriptors are recomputed and the file rewritten.", stacklevel=4)
            return
        for i, key in enumerate(keys):
            self.rows.setdefault(key, (desc[i], bool(found[i])))
        self._mtime = st.st_mtime_ns

    def get(self, key: str) -> tuple[np.ndarray, bool] | None:
        return self.rows.get(key)

    def put(self, key: str, descriptor: np.ndarray, found: bool) -> None:
        self.rows[key] = (np.asarray(descriptor, dtype=np.float32), bool(found))
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        try:  # another process may have added rows since we read: keep theirs too
            if self.path.is_file() and os.stat(self.path).st_mtime_ns != self._mtime:
                mine = self.rows
                self.rows = {}
                self._read()
                self.rows.update(mine)
            keys = list(self.rows)
            payload = {
                "format": _CACHE_FORMAT,
                "keys": keys,
                "descriptors": torch.from_numpy(np.stack([self.rows[k][0] for k in keys]).astype(np.float32)),
                "found": torch.tensor([self.rows[k][1] for k in keys], dtype=torch.bool),
            }
            atomic_save(payload, self.path)
            self._mtime = os.stat(self.path).st_mtime_ns
            self.dirty = False
        except OSError as err:
            if os.fspath(self.path) not in _WARNED:
                _WARNED.add(os.fspath(self.path))
                warnings.warn(f"Cannot write the face-descriptor cache {self.path} ({err}); continuing without it.",
                              stacklevel=3)


# --------------------------------------------------------------------------- the recogniser
class FaceRecognizer:
    """dlib's face detector, 5-point aligner and 128-d descriptor network.

    Build it with :func:`face_recognizer`. Attributes: ``config``
    (:class:`RecognizerConfig`), ``device`` (torch engine), ``threshold``
    (:data:`THRESHOLD`), ``files`` (the model files used).
    """

    threshold: float = THRESHOLD

    def __init__(self, config: RecognizerConfig, *, device: str | torch.device | None = None,
                 cache: bool | str | os.PathLike = True) -> None:
        self._dlib = _import_dlib()
        self.files = dlib_model_files()
        self.config = config
        self.device = resolve_device(device) if config.engine == "torch" else torch.device("cpu")
        self._cache_folder: Path | None
        if cache is True:
            self._cache_folder = cache_dir("face_descriptors")
        elif cache is False or cache is None:
            self._cache_folder = None
        else:
            self._cache_folder = Path(cache)
        self._stores: dict[bool, _DescriptorStore] = {}
        if config.detector == "hog":
            self._detector = _shared("hog", None)
        else:
            self._detector = _shared("cnn_detector", self.files["cnn_detector"])
        self._shape_predictor = _shared("shape_predictor_5", self.files["shape_predictor_5"])

    def __repr__(self) -> str:
        c = self.config
        return (f"FaceRecognizer(engine={c.engine!r}, detector={c.detector!r}, upsample={c.upsample}, "
                f"precision={c.precision!r}, device={str(self.device)!r}, cache={self._cache_folder})")

    # ----------------------------------------------------------------- detection and alignment
    def detect(self, image: ImageLike) -> np.ndarray:
        """Face boxes in ``image``, largest first.

        Returns:
            ``int64`` array ``(K, 4)`` of ``(left, top, right, bottom)`` pixel
            boxes (``(0, 4)`` when no face is found).
        """
        rgb = _to_rgb(image)
        return self._boxes(rgb)

    def _boxes(self, rgb: np.ndarray) -> np.ndarray:
        found = self._detector(rgb, self.config.upsample)
        rects = [getattr(r, "rect", r) for r in found]  # the CNN detector wraps rectangles
        boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], dtype=np.int64).reshape(-1, 4)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return boxes[np.argsort(-area, kind="stable")]

    def _shape(self, rgb: np.ndarray, box: Sequence[int] | np.ndarray | None) -> tuple[Any, bool]:
        """dlib's 5-point shape on ``box`` (default: the largest detection, else the whole image), and face found?"""
        found = True
        if box is None:
            boxes = self._boxes(rgb)
            found = len(boxes) > 0
            box = boxes[0] if found else (0, 0, rgb.shape[1] - 1, rgb.shape[0] - 1)
        left, top, right, bottom = (int(v) for v in box)
        return self._shape_predictor(rgb, self._dlib.rectangle(left, top, right, bottom)), found

    def landmarks(self, image: ImageLike, box: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """The five landmarks of dlib's shape predictor: eye corners and the base of the nose.

        Args:
            image: the image.
            box: ``(left, top, right, bottom)``; default the largest detected
                face, or the whole image when none is found.

        Returns:
            ``float32`` array ``(5, 2)`` of ``(x, y)`` pixel coordinates.
        """
        shape, _ = self._shape(_to_rgb(image), box)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)

    def _chip(self, rgb: np.ndarray) -> tuple[np.ndarray, bool]:
        shape, found = self._shape(rgb, None)
        chip = self._dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        return np.ascontiguousarray(chip, dtype=np.uint8), found

    def align(self, image: ImageLike, *, return_found: bool = False) -> np.ndarray | tuple[np.ndarray, bool]:
        """The aligned face chip dlib's network expects: ``uint8`` RGB ``(150, 150, 3)``.

        The largest detected face (or the whole image when none is found)
        is warped so that its five landmarks sit where dlib's training chips
        had them (``dlib.get_face_chip``, size 150, padding 0.25).
        With ``return_found=True``, returns ``(chip, found)``.
        """
        chip, found = self._chip(_to_rgb(image))
        return (chip, found) if return_found else chip

    # ----------------------------------------------------------------- descriptors
    def _store(self, align: bool) -> _DescriptorStore | None:
        if self._cache_folder is None:
            return None
        if align not in self._stores:
            self._stores[align] = _DescriptorStore(self._cache_folder / f"{self.cache_key(align=align)}.pt")
        return self._stores[align]

    def cache_key(self, *, align: bool = True) -> str:
        """The settings part of the descriptor cache's file name (engine, precision, alignment, model hashes)."""
        c = self.config
        models = [self.files["recognition"]]
        if align:
            models.append(self.files["shape_predictor_5"])
            if c.detector == "cnn":
                models.append(self.files["cnn_detector"])
        digest = hashlib.sha256("".join(_file_hash(p) for p in models).encode()).hexdigest()[:16]
        how = f"{c.detector}-up{c.upsample}" if align else "chips"
        return f"{c.engine}-{c.precision}-{how}-{CHIP_SIZE}px-pad{CHIP_PADDING}-{digest}-v{_CACHE_FORMAT}"

    def _describe_dlib(self, chips: list[np.ndarray], *, tick: Callable[[int], Any], batch_size: int) -> np.ndarray:
        net = _shared("recognition", self.files["recognition"])
        out = np.empty((len(chips), DESCRIPTOR_DIM), dtype=np.float32)
        for start in range(0, len(chips), batch_size):
            batch = chips[start:start + batch_size]
            out[start:start + len(batch)] = np.array(net.compute_face_descriptor(batch), dtype=np.float32)
            tick(len(batch))
        return out

    def _describe_torch(self, chips: list[np.ndarray], *, tick: Callable[[int], Any], batch_size: int) -> np.ndarray:
        net = _shared("torch", self.files["recognition"], device=str(self.device))
        x = torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).contiguous()  # uint8 (N, 3, 150, 150)
        loader = make_loader(torch.utils.data.TensorDataset(x), batch_size=batch_size,
                             device=self.device, num_workers=0)

        def ticking(batches: Iterable[Any]) -> Iterator[Any]:
            for batch in batches:
                yield batch
                tick(len(batch[0]))

        out = predict(net, ticking(loader), device=self.device,
                      amp="auto" if self.config.precision == "amp" else False,
                      forward_fn=lambda model, inputs: model(inputs.float()), return_targets=False)
        return out.numpy().astype(np.float32, copy=False)

    def embed(
        self,
        images: ImageLike | Iterable[ImageLike],
        *,
        align: bool = True,
        return_found: bool = False,
        batch_size: int | None = None,
        progress: bool | None = None,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """128-d descriptors of faces, one row per image, in order.

        Args:
            images: paths, PIL images or ``uint8`` arrays (one image, a list, or
                a 4-D batch ``(N, H, W, C)`` array / ``(N, C, H, W)`` tensor).
            align: detect and align each face first (default). ``False``
                treats every image as an already aligned chip (resized to
                150 x 150 if needed; ``found`` is then all ``True``).
            return_found: also return the ``found`` mask.
            batch_size: chips per forward pass (default ``config.batch_size``).
            progress: progress bar (default on, off under ``CI`` or ``COURSE_PROGRESS=0``).

        Returns:
            ``float32`` array ``(N, 128)``; with ``return_found=True``,
            ``(descriptors, found)`` where ``found`` ``(N,)`` is ``False`` for
            images in which no face was detected (their whole image was used).
        """
        items = _as_list(images)
        n = len(items)
        step = batch_size or self.config.batch_size
        out = np.empty((n, DESCRIPTOR_DIM), dtype=np.float32)
        found = np.ones(n, dtype=bool)
        store = self._store(align)
        describe = self._describe_torch if self.config.engine == "torch" else self._describe_dlib
        show = progress_enabled() if progress is None else progress

        chunk = max(4 * step, 256)  # bounded memory: decode, align and describe this many at a time
        with tqdm(total=n, desc=f"face descriptors ({self.config.engine})", disable=not show or n == 0,
                  leave=False) as bar:
            for start in range(0, n, chunk):
                todo: list[tuple[int, str, np.ndarray, bool]] = []
                for i in range(start, min(n, start + chunk)):
                    rgb = _to_rgb(items[i])
                    key = _content_key(rgb)
                    hit = store.get(key) if store is not None else None
                    if hit is not None:
                        out[i], found[i] = hit
                        bar.update(1)
                        continue
                    if align:
                        chip, ok = self._chip(rgb)
                    else:
                        chip, ok = _resized_chip(rgb), True
                    todo.append((i, key, chip, ok))
                if not todo:
                    continue
                desc = describe([t[2] for t in todo], tick=bar.update, batch_size=step)
                for (i, key, _, ok), d in zip(todo, desc, strict=True):
                    out[i], found[i] = d, ok
                    if store is not None:
                        store.put(key, d, ok)
                if store is not None:
                    store.save()
        return (out, found) if return_found else out

    def distance(self, a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> np.ndarray:
        """Euclidean distance between raw descriptors (see :func:`face_distance`)."""
        return face_distance(a, b)

    def same_person(self, a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> np.ndarray:
        """``distance(a, b) < threshold`` (dlib's rule: 0.6 on raw descriptors)."""
        return face_distance(a, b) < self.threshold


def _resized_chip(rgb: np.ndarray) -> np.ndarray:
    if rgb.shape[:2] == (CHIP_SIZE, CHIP_SIZE):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((CHIP_SIZE, CHIP_SIZE), Image.Resampling.BILINEAR), dtype=np.uint8)


def face_recognizer(*, engine: Engine | None = None, detector: Detector = "hog", upsample: int = 0,
                    precision: Literal["fp32", "amp"] = "fp32", batch_size: int = 64,
                    device: str | torch.device | None = None,
                    cache: bool | str | os.PathLike = True) -> FaceRecognizer:
    """dlib's published face recogniser (128-d descriptors, 99.38 % on LFW), ready to embed faces.

    Args:
        engine: ``"torch"`` (default when the PyTorch port is importable: runs
            on any device through ``course_utils.train.predict``) or ``"dlib"``.
        detector: ``"hog"`` (default) or ``"cnn"``.
        upsample: detector upsampling (0 finds faces of about 80 px and larger).
        precision: ``"fp32"`` or ``"amp"`` (CUDA autocast, torch engine).
        batch_size: chips per forward pass.
        device: torch engine's device (default :func:`course_utils.settings.resolve_device`).
        cache: ``True`` caches descriptors under ``cache_dir("face_descriptors")``,
            a path caches them there, ``False`` turns the cache off.

    Raises:
        FaceModelUnavailableError: dlib or the model files are missing (or
            ``COURSE_DISABLE_FACES=1``); the message gives the install command.
    """
    config = RecognizerConfig(engine=engine or default_engine(), detector=detector, upsample=upsample,
                              precision=precision, batch_size=batch_size)
    return FaceRecognizer(config, device=device, cache=cache)
