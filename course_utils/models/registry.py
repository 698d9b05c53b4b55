"""The model registry: :func:`register_model`, :func:`create_model`, :func:`list_models`, :func:`model_info`.

The registry refuses a duplicate name, and :func:`create_model` records the
registered name on the model (``model.arch_name``) so that checkpoints name
``"resnet_small"`` rather than the class ``"ResNet"``. The families' papers
(:data:`FAMILIES`) are data, read from ``families.json`` next to this module.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

from course_utils.models.base import CourseModel

__all__ = [
    "FAMILIES",
    "FamilyInfo",
    "ModelInfo",
    "register_model",
    "create_model",
    "list_models",
    "list_families",
    "model_info",
]


# --------------------------------------------------------------------------
# Registry and metadata
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FamilyInfo:
    """Where an architecture family comes from.

    Attributes:
        family: short name (``"resnet"``).
        paper: authors, title.
        year: year of the first (arXiv) version.
        key_idea: what the family changed, in one sentence.
        evidence: one result reported in the paper.
    """

    family: str
    paper: str
    year: int
    key_idea: str
    evidence: str



def _load_families() -> dict[str, FamilyInfo]:
    """The families' papers, years, key ideas and evidence, from ``families.json`` (historical order)."""
    rows = json.loads(resources.files("course_utils.models").joinpath("families.json").read_text(encoding="utf-8"))
    return {row["family"]: FamilyInfo(**row) for row in rows}


#: Family key -> :class:`FamilyInfo`, in the historical order of the papers (prose in ``families.json``).
FAMILIES: dict[str, FamilyInfo] = _load_families()


@dataclass(frozen=True)
class ModelInfo:
    """Metadata of one registered model (see :func:`model_info`).

    Attributes:
        name: registry name.
        family: family key of :data:`FAMILIES`.
        size: ``"full"`` (ImageNet size) or ``"small"`` (course budget).
        input_size: default input ``(C, H, W)``.
        num_classes: default number of classes.
        torchvision_name: the torchvision builder with the same architecture, if any.
        description: what this variant is.
        paper, year, key_idea, evidence: copied from the family.
    """

    name: str
    family: str
    size: str
    input_size: tuple[int, int, int]
    num_classes: int
    torchvision_name: str | None
    description: str
    paper: str = ""
    year: int = 0
    key_idea: str = ""
    evidence: str = ""
    builder: Callable[..., CourseModel] | None = field(default=None, repr=False, compare=False)


_REGISTRY: dict[str, ModelInfo] = {}

F = TypeVar("F", bound=Callable[..., CourseModel])


def register_model(
    *,
    family: str,
    size: str = "small",
    input_size: tuple[int, int, int] = (3, 32, 32),
    num_classes: int = 10,
    torchvision_name: str | None = None,
    description: str = "",
    name: str | None = None,
) -> Callable[[F], F]:
    """Decorator: register a builder ``fn(*, num_classes, in_chans, **kwargs)`` under its name.

    ``family`` should be a key of :data:`FAMILIES` (paper, year, key idea and
    evidence are copied from it); ``size="full"`` models default to 1000
    classes at 224 px, ``"small"`` ones to 10 classes at 32 px.

    Example::

        @register_model(family="resnet", description="my variant")
        def my_resnet(*, num_classes=10, in_chans=3, **kwargs):
            return ResNet(BasicBlock, (1, 1, 1), planes=(16, 32, 64), stem="cifar",
                          stem_chs=16, num_classes=num_classes, in_chans=in_chans, **kwargs)

        model = create_model("my_resnet")
    """
    if size not in {"full", "small"}:
        raise ValueError("size must be 'full' or 'small'")

    def decorator(fn: F) -> F:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"A model named {key!r} is already registered ({_REGISTRY[key].description!r}); "
                             "pick another name.")
        fam = FAMILIES.get(family)
        _REGISTRY[key] = ModelInfo(
            name=key,
            family=family,
            size=size,
            input_size=input_size,
            num_classes=num_classes,
            torchvision_name=torchvision_name,
            description=description or (fn.__doc__ or "").strip().split("\n")[0],
            paper=fam.paper if fam else "",
            year=fam.year if fam else 0,
            key_idea=fam.key_idea if fam else "",
            evidence=fam.evidence if fam else "",
            builder=fn,
        )
        return fn

    return decorator


def _lookup(name: str) -> ModelInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"No model named {name!r}.{hint} See list_models().") from None


def create_model(name: str, *, num_classes: int | None = None, in_chans: int = 3, **kwargs: Any) -> CourseModel:
    """Build a registered model, randomly initialised.

    Args:
        name: a name from :func:`list_models`.
        num_classes: classifier outputs (default: the model's, 1000 for
            ``size="full"``, 10 for ``size="small"``); 0 for no classifier.
        in_chans: input channels (1 for grey images).
        **kwargs: passed on to the model class (``drop_rate``,
            ``drop_path_rate``, ``width_mult``, ``img_size`` for ViTs...).

    Tip: build full-size models with ``with torch.device("meta"):`` to count
    parameters and multiply-adds without allocating memory.
    """
    info = _lookup(name)
    assert info.builder is not None
    n = info.num_classes if num_classes is None else num_classes
    model = info.builder(num_classes=n, in_chans=in_chans, **kwargs)
    model.arch_name = info.name  # checkpoints record the registered name, not the class name
    return model


def list_models(*, size: str | None = None, family: str | None = None) -> list[str]:
    """Registered model names, in order of their families' papers.

    Args:
        size: ``"full"`` or ``"small"`` to filter.
        family: a family key (see :func:`list_families`) to filter.
    """
    return [
        n
        for n, info in _REGISTRY.items()
        if (size is None or info.size == size) and (family is None or info.family == family)
    ]


def list_families() -> list[str]:
    """Family keys in historical order (see :data:`FAMILIES`)."""
    return list(FAMILIES)


def model_info(name: str) -> ModelInfo:
    """Metadata of a registered model: family, paper, year, key idea, evidence, sizes."""
    return _lookup(name)
