"""Training, evaluation and prediction loops that use a GPU well and still run on a CPU.

``fit`` trains any ``nn.Module`` on any ``DataLoader`` and returns a
:class:`History`. It never draws: pass the history to
``course_utils.viz.plot_history``.

What it does for you on a GPU, and skips on a CPU:

* mixed precision: bf16 autocast where the GPU supports it, otherwise fp16
  with a ``GradScaler``; nothing on CPU (autocast is a null context there);
* ``channels_last`` memory format (faster convolutions on tensor cores);
* pinned host memory and non-blocking host-to-device copies
  (see :func:`make_loader`);
* the loss is summed on the device and read back only every ``log_every``
  steps, so the GPU is not stalled by a ``.item()`` per batch.

``fit(..., train_transform=...)`` is the one place batch augmentations run
(training batches only); :func:`predict` is the one inference entry point
(outputs, targets and the data set's attributes, as :class:`Predictions`).

Re-exported here from their own modules: :mod:`course_utils.callbacks`
(:class:`History`, :class:`EarlyStopping`, :class:`BestCheckpoint` ...) and
:mod:`course_utils.checkpointing` (written atomically, read with
``torch.load(..., weights_only=True, map_location=...)``).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.data import (
    DataLoader,
    Dataset,
    SequentialSampler,
    Subset,
    TensorDataset,
)
from tqdm.auto import tqdm

from course_utils import distributed as _dist
from course_utils.callbacks import (
    BestCheckpoint,
    Callback,
    EarlyStopping,
    History,
    TrainState,
)
from course_utils.checkpointing import (
    CHECKPOINT_FORMAT,
    CheckpointLoadError,
    CheckpointMismatchError,
    load_checkpoint,
    save_checkpoint,
)
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
    "Predictions",
    "CHECKPOINT_FORMAT",
    "make_loader",
    "accuracy",
    "amp_dtype",
    "autocast_context",
    "move_to_device",
    "detach_outputs",
    "save_checkpoint",
    "load_checkpoint",
]

Metric = Callable[[Any, Any], torch.Tensor]
ForwardFn = Callable[[nn.Module, Any], Any]


class NonFiniteLossError(FloatingPointError):
    """Raised when the training loss becomes NaN or infinite."""


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
    train_transform: Callable[[Any], Any] | None = None,
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
        train_transform: ``train_transform(inputs) -> inputs``, applied to
            each *training* batch on the device before the forward pass,
            never to validation batches: the place for batch augmentations
            (:func:`course_utils.augment.augment_faces`,
            :class:`~course_utils.augment.SimCLRAugment` ...).
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
                if train_transform is not None:
                    inputs = train_transform(inputs)
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


@dataclass(frozen=True)
class Predictions:
    """What :func:`predict` returns: a model's outputs over a data set, with what the data set knows.

    Unpacks as ``outputs, targets = predict(...)``.

    Attributes:
        outputs: float32 ``(N, ...)`` on the CPU, in the data set's order.
        targets: ``(N, ...)`` on the CPU, or ``None`` when the batches carry none.
        attributes: the data set's ``attributes`` DataFrame (one row per item,
            index reset), or ``None`` when it has none or the loader reorders items.
        group_columns: the data set's ``group_columns`` (the attributes that
            name groups, e.g. ``("gender", "age")``), or ``()``.
    """

    outputs: torch.Tensor
    targets: torch.Tensor | None
    attributes: pd.DataFrame | None = None
    group_columns: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[torch.Tensor | None]:
        return iter((self.outputs, self.targets))

    def __len__(self) -> int:
        return int(self.outputs.shape[0])


def _in_order(loader: Any) -> bool:
    sampler = getattr(getattr(loader, "batch_sampler", None), "sampler", None)
    return isinstance(sampler, SequentialSampler)


def _attributes(dataset: Any, n: int) -> tuple[pd.DataFrame | None, tuple[str, ...]]:
    frame = getattr(dataset, "attributes", None)
    if not isinstance(frame, pd.DataFrame) or len(frame) != n:
        return None, ()
    return frame.reset_index(drop=True), tuple(getattr(dataset, "group_columns", ()) or ())


@torch.no_grad()
def predict(
    model: nn.Module,
    data: Iterable | Dataset,
    *,
    device: str | torch.device | None = None,
    amp: bool | str = "auto",
    forward_fn: ForwardFn | None = None,
    batch_size: int = 256,
    return_targets: bool = True,
) -> Predictions | torch.Tensor:
    """Run ``model`` (in eval mode) over a loader or a data set and gather everything on the CPU.

    The package's one inference entry point: logits for a classifier,
    embeddings for an embedding network (``forward_fn=lambda m, x:
    m.forward_head(m.forward_features(x), pre_logits=True)`` for a zoo
    model's pooled features), activations for a frozen front.

    Args:
        data: a loader yielding ``(inputs, targets, ...)`` or ``inputs``
            batches, or a data set (read in order, ``batch_size`` at a time,
            through :func:`make_loader`).
        forward_fn: ``forward_fn(model, inputs) -> outputs``; default ``model(inputs)``.
        return_targets: ``False`` returns only the outputs tensor.

    Returns:
        :class:`Predictions` (``outputs, targets = predict(...)`` unpacks it):
        outputs float32 ``(N, ...)``, targets ``(N, ...)`` or ``None``, and
        the data set's ``attributes`` rows when the items are read in order.
    """
    dev = resolve_device(device)
    loader = data if isinstance(data, DataLoader) or not isinstance(data, Dataset) else \
        make_loader(data, batch_size=batch_size, device=dev)
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
    dataset = getattr(loader, "dataset", None)
    attributes, groups = _attributes(dataset, len(outputs)) if _in_order(loader) else (None, ())
    return Predictions(outputs, torch.cat(tgts) if tgts else None, attributes, groups)


