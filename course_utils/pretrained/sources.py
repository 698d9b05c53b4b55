"""The course's own source checkpoints: small networks shipped with the package.

The checkpoints in ``course_utils/checkpoints/`` (under 1 MB each) are made by
``scripts/make_checkpoints.py`` from data that is always there (SynthFaces,
scikit-learn's digits) with :func:`train_source_model` and a frozen
:class:`SourceRecipe`. A JSON file next to each ``.pt`` records the recipe,
the data, the seed, the accuracy, the training time and the versions.
:func:`load_source_model` reads them with ``weights_only=True`` (through
:func:`course_utils.train.load_checkpoint`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torchvision
from torch import nn

from course_utils.augment import SimCLRAugment
from course_utils.data import (
    SynthFacesConfig,
    load_digits_dataset,
    make_synthfaces,
    stratified_split,
)
from course_utils.models import create_model
from course_utils.settings import resolve_device, seed_everything
from course_utils.train import (
    History,
    accuracy,
    fit,
    load_checkpoint,
    make_loader,
    save_checkpoint,
)
from course_utils.transfer import cached_features, pretrain_simclr, train_linear_probe

__all__ = [
    "CHECKPOINT_DIR",
    "SourceRecipe",
    "RECIPES",
    "source_datasets",
    "build_source_model",
    "SourceResult",
    "train_source_model",
    "save_source_checkpoint",
    "list_sources",
    "sources_table",
    "source_info",
    "load_source_model",
]

#: Where the shipped course checkpoints live (inside the installed package).
CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"

# --------------------------------------------------------------------------
# course checkpoints (offline path)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRecipe:
    """Everything that determines a course source checkpoint.

    Attributes:
        name: file stem in ``course_utils/checkpoints``.
        data: ``"synthfaces"`` (identities) or ``"digits"`` (scikit-learn's 8x8 digits, upscaled).
        method: ``"supervised"`` (cross-entropy on the labels) or
            ``"simclr"`` (NT-Xent on two augmented views; labels unused).
        model, model_kwargs: a zoo model name and its extra arguments.
        image_size: side of the (RGB) training images.
        n_identities, images_per_identity, data_seed: the SynthFaces set
            (``data_seed`` differs from the seeds the notebooks' fallback
            targets use, so source and target identities are disjoint).
        val_fraction: images held out (per class) to measure accuracy.
        max_train_images: cap on training images (miniature runs).
        epochs, batch_size, lr, weight_decay, label_smoothing: optimisation
            (AdamW with a cosine schedule).
        crop_scale, flip, jitter, grayscale_prob: augmentation
            (:class:`~course_utils.augment.SimCLRAugment`).
        temperature, projection_dim: SimCLR only.
        seed: seeds the initialisation, batch order and augmentations.
    """

    name: str
    data: str = "synthfaces"
    method: str = "supervised"
    model: str = "resnet_small"
    model_kwargs: tuple[tuple[str, Any], ...] = (("stem", "imagenet"),)
    image_size: int = 48
    n_identities: int = 200
    images_per_identity: int = 16
    data_seed: int = 1000
    val_fraction: float = 0.125
    max_train_images: int | None = None
    epochs: int = 15
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    crop_scale: tuple[float, float] = (0.6, 1.0)
    flip: bool = True
    jitter: float = 0.2
    grayscale_prob: float = 0.5
    temperature: float = 0.2
    projection_dim: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.data not in ("synthfaces", "digits"):
            raise ValueError(f"data={self.data!r}; use 'synthfaces' or 'digits'.")
        if self.method not in ("supervised", "simclr"):
            raise ValueError(f"method={self.method!r}; use 'supervised' or 'simclr'.")

    def replace(self, **changes: Any) -> SourceRecipe:
        """A copy with some fields changed (e.g. ``epochs=1`` for a miniature run)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model_kwargs"] = dict(self.model_kwargs)
        d["crop_scale"] = list(self.crop_scale)
        return d


#: The shipped checkpoints: a similar source (faces), a different one (digits), a self-supervised one.
RECIPES: dict[str, SourceRecipe] = {
    r.name: r
    for r in (
        SourceRecipe("faces_supervised", data="synthfaces", method="supervised", epochs=40, crop_scale=(0.35, 1.0),
                     jitter=0.4),
        SourceRecipe("digits_supervised", data="digits", method="supervised", flip=False, crop_scale=(0.7, 1.0),
                     grayscale_prob=0.0),
        SourceRecipe("faces_simclr", data="synthfaces", method="simclr", epochs=60, batch_size=128, lr=2e-3,
                     crop_scale=(0.3, 1.0), jitter=0.4, grayscale_prob=0.5),
    )
}


def source_datasets(recipe: SourceRecipe) -> tuple[Any, Any, dict[str, Any]]:
    """``(train, val, description)`` of the recipe's data (RGB, ``recipe.image_size``)."""
    if recipe.data == "synthfaces":
        config = SynthFacesConfig(n_identities=recipe.n_identities, images_per_identity=recipe.images_per_identity,
                                  image_size=max(32, recipe.image_size), seed=recipe.data_seed)
        ds = make_synthfaces(config)
        if ds.images.shape[-1] != recipe.image_size:
            ds.images = torch.nn.functional.interpolate(ds.images.float(), size=recipe.image_size, mode="area") \
                .round().clamp(0, 255).to(torch.uint8)
        desc = {"name": "SynthFaces identities", "generator": "course_utils.data.make_synthfaces",
                "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}}
    else:
        ds = load_digits_dataset(image_size=recipe.image_size, rgb=True)
        desc = {"name": "scikit-learn digits (8x8, upscaled, grey as RGB)",
                "loader": "course_utils.data.load_digits_dataset"}
    split = stratified_split(ds.targets, test_fraction=recipe.val_fraction, seed=recipe.data_seed)
    train_idx = split.train
    if recipe.max_train_images is not None:
        rng = np.random.default_rng(recipe.seed)
        train_idx = np.sort(rng.permutation(train_idx)[:recipe.max_train_images])
    train, val = ds.subset(train_idx), ds.subset(split.test)
    desc.update({"n_train": len(train), "n_val": len(val), "n_classes": ds.n_classes,
                 "image_size": recipe.image_size, "labels_used": recipe.method == "supervised"})
    return train, val, desc


def build_source_model(recipe: SourceRecipe, *, num_classes: int = 0) -> nn.Module:
    """The recipe's zoo model, randomly initialised."""
    return create_model(recipe.model, num_classes=num_classes, **dict(recipe.model_kwargs))


@dataclass
class SourceResult:
    """A trained source: the backbone (``num_classes=0``: it returns embeddings), its metadata and history."""

    recipe: SourceRecipe
    model: nn.Module
    meta: dict[str, Any]
    history: History = field(repr=False, default_factory=History)


def _augment(recipe: SourceRecipe, generator: torch.Generator) -> nn.Module:
    return SimCLRAugment(crop_scale=recipe.crop_scale, flip=recipe.flip, jitter=recipe.jitter,
                         grayscale_prob=recipe.grayscale_prob, generator=generator)


def train_source_model(recipe: SourceRecipe, *, device: str | torch.device | None = None,
                       progress: bool | None = None) -> SourceResult:
    """Train a source model from its recipe, reproducibly, and measure it.

    Supervised recipes learn the labels with cross-entropy; their accuracy
    is top-1 on the held-out images. SimCLR recipes never see a label; their
    accuracy is that of a linear probe (logistic regression on the frozen
    embeddings) trained on the training images' labels and measured on the
    held-out ones. Both also report the linear-probe accuracy, so the
    sources can be compared on one scale.

    Returns:
        A :class:`SourceResult` whose ``model`` has no classifier.
    """
    dev = resolve_device(device)
    seed_everything(recipe.seed)
    train, val, data_desc = source_datasets(recipe)
    gen = torch.Generator()
    gen.manual_seed(recipe.seed)
    t0 = time.perf_counter()
    if recipe.method == "supervised":
        model = build_source_model(recipe, num_classes=data_desc["n_classes"])
        loader = make_loader(train, batch_size=recipe.batch_size, shuffle=True, device=dev, generator=gen,
                             drop_last=len(train) > recipe.batch_size)
        val_loader = make_loader(val, batch_size=256, device=dev)
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, recipe.epochs))
        loss = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        history = fit(model, loader, loss_fn=loss, optimizer=opt, epochs=recipe.epochs, val_loader=val_loader,
                      metrics={"acc": accuracy}, scheduler=sched, train_transform=_augment(recipe, gen), device=dev,
                      progress=progress)
        own_acc = float(history.last("val_acc"))
        model.reset_classifier(0)
    else:
        model = build_source_model(recipe, num_classes=0)
        _, history = pretrain_simclr(model, train, epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
                                     weight_decay=recipe.weight_decay, temperature=recipe.temperature,
                                     augment=_augment(recipe, gen), projection_dim=recipe.projection_dim,
                                     seed=recipe.seed, device=dev, progress=progress)
        own_acc = None
    seconds = time.perf_counter() - t0
    model = model.cpu().eval()
    tr = cached_features(model, train, cache=False)
    va = cached_features(model, val, cache=False)
    _, probe_hist = train_linear_probe(tr, va, num_classes=data_desc["n_classes"], epochs=60, seed=recipe.seed)
    probe_acc = float(probe_hist.last("val_acc"))
    meta = {
        "name": recipe.name,
        "recipe": recipe.to_dict(),
        "data": data_desc,
        "seed": recipe.seed,
        "arch": recipe.model,
        "model_kwargs": dict(recipe.model_kwargs),
        "num_features": int(model.num_features),
        "params": int(sum(p.numel() for p in model.parameters())),
        "accuracy": own_acc if own_acc is not None else probe_acc,
        "accuracy_kind": ("top-1 on held-out images of the source task" if own_acc is not None else
                          "linear probe on held-out images (labels used only for this measurement)"),
        "linear_probe_accuracy": probe_acc,
        "chance_accuracy": 1.0 / data_desc["n_classes"],
        "final_train_loss": float(history.last("train_loss")),
        "epochs": len(history),
        "training_seconds": round(seconds, 1),
        "device": str(dev),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "created": time.strftime("%Y-%m-%d"),
    }
    return SourceResult(recipe, model, meta, history)


def save_source_checkpoint(result: SourceResult, directory: str | Path = CHECKPOINT_DIR) -> tuple[Path, Path]:
    """Write ``<name>.pt`` (weights + metadata, via :func:`~course_utils.train.save_checkpoint`) and ``<name>.json``."""
    directory = Path(directory)
    meta = json.loads(json.dumps(result.meta))  # plain values only (weights_only loading)
    pt = save_checkpoint(directory / f"{result.recipe.name}.pt", result.model, meta=meta, arch=result.recipe.model)
    info = dict(meta)
    info.update({"file": pt.name, "size_bytes": pt.stat().st_size,
                 "sha256": hashlib.sha256(pt.read_bytes()).hexdigest()})
    js = directory / f"{result.recipe.name}.json"
    js.write_text(json.dumps(info, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return pt, js


def list_sources(directory: str | Path = CHECKPOINT_DIR) -> list[str]:
    """Names of the checkpoints in ``directory`` (those with both a ``.pt`` and a ``.json``)."""
    directory = Path(directory)
    return sorted(p.stem for p in directory.glob("*.json") if p.with_suffix(".pt").is_file())


def source_info(name: str, directory: str | Path = CHECKPOINT_DIR) -> dict[str, Any]:
    """The JSON record of checkpoint ``name``."""
    path = Path(directory) / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint record {path}; available: {list_sources(directory)}. "
                                "Run scripts/make_checkpoints.py to (re)make them.")
    return json.loads(path.read_text(encoding="utf-8"))


def sources_table(directory: str | Path = CHECKPOINT_DIR) -> Any:
    """A DataFrame summarising the shipped checkpoints (data, method, accuracy, time, size)."""
    rows = []
    for name in list_sources(directory):
        info = source_info(name, directory)
        rows.append({"checkpoint": name, "data": info["data"]["name"], "method": info["recipe"]["method"],
                     "model": info["arch"], "image_size": info["data"]["image_size"],
                     "train_images": info["data"]["n_train"], "classes": info["data"]["n_classes"],
                     "accuracy": round(info["accuracy"], 3), "linear_probe": round(info["linear_probe_accuracy"], 3),
                     "chance": round(info["chance_accuracy"], 3), "epochs": info["epochs"],
                     "train_s": info["training_seconds"], "size_kB": round(info["size_bytes"] / 1024),
                     "seed": info["seed"], "torch": info["torch"]})
    return pd.DataFrame(rows).set_index("checkpoint") if rows else pd.DataFrame()


def load_source_model(name: str, *, num_classes: int = 0, directory: str | Path = CHECKPOINT_DIR,
                      map_location: str | torch.device = "cpu") -> nn.Module:
    """A shipped source backbone, loaded with ``weights_only=True``, with a fresh head if asked.

    Args:
        name: a checkpoint name (see :func:`list_sources`), e.g. ``"faces_supervised"``.
        num_classes: 0 keeps no classifier (the model returns embeddings);
            otherwise a new, randomly initialised linear head.

    The model carries the checkpoint's metadata as ``model.source_meta``.
    """
    path = Path(directory) / f"{name}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint {path}; available: {list_sources(directory)}. "
                                "Run `python scripts/make_checkpoints.py` to make them.")
    ckpt = load_checkpoint(path)  # weights_only=True: tensors and plain values only
    meta = dict(ckpt.get("meta", {}))
    model = create_model(meta.get("arch") or ckpt.get("arch"), num_classes=0, **meta.get("model_kwargs", {}))
    load_checkpoint(path, model, map_location=map_location)
    if num_classes:
        model.reset_classifier(num_classes)
    model.source_meta = meta
    return model
