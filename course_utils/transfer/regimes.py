"""The four ways to reuse a pretrained network, and what each one trains.

============================  ==========================================  =========================
regime                        trains                                      helper
============================  ==========================================  =========================
``"scratch"``                 everything, from a random initialisation   :func:`fine_tune`
``"linear_probe"``            a new linear head on frozen features        :func:`~course_utils.transfer.features.train_linear_probe`
``"finetune_last"``           the last ``n`` blocks + a new head          :func:`~course_utils.transfer.features.train_tail`
``"finetune_all"``            everything, the backbone at ~1/10 the LR    :func:`fine_tune`
============================  ==========================================  =========================

:func:`run_regime` runs any of them on a train/test pair of data sets and
returns the test accuracy with its per-epoch :class:`~course_utils.train.History`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from course_utils.cost import count_parameters
from course_utils.settings import seed_everything
from course_utils.train import History, accuracy, fit, make_loader
from course_utils.transfer._common import _generator, _loss
from course_utils.transfer.features import (
    cached_features,
    split_model,
    train_linear_probe,
    train_tail,
)
from course_utils.transfer.freezing import (
    freeze,
    layerwise_lr_groups,
    param_groups,
    unfreeze,
)

__all__ = [
    "REGIMES",
    "fine_tune",
    "RegimeConfig",
    "RegimeResult",
    "run_regime",
]

#: The four regimes, in order of how much of the network they train.
REGIMES: tuple[str, ...] = ("scratch", "linear_probe", "finetune_last", "finetune_all")


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
        collate_fn: e.g. :class:`~course_utils.augment.BatchAugment` for the
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
            trained, n_train = head, count_parameters(head, trainable_only=True)
        else:
            seed_everything(seed)
            _, tail = split_model(model, n)
            unfreeze(tail.blocks)
            tail.reset_classifier(num_classes)
            hist = train_tail(tail, tr, te, epochs=config.epochs, lr=config.lr, weight_decay=config.weight_decay,
                              batch_size=config.batch_size, seed=seed, label_smoothing=config.label_smoothing,
                              device=device)
            trained, n_train = tail, count_parameters(tail, trainable_only=True)
    else:
        model.reset_classifier(num_classes)
        unfreeze(model)
        factor = 1.0 if regime == "scratch" else config.backbone_lr_factor
        decay = config.layerwise_decay if regime == "finetune_all" else None
        hist = fine_tune(model, train_set, test_set, epochs=config.epochs, lr=config.lr, backbone_lr_factor=factor,
                         layerwise_decay=decay, weight_decay=config.weight_decay, batch_size=config.batch_size,
                         seed=seed, label_smoothing=config.label_smoothing, device=device)
        trained, n_train = model, count_parameters(model, trainable_only=True)
    return RegimeResult(regime, float(hist.last("val_acc")), hist, n_train, time.perf_counter() - t0, seed,
                        trained if keep_model else None)
