"""Training, evaluation and prediction loops that use a GPU well and still run on a CPU.

``fit`` trains any ``nn.Module`` on any ``DataLoader`` and returns a
:class:`History`. It never draws: pass the history to
``course_utils.plots.plot_history``.

What it does for you on a GPU, and skips on a CPU:

* mixed precision: bf16 autocast where the GPU supports it, otherwise fp16
  with a ``GradScaler``; nothing on CPU (autocast is a null context there);
* ``channels_last`` memory format (faster convolutions on tensor cores);
* pinned host memory and non-blocking host-to-device copies
  (see :func:`make_loader`);
* the loss is summed on the device and read back only every ``log_every``
  steps, so the GPU is not stalled by a ``.item()`` per batch.

Checkpoints are written atomically (temporary file, then rename) and read with
``torch.load(..., weights_only=True, map_location=...)``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from course_utils import distributed as _dist
from course_utils.settings import resolve_device

__all__ = [
    "progress_enabled",
    "History",
    "TrainState",
    "Callback",
    "EarlyStopping",
    "BestCheckpoint",
    "NonFiniteLossError",
    "CheckpointMismatchError",
    "CheckpointLoadError",
    "fit",
    "evaluate",
    "predict",
    "make_loader",
    "accuracy",
    "amp_dtype",
    "autocast_context",
    "move_to_device",
    "detach_outputs",
    "save_checkpoint",
    "load_checkpoint",
]

CHECKPOINT_FORMAT = "course_utils.checkpoint/1"

Metric = Callable[[Any, Any], torch.Tensor]
ForwardFn = Callable[[nn.Module, Any], Any]


class NonFiniteLossError(FloatingPointError):
    """Raised when the training loss becomes NaN or infinite."""


class CheckpointMismatchError(RuntimeError):
    """Raised when a checkpoint does not fit the model it is loaded into."""


class CheckpointLoadError(RuntimeError):
    """Raised when a checkpoint file cannot be read (empty, truncated, HTML, not a checkpoint)."""


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy of a batch.

    Args:
        outputs: logits, shape (N, C).
        targets: class indices, shape (N,).

    Returns:
        A 0-dim tensor: the fraction of rows whose arg-max equals the target.
    """
    return (outputs.argmax(dim=1) == targets).float().mean()


def move_to_device(obj: Any, device: torch.device, *, non_blocking: bool = False,
                   channels_last: bool = False) -> Any:
    """Move tensors (also inside lists, tuples and dicts) to ``device``.

    4-D floating tensors are converted to ``channels_last`` when asked.
    """
    if isinstance(obj, torch.Tensor):
        obj = obj.to(device, non_blocking=non_blocking)
        if channels_last and obj.dim() == 4 and obj.is_floating_point():
            obj = obj.contiguous(memory_format=torch.channels_last)
        return obj
    if isinstance(obj, Mapping):
        return {k: move_to_device(v, device, non_blocking=non_blocking, channels_last=channels_last)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to_device(v, device, non_blocking=non_blocking, channels_last=channels_last)
                         for v in obj)
    return obj


def detach_outputs(obj: Any) -> Any:
    """Detach tensors, also inside lists, tuples and dicts (multi-task outputs), keeping the container type."""
    if isinstance(obj, torch.Tensor):
        return obj.detach()
    if isinstance(obj, Mapping):
        items = {k: detach_outputs(v) for k, v in obj.items()}
        try:
            return type(obj)(items)
        except TypeError:
            return items
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a NamedTuple
        return type(obj)(*(detach_outputs(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(detach_outputs(v) for v in obj)
    return obj


def _batch_size(x: Any) -> int:
    if isinstance(x, torch.Tensor):
        return int(x.shape[0]) if x.dim() else 1
    if isinstance(x, Mapping):
        return _batch_size(next(iter(x.values())))
    if isinstance(x, (list, tuple)) and x:
        return _batch_size(x[0])
    return 1


def _split_batch(batch: Any) -> tuple[Any, Any]:
    """``(inputs, targets)`` from a batch; extra items (e.g. group labels) are ignored."""
    if isinstance(batch, Mapping):
        return batch["input"], batch.get("target")
    if isinstance(batch, (list, tuple)):
        if len(batch) == 1:
            return batch[0], None
        return batch[0], batch[1]
    return batch, None


def amp_dtype(device: torch.device, amp: bool | str = "auto") -> torch.dtype | None:
    """The autocast dtype to use, or ``None`` for full precision.

    Args:
        device: the compute device. Only CUDA gets mixed precision.
        amp: ``"auto"``/``True`` (bf16 if supported, else fp16), ``"bf16"``,
            ``"fp16"``, or ``False``.
    """
    if amp is False or amp is None or device.type != "cuda":
        return None
    if amp in ("auto", True):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp in ("bf16", "bfloat16"):
        return torch.bfloat16
    if amp in ("fp16", "float16", "half"):
        return torch.float16
    raise ValueError(f"amp={amp!r}: use 'auto', True, False, 'bf16' or 'fp16'.")


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on CUDA with ``dtype``; a null context otherwise."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def progress_enabled() -> bool:
    """Whether progress bars show by default: not under CI, not with ``COURSE_PROGRESS=0``."""
    if os.environ.get("CI") or os.environ.get("COURSE_PROGRESS", "1").lower() in {"0", "false", "no"}:
        return False
    return True


def _in_memory(dataset: Any) -> bool:
    """Whether items come from tensors already in memory (workers would only add copying)."""
    from torch.utils.data import Subset, TensorDataset

    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    if isinstance(dataset, TensorDataset):
        return True
    images = getattr(dataset, "images", None)
    return isinstance(images, torch.Tensor) and getattr(dataset, "transform", None) is None


def _defined_in_main(dataset: Any) -> list[str]:
    """What of the dataset (its class, its transform) lives in ``__main__``, i.e. in a notebook."""
    found = []
    for what, thing in (("dataset class", type(dataset)), ("transform", getattr(dataset, "transform", None))):
        if thing is not None and getattr(thing, "__module__", None) == "__main__":
            name = getattr(thing, "__qualname__", None) or type(thing).__qualname__
            found.append(f"{what} {name}")
    return found


def _start_method() -> str:
    import multiprocessing

    return multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_context().get_start_method()


def make_loader(dataset: Dataset, *, batch_size: int = 64, shuffle: bool = False,
                device: str | torch.device | None = None, num_workers: int | None = None,
                drop_last: bool | None = None, sampler: Any = None, batch_sampler: Any = None,
                generator: torch.Generator | None = None, **kwargs: Any) -> DataLoader:
    """A ``DataLoader`` set up for the device.

    Worker processes only where they help and work: none on a CPU (with two
    cores they compete with the model), none for tensors already in memory
    (a ``TensorDataset`` or a ``TensorImageDataset`` without a transform),
    and none by default when a notebook-defined dataset could not reach
    them (the ``spawn`` start method of Windows and macOS imports
    ``__main__`` afresh); otherwise up to 4 on CUDA, not persistent. Pinned
    memory on CUDA.

    Args:
        drop_last: ``None`` drops the last batch of a training loader
            (``shuffle=True`` or a ``sampler``) when it would hold a single
            sample, which BatchNorm cannot train on (PyTorch raises); other
            incomplete batches are kept. ``True``/``False`` as in ``DataLoader``.
        num_workers: an explicit count; with a ``__main__`` dataset under
            ``spawn`` it raises a ``RuntimeError`` that says how to fix it.
    """
    dev = resolve_device(device)
    spawn = _start_method() in ("spawn", "forkserver")
    in_main = _defined_in_main(dataset) if spawn else []
    if num_workers is None:
        helps = dev.type == "cuda" and not _in_memory(dataset) and not in_main
        num_workers = min(4, os.cpu_count() or 1) if helps else 0
    elif num_workers > 0 and in_main:
        raise RuntimeError(
            f"make_loader(num_workers={num_workers}): the {', '.join(in_main)} is defined in the notebook "
            f"(__main__), and worker processes started with {_start_method()!r} (Windows, macOS) cannot import it "
            "(\"Can't get attribute ... on <module '__main__'>\"). Move it into a .py file next to the notebook and "
            "import it from there, or use num_workers=0."
        )
    kwargs.setdefault("persistent_workers", False)
    if num_workers == 0:
        kwargs.pop("persistent_workers")
    if batch_sampler is not None:
        return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=num_workers,
                          pin_memory=dev.type == "cuda", **kwargs)
    if drop_last is None:
        n = len(dataset)  # type: ignore[arg-type]
        drop_last = bool(shuffle or sampler is not None) and n > batch_size and n % batch_size == 1
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=num_workers, pin_memory=dev.type == "cuda", drop_last=drop_last,
                      generator=generator, **kwargs)


# --------------------------------------------------------------------------
# history and callbacks
# --------------------------------------------------------------------------


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

    def to_dataframe(self) -> Any:
        import pandas as pd

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


# --------------------------------------------------------------------------
# the loops
# --------------------------------------------------------------------------


def _check_finite(value: float, *, epoch: int, step: int, amp: torch.dtype | None) -> None:
    if math.isfinite(value):
        return
    hints = ["lower the learning rate", "clip gradients (fit(..., grad_clip=1.0))",
             "check the inputs and targets for NaN"]
    if amp is torch.float16:
        hints.append("try amp='bf16' or amp=False")
    raise NonFiniteLossError(
        f"The training loss became {value} at epoch {epoch}, step {step}. To fix it: " + "; ".join(hints) + "."
    )


def _warn_skipped_batches(single: int, nonfinite: int, *, epoch: int) -> None:
    if single:
        warnings.warn(f"Epoch {epoch}: skipped {single} training batch(es) of one sample, which BatchNorm cannot "
                      "train on. Use make_loader(..., shuffle=True) (it drops such a last batch) or "
                      "DataLoader(..., drop_last=True).", RuntimeWarning, stacklevel=3)
    if nonfinite:
        warnings.warn(f"Epoch {epoch}: skipped {nonfinite} batch(es) with a NaN or infinite loss (the weights were "
                      "not updated with them). Lower the learning rate or check the data.", RuntimeWarning,
                      stacklevel=3)


def _default_forward(model: nn.Module, inputs: Any) -> Any:
    return model(inputs)


def fit(
    model: nn.Module,
    train_loader: Iterable,
    *,
    loss_fn: Callable[[Any, Any], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    epochs: int = 1,
    val_loader: Iterable | None = None,
    metrics: Mapping[str, Metric] | None = None,
    scheduler: Any = None,
    scheduler_step: str = "epoch",
    device: str | torch.device | None = None,
    amp: bool | str = "auto",
    channels_last: bool = False,
    grad_clip: float | None = None,
    callbacks: Sequence[Callback] = (),
    forward_fn: ForwardFn | None = None,
    log_every: int | None = None,
    progress: bool | None = None,
    max_steps_per_epoch: int | None = None,
    on_nonfinite: str = "raise",
    start_epoch: int = 1,
    ddp_options: Mapping[str, Any] | None = None,
) -> History:
    """Train ``model`` and return its per-epoch :class:`History`.

    Args:
        model: any module; it is moved to ``device``.
        train_loader: yields ``(inputs, targets, *extra)`` batches (extras,
            such as group labels, are ignored). Inputs/targets may be tensors
            or nested tuples/dicts of tensors.
        loss_fn: ``loss_fn(outputs, targets) -> scalar tensor``.
        optimizer: built on ``model.parameters()`` (and any loss parameters).
        epochs: number of passes over ``train_loader``.
        val_loader: evaluated after each epoch (``val_loss``, ``val_<metric>``).
        metrics: name -> ``metric(outputs, targets) -> 0-dim tensor``,
            averaged over samples (e.g. ``{"acc": accuracy}``).
        scheduler: a ``torch.optim.lr_scheduler`` object; stepped every
            epoch, or every batch with ``scheduler_step="batch"``.
            ``ReduceLROnPlateau`` is stepped with ``val_loss`` (or
            ``train_loss``).
        device: ``None``/``"auto"`` resolves CUDA, then MPS, then CPU.
        amp: mixed precision on CUDA: ``"auto"`` (bf16 if supported, else
            fp16 with a gradient scaler), ``"bf16"``, ``"fp16"`` or ``False``.
            Ignored on CPU and MPS.
        channels_last: use the channels-last memory format for 4-D inputs
            and the model (a speed-up for convolutions on recent GPUs).
        grad_clip: clip the global gradient norm to this value.
        callbacks: :class:`Callback` objects (early stopping, best checkpoint ...).
        forward_fn: ``forward_fn(model, inputs) -> outputs``; default
            ``model(inputs)``. Use it for Siamese pairs and the like.
        log_every: read the running loss back every this many steps (also
            checks it is finite). Default 1 on CPU, 25 on accelerators.
        progress: show a progress bar (``tqdm.auto``); default on, except
            when ``CI`` or ``COURSE_PROGRESS=0`` is set.
        max_steps_per_epoch: cut each epoch short (smoke tests, fast mode).
        on_nonfinite: a NaN or infinite batch loss is detected before the
            optimiser steps (the weights stay as they were): ``"raise"``
            stops with :class:`NonFiniteLossError`, ``"skip"`` skips the
            batch (one warning per epoch counts them).
        start_epoch: number of the first epoch, to resume a run: with the
            weights and optimizer state of epoch ``start_epoch - 1`` loaded,
            ``fit(..., start_epoch=s, epochs=e)`` runs epochs ``s .. e``.
        ddp_options: extra ``DistributedDataParallel`` arguments (e.g.
            ``{"find_unused_parameters": True}``), used under a process group.

    Under ``torchrun`` (after :func:`course_utils.distributed.init_distributed`)
    the model, and a ``loss_fn`` module with parameters, are wrapped in
    ``DistributedDataParallel``, the loaders are split over the ranks, the
    loss and metrics are summed over the ranks, and only rank 0 shows
    progress and writes checkpoints (see :mod:`course_utils.distributed`).

    A batch of one sample is skipped (with a warning) when the model has
    BatchNorm layers, which cannot train on one sample; :func:`make_loader`
    drops such a last batch of training loaders.

    Returns:
        The :class:`History`; the model is trained in place.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite.
    """
    dev = resolve_device(device)
    dtype = amp_dtype(dev, amp)
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype is torch.float16)
    if log_every is None:
        log_every = 1 if dev.type == "cpu" else 25
    if scheduler_step not in {"epoch", "batch"}:
        raise ValueError(f"scheduler_step={scheduler_step!r}: use 'epoch' or 'batch'.")
    if on_nonfinite not in ("raise", "skip"):
        raise ValueError(f"on_nonfinite={on_nonfinite!r}: use 'raise' or 'skip'.")
    forward = forward_fn or _default_forward
    metrics = dict(metrics or {})
    non_blocking = dev.type == "cuda"
    has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    model.to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if start_epoch < 1:
        raise ValueError(f"start_epoch={start_epoch}: epochs are numbered from 1.")
    parts = _dist.prepare_fit(model, loss_fn=loss_fn, optimizer=optimizer, train_loader=train_loader,
                              val_loader=val_loader, device=dev, ddp_options=ddp_options)
    net, train_loss_fn, train_loader, val_loader = parts.model, parts.loss_fn, parts.train_loader, parts.val_loader
    history = History()
    state = TrainState(model=model, optimizer=optimizer, history=history, device=dev)
    for cb in callbacks:
        cb.on_fit_start(state)
    show = (progress_enabled() if progress is None else progress) and parts.env.is_main
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=max(0, epochs - start_epoch + 1), desc="epochs", leave=True)
    try:
        for epoch in range(start_epoch, epochs + 1):
            state.epoch = epoch
            if parts.env.distributed:
                _dist.set_sampler_epoch(train_loader, epoch - 1)
            net.train()
            t0 = time.perf_counter()
            loss_sum = torch.zeros((), device=dev)
            metric_sums = {name: torch.zeros((), device=dev) for name in metrics}
            seen = 0
            steps = 0
            skipped_single = skipped_nonfinite = 0
            for batch in train_loader:
                inputs, targets = _split_batch(batch)
                inputs = move_to_device(inputs, dev, non_blocking=non_blocking, channels_last=channels_last)
                targets = move_to_device(targets, dev, non_blocking=non_blocking)
                n = _batch_size(inputs)
                if n == 1 and has_batchnorm:
                    skipped_single += 1  # BatchNorm cannot train on one sample (torch raises)
                    continue
                with autocast_context(dev, dtype):
                    outputs = forward(net, inputs)
                    loss = train_loss_fn(outputs, targets)
                finite = _dist.all_finite(loss) if parts.env.distributed else bool(torch.isfinite(loss.detach()).all())
                if not finite:  # checked before stepping (on every rank at once): weights stay intact
                    if on_nonfinite == "raise":
                        _check_finite(float(loss.detach().float().sum()), epoch=epoch, step=steps + 1, amp=dtype)
                    skipped_nonfinite += 1
                    continue
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if grad_clip is not None:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                scaler.step(optimizer)
                scaler.update()
                if scheduler is not None and scheduler_step == "batch":
                    scheduler.step()
                detached = loss.detach().float()
                loss_sum += detached * n
                if metrics:
                    with torch.no_grad():
                        for name, fn in metrics.items():
                            metric_sums[name] += fn(detach_outputs(outputs), targets).float() * n
                seen += n
                steps += 1
                state.step += 1
                if steps % log_every == 0:
                    _check_finite(float(detached), epoch=epoch, step=steps, amp=dtype)
                if max_steps_per_epoch is not None and steps >= max_steps_per_epoch:
                    break
            if parts.env.distributed:  # one all_reduce: every rank gets the global sums
                loss_sum, seen, *sums = _dist.reduce_sums([loss_sum, seen, *metric_sums.values()], device=dev)
                metric_sums = dict(zip(metric_sums, sums))
            _warn_skipped_batches(skipped_single, skipped_nonfinite, epoch=epoch)
            if seen == 0:
                if skipped_nonfinite:
                    raise NonFiniteLossError(f"Every training batch of epoch {epoch} had a NaN or infinite loss "
                                             f"({skipped_nonfinite} skipped); lower the learning rate or check the data.")
                raise ValueError("The training loader yielded no batches; is the data set empty?")
            train_loss = float(loss_sum) / seen
            _check_finite(train_loss, epoch=epoch, step=steps, amp=dtype)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            seconds = time.perf_counter() - t0
            record: dict[str, float] = {"epoch": epoch, "train_loss": train_loss}
            record.update({f"train_{k}": float(v) / seen for k, v in metric_sums.items()})
            if val_loader is not None:
                val = evaluate(model, val_loader, loss_fn=loss_fn, metrics=metrics, device=dev, amp=amp,
                               channels_last=channels_last, forward_fn=forward_fn,
                               distributed=parts.env.distributed)
                record.update({f"val_{k}": v for k, v in val.items()})
            record["lr"] = float(optimizer.param_groups[0]["lr"])
            record["seconds"] = seconds
            record["images_per_s"] = seen / seconds if seconds > 0 else math.nan
            if scheduler is not None and scheduler_step == "epoch":
                if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step(record.get("val_loss", train_loss))
                else:
                    scheduler.step()
            history.append(record)
            for cb in callbacks:
                cb.on_epoch_end(state, record)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.3g}" for k, v in record.items()
                                 if k.startswith(("train_", "val_"))})
            if state.stop:
                break
    finally:
        if bar is not None:
            bar.close()
    for cb in callbacks:
        cb.on_fit_end(state)
    return history


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    loss_fn: Callable[[Any, Any], torch.Tensor] | None = None,
    metrics: Mapping[str, Metric] | None = None,
    device: str | torch.device | None = None,
    amp: bool | str = "auto",
    channels_last: bool = False,
    forward_fn: ForwardFn | None = None,
    distributed: bool = False,
) -> dict[str, float]:
    """Average loss and metrics of ``model`` over ``loader`` (eval mode).

    With ``distributed=True`` the sums are added over the ranks of the
    process group: every rank must call it, each on its share of the data.

    Returns:
        ``{"loss": ..., "<metric>": ...}`` averaged over samples.
    """
    dev = resolve_device(device)
    dtype = amp_dtype(dev, amp)
    forward = forward_fn or _default_forward
    metrics = dict(metrics or {})
    was_training = model.training
    model.to(dev).eval()
    sums = {name: torch.zeros((), device=dev) for name in metrics}
    loss_sum = torch.zeros((), device=dev)
    seen = 0
    for batch in loader:
        inputs, targets = _split_batch(batch)
        inputs = move_to_device(inputs, dev, non_blocking=dev.type == "cuda", channels_last=channels_last)
        targets = move_to_device(targets, dev, non_blocking=dev.type == "cuda")
        n = _batch_size(inputs)
        with autocast_context(dev, dtype):
            outputs = forward(model, inputs)
            if loss_fn is not None:
                loss_sum += loss_fn(outputs, targets).float() * n
        for name, fn in metrics.items():
            sums[name] += fn(outputs, targets).float() * n
        seen += n
    model.train(was_training)
    if distributed:
        loss_sum, seen, *totals = _dist.reduce_sums([loss_sum, seen, *sums.values()], device=dev)
        sums = dict(zip(sums, totals))
    if seen == 0:
        raise ValueError("The evaluation loader yielded no batches; is the data set empty?")
    result = {"loss": float(loss_sum) / seen} if loss_fn is not None else {}
    result.update({name: float(v) / seen for name, v in sums.items()})
    return result


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: Iterable,
    *,
    device: str | torch.device | None = None,
    amp: bool | str = "auto",
    forward_fn: ForwardFn | None = None,
    return_targets: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None] | torch.Tensor:
    """Run ``model`` over ``loader`` and gather outputs on the CPU.

    Returns:
        ``(outputs, targets)``: outputs concatenated over batches, shape
        (N, ...), in float32; targets (N, ...) or ``None`` when the loader
        has none. Only ``outputs`` when ``return_targets=False``.
    """
    dev = resolve_device(device)
    dtype = amp_dtype(dev, amp)
    forward = forward_fn or _default_forward
    was_training = model.training
    model.to(dev).eval()
    outs: list[torch.Tensor] = []
    tgts: list[torch.Tensor] = []
    for batch in loader:
        inputs, targets = _split_batch(batch)
        inputs = move_to_device(inputs, dev, non_blocking=dev.type == "cuda")
        with autocast_context(dev, dtype):
            out = forward(model, inputs)
        outs.append(out.float().cpu())
        if isinstance(targets, torch.Tensor):
            tgts.append(targets.cpu())
    model.train(was_training)
    outputs = torch.cat(outs) if outs else torch.empty(0)
    if not return_targets:
        return outputs
    return outputs, (torch.cat(tgts) if tgts else None)


# --------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------


def _arch_name(model: nn.Module) -> str:
    return str(getattr(model, "arch_name", None) or type(model).__qualname__)


def save_checkpoint(path: str | Path, model: nn.Module, *, optimizer: torch.optim.Optimizer | None = None,
                    meta: Mapping[str, Any] | None = None, arch: str | None = None) -> Path:
    """Save weights (and optionally optimizer state and metadata) atomically.

    The file is written to a temporary file in the same folder, then renamed,
    so an interruption never leaves a half-written checkpoint.

    Args:
        path: destination ``.pt`` file.
        model: its ``state_dict`` is saved (moved to CPU).
        optimizer: its ``state_dict`` is saved too when given.
        meta: plain values (numbers, strings, lists, dicts) kept with the
            weights: recipe, accuracy, seed ...
        arch: architecture name; default ``model.arch_name`` or the class name.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "arch": arch or _arch_name(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(meta or {}),
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    from course_utils.data.cache import atomic_write

    with atomic_write(path, "wb") as fh:
        torch.save(payload, fh)
    return path


def _unreadable_checkpoint(path: Path, err: BaseException) -> str:
    """Say what the file looks like and what to do (never to unpickle it with ``weights_only=False``)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(512)
    text = head.lstrip().lower()
    redo = ("Download it again (or re-run the cell that saved it); delete the file if it is not needed.")
    if size == 0:
        what = "is empty (0 bytes): the download or save was interrupted"
    elif text.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"{")) or b"<html" in text:
        kind = "a JSON text" if text.startswith(b"{") else "a web page (HTML)"
        what = (f"is {kind}, not a checkpoint: the download saved an error or login page (check the URL; "
                "for Google Drive or GitHub use the direct/raw download link)")
    elif head.startswith(b"PK\x03\x04"):
        import zipfile

        if not zipfile.is_zipfile(path):
            what = f"is truncated ({size:,} bytes; its zip directory is missing): the download or save was cut short"
        else:
            what = f"is a zip file that torch cannot read as a checkpoint ({_short(err)})"
    elif head[:1] == b"\x80":
        what = ("holds pickled Python objects other than tensors and plain values; it was not loaded because "
                "unpickling them can run arbitrary code. Re-save it as tensors: "
                "save_checkpoint(path, model) or torch.save(model.state_dict(), path)")
        redo = "Ask whoever made it for a state_dict file if you cannot re-save it yourself."
    else:
        what = f"is not a PyTorch checkpoint ({size:,} bytes starting with {head[:16]!r}; {_short(err)})"
    return f"Cannot load the checkpoint {path}: it {what}. {redo}"


def _short(err: BaseException) -> str:
    line = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if "weights_only" in line or "Weights only load failed" in line:
        return "not a file of tensors"
    return f"{type(err).__name__}: {line[:160]}"


def _describe_mismatch(model_sd: Mapping[str, torch.Tensor], ckpt_sd: Mapping[str, torch.Tensor]) -> list[str]:
    missing = [k for k in model_sd if k not in ckpt_sd]
    unexpected = [k for k in ckpt_sd if k not in model_sd]
    shapes = [f"{k}: checkpoint {tuple(ckpt_sd[k].shape)} vs model {tuple(v.shape)}"
              for k, v in model_sd.items() if k in ckpt_sd and tuple(ckpt_sd[k].shape) != tuple(v.shape)]
    out = []
    if missing:
        out.append(f"{len(missing)} missing key(s), e.g. {missing[:3]}")
    if unexpected:
        out.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[:3]}")
    if shapes:
        out.append(f"{len(shapes)} shape mismatch(es), e.g. {shapes[:3]}")
    return out


def load_checkpoint(path: str | Path, model: nn.Module | None = None, *,
                    optimizer: torch.optim.Optimizer | None = None,
                    map_location: str | torch.device = "cpu", strict: bool = True) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (or a bare state dict).

    Uses ``torch.load(weights_only=True)``: only tensors and plain values are
    unpickled, never arbitrary code.

    Args:
        path: the ``.pt`` file.
        model: when given, the weights are loaded into it.
        optimizer: when given and saved, its state is restored.
        map_location: where tensors go (default CPU; move the model after).
        strict: require an exact match of keys and shapes.

    Returns:
        The checkpoint dict (``arch``, ``state_dict``, ``meta`` ...).

    Raises:
        FileNotFoundError: no such file.
        CheckpointLoadError: the file is empty, truncated, a web page, or
            holds objects other than tensors (the message says which, and
            what to do).
        CheckpointMismatchError: the weights do not fit ``model``; the
            message names the architecture and the first differences.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}.")
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - every failure becomes one message that names the file
        raise CheckpointLoadError(_unreadable_checkpoint(path, err)) from None
    if isinstance(raw, Mapping) and "state_dict" in raw:
        ckpt = dict(raw)
    elif isinstance(raw, Mapping):
        ckpt = {"format": "state_dict", "arch": None, "state_dict": dict(raw), "meta": {}}
    else:
        raise CheckpointMismatchError(f"{path} holds a {type(raw).__name__}, not a state dict or checkpoint.")
    if model is not None:
        problems = _describe_mismatch(model.state_dict(), ckpt["state_dict"])
        relevant = problems if strict else [p for p in problems if "shape" in p]
        if relevant:
            saved = ckpt.get("arch")
            built = _arch_name(model)
            hint = (f"It was saved from {saved!r}, but the model is {built!r}: build a {saved!r} model to load it."
                    if saved and saved != built else
                    "Build the model with the same architecture and sizes (e.g. num_classes) as when it was saved.")
            raise CheckpointMismatchError(f"Checkpoint {path.name} does not fit the model: "
                                          + "; ".join(problems) + ". " + hint)
        model.load_state_dict(ckpt["state_dict"], strict=strict)
    if optimizer is not None and "optimizer" in ckpt:
        optimizer.load_state_dict(ckpt["optimizer"])
    return ckpt
