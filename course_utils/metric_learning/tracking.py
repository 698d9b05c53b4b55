"""Per-epoch diagnostics of a metric-learning loss during ``fit`` (e.g. the active-triplet fraction)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from torch import Tensor

from course_utils.metric_learning.miners import active_triplet_fraction
from course_utils.train import Callback, TrainState

__all__ = ["TrackedLoss"]


class TrackedLoss(Callback):
    """Wrap a loss so that its per-batch diagnostics are averaged per epoch.

    Use the same object as ``loss_fn`` and as a callback of ``fit``::

        tracked = TrackedLoss(TripletLoss(0.2, miner=BatchHardMiner(margin=0.2)), all_triplets_margin=0.2)
        fit(net, loader, loss_fn=tracked, callbacks=[tracked], ...)
        tracked.history          # [{"epoch": 1, "loss": ..., "active_fraction": ..., ...}, ...]

    Per epoch it records the mean over batches of the loss value and of each
    attribute in ``attrs`` that the loss has (``last_active_fraction`` of the
    triplet and contrastive losses, reported as ``active_fraction``); with
    ``all_triplets_margin`` also ``active_fraction_all``, the fraction of
    *all* valid triplets of the batch that violate that margin, whichever
    triplets the loss trained on.

    Attributes:
        loss: the wrapped loss (its parameters, e.g. ArcFace's class weights,
            must go to the optimizer).
        history: one dict per finished epoch.
    """

    def __init__(
        self,
        loss: Callable[[Any, Any], Tensor],
        *,
        attrs: Sequence[str] = ("last_active_fraction",),
        all_triplets_margin: float | None = None,
    ) -> None:
        self.loss = loss
        self.attrs = tuple(attrs)
        self.all_triplets_margin = all_triplets_margin
        self.history: list[dict[str, float]] = []
        self._batches: dict[str, list[float]] = {}

    @staticmethod
    def _key(attr: str) -> str:
        return attr[len("last_"):] if attr.startswith("last_") else attr

    def __call__(self, outputs: Any, targets: Any) -> Tensor:
        value = self.loss(outputs, targets)
        self._batches.setdefault("loss", []).append(float(value.detach()))
        for attr in self.attrs:
            if hasattr(self.loss, attr):
                self._batches.setdefault(self._key(attr), []).append(float(getattr(self.loss, attr)))
        if self.all_triplets_margin is not None and isinstance(outputs, Tensor):
            frac = active_triplet_fraction(outputs.detach().float(), targets, margin=self.all_triplets_margin)
            self._batches.setdefault("active_fraction_all", []).append(frac)
        return value

    def on_fit_start(self, state: TrainState) -> None:
        self.history, self._batches = [], {}

    def on_epoch_end(self, state: TrainState, record: dict[str, float]) -> None:
        row = {"epoch": float(state.epoch)}
        row.update({k: float(np.mean(v)) for k, v in self._batches.items() if v})
        self.history.append(row)
        self._batches = {}

    def series(self, key: str) -> list[float]:
        """The per-epoch values of ``key`` (``loss``, ``active_fraction``, ...)."""
        return [row.get(key, math.nan) for row in self.history]
