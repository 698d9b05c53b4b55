"""Frozen parts computed once: cached features, the front / tail split, linear probes and tails.

:func:`cached_features` stores a model's embeddings (or the activations
entering its last ``n`` blocks) in ``cache_dir("features")``, keyed by a
digest of the weights and the images (:func:`feature_digest`), so a linear
probe (:func:`train_linear_probe`) or a last-block fine-tune
(:func:`split_model`, :class:`TailModel`, :func:`train_tail`) trains in
seconds on a CPU.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

from course_utils.data.cache import atomic_save
from course_utils.models.base import stage_blocks
from course_utils.settings import cache_dir, resolve_device, seed_everything
from course_utils.train import History, accuracy, fit, make_loader, predict
from course_utils.transfer._common import _generator, _loss
from course_utils.transfer.freezing import backbone_blocks

__all__ = [
    "TailModel",
    "split_model",
    "FeatureSet",
    "feature_digest",
    "cached_features",
    "train_linear_probe",
    "train_tail",
]


# --------------------------------------------------------------------------
# front / tail split
# --------------------------------------------------------------------------


class TailModel(nn.Module):
    """The last ``n`` blocks of a model and its head, run on cached activations.

    ``forward(acts)`` gives logits; :meth:`features` the pooled embedding.
    The blocks are *shared* with the model they come from (use
    ``copy.deepcopy`` first to keep the original).

    Args:
        blocks: the trainable blocks, in order.
        model: the zoo model whose pooling and head (``model.head_blocks()``)
            are reused.
        pre: a module applied to the activations before the blocks
            (e.g. :class:`~course_utils.scratch.DropBlock2d` or dropout).
    """

    def __init__(self, blocks: Sequence[nn.Module], model: nn.Module, *, pre: nn.Module | None = None) -> None:
        super().__init__()
        self.pre = pre if pre is not None else nn.Identity()
        self.blocks = nn.Sequential(*blocks)
        head = dict(model.head_blocks())  # the zoo's head: pre_logits, head_drop, classifier
        self.global_pool = model.global_pool
        self.pre_logits, self.head_drop, self.classifier = head["pre_logits"], head["head_drop"], head["classifier"]
        self.num_features = int(model.num_features)

    def feature_blocks(self) -> list[tuple[str, nn.Module]]:
        """The trainable blocks, in forward order (``blocks.0``, ``blocks.1``, ...)."""
        return stage_blocks("blocks", self.blocks)

    def head_blocks(self) -> list[tuple[str, nn.Module]]:
        """``pre_logits``, ``head_drop``, ``classifier``: the model's head, shared."""
        return [("pre_logits", self.pre_logits), ("head_drop", self.head_drop), ("classifier", self.classifier)]

    def forward_features(self, acts: Tensor) -> Tensor:
        """Cached activations -> the backbone's last feature map."""
        return self.blocks(self.pre(acts))

    def features(self, acts: Tensor) -> Tensor:
        """Cached activations -> the pooled embedding ``(N, num_features)``."""
        return self.pre_logits(self.global_pool(self.forward_features(acts)))

    def forward(self, acts: Tensor) -> Tensor:
        """Cached activations -> logits."""
        return self.classifier(self.head_drop(self.features(acts)))

    def reset_classifier(self, num_classes: int) -> None:
        """A new linear head with ``num_classes`` outputs (0: the tail returns embeddings)."""
        ref = next(self.parameters())
        self.classifier = (nn.Linear(self.num_features, num_classes).to(ref.device, ref.dtype)
                           if num_classes > 0 else nn.Identity())


def split_model(model: nn.Module, n_last_blocks: int, *, pre: nn.Module | None = None) -> tuple[nn.Sequential, TailModel]:
    """Cut a zoo model into a frozen ``front`` and a trainable :class:`TailModel`.

    ``tail(front(x))`` equals ``model(x)`` for models whose
    ``forward_features`` chains :func:`backbone_blocks` (ResNet, VGG,
    ConvNeXt, DenseNet, MobileNet, EfficientNet ...); :func:`cached_features`
    checks it on real images. Modules are shared with ``model``, not copied.
    """
    blocks = [m for _, m in backbone_blocks(model)]
    if not 1 <= n_last_blocks <= len(blocks):
        raise ValueError(f"n_last_blocks must be in 1..{len(blocks)} for this model, got {n_last_blocks}.")
    cut = len(blocks) - n_last_blocks
    return nn.Sequential(*blocks[:cut]), TailModel(blocks[cut:], model, pre=pre)


# --------------------------------------------------------------------------
# cached features
# --------------------------------------------------------------------------


@dataclass
class FeatureSet:
    """Features of a data set computed once by a frozen network.

    Attributes:
        features: ``(N, D)`` embeddings, or ``(N, C, H, W)`` activations.
        targets: ``(N,)`` labels (``int64``), or ``(N, T)`` for several tasks.
        path: the cache file (``None`` when caching was off).
        from_cache: whether they were read back instead of computed.
        seconds: time to compute or read them.
    """

    features: Tensor
    targets: Tensor
    path: Path | None = None
    from_cache: bool = False
    seconds: float = 0.0

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def dataset(self, targets: Tensor | None = None) -> TensorDataset:
        """A ``TensorDataset`` of ``(features, targets)`` for :func:`~course_utils.train.make_loader`."""
        return TensorDataset(self.features, self.targets if targets is None else targets)

    def subset(self, indices: Any) -> FeatureSet:
        """The rows ``indices`` (same cache file)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return FeatureSet(self.features[idx], self.targets[idx], self.path, self.from_cache, 0.0)


def _hash_tensor(h: Any, t: Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(str((tuple(t.shape), str(t.dtype))).encode())
    if t.numel():
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())


def _dataset_targets(dataset: Dataset) -> Tensor | None:
    targets = getattr(dataset, "targets", None)
    if targets is None:
        return None
    return torch.as_tensor(np.asarray(targets))


def feature_digest(model: nn.Module, dataset: Dataset, *, layer: str) -> str:
    """A hex digest of the weights (and buffers), the images, the labels, ``layer`` and torch's version."""
    h = hashlib.sha1()
    h.update(f"{type(model).__qualname__}|{getattr(model, 'arch_name', '')}|{layer}|{torch.__version__}".encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        _hash_tensor(h, t)
    images = getattr(dataset, "images", None)
    if isinstance(images, Tensor):
        _hash_tensor(h, images)
        tgt = _dataset_targets(dataset)
        if tgt is not None:
            _hash_tensor(h, tgt)
        h.update(repr(getattr(dataset, "transform", None)).encode())
    elif isinstance(dataset, TensorDataset):
        for t in dataset.tensors:
            _hash_tensor(h, t)
    else:
        for i in range(len(dataset)):  # generic data set: hash every item
            x, y = dataset[i][:2]
            _hash_tensor(h, torch.as_tensor(x))
            _hash_tensor(h, torch.as_tensor(y))
    return h.hexdigest()


def _embedding_forward(model: nn.Module) -> Callable[[nn.Module, Tensor], Tensor] | None:
    """A ``forward_fn`` giving a zoo model's pooled embedding (``None``: the module's own output)."""
    if hasattr(model, "forward_head") and hasattr(model, "forward_features"):
        return lambda m, x: m.forward_head(m.forward_features(x), pre_logits=True)
    return None



def cached_features(model: nn.Module, dataset: Dataset, *, n_last_blocks: int = 0, name: str | None = None,
                    batch_size: int = 256, device: str | torch.device | None = None,
                    cache: bool = True) -> FeatureSet:
    """The frozen ``model``'s features of ``dataset``, computed once and cached on disk.

    Args:
        model: a zoo model (any module with ``forward_features``/``forward_head``,
            or a plain module for ``n_last_blocks=0``).
        dataset: yields ``(image, target, ...)``; a
            :class:`~course_utils.data.TensorImageDataset` is hashed quickly.
        n_last_blocks: 0 for the pooled embedding (``forward_head(..., pre_logits=True)``),
            ``n`` for the activations that enter the last ``n`` blocks (train
            those with :func:`train_tail`).
        name: a readable prefix for the cache file.
        cache: read and write ``cache_dir("features")``.

    The cache key digests the weights, the images, the labels and
    ``n_last_blocks`` (see :func:`feature_digest`): retraining the model or
    changing the data gives a new file, never stale features.

    Raises:
        ValueError: with ``n_last_blocks > 0``, the model's blocks do not
            reproduce its ``forward_features`` (use ``n_last_blocks=0``).
    """
    t0 = time.perf_counter()
    layer = "embedding" if n_last_blocks == 0 else f"before_last_{n_last_blocks}"
    was_training = model.training
    model.eval()
    path = None
    if cache:
        digest = feature_digest(model, dataset, layer=layer)
        prefix = name or getattr(model, "arch_name", None) or type(model).__name__.lower()
        path = cache_dir("features") / f"{prefix}-{layer}-{digest[:20]}.pt"
        if path.is_file():
            blob = torch.load(path, map_location="cpu", weights_only=True)
            model.train(was_training)
            return FeatureSet(blob["features"], blob["targets"], path, True, time.perf_counter() - t0)
    if n_last_blocks == 0:
        net, forward_fn = model, _embedding_forward(model)
    else:
        front, tail = split_model(model, n_last_blocks)
        probe = torch.stack([dataset[i][0] for i in range(min(2, len(dataset)))])
        dev = resolve_device(device)
        model.to(dev)
        with torch.no_grad():
            direct = model.forward_features(probe.to(dev))
            chained = tail.forward_features(front(probe.to(dev)))
        if direct.shape != chained.shape or not torch.allclose(direct, chained, atol=1e-4, rtol=1e-4):
            model.train(was_training)
            raise ValueError(f"{type(model).__name__}'s blocks do not chain into forward_features; "
                             "cache its embeddings (n_last_blocks=0) instead.")
        net, forward_fn = front, None
    feats, targets = predict(net, make_loader(dataset, batch_size=batch_size, device=device), device=device,
                             amp=False, forward_fn=forward_fn)
    targets = targets.long()
    model.train(was_training)
    if path is not None:
        atomic_save({"features": feats, "targets": targets, "layer": layer}, path)
    return FeatureSet(feats, targets, path, False, time.perf_counter() - t0)


def train_linear_probe(train: FeatureSet, test: FeatureSet | None, *, num_classes: int, epochs: int = 60,
                       lr: float = 1e-2, weight_decay: float = 1e-4, batch_size: int = 64, seed: int = 0,
                       label_smoothing: float = 0.0, standardize: bool = True,
                       device: str | torch.device | None = None) -> tuple[nn.Module, History]:
    """Logistic regression (one ``nn.Linear``) on cached embeddings, trained with ``fit``.

    Args:
        train, test: :class:`FeatureSet` of ``(N, D)`` embeddings.
        standardize: z-score the features with the training mean and
            standard deviation first (folded into the returned module);
            features constant on the training set are dropped, and a standard
            deviation below a tenth of the median one is raised to it.

    Returns:
        ``(head, history)``: ``head`` maps raw embeddings to logits.
    """
    seed_everything(seed)
    x = train.features.flatten(1)
    mean = x.mean(0) if standardize else torch.zeros(x.shape[1])
    std = x.std(0) if standardize else torch.ones(x.shape[1])
    if standardize and bool((std > 0).any()):  # features constant in training (a ReLU that never fired) carry
        floor = 0.1 * float(std[std > 0].median())  # nothing to learn: dropped (scale inf); nearly constant ones
        std = torch.where(std > 0, std.clamp_min(floor), torch.inf)  # get a floor: neither blows up on test images
    std = std.clamp_min(1e-6)
    head = nn.Sequential(_Standardize(mean, std), nn.Linear(x.shape[1], num_classes))
    loader = make_loader(TensorDataset(x, train.targets), batch_size=batch_size, shuffle=True, device=device,
                         generator=_generator(seed))
    val = make_loader(TensorDataset(test.features.flatten(1), test.targets), batch_size=1024, device=device) \
        if test is not None else None
    opt = torch.optim.AdamW(head[1].parameters(), lr=lr, weight_decay=weight_decay)
    hist = fit(head, loader, loss_fn=_loss(label_smoothing), optimizer=opt, epochs=epochs, val_loader=val,
               metrics={"acc": accuracy}, device=device, progress=False)
    return head, hist


class _Standardize(nn.Module):
    def __init__(self, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def train_tail(tail: nn.Module, train: FeatureSet, test: FeatureSet | None, *, epochs: int = 20, lr: float = 3e-3,
               weight_decay: float = 1e-4, batch_size: int = 32, seed: int = 0, label_smoothing: float = 0.0,
               loss_fn: Callable[[Any, Any], Tensor] | None = None, metrics: Mapping[str, Any] | None = None,
               train_targets: Tensor | None = None, test_targets: Tensor | None = None,
               groups: Sequence[Mapping[str, Any]] | None = None,
               device: str | torch.device | None = None) -> History:
    """Train a :class:`TailModel` (or any module, e.g. a :class:`MultiTaskModel` around one) on cached activations.

    ``train_targets``/``test_targets`` replace the feature sets' labels (e.g.
    an ``(N, T)`` multi-task matrix, with a matching ``loss_fn`` and ``metrics``).
    ``groups``: optimizer parameter groups (each a dict with ``"params"`` and
    optionally its own ``"lr"``, e.g. the pretrained blocks at ``lr / 10`` and a
    new classifier at ``lr``); default: every trainable parameter at ``lr``.
    """
    seed_everything(seed)
    loader = make_loader(train.dataset(train_targets), batch_size=batch_size, shuffle=True, device=device,
                         generator=_generator(seed))
    val = make_loader(test.dataset(test_targets), batch_size=512, device=device) if test is not None else None
    params: Any = ([dict(g, params=[p for p in g["params"] if p.requires_grad]) for g in groups] if groups is not None
                   else [p for p in tail.parameters() if p.requires_grad])
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return fit(tail, loader, loss_fn=loss_fn or _loss(label_smoothing), optimizer=opt, epochs=epochs, val_loader=val,
               metrics=metrics if metrics is not None else {"acc": accuracy}, device=device, progress=False)
