"""Transfer learning, measured: freezing, learning rates, cached features, SimCLR, multi-task, seeds.

The four ways to reuse a pretrained network, and what each one trains:

============================  ==========================================  =========================
regime                        trains                                      helper
============================  ==========================================  =========================
``"scratch"``                 everything, from a random initialisation   :func:`fine_tune`
``"linear_probe"``            a new linear head on frozen features        :func:`train_linear_probe`
``"finetune_last"``           the last ``n`` blocks + a new head          :func:`train_tail`
``"finetune_all"``            everything, the backbone at ~1/10 the LR    :func:`fine_tune`
============================  ==========================================  =========================

:func:`run_regime` runs any of them on a train/test pair of data sets and
returns the test accuracy with its per-epoch :class:`~course_utils.train.History`.

Frozen parts are computed once: :func:`cached_features` stores a model's
embeddings (or the activations entering its last ``n`` blocks) in
``cache_dir("features")``, keyed by a digest of the weights and the images, so
a linear probe or a last-block fine-tune trains in seconds on a CPU.

Also here:

- freezing: :func:`freeze`, :func:`freeze_all_but_head`,
  :func:`unfreeze_last_blocks`, :func:`count_trainable`,
  :func:`trainable_table` (frozen batch-norm layers stay in eval mode even
  when ``fit`` calls ``model.train()``);
- learning rates per part: :func:`param_groups` (head vs backbone) and
  :func:`layerwise_lr_groups` (discriminative, decaying towards the input);
- :func:`backbone_blocks` and :func:`split_model` (front / :class:`TailModel`);
- SimCLR: :class:`SimCLRAugment` (batched, on the device),
  :class:`SimCLRModel`, :func:`pretrain_simclr` (``fit`` with a ``forward_fn``
  and :class:`~course_utils.losses.NTXentLoss`);
- multi-task: :class:`MultiTaskModel`, :class:`MultiTaskLoss`,
  :func:`task_accuracy`, :func:`multitask_targets`;
- seeds: :func:`summarize` and :func:`run_seeds` (mean and a t interval), re-exported
  from their home, :mod:`course_utils.stats`;
- face chips for dlib's recogniser: :func:`aligned_chips` (``face_recognizer().align``
  once per image, cached by content) and :class:`AlignedFaceDataset` for :func:`cached_features`.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

from course_utils.losses import LabelSmoothingCrossEntropy, NTXentLoss
from course_utils.settings import cache_dir, resolve_device, seed_everything
from course_utils.stats import SeedRuns, SeedSummary, run_seeds, summarize
from course_utils.train import History, accuracy, evaluate, fit, make_loader, predict, progress_enabled

__all__ = [
    "REGIMES",
    "freeze",
    "unfreeze",
    "freeze_all_but_head",
    "unfreeze_last_blocks",
    "count_trainable",
    "trainable_table",
    "head_modules",
    "backbone_blocks",
    "param_groups",
    "layerwise_lr_groups",
    "TailModel",
    "split_model",
    "FeatureSet",
    "feature_digest",
    "extract_features",
    "cached_features",
    "train_linear_probe",
    "train_tail",
    "fine_tune",
    "RegimeConfig",
    "RegimeResult",
    "run_regime",
    "SeedSummary",
    "SeedRuns",
    "summarize",
    "run_seeds",
    "SimCLRAugment",
    "SimCLRModel",
    "simclr_forward_fn",
    "pretrain_simclr",
    "MultiTaskModel",
    "MultiTaskLoss",
    "TaskOutputs",
    "task_accuracy",
    "multitask_targets",
    "predict_probs",
    "evaluate_accuracy",
    "aligned_chips",
    "AlignedFaceDataset",
    "aligned_face_dataset",
]

#: The four regimes, in order of how much of the network they train.
REGIMES: tuple[str, ...] = ("scratch", "linear_probe", "finetune_last", "finetune_all")

_HEAD_NAMES = ("pre_logits", "head_drop", "classifier")
_TRAILING = ("final_norm", "final_act", "head_conv", "norm")


# --------------------------------------------------------------------------
# freezing
# --------------------------------------------------------------------------


def _keep_eval(module: nn.Module, _args: Any) -> None:
    module.train(False)


def freeze(module: nn.Module) -> nn.Module:
    """Stop ``module`` from learning: no gradients, and its batch norms keep their statistics.

    ``requires_grad`` is switched off for every parameter. Batch-norm layers
    inside get a forward pre-hook that puts them in eval mode on every call,
    so ``fit`` (which calls ``model.train()``) neither updates their running
    statistics nor normalises with batch statistics: a frozen layer computes
    the same function in training and at test time.

    Returns:
        ``module`` (frozen in place).
    """
    for p in module.parameters():
        p.requires_grad_(False)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not _has_keep_eval(m):
            m.register_forward_pre_hook(_keep_eval)
    return module


def _has_keep_eval(m: nn.Module) -> bool:
    # found by identity, so it also works on deep copies (whose hook handles would be stale)
    return any(fn is _keep_eval for fn in m._forward_pre_hooks.values())


def unfreeze(module: nn.Module) -> nn.Module:
    """Undo :func:`freeze`: gradients on, batch norms follow ``train()``/``eval()`` again."""
    for p in module.parameters():
        p.requires_grad_(True)
    for m in module.modules():
        for key in [k for k, fn in m._forward_pre_hooks.items() if fn is _keep_eval]:
            del m._forward_pre_hooks[key]
    return module


def head_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules after the pooled features: ``pre_logits``, ``head_drop``, ``classifier``.

    For a plain ``nn.Sequential`` the head is its last child.
    """
    found = [(n, getattr(model, n)) for n in _HEAD_NAMES if isinstance(getattr(model, n, None), nn.Module)]
    if found:
        return found
    if isinstance(model, nn.Sequential) and len(model) > 0:
        return [(str(len(model) - 1), model[-1])]
    raise TypeError(f"{type(model).__name__} has no classifier/pre_logits head and is not an nn.Sequential.")


def freeze_all_but_head(model: nn.Module) -> nn.Module:
    """Freeze everything except the head (``pre_logits`` and ``classifier``): feature extraction."""
    freeze(model)
    for _, m in head_modules(model):
        unfreeze(m)
    return model


def count_trainable(model: nn.Module) -> int:
    """Number of parameters the optimizer will update (``requires_grad=True``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def backbone_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The backbone's blocks in forward order, as ``(name, module)``.

    For zoo models: ``stem`` (or ``patch_embed``), then the children of
    ``stages``/``blocks`` with each stage split into its blocks (a ResNet
    stage of two basic blocks gives two entries), then trailing layers
    (``final_norm``, ``head_conv`` ...). For an ``nn.Sequential``: every child
    but the last. The head (:func:`head_modules`) is not included.
    """
    if isinstance(model, nn.Sequential) and not any(hasattr(model, n) for n in _HEAD_NAMES):
        return [(name, m) for name, m in list(model.named_children())[:-1]]
    out: list[tuple[str, nn.Module]] = []
    for name in ("stem", "patch_embed"):
        if isinstance(getattr(model, name, None), nn.Module):
            out.append((name, getattr(model, name)))
    for name in ("stages", "blocks"):
        body = getattr(model, name, None)
        if isinstance(body, (nn.Sequential, nn.ModuleList)):
            for sub_name, sub in body.named_children():
                if isinstance(sub, nn.Sequential):
                    out.extend((f"{name}.{sub_name}.{n}", m) for n, m in sub.named_children())
                else:
                    out.append((f"{name}.{sub_name}", sub))
    for name in _TRAILING:
        m = getattr(model, name, None)
        if isinstance(m, nn.Module) and (any(True for _ in m.parameters()) or isinstance(m, (nn.ReLU, nn.SiLU, nn.GELU))):
            out.append((name, m))
    if not out:
        raise TypeError(f"Cannot find the blocks of {type(model).__name__}: expected stem/stages/blocks attributes.")
    return out


def unfreeze_last_blocks(model: nn.Module, n: int) -> nn.Module:
    """Freeze the whole model, then unfreeze its last ``n`` backbone blocks and the head.

    ``n=0`` is :func:`freeze_all_but_head`; ``n >= len(backbone_blocks(model))``
    unfreezes everything (parameters outside the blocks, such as a ViT's
    position embedding, stay frozen unless ``n`` covers all blocks).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}.")
    blocks = backbone_blocks(model)
    if n >= len(blocks):
        return unfreeze(model)
    freeze_all_but_head(model)
    for _, m in blocks[len(blocks) - n:]:
        unfreeze(m)
    return model


def trainable_table(model: nn.Module) -> Any:
    """A DataFrame with one row per block and head part: parameters, trainable ones, learning state."""
    import pandas as pd

    rows = []
    parts = backbone_blocks(model) + head_modules(model)
    seen: set[int] = set()
    for name, m in parts:
        params = [p for p in m.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        n = sum(p.numel() for p in params)
        t = sum(p.numel() for p in params if p.requires_grad)
        rows.append({"part": name, "params": n, "trainable": t,
                     "state": "trainable" if n and t == n else "frozen" if n and t == 0 else "mixed" if n else "-"})
    rest = [p for p in model.parameters() if id(p) not in seen]
    if rest:
        rows.append({"part": "(other)", "params": sum(p.numel() for p in rest),
                     "trainable": sum(p.numel() for p in rest if p.requires_grad), "state": "mixed"})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------
# learning rates per part
# --------------------------------------------------------------------------


def _trainable(params: Iterable[nn.Parameter], seen: set[int]) -> list[nn.Parameter]:
    out = []
    for p in params:
        if p.requires_grad and id(p) not in seen:
            out.append(p)
            seen.add(id(p))
    return out


def param_groups(model: nn.Module, *, lr: float, backbone_lr_factor: float = 0.1,
                 weight_decay: float = 0.0) -> list[dict[str, Any]]:
    """Two optimizer groups: the head at ``lr``, the rest at ``lr * backbone_lr_factor``.

    Pass the result to any ``torch.optim`` optimizer. Frozen parameters are
    left out; each group carries a ``"name"`` for display.
    """
    seen: set[int] = set()
    head = _trainable((p for _, m in head_modules(model) for p in m.parameters()), seen)
    body = _trainable(model.parameters(), seen)
    groups = [{"name": "head", "params": head, "lr": lr, "weight_decay": weight_decay},
              {"name": "backbone", "params": body, "lr": lr * backbone_lr_factor, "weight_decay": weight_decay}]
    return [g for g in groups if g["params"]]


def layerwise_lr_groups(model: nn.Module, *, lr: float, decay: float = 0.5,
                        weight_decay: float = 0.0) -> list[dict[str, Any]]:
    """Discriminative learning rates: the head at ``lr``, each block below it ``decay`` times smaller.

    With blocks ``b_1 ... b_L`` (input side first, see :func:`backbone_blocks`)
    block ``b_i`` gets ``lr * decay ** (L - i + 1)``; parameters outside the
    blocks (a ViT's class token ...) get the smallest rate. The early layers,
    which compute generic edges and textures, barely move; the last ones
    adapt. Frozen parameters are left out.

    Returns:
        One group per part with trainable parameters, head first, each with
        ``"name"``, ``"params"``, ``"lr"``, ``"weight_decay"``.
    """
    if not 0 < decay <= 1:
        raise ValueError(f"decay must be in (0, 1], got {decay}.")
    seen: set[int] = set()
    groups = [{"name": "head", "params": _trainable((p for _, m in head_modules(model) for p in m.parameters()), seen),
               "lr": lr, "weight_decay": weight_decay}]
    blocks = backbone_blocks(model)
    for depth, (name, m) in enumerate(reversed(blocks), start=1):
        groups.append({"name": name, "params": _trainable(m.parameters(), seen), "lr": lr * decay**depth,
                       "weight_decay": weight_decay})
    groups.append({"name": "(other)", "params": _trainable(model.parameters(), seen),
                   "lr": lr * decay ** (len(blocks) + 1), "weight_decay": weight_decay})
    return [g for g in groups if g["params"]]


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
        model: the zoo model whose ``global_pool``/``pre_logits``/
            ``head_drop``/``classifier`` are reused.
        pre: a module applied to the activations before the blocks
            (e.g. :class:`~course_utils.layers.DropBlock2d` or dropout).
    """

    def __init__(self, blocks: Sequence[nn.Module], model: nn.Module, *, pre: nn.Module | None = None) -> None:
        super().__init__()
        self.pre = pre if pre is not None else nn.Identity()
        self.blocks = nn.Sequential(*blocks)
        for name in ("global_pool", "pre_logits", "head_drop", "classifier"):
            part = getattr(model, name, None)
            setattr(self, name, part if isinstance(part, nn.Module) else nn.Identity())
        self.num_features = int(getattr(model, "num_features", 0))

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


def _embed(model: nn.Module) -> Callable[[Tensor], Tensor]:
    if hasattr(model, "forward_head") and hasattr(model, "forward_features"):
        return lambda x: model.forward_head(model.forward_features(x), pre_logits=True)
    return model


@torch.no_grad()
def extract_features(fn: Callable[[Tensor], Tensor] | nn.Module, dataset: Dataset, *, batch_size: int = 256,
                     device: str | torch.device | None = None) -> tuple[Tensor, Tensor]:
    """Run ``fn`` (in eval mode when it is a module) over ``dataset``; return ``(features, targets)`` on the CPU."""
    dev = resolve_device(device)
    if isinstance(fn, nn.Module):
        fn.to(dev).eval()
    loader = make_loader(dataset, batch_size=batch_size, device=dev)
    feats, targets = [], []
    for batch in loader:
        x, y = batch[0], batch[1]
        feats.append(fn(x.to(dev, non_blocking=dev.type == "cuda")).float().cpu())
        targets.append(torch.as_tensor(y).cpu())
    return torch.cat(feats), torch.cat(targets).long()


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
        fn = _embed(model)
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
        fn = front
    feats, targets = extract_features(fn, dataset, batch_size=batch_size, device=device)
    model.train(was_training)
    if path is not None:
        from course_utils.data.cache import atomic_save

        atomic_save({"features": feats, "targets": targets, "layer": layer}, path)
    return FeatureSet(feats, targets, path, False, time.perf_counter() - t0)


# --------------------------------------------------------------------------
# the regimes
# --------------------------------------------------------------------------


def _loss(label_smoothing: float) -> nn.Module:
    return LabelSmoothingCrossEntropy(label_smoothing) if label_smoothing > 0 else nn.CrossEntropyLoss()


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


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


def fine_tune(model: nn.Module, train_set: Dataset, test_set: Dataset | None, *, epochs: int = 10, lr: float = 3e-3,
              backbone_lr_factor: float = 1.0, layerwise_decay: float | None = None, weight_decay: float = 1e-4,
              batch_size: int = 32, seed: int = 0, label_smoothing: float = 0.0, collate_fn: Any = None,
              device: str | torch.device | None = None) -> History:
    """Train every trainable parameter of ``model`` on images (scratch or full fine-tuning).

    Args:
        backbone_lr_factor: the backbone's learning rate relative to the
            head's (``0.1`` for the usual fine-tuning, ``1`` from scratch).
        layerwise_decay: use :func:`layerwise_lr_groups` with this decay
            instead of the two groups.
        collate_fn: e.g. :class:`~course_utils.layers.BatchAugment` for the
            training loader.
    """
    seed_everything(seed)
    groups = (layerwise_lr_groups(model, lr=lr, decay=layerwise_decay, weight_decay=weight_decay)
              if layerwise_decay is not None else
              param_groups(model, lr=lr, backbone_lr_factor=backbone_lr_factor, weight_decay=weight_decay))
    opt = torch.optim.AdamW(groups, lr=lr)
    loader = make_loader(train_set, batch_size=batch_size, shuffle=True, device=device, generator=_generator(seed),
                         collate_fn=collate_fn)
    val = make_loader(test_set, batch_size=256, device=device) if test_set is not None else None
    return fit(model, loader, loss_fn=_loss(label_smoothing), optimizer=opt, epochs=epochs, val_loader=val,
               metrics={"acc": accuracy}, device=device, progress=False)


@dataclass(frozen=True)
class RegimeConfig:
    """Hyper-parameters of :func:`run_regime` (one set for all regimes, so they are compared fairly).

    Attributes:
        epochs: epochs over the images (``scratch``, ``finetune_all``) or
            over the cached activations (``finetune_last``).
        probe_epochs: epochs of the linear probe (cheap; default ``3 * epochs``).
        lr: the head's learning rate (and everything's, from scratch).
        probe_lr: the linear probe's learning rate.
        backbone_lr_factor: ``finetune_all``: backbone LR relative to the head's.
        layerwise_decay: ``finetune_all``: per-block decay instead of the flat factor.
        n_last_blocks: ``finetune_last``: how many blocks to train.
        weight_decay, batch_size, label_smoothing: as usual.
    """

    epochs: int = 10
    probe_epochs: int | None = None
    lr: float = 3e-3
    probe_lr: float = 1e-2
    backbone_lr_factor: float = 0.1
    layerwise_decay: float | None = None
    n_last_blocks: int = 2
    weight_decay: float = 1e-4
    batch_size: int = 32
    label_smoothing: float = 0.0


@dataclass
class RegimeResult:
    """What one :func:`run_regime` call measured."""

    regime: str
    accuracy: float
    history: History
    trainable_params: int
    seconds: float
    seed: int
    model: nn.Module | None = field(default=None, repr=False)

    @property
    def curve(self) -> list[float]:
        """Test accuracy after each epoch."""
        return self.history["val_acc"]


def run_regime(regime: str, model_fn: Callable[[], nn.Module], train_set: Dataset, test_set: Dataset, *,
               num_classes: int, config: RegimeConfig = RegimeConfig(), seed: int = 0,
               device: str | torch.device | None = None, cache_name: str | None = None,
               keep_model: bool = False) -> RegimeResult:
    """Train ``regime`` on ``train_set`` and measure top-1 accuracy on ``test_set``.

    Args:
        regime: one of :data:`REGIMES`.
        model_fn: builds the starting network: the pretrained source for the
            transfer regimes, a randomly initialised one for ``"scratch"``.
            Its classifier is replaced by a fresh one with ``num_classes`` outputs.
        config: the shared :class:`RegimeConfig`.
        seed: seeds the head's initialisation and the batch order.
        cache_name: prefix of the cached-feature files.
        keep_model: return the trained module in ``result.model``.
    """
    if regime not in REGIMES:
        raise ValueError(f"Unknown regime {regime!r}; use one of {REGIMES}.")
    t0 = time.perf_counter()
    seed_everything(seed)
    model = model_fn()
    if regime in ("linear_probe", "finetune_last"):
        n = 0 if regime == "linear_probe" else config.n_last_blocks
        freeze(model)
        tr = cached_features(model, train_set, n_last_blocks=n, name=cache_name, device=device)
        te = cached_features(model, test_set, n_last_blocks=n, name=cache_name, device=device)
        if regime == "linear_probe":
            head, hist = train_linear_probe(tr, te, num_classes=num_classes,
                                            epochs=config.probe_epochs or 3 * config.epochs, lr=config.probe_lr,
                                            weight_decay=config.weight_decay, batch_size=config.batch_size,
                                            seed=seed, label_smoothing=config.label_smoothing, device=device)
            trained, n_train = head, count_trainable(head)
        else:
            seed_everything(seed)
            _, tail = split_model(model, n)
            unfreeze(tail.blocks)
            tail.reset_classifier(num_classes)
            hist = train_tail(tail, tr, te, epochs=config.epochs, lr=config.lr, weight_decay=config.weight_decay,
                              batch_size=config.batch_size, seed=seed, label_smoothing=config.label_smoothing,
                              device=device)
            trained, n_train = tail, count_trainable(tail)
    else:
        model.reset_classifier(num_classes)
        unfreeze(model)
        factor = 1.0 if regime == "scratch" else config.backbone_lr_factor
        decay = config.layerwise_decay if regime == "finetune_all" else None
        hist = fine_tune(model, train_set, test_set, epochs=config.epochs, lr=config.lr, backbone_lr_factor=factor,
                         layerwise_decay=decay, weight_decay=config.weight_decay, batch_size=config.batch_size,
                         seed=seed, label_smoothing=config.label_smoothing, device=device)
        trained, n_train = model, count_trainable(model)
    return RegimeResult(regime, float(hist.last("val_acc")), hist, n_train, time.perf_counter() - t0, seed,
                        trained if keep_model else None)


# --------------------------------------------------------------------------
# SimCLR
# --------------------------------------------------------------------------


class SimCLRAugment(nn.Module):
    """SimCLR's augmentations on a whole batch, on its device (Chen et al., 2020).

    Each image gets its own random resized crop (area ``crop_scale`` of the
    image, aspect ratio in ``[3/4, 4/3]``), a horizontal flip with
    probability 1/2, colour jitter (brightness, contrast, saturation by up
    to ``jitter``), and is turned grey with probability ``grayscale_prob``.
    Inputs are ``(N, C, H, W)`` in ``[0, 1]``; outputs too.

    Args:
        crop_scale: range of the crop's share of the image area.
        flip: random horizontal flips.
        jitter: strength of the colour jitter (0 turns it off).
        grayscale_prob: probability of a grey image.
        generator: a CPU ``torch.Generator`` for reproducible draws.
    """

    def __init__(self, *, crop_scale: tuple[float, float] = (0.3, 1.0), flip: bool = True, jitter: float = 0.4,
                 grayscale_prob: float = 0.2, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale}.")
        self.crop_scale, self.flip, self.jitter, self.grayscale_prob = crop_scale, flip, jitter, grayscale_prob
        self.generator = generator

    def _rand(self, n: int, device: torch.device) -> Tensor:
        return torch.rand(n, generator=self.generator).to(device)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> augmented ``(N, C, H, W)``."""
        n, c = x.shape[:2]
        dev = x.device
        lo, hi = self.crop_scale
        area = lo + (hi - lo) * self._rand(n, dev)
        log_r = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * self._rand(n, dev)
        # keep the crop inside the image: aspect ratio within [area, 1 / area]
        log_area = torch.log(area)
        ratio = torch.exp(torch.maximum(torch.minimum(log_r, -log_area), log_area))
        sx = torch.sqrt(area * ratio).clamp(max=1.0)
        sy = torch.sqrt(area / ratio).clamp(max=1.0)
        tx = (2 * self._rand(n, dev) - 1) * (1 - sx)
        ty = (2 * self._rand(n, dev) - 1) * (1 - sy)
        if self.flip:
            sx = torch.where(self._rand(n, dev) < 0.5, -sx, sx)
        theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, tx, sy, ty
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        if self.jitter > 0:
            j = self.jitter
            shape = (n, 1, 1, 1)
            brightness = (1 - j + 2 * j * self._rand(n, dev)).view(shape)
            contrast = (1 - j + 2 * j * self._rand(n, dev)).view(shape)
            out = out * brightness
            mean = out.mean(dim=(1, 2, 3), keepdim=True)
            out = (out - mean) * contrast + mean
            if c == 3:
                saturation = (1 - j + 2 * j * self._rand(n, dev)).view(shape)
                grey = _luma(out)
                out = grey + (out - grey) * saturation
        if self.grayscale_prob > 0 and c == 3:
            to_grey = (self._rand(n, dev) < self.grayscale_prob).view(n, 1, 1, 1)
            out = torch.where(to_grey, _luma(out).expand_as(out), out)
        return out.clamp(0.0, 1.0)

    def extra_repr(self) -> str:
        return (f"crop_scale={self.crop_scale}, flip={self.flip}, jitter={self.jitter}, "
                f"grayscale_prob={self.grayscale_prob}")


def _luma(x: Tensor) -> Tensor:
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


class SimCLRModel(nn.Module):
    """A backbone that returns embeddings, followed by SimCLR's projection MLP.

    ``forward(x)`` gives the projections ``z`` the NT-Xent loss compares; the
    backbone's embeddings (before the projection) are what transfers.

    Args:
        backbone: a zoo model built with ``num_classes=0`` (it returns its
            ``num_features``-wide embedding).
        projection_dim: width of ``z``.
        hidden_dim: width of the MLP's hidden layer (default ``num_features``).
    """

    def __init__(self, backbone: nn.Module, *, projection_dim: int = 64, hidden_dim: int | None = None) -> None:
        super().__init__()
        d = int(getattr(backbone, "num_features"))
        hidden = hidden_dim or d
        self.backbone = backbone
        self.projector = nn.Sequential(nn.Linear(d, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                       nn.Linear(hidden, projection_dim))

    def forward(self, x: Tensor) -> Tensor:
        """Images -> projections ``(N, projection_dim)``."""
        return self.projector(self.backbone(x))


def simclr_forward_fn(augment: nn.Module) -> Callable[[nn.Module, Tensor], tuple[Tensor, Tensor]]:
    """A ``forward_fn`` for ``fit``: two augmented views of the batch -> their projections ``(z1, z2)``."""

    def forward(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
        return model(augment(x)), model(augment(x))

    return forward


def pretrain_simclr(backbone: nn.Module, dataset: Dataset, *, epochs: int = 10, batch_size: int = 128,
                    lr: float = 2e-3, weight_decay: float = 1e-4, temperature: float = 0.2,
                    augment: nn.Module | None = None, projection_dim: int = 64, seed: int = 0,
                    device: str | torch.device | None = None, progress: bool | None = False,
                    max_steps_per_epoch: int | None = None,
                    callbacks: Sequence[Any] = ()) -> tuple[SimCLRModel, History]:
    """Self-supervised pre-training of ``backbone`` on unlabelled images (SimCLR, NT-Xent).

    Labels in ``dataset`` are ignored. Each batch is augmented twice on the
    device (:class:`SimCLRAugment`); the loss pulls the two views of each image
    together and pushes the other ``2N - 2`` images away. Built on
    :func:`~course_utils.train.fit` with a ``forward_fn``.

    Returns:
        ``(simclr_model, history)``; ``simclr_model.backbone`` is the trained
        backbone (the same object as ``backbone``).
    """
    seed_everything(seed)
    augment = augment or SimCLRAugment(generator=_generator(seed))
    model = SimCLRModel(backbone, projection_dim=projection_dim)
    ntxent = NTXentLoss(temperature)
    loader = make_loader(dataset, batch_size=batch_size, shuffle=True, drop_last=len(dataset) > batch_size,
                         device=device, generator=_generator(seed))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    hist = fit(model, loader, loss_fn=lambda out, _targets: ntxent(*out), optimizer=opt, epochs=epochs,
               scheduler=sched, forward_fn=simclr_forward_fn(augment), device=device, progress=progress,
               max_steps_per_epoch=max_steps_per_epoch, callbacks=callbacks)
    return model, hist


# --------------------------------------------------------------------------
# multi-task
# --------------------------------------------------------------------------


class TaskOutputs(dict):
    """``{task: logits}``, with ``detach()`` like a tensor (``fit`` detaches outputs before computing metrics)."""

    def detach(self) -> TaskOutputs:
        return TaskOutputs({k: v.detach() for k, v in self.items()})

    def float(self) -> TaskOutputs:
        return TaskOutputs({k: v.float() for k, v in self.items()})


class MultiTaskModel(nn.Module):
    """One shared backbone, one linear head per task.

    Args:
        backbone: maps inputs to embeddings ``(N, num_features)`` (a zoo
            model with ``num_classes=0``, or a :class:`TailModel` whose
            classifier was reset to 0).
        num_features: the embedding width.
        tasks: task name -> number of classes, e.g. ``{"gender": 2, "age": 3}``.
        drop_rate: dropout before the heads.
    """

    def __init__(self, backbone: nn.Module, num_features: int, tasks: Mapping[str, int], *,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("MultiTaskModel needs at least one task.")
        self.backbone = backbone
        self.tasks = dict(tasks)
        self.drop = nn.Dropout(drop_rate)
        self.heads = nn.ModuleDict({t: nn.Linear(num_features, k) for t, k in self.tasks.items()})

    def forward(self, x: Tensor) -> TaskOutputs:
        """Inputs -> ``{task: logits (N, K_task)}`` (a :class:`TaskOutputs` dict)."""
        z = self.drop(self.backbone(x))
        return TaskOutputs({t: head(z) for t, head in self.heads.items()})


class MultiTaskLoss(nn.Module):
    """``L = sum_t w_t * CE(logits_t, y_t)``: a weighted sum of the tasks' cross-entropies.

    Args:
        tasks: task names, in the column order of the ``(N, T)`` target matrix.
        weights: task -> weight (default 1 for each).
        label_smoothing: applied to every task.
    """

    def __init__(self, tasks: Sequence[str], weights: Mapping[str, float] | None = None, *,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.tasks = list(tasks)
        weights = dict(weights or {})
        unknown = set(weights) - set(self.tasks)
        if unknown:
            raise ValueError(f"weights for unknown tasks {sorted(unknown)}; tasks are {self.tasks}.")
        self.weights = {t: float(weights.get(t, 1.0)) for t in self.tasks}
        self.ce = _loss(label_smoothing)

    def forward(self, outputs: Mapping[str, Tensor], targets: Tensor) -> Tensor:
        """``outputs`` ``{task: (N, K_t)}``; ``targets`` ``(N, T)`` class indices -> scalar."""
        if targets.ndim != 2 or targets.shape[1] != len(self.tasks):
            raise ValueError(f"targets must have shape (N, {len(self.tasks)}), got {tuple(targets.shape)}.")
        total = targets.new_zeros((), dtype=torch.float32)
        for i, t in enumerate(self.tasks):
            if self.weights[t]:
                total = total + self.weights[t] * self.ce(outputs[t].float(), targets[:, i])
        return total


def task_accuracy(task: str, column: int) -> Callable[[Any, Tensor], Tensor]:
    """A metric for ``fit``: accuracy of one task (``outputs[task]`` against ``targets[:, column]``)."""

    def metric(outputs: Any, targets: Tensor) -> Tensor:
        out = outputs[task] if isinstance(outputs, Mapping) else outputs
        tgt = targets[:, column] if targets.ndim == 2 else targets
        return accuracy(out, tgt)

    metric.__name__ = f"acc_{task}"
    return metric


def multitask_targets(attributes: Any, columns: Sequence[str], *,
                      categories: Mapping[str, Sequence[str]] | None = None) -> tuple[Tensor, dict[str, list[str]]]:
    """An ``(N, T)`` matrix of category codes, one column per task, and each task's class names.

    Args:
        attributes: a DataFrame, or a data set with an ``attributes`` DataFrame.
        columns: the task columns, in order.
        categories: class names per column (pass the training set's to code
            a test set the same way); default: the categories present.

    Raises:
        ValueError: a value is not among the given categories.
    """
    import pandas as pd

    frame = getattr(attributes, "attributes", attributes)
    codes, names = [], {}
    for col in columns:
        values = frame[col]
        if categories is not None and col in categories:
            cats = [str(c) for c in categories[col]]
            bad = sorted(set(values.astype(str)) - set(cats))
            if bad:
                raise ValueError(f"column {col!r} has values {bad[:5]} outside the categories {cats}.")
            cat = pd.Categorical(values.astype(str), categories=cats)
        else:
            cat = pd.Categorical(values).remove_unused_categories()
            cats = [str(c) for c in cat.categories]
        codes.append(torch.as_tensor(np.asarray(cat.codes, dtype=np.int64)))
        names[col] = cats
    return torch.stack(codes, dim=1), names


@torch.no_grad()
def predict_probs(model: nn.Module, data: Dataset, *, device: str | torch.device | None = None,
                  batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities ``(N, K)`` and labels ``(N,)`` of ``model`` on ``data`` (for calibration)."""
    logits, targets = predict(model, make_loader(data, batch_size=batch_size, device=device), device=device)
    return torch.softmax(logits, dim=1).numpy(), targets.numpy()


def evaluate_accuracy(model: nn.Module, data: Dataset, *, device: str | torch.device | None = None) -> float:
    """Top-1 accuracy of ``model`` on ``data``."""
    return evaluate(model, make_loader(data, batch_size=512, device=device), metrics={"acc": accuracy},
                    device=device)["acc"]


# --------------------------------------------------------------------------
# aligned face chips (the input of dlib's face recogniser)
# --------------------------------------------------------------------------


def _chip_key(images: Sequence[Any], recognizer: Any, align: bool, fallback: str) -> str:
    """Digest of the images' content (file bytes for paths, pixels for arrays) and of the alignment settings."""
    from course_utils.data.cache import file_digest, fingerprint_files
    from course_utils.pretrained.recognizer import CHIP_PADDING, CHIP_SIZE

    h = hashlib.sha1()
    if align:
        c = recognizer.config
        files = [recognizer.files["shape_predictor_5"]] + ([recognizer.files["cnn_detector"]] if c.detector == "cnn" else [])
        h.update(f"align|{c.detector}|up{c.upsample}|{CHIP_SIZE}|{CHIP_PADDING}|{fallback}|".encode())
        h.update("".join(file_digest(Path(f)) for f in files).encode())
    else:
        h.update(f"resize|{CHIP_SIZE}|".encode())
    if images and all(isinstance(x, (str, Path)) for x in images):
        h.update(fingerprint_files(images).encode())  # names and bytes: a changed file gives a new key
    else:
        from course_utils.pretrained.recognizer import _to_rgb

        for x in images:
            rgb = _to_rgb(x)
            h.update(str(rgb.shape).encode())
            h.update(memoryview(rgb).cast("B"))
    return h.hexdigest()[:20]


def aligned_chips(images: Sequence[Any], *, recognizer: Any = None, align: bool = True,
                  fallback: str = "image", name: str = "faces", cache: bool = True,
                  progress: bool | None = None) -> tuple[Tensor, np.ndarray]:
    """The 150 x 150 face chips dlib's network reads, one per image, computed once and cached.

    Each image is aligned with ``recognizer.align`` (dlib's detector, five
    landmarks, ``get_face_chip``; the whole image when no face is found), or
    with ``align=False`` only resized to 150 x 150 (for images that already
    are dlib chips, such as FairFace's). The chips are cached through
    :func:`course_utils.data.cache.load_or_build` under a key made of the
    images' content (file bytes for paths, pixels for arrays) and the
    alignment settings, so changing an image or a model file never reuses
    stale chips.

    Args:
        images: paths, PIL images or ``uint8`` arrays.
        recognizer: a :class:`~course_utils.pretrained.recognizer.FaceRecognizer`
            (default :func:`~course_utils.pretrained.recognizer.face_recognizer`).
        align: detect and align (default) or only resize.
        fallback: where no face is detected, ``"image"`` aligns on the whole
            image as :meth:`~course_utils.pretrained.recognizer.FaceRecognizer.align`
            does, ``"resize"`` resizes the whole image instead (right for
            images that already are face crops, e.g. FairFace's).
        name: readable prefix of the cache file.
        cache: read and write ``cache_dir("tensors")``.
        progress: a progress bar (default as ``fit``'s).

    Returns:
        ``(chips, found)``: ``uint8`` RGB ``(N, 3, 150, 150)`` (feed them to
        :class:`~course_utils.models.dlib_resnet.DlibFaceResNet` as they are: it
        normalises 0-255 input itself) and a ``bool`` array ``(N,)``, ``False``
        where no face was detected.

    Raises:
        FaceModelUnavailableError: ``align=True`` and dlib or its models are missing or disabled.
    """
    from course_utils.data.cache import load_or_build
    from course_utils.pretrained.recognizer import (
        _resized_chip,
        _to_rgb,
        face_recognizer,
    )

    images = list(images)
    if fallback not in ("image", "resize"):
        raise ValueError(f"fallback={fallback!r}; use 'image' or 'resize'.")
    if align and recognizer is None:
        recognizer = face_recognizer()

    def build() -> dict[str, Tensor]:
        from tqdm.auto import tqdm

        chips = torch.empty((len(images), 3, 150, 150), dtype=torch.uint8)
        found = torch.ones(len(images), dtype=torch.bool)
        show = progress_enabled() if progress is None else progress
        for i, x in enumerate(tqdm(images, desc="aligning faces", disable=not show, leave=False)):
            rgb = _to_rgb(x)
            if align:
                chip, ok = recognizer.align(rgb, return_found=True)
                if not ok and fallback == "resize":
                    chip = _resized_chip(rgb)
            else:
                chip, ok = _resized_chip(rgb), True
            chips[i] = torch.tensor(chip).permute(2, 0, 1)  # a copy: decoded arrays may be read-only
            found[i] = bool(ok)
        return {"chips": chips, "found": found}

    if not images:
        out = build()
    else:
        out = load_or_build(name, split="chips" if align else "resized", image_size=150,
                            key=_chip_key(images, recognizer, align, fallback), build=build, enabled=cache)
    return out["chips"], out["found"].numpy().astype(bool)


class AlignedFaceDataset(TensorDataset):
    """Aligned face chips and labels: ``(uint8 chip (3, 150, 150), target)`` pairs.

    Attributes:
        chips: ``uint8`` ``(N, 3, 150, 150)``.
        targets: ``int64`` ``(N,)``.
        found: ``bool`` array ``(N,)``, ``False`` where no face was detected.
    """

    def __init__(self, chips: Tensor, targets: Any, found: np.ndarray | None = None) -> None:
        targets = torch.tensor(np.asarray(targets), dtype=torch.long)  # a copy: label arrays may be read-only
        if chips.dtype != torch.uint8 or chips.ndim != 4 or targets.shape != (chips.shape[0],):
            raise ValueError(f"chips must be uint8 (N, 3, H, W) with N targets; got {chips.dtype} "
                             f"{tuple(chips.shape)} and targets {tuple(targets.shape)}.")
        super().__init__(chips, targets)
        self.chips, self.targets = chips, targets
        self.found = np.ones(len(targets), dtype=bool) if found is None else np.asarray(found, dtype=bool)

    def subset(self, indices: Any) -> AlignedFaceDataset:
        """The rows ``indices``."""
        idx = np.asarray(indices, dtype=np.int64)
        t = torch.from_numpy(idx)
        return AlignedFaceDataset(self.chips[t], self.targets[t], self.found[idx])


def aligned_face_dataset(images: Sequence[Any], targets: Any, **kwargs: Any) -> AlignedFaceDataset:
    """:func:`aligned_chips` of ``images`` with their ``targets``, as a data set for
    :func:`cached_features` (``kwargs`` go to :func:`aligned_chips`)."""
    chips, found = aligned_chips(images, **kwargs)
    return AlignedFaceDataset(chips, targets, found)
