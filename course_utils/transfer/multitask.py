"""Multi-task learning: one shared backbone, one head and one loss term per task.

:class:`MultiTaskModel` returns :class:`TaskOutputs` (``{task: logits}``, or
``(N,)`` values for regression heads such as age), :class:`MultiTaskLoss` is a
weighted sum of cross-entropies and regression losses (:class:`AgeLoss`, the
lecture's ``L_A``), :func:`task_accuracy` and :func:`task_mae` are per-task
metrics for ``fit``, :func:`multitask_targets` codes attribute columns as an
``(N, T)`` matrix, :func:`mlp_trunk` is a small shared trunk for frozen
descriptors, :func:`train_multitask` trains a model on in-memory inputs,
:func:`train_trunk_heads` builds and trains trunk + heads (:class:`TrunkConfig`)
on frozen descriptors, and :func:`predict_tasks` runs a model over inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from course_utils.settings import seed_everything
from course_utils.train import History, accuracy, fit, make_loader
from course_utils.transfer._common import _generator, _loss

__all__ = [
    "AgeLoss",
    "MultiTaskLoss",
    "MultiTaskModel",
    "TaskOutputs",
    "TrunkConfig",
    "mlp_trunk",
    "multitask_targets",
    "predict_tasks",
    "task_accuracy",
    "task_mae",
    "train_multitask",
    "train_trunk_heads",
]


class AgeLoss(nn.Module):
    """The lecture's age loss ``L_A``, averaged over the batch.

    ``L_A = (1 - lam) * d^2 / (2 scale^2) + lam * (1 - exp(-d^2 / (2 sigma^2)))`` with
    ``d = y - a`` (true minus estimated age). ``scale=1`` is the lecture's formula
    verbatim; ``scale`` (years, e.g. the training ages' standard deviation) only
    rescales the quadratic term so that it sits on the scale of a cross-entropy.
    The second term saturates at ``lam``: an error of many ``sigma`` costs no more
    than one of a few ``sigma``, so a few wrong labels cannot dominate.
    ``lam=0`` is plain squared error, ``d^2 / (2 scale^2)``.

    Args:
        lam: weight of the bounded term, in ``[0, 1]``.
        sigma: width of the bounded term (same unit as the ages, e.g. years).
        scale: unit of the quadratic term (same unit as the ages).
    """

    def __init__(self, lam: float = 0.5, sigma: float = 5.0, *, scale: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= lam <= 1.0 or sigma <= 0 or scale <= 0:
            raise ValueError(f"need 0 <= lam <= 1, sigma > 0 and scale > 0, got {lam=}, {sigma=}, {scale=}.")
        self.lam, self.sigma, self.scale = float(lam), float(sigma), float(scale)

    def forward(self, estimate: Tensor, target: Tensor) -> Tensor:
        """``estimate`` ``(N,)`` or ``(N, 1)`` ages, ``target`` ``(N,)`` -> scalar (mean over the batch)."""
        a, y = estimate.float().reshape(-1), target.float().reshape(-1)
        if a.shape != y.shape:
            raise ValueError(f"estimate and target must hold as many values, got {a.numel()} and {y.numel()}.")
        d2 = (y - a) ** 2
        quad = d2 / (2 * self.scale**2)
        bounded = 1 - torch.exp(-d2 / (2 * self.sigma**2))
        return ((1 - self.lam) * quad + self.lam * bounded).mean()

    def extra_repr(self) -> str:
        return f"lam={self.lam:g}, sigma={self.sigma:g}, scale={self.scale:g}"


def mlp_trunk(in_features: int, *, hidden: int = 128, depth: int = 1, dropout: float = 0.0) -> nn.Sequential:
    """A shared trunk for frozen descriptors: ``depth`` x (Linear -> ReLU -> Dropout), ``(N, D) -> (N, hidden)``."""
    if depth < 1 or hidden < 1:
        raise ValueError(f"need depth >= 1 and hidden >= 1, got {depth=}, {hidden=}.")
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_features if i == 0 else hidden, hidden), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


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
        tasks: task name -> number of classes, e.g. ``{"gender": 2, "age": 3}``
            (1 for a regression task named in ``regression``).
        drop_rate: dropout before the heads.
        regression: regression task -> ``(shift, scale)``: its head returns
            ``shift + scale * linear(z)``, ``(N,)``, e.g. ages in years with the
            training ages' mean and standard deviation (the linear layer then
            works on a unit scale).
    """

    def __init__(self, backbone: nn.Module, num_features: int, tasks: Mapping[str, int], *,
                 drop_rate: float = 0.0, regression: Mapping[str, tuple[float, float]] | None = None) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("MultiTaskModel needs at least one task.")
        regression = dict(regression or {})
        bad = {t for t in regression if tasks.get(t) != 1}
        if bad:
            raise ValueError(f"regression tasks {sorted(bad)} must be tasks with 1 output; tasks are {dict(tasks)}.")
        self.backbone = backbone
        self.tasks = dict(tasks)
        self.regression = {t: (float(a), float(b)) for t, (a, b) in regression.items()}
        self.drop = nn.Dropout(drop_rate)
        self.heads = nn.ModuleDict({t: nn.Linear(num_features, k) for t, k in self.tasks.items()})

    def forward(self, x: Tensor) -> TaskOutputs:
        """Inputs -> ``{task: logits (N, K_task)}``, regression tasks ``(N,)`` (a :class:`TaskOutputs` dict)."""
        z = self.drop(self.backbone(x))
        out = TaskOutputs()
        for t, head in self.heads.items():
            y = head(z)
            if t in self.regression:
                shift, scale = self.regression[t]
                y = shift + scale * y.squeeze(-1)
            out[t] = y
        return out


class MultiTaskLoss(nn.Module):
    """``L = sum_t w_t * L_t``: a weighted sum of the tasks' cross-entropies and regression losses.

    Args:
        tasks: task names, in the column order of the ``(N, T)`` target matrix.
        weights: task -> weight (default 1 for each).
        label_smoothing: applied to every classification task.
        losses: regression task -> its loss (e.g. ``{"age": AgeLoss(...)}``):
            ``loss(outputs[task] (N,), targets[:, i] (N,) float)``. The other
            tasks are classification: cross-entropy against ``targets[:, i]``
            as class indices (a float target matrix is cast).
    """

    def __init__(self, tasks: Sequence[str], weights: Mapping[str, float] | None = None, *,
                 label_smoothing: float = 0.0, losses: Mapping[str, nn.Module] | None = None) -> None:
        super().__init__()
        self.tasks = list(tasks)
        weights, losses = dict(weights or {}), dict(losses or {})
        unknown = (set(weights) | set(losses)) - set(self.tasks)
        if unknown:
            raise ValueError(f"weights or losses for unknown tasks {sorted(unknown)}; tasks are {self.tasks}.")
        self.weights = {t: float(weights.get(t, 1.0)) for t in self.tasks}
        self.ce = _loss(label_smoothing)
        self.regression = nn.ModuleDict(losses)

    def forward(self, outputs: Mapping[str, Tensor], targets: Tensor) -> Tensor:
        """``outputs`` ``{task: (N, K_t) or (N,)}``; ``targets`` ``(N, T)`` (class indices, or values) -> scalar."""
        if targets.ndim != 2 or targets.shape[1] != len(self.tasks):
            raise ValueError(f"targets must have shape (N, {len(self.tasks)}), got {tuple(targets.shape)}.")
        total = targets.new_zeros((), dtype=torch.float32)
        for i, t in enumerate(self.tasks):
            if not self.weights[t]:
                continue
            if t in self.regression:
                term = self.regression[t](outputs[t], targets[:, i].float())
            else:
                term = self.ce(outputs[t].float(), targets[:, i].long())
            total = total + self.weights[t] * term
        return total


def task_accuracy(task: str, column: int) -> Callable[[Any, Tensor], Tensor]:
    """A metric for ``fit``: accuracy of one task (``outputs[task]`` against ``targets[:, column]``)."""

    def metric(outputs: Any, targets: Tensor) -> Tensor:
        out = outputs[task] if isinstance(outputs, Mapping) else outputs
        tgt = targets[:, column] if targets.ndim == 2 else targets
        return accuracy(out, tgt)

    metric.__name__ = f"acc_{task}"
    return metric


def task_mae(task: str, column: int) -> Callable[[Any, Tensor], Tensor]:
    """A metric for ``fit``: mean absolute error of one regression task (``outputs[task]`` against ``targets[:, column]``)."""

    def metric(outputs: Any, targets: Tensor) -> Tensor:
        out = outputs[task] if isinstance(outputs, Mapping) else outputs
        tgt = targets[:, column] if targets.ndim == 2 else targets
        return (out.float().reshape(-1) - tgt.float().reshape(-1)).abs().mean()

    metric.__name__ = f"mae_{task}"
    return metric


def train_multitask(model: nn.Module, inputs: Tensor, targets: Tensor, *, loss_fn: Callable[[Any, Tensor], Tensor],
                    epochs: int = 20, lr: float = 3e-3, weight_decay: float = 1e-4, batch_size: int = 64,
                    seed: int = 0, metrics: Mapping[str, Any] | None = None,
                    device: str | torch.device | None = None) -> History:
    """Train ``model`` on in-memory ``inputs`` ``(N, ...)`` (descriptors or images) and ``targets`` ``(N, T)``.

    AdamW with a cosine schedule over ``epochs``; ``seed`` fixes the batch order (call
    :func:`~course_utils.settings.seed_everything` before building the model to fix its
    initialisation too). Tasks and losses: a :class:`MultiTaskLoss` and a :class:`MultiTaskModel`.
    """
    seed_everything(seed)
    loader = make_loader(TensorDataset(inputs, targets), batch_size=batch_size, shuffle=True, device=device,
                         generator=_generator(seed))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    return fit(model, loader, loss_fn=loss_fn, optimizer=opt, epochs=epochs, scheduler=sched,
               metrics=dict(metrics or {}), device=device, progress=False)


@dataclass(frozen=True)
class TrunkConfig:
    """A shared MLP trunk on frozen descriptors (:func:`mlp_trunk`) and its training schedule."""

    hidden: int = 128
    depth: int = 1
    dropout: float = 0.2
    epochs: int = 20
    lr: float = 5e-3
    weight_decay: float = 1e-4
    batch_size: int = 64


def train_trunk_heads(inputs: Tensor, targets: Tensor, *, tasks: Mapping[str, int],
                      losses: Mapping[str, nn.Module] | None = None, weights: Mapping[str, float] | None = None,
                      regression: Mapping[str, tuple[float, float]] | None = None,
                      config: TrunkConfig = TrunkConfig(), seed: int = 0,
                      device: str | torch.device | None = None) -> MultiTaskModel:
    """One trunk and one head per task, trained jointly on ``(N, D)`` descriptors.

    ``targets`` ``(N, T)``: one column per task, in the order of ``tasks``
    (task -> outputs; 1 for the regression tasks named in ``losses`` and
    ``regression``). One task is a single-task model with the same trunk size.
    """
    seed_everything(seed)
    trunk = mlp_trunk(int(inputs.shape[1]), hidden=config.hidden, depth=config.depth, dropout=config.dropout)
    model = MultiTaskModel(trunk, config.hidden, tasks, regression=regression)
    loss = MultiTaskLoss(list(tasks), weights, losses=losses)
    train_multitask(model, inputs, targets, loss_fn=loss, epochs=config.epochs, lr=config.lr,
                    weight_decay=config.weight_decay, batch_size=config.batch_size, seed=seed, device=device)
    return model


@torch.no_grad()
def predict_tasks(model: nn.Module, features: Tensor, *, batch_size: int = 1024) -> dict[str, np.ndarray]:
    """Run a :class:`MultiTaskModel` (eval mode, on its device) over ``(N, ...)`` inputs.

    Returns ``{task: (N,) values}`` for regression heads and ``{task: (N,) predicted classes}`` for the others.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    parts: dict[str, list[Tensor]] = {}
    try:
        for start in range(0, int(features.shape[0]), batch_size):
            for t, y in model(features[start:start + batch_size].to(device)).items():
                parts.setdefault(t, []).append(y if y.ndim == 1 else y.argmax(dim=1))
    finally:
        model.train(was_training)
    return {t: torch.cat(v).cpu().numpy() for t, v in parts.items()}


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
