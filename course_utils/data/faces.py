"""Fallbacks to SynthFaces for the real face data sets, and the map of those data sets.

Each real data set has its module (:mod:`~course_utils.data.orl`,
:mod:`~course_utils.data.lfw`, :mod:`~course_utils.data.fairface`,
:mod:`~course_utils.data.utkface`, :mod:`~course_utils.data.folder`). Every
loader reads from the data directory (``COURSE_DATA_DIR``, see
``data/README.md`` for the layouts) and returns a
:class:`~course_utils.data.cache.TensorImageDataset` whose images are decoded
once, preprocessed (crop, square, resize) and kept in the tensor cache.

=================  =====================================  ==================
data set           layout under the data directory         labels
=================  =====================================  ==================
ORL / AT&T         ``orl_faces/s1..s40/1..10.pgm``          identity
(Olivetti)         or scikit-learn's ``olivetti`` cache     identity
LFW                ``lfw/<name>/<name>_0001.jpg``,          identity, pairs
                   ``lfw/pairs.txt`` (+ DevTrain/DevTest)
FairFace           ``fairface/{train,val}/*.jpg``,          race, gender, age
                   ``fairface/fairface_label_{train,val}.csv``
UTKFace            ``utkface/**/age_gender_race_date.jpg``  age, gender, race
=================  =====================================  ==================

Fallbacks for notebooks: :func:`load_face_identities` (ORL or LFW, else
SynthFaces) and :func:`load_face_attributes` (FairFace or UTKFace, else
SynthFaces); both print which real data set was replaced and how to get it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch

from course_utils.data.cache import (
    DatasetNotFoundError,
    TensorImageDataset,
)
from course_utils.data.face_files import (
    _README,
    _describe_folder,
    _marker_dir,
    _resize_uint8,
    _root,
)
from course_utils.data.fairface import load_fairface
from course_utils.data.folder import load_face_folder
from course_utils.data.lfw import _lfw_folder, load_lfw_people
from course_utils.data.orl import load_orl_faces
from course_utils.data.synthfaces import SynthFacesConfig, make_synthfaces
from course_utils.data.utkface import load_utkface
from course_utils.settings import DATASET_MARKERS

__all__ = [
    "load_face_identities",
    "load_face_attributes",
]


def _fallback_message(real: str, where: Path, replacement: str) -> None:
    print(
        f"[course_utils] {real} is not in {where}: using {replacement} instead.\n"
        f"  To use the real data, put it there in its official layout (see {_README}) "
        "or point COURSE_DATA_DIR at the folder that holds it."
    )


def _synth_size(image_size: int) -> int:
    return min(128, max(32, image_size))


def _synth_resized(ds: TensorImageDataset, image_size: int) -> TensorImageDataset:
    """SynthFaces renders 32 to 128 pixels; other sizes are resized so fallbacks match the request."""
    if ds.images.shape[-1] != image_size:
        ds.images = _resize_uint8(ds.images, image_size)
    return ds


def load_face_identities(
    prefer: Literal["orl", "lfw", "folder", "synthfaces"] = "orl",
    *,
    root: Path | str | None = None,
    image_size: int = 64,
    rgb: bool = False,
    min_faces_per_person: int = 20,
    synth: SynthFacesConfig | None = None,
    transform: Callable[[torch.Tensor], Any] | None = None,
) -> TensorImageDataset:
    """Faces with identity labels: the preferred real data set if present, else SynthFaces.

    Args:
        prefer: ``"orl"`` (40 x 10 images), ``"lfw"``, ``"folder"`` (your
            own photos, one folder per person: ``root`` is that folder, see
            :func:`load_face_folder`) or ``"synthfaces"``.
        root: data directory (for ``"folder"``: the face folder itself).
            When you name it, nothing is replaced by synthetic faces: a
            missing or wrong layout raises, saying what is there and what
            was expected.
        image_size, rgb: output format (SynthFaces is converted to grey when ``rgb=False``).
        min_faces_per_person: for LFW.
        synth: SynthFaces config for the fallback (default: 40 identities x
            10 images, like ORL).
        transform: applied on indexing.

    Prints which real data set was replaced (and how to get it) on fallback,
    which happens only when ``root`` is ``None`` (the data directory).
    """
    if prefer not in ("orl", "lfw", "folder", "synthfaces"):
        raise ValueError(f"prefer={prefer!r}; use 'orl', 'lfw', 'folder' or 'synthfaces'.")
    if prefer == "folder":
        if root is None:
            raise ValueError("prefer='folder' needs root=<the folder that holds one folder per person>.")
        return load_face_folder(root, image_size=image_size, rgb=rgb, transform=transform)
    root_path = _root(root)
    if prefer == "orl" and (root_path / DATASET_MARKERS["orl_faces"]).exists():
        return load_orl_faces(root_path, image_size=image_size, rgb=rgb, transform=transform)
    if prefer == "lfw" and _lfw_folder(root_path).is_dir():
        return load_lfw_people(root_path, image_size=image_size, rgb=rgb, min_faces_per_person=min_faces_per_person,
                               transform=transform)
    if prefer != "synthfaces" and root is not None:
        expected = {"orl": f"{root_path}/orl_faces/s1 ... s40/1.pgm ... 10.pgm",
                    "lfw": f"{root_path}/lfw/<Name>/<Name>_0001.jpg"}[prefer]
        where = root_path / {"orl": _marker_dir("orl_faces"), "lfw": _marker_dir("lfw")}[prefer]
        found = _describe_folder(where if where.exists() else root_path)
        raise DatasetNotFoundError(
            f"You asked for {prefer!r} faces in {root_path}, but {found}. Expected {expected}. For your own "
            f"photos in one folder per person use load_face_identities('folder', root=...) or load_face_folder(); "
            f"for synthetic faces leave root unset or use prefer='synthfaces'. See {_README}."
        )
    config = synth or SynthFacesConfig(n_identities=40, images_per_identity=10, image_size=_synth_size(image_size))
    if prefer != "synthfaces":
        real = {"orl": "The ORL/AT&T face data set", "lfw": "LFW (Labeled Faces in the Wild)"}[prefer]
        where = root_path / {"orl": _marker_dir("orl_faces"), "lfw": _marker_dir("lfw")}[prefer]
        _fallback_message(real, where, f"SynthFaces ({config.n_identities} synthetic identities x "
                                       f"{config.images_per_identity} images)")
    ds = _synth_resized(make_synthfaces(config, transform=transform), image_size)
    return ds if rgb else ds.to_grayscale()


_SYNTH_TARGETS = {"race": "skin_tone", "gender": "presentation", "age": "age_group", "age_bin": "age_group"}


def load_face_attributes(
    prefer: Literal["fairface", "utkface", "synthfaces"] = "fairface",
    *,
    split: Literal["train", "val", "all"] = "train",
    root: Path | str | None = None,
    image_size: int = 64,
    target: Literal["race", "gender", "age"] = "race",
    max_per_group: int | None = None,
    synth: SynthFacesConfig | None = None,
    transform: Callable[[torch.Tensor], Any] | None = None,
) -> TensorImageDataset:
    """Faces with demographic labels: FairFace or UTKFace if present, else SynthFaces.

    On fallback, SynthFaces' ``skin_tone`` / ``presentation`` / ``age_group``
    stand in for ``race`` / ``gender`` / ``age`` (``target`` is mapped), and
    a message names the real data set and how to get it. Check
    ``ds.name`` and ``ds.group_columns`` to see which one you got.
    """
    root_path = _root(root)
    if prefer == "fairface" and (root_path / DATASET_MARKERS["fairface"]).exists():
        return load_fairface(split, root_path, image_size=image_size, max_per_group=max_per_group, target=target,
                             transform=transform)
    if prefer == "utkface" and (root_path / _marker_dir("utkface")).is_dir():
        return load_utkface(root_path, image_size=image_size, max_per_group=max_per_group,
                            target="age_bin" if target == "age" else target, transform=transform)
    if prefer not in ("fairface", "utkface", "synthfaces"):
        raise ValueError(f"prefer={prefer!r}; use 'fairface', 'utkface' or 'synthfaces'.")
    n_ids = {"train": 525, "val": 175, "all": 700}.get(split, 525)
    config = synth or SynthFacesConfig(n_identities=n_ids, images_per_identity=4, image_size=_synth_size(image_size),
                                       seed={"train": 0, "val": 1, "all": 2}.get(split, 0))
    if prefer != "synthfaces":
        real = {"fairface": "FairFace", "utkface": "UTKFace"}[prefer]
        _fallback_message(real, root_path / _marker_dir(prefer),
                          f"SynthFaces attributes (skin_tone, presentation, age_group stand in for race, gender, age; "
                          f"{config.n_images} images)")
    ds = _synth_resized(make_synthfaces(config, transform=transform), image_size)
    return ds.with_target(_SYNTH_TARGETS[target])
