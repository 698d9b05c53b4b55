"""Self-supervised pre-training: SimCLR (Chen et al., 2020) on unlabelled images.

:class:`~course_utils.augment.SimCLRAugment` (batched, on the device), :class:`SimCLRModel`
(backbone + projection MLP) and :func:`pretrain_simclr` (``fit`` with a
``forward_fn`` and :class:`~course_utils.metric_learning.losses.NTXentLoss`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from course_utils.augment import SimCLRAugment
from course_utils.metric_learning.losses import NTXentLoss
from course_utils.settings import seed_everything
from course_utils.train import History, fit, make_loader
from course_utils.transfer._common import _generator

__all__ = [
    "SimCLRModel",
    "simclr_forward_fn",
    "pretrain_simclr",
]


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
