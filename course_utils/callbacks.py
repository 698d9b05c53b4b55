"""What ``fit`` records and who watches it: :class:`History`, :class:`TrainState` and the callbacks.

A :class:`Callback` gets ``on_fit_start``, ``on_epoch_end`` (with the epoch's
record) and ``on_fit_end``; :class:`EarlyStopping` stops a run whose
monitored value stalls, :class:`BestCheckpoint` keeps (and optionally saves)
the best weights. Re-exported by :mod:`course_utils.train`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from course_utils import distributed as _dist
from course_utils.checkpointing import save_checkpoint

__all__ = [
    "History",
    "TrainState",
    "Callback",
    "EarlyStopping",
    "BestCheckpoint",
]


@dataclass
class History:
    """Per-epoch records of a training run.

    ``history["val_loss"]`` gives the list over epochs; ``history.records``
    holds one dict per epoch (``epoch``, ``train_loss``, ``val_loss``,
    ``train_<metric>``, ``val_<metric>``, ``lr``, ``seconds``,
    ``images_per_s``).
    """

    records: list[dict[str, float]] = field(default_factory=list)

    def append(self, record: dict[str, float]) -> None:
        self.records.append(dict(record))

    def __getitem__(self, key: str) -> list[float]:
        if not self.records or key not in self.keys():
            raise KeyError(f"No {key!r} in the history; have {sorted(self.keys())}.")
        return [r.get(key, math.nan) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            seen.update(dict.fromkeys(r))
        return list(seen)

    def last(self, key: str) -> float:
        return self[key][-1]

    def best(self, key: str, *, mode: str = "min") -> tuple[int, float]:
        """``(epoch, value)`` of the best value of ``key``."""
        values = self[key]
        pick = min if mode == "min" else max
        value = pick(v for v in values if not math.isnan(v))
        return int(self.records[values.index(value)]["epoch"]), value

    def to_dataframe(self) -> pd.DataFrame:
        """One row per epoch."""
        return pd.DataFrame(self.records)


@dataclass
class TrainState:
    """What callbacks see: the run so far."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    epoch: int = 0
    step: int = 0
    stop: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


class Callback:
    """Base class: override the hooks you need."""

    def on_fit_start(self, state: TrainState) -> None:  # noqa: D102
        pass

    def on_epoch_end(self, state: TrainState, record: dict[str, float]) -> None:  # noqa: D102
        pass

    def on_fit_end(self, state: TrainState) -> None:  # noqa: D102
        pass


def _is_better(value: float, best: float, mode: str, min_delta: float) -> bool:
    if mode == "min":
        return value < best - min_delta
    if mode == "max":
        return value > best + min_delta
    raise ValueError(f"mode={mode!r}: use 'min' or 'max'.")


def _monitored(record: dict[str, float], monitor: str) -> float:
    if monitor not in record:
        raise KeyError(
            f"Callback monitors {monitor!r}, but the epoch record has {sorted(record)}. "
            "Pass val_loader to fit() to get val_* keys, or monitor a train_* key."
        )
    return record[monitor]


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs."""

    def __init__(self, monitor: str = "val_loss", *, mode: str = "min", patience: int = 3,
                 min_delta: float = 0.0) -> None:
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, min_delta
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = 0
        self.stopped_epoch: int | None = None

    def on_fit_start(self, state: TrainState) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.bad_epochs = 0
        self.stopped_epoch = None

    def on_epoch_end(self, state: TrainState, record: dict[str, float]) -> None:
        value = _monitored(record, self.monitor)
        if _is_better(value, self.best, self.mode, self.min_delta):
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.patience:
                state.stop = True
                self.stopped_epoch = state.epoch


class BestCheckpoint(Callback):
    """Keep the best weights (in memory, and on disk when ``path`` is given).

    Args:
        path: optional checkpoint file, written atomically each time the
            monitored value improves.
        monitor: record key to watch (``val_loss``, ``val_acc`` ...).
        mode: ``"min"`` or ``"max"``.
        restore_best: load the best weights back into the model at the end.
    """

    def __init__(self, path: str | Path | None = None, *, monitor: str = "val_loss", mode: str = "min",
                 restore_best: bool = True) -> None:
        self.path = Path(path) if path is not None else None
        self.monitor, self.mode, self.restore_best = monitor, mode, restore_best
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self._state: dict[str, torch.Tensor] | None = None

    def on_fit_start(self, state: TrainState) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self._state = None, None

    def on_epoch_end(self, state: TrainState, record: dict[str, float]) -> None:
        value = _monitored(record, self.monitor)
        if _is_better(value, self.best, self.mode, 0.0):
            self.best, self.best_epoch = value, state.epoch
            self._state = {k: v.detach().to("cpu", copy=True) for k, v in state.model.state_dict().items()}
            if self.path is not None and _dist.is_main_process():  # rank 0 writes, under torchrun
                save_checkpoint(self.path, state.model, meta={"epoch": state.epoch, self.monitor: value})

    def on_fit_end(self, state: TrainState) -> None:
        if self.restore_best and self._state is not None:
            state.model.load_state_dict(self._state)
