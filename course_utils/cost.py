"""What a model costs: parameters, multiply-adds, latency, and the textbook formulas.

Conventions:

- **MACs** (multiply-accumulates, "multiply-adds") are what papers and
  torchvision's weights metadata report, even when the column is named
  "GFLOPS" (``weights.meta["_ops"]`` is in billions of multiply-adds).
  :func:`count_macs` runs one forward pass under PyTorch's
  :class:`torch.utils.flop_counter.FlopCounterMode`, which counts
  ``2 x`` multiply-adds as FLOPs for convolutions and matrix products
  (``mm``, ``addmm``, ``bmm``, attention); we return ``flops // 2``. Only those
  operations are counted: biases, normalisation, activations, pooling and
  element-wise ops are left out, as in the papers.
- Build large models under ``with torch.device("meta"):`` to count their
  parameters and MACs in milliseconds without allocating weights:
  :func:`count_macs` feeds a meta input to a meta model.
- :func:`measure_latency` times real forward passes (median of repeats) and
  reports images per second; it depends on the machine and its load.
- :func:`torchvision_reference` reads accuracy, parameters and multiply-adds
  of torchvision's ImageNet weights from the metadata installed with
  torchvision (no download), for accuracy-versus-cost charts.

The depthwise-separable formulas follow Howard et al. (2017, MobileNets),
with ``Dk`` the kernel size, ``M`` input channels, ``N`` output channels and
``Df`` the (square) output feature-map size.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import get_model_weights, list_models

__all__ = [
    "count_parameters",
    "count_macs",
    "macs_by_module",
    "LayerCost",
    "layer_table",
    "Latency",
    "measure_latency",
    "conv_params",
    "conv_macs",
    "depthwise_separable_macs",
    "depthwise_separable_ratio",
    "format_count",
    "pareto_front",
    "ReferenceWeights",
    "torchvision_reference",
]


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors counted once).

    Args:
        model: any module (meta-device models work too).
        trainable_only: count only parameters with ``requires_grad``.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


def _run_counted(model: nn.Module, input_size: Sequence[int]) -> FlopCounterMode:
    """One eval-mode forward of a zero input under FlopCounterMode; restores the training flag."""
    device, dtype = _model_device_dtype(model)
    x = torch.zeros(tuple(input_size), device=device, dtype=dtype)
    counter = FlopCounterMode(display=False)
    was_training = model.training
    model.eval()
    try:
        with counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    return counter


def count_macs(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> int:
    """Multiply-adds of one forward pass (``FlopCounterMode`` FLOPs / 2).

    The input is zeros of ``input_size`` on the model's device and dtype; the
    model runs in eval mode (no drop-path), then its mode is restored.
    MACs scale with the batch size: pass ``(1, C, H, W)`` for per-image cost.

    Args:
        model: the model; on ``meta`` it costs no memory and little time.
        input_size: ``(N, C, H, W)``.

    Returns:
        Multiply-adds of convolutions and matrix products (an int).
    """
    return int(_run_counted(model, input_size).get_total_flops()) // 2


def macs_by_module(
    model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224), *, depth: int = 1
) -> dict[str, int]:
    """Multiply-adds per sub-module, down to ``depth`` levels of nesting.

    Names are the module paths inside ``model`` (``"stages.0"``,
    ``"stages.0.1.conv1"``); a parent's count includes its children's.

    Returns:
        ``{name: macs}`` in forward order, only modules that did some work.
    """
    counts = _run_counted(model, input_size).get_flop_counts()
    root = type(model).__name__
    out: dict[str, int] = {}
    for key, per_op in counts.items():
        if key == "Global" or key == root or not key.startswith(root + "."):
            continue
        name = key[len(root) + 1 :]
        if name.count(".") < depth:
            total = int(sum(per_op.values())) // 2
            if total:
                out[name] = total
    return out


@dataclass(frozen=True)
class LayerCost:
    """One row of :func:`layer_table`.

    Attributes:
        name: module path in the model.
        kind: class name (``Conv2d``, ``Linear``...).
        output_shape: shape of the module's output for the given input.
        params: parameters held directly by the module.
        macs: multiply-adds done by the module.
    """

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


def layer_table(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> list[LayerCost]:
    """Per-layer breakdown: every leaf module that holds parameters, in call order.

    Useful to print a block's cost, e.g. ``for row in layer_table(block, (1, 32, 56, 56)): print(row)``.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    order: list[str] = []
    handles = []
    for name, module in model.named_modules():
        if next(module.children(), None) is None and any(True for _ in module.parameters(recurse=False)):

            def hook(mod: nn.Module, args: object, output: object, name: str = name) -> None:
                if isinstance(output, torch.Tensor) and name not in shapes:
                    shapes[name] = tuple(output.shape)
                    order.append(name)

            handles.append(module.register_forward_hook(hook))
    try:
        counts = _run_counted(model, input_size).get_flop_counts()
    finally:
        for h in handles:
            h.remove()
    root = type(model).__name__
    modules = dict(model.named_modules())
    rows = []
    for name in order:
        per_op = counts.get(f"{root}.{name}", {})
        module = modules[name]
        rows.append(
            LayerCost(
                name=name,
                kind=type(module).__name__,
                output_shape=shapes[name],
                params=sum(p.numel() for p in module.parameters(recurse=False)),
                macs=int(sum(per_op.values())) // 2,
            )
        )
    return rows


@dataclass(frozen=True)
class Latency:
    """Result of :func:`measure_latency`.

    Attributes:
        ms_per_batch: median wall time of one forward pass, in milliseconds.
        images_per_second: ``batch_size / median time``.
        batch_size: images per forward pass.
        device: where it ran.
        times_ms: every timed repeat.
    """

    ms_per_batch: float
    images_per_second: float
    batch_size: int
    device: str
    times_ms: tuple[float, ...]


def measure_latency(
    model: nn.Module,
    input_size: Sequence[int] = (1, 3, 224, 224),
    *,
    device: str | torch.device | None = None,
    warmup: int = 3,
    repeats: int = 10,
) -> Latency:
    """Time inference (eval mode, no grad) on random input; report the median.

    Args:
        model: the model (moved to ``device`` if given; its train/eval mode
            is restored afterwards).
        input_size: ``(N, C, H, W)``; ``N`` is the batch size.
        device: ``None`` keeps the model's device; otherwise any device string.
        warmup: untimed passes first (allocations, kernel selection).
        repeats: timed passes.

    Returns:
        A :class:`Latency` with ms per batch and images per second.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    if device is not None:
        model = model.to(device)
    dev, dtype = _model_device_dtype(model)
    if dev.type == "meta":
        raise ValueError("a meta-device model has no weights to run; build it on a real device")
    x = torch.randn(tuple(input_size), device=dev, dtype=dtype)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    was_training = model.training
    model.eval()
    times: list[float] = []
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            sync()
            for _ in range(repeats):
                start = time.perf_counter()
                model(x)
                sync()
                times.append((time.perf_counter() - start) * 1000.0)
    finally:
        model.train(was_training)
    median = statistics.median(times)
    return Latency(
        ms_per_batch=median,
        images_per_second=input_size[0] / (median / 1000.0),
        batch_size=int(input_size[0]),
        device=str(dev),
        times_ms=tuple(times),
    )


def conv_params(Dk: int, M: int, N: int, *, groups: int = 1, bias: bool = False) -> int:
    """Parameters of a ``Dk x Dk`` convolution from ``M`` to ``N`` channels.

    ``Dk * Dk * (M / groups) * N`` weights (+ ``N`` biases). Grouping divides
    the weights by ``groups``; ``groups = M = N`` is a depthwise convolution.
    """
    if M % groups or N % groups:
        raise ValueError("M and N must be divisible by groups")
    return Dk * Dk * (M // groups) * N + (N if bias else 0)


def conv_macs(Dk: int, M: int, N: int, Df: int) -> int:
    """Multiply-adds of a standard convolution: ``Dk * Dk * M * N * Df * Df``.

    Args:
        Dk: kernel size. M: input channels. N: output channels.
        Df: output feature map size (``Df x Df``).
    """
    return Dk * Dk * M * N * Df * Df


def depthwise_separable_macs(Dk: int, M: int, N: int, Df: int) -> int:
    """Multiply-adds of a depthwise (``Dk^2 M Df^2``) plus pointwise (``M N Df^2``) pair."""
    return Dk * Dk * M * Df * Df + M * N * Df * Df


def depthwise_separable_ratio(Dk: int, N: int) -> float:
    """Cost of depthwise-separable over standard convolution: ``1/N + 1/Dk^2``.

    For ``Dk = 3`` and large ``N`` that is 8-9 times fewer multiply-adds.
    """
    return 1.0 / N + 1.0 / (Dk * Dk)


def format_count(n: float, *, digits: int = 2) -> str:
    """Human-readable count: ``3504872 -> '3.50M'``, ``300_000_000 -> '300.00M'``, ``1.8e9 -> '1.80G'``."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.{digits}f}{unit}"
    return f"{n:.0f}"


def pareto_front(cost: Sequence[float], accuracy: Sequence[float]) -> list[bool]:
    """Which models are on the accuracy-versus-cost Pareto front, one ``bool`` per model, shape ``(N,)``.

    A model is *dominated* when another is at most as costly and at least as accurate, and
    strictly better in one of the two; the front is every model that is not dominated.
    """
    pts = [(float(c), float(a)) for c, a in zip(cost, accuracy, strict=True)]
    return [not any(c2 <= c and a2 >= a and (c2 < c or a2 > a) for c2, a2 in pts) for c, a in pts]


@dataclass(frozen=True)
class ReferenceWeights:
    """One set of torchvision ImageNet-1K weights, from its installed metadata.

    Attributes:
        model: torchvision builder name (``"resnet50"``).
        weights: weights enum member (``"IMAGENET1K_V2"``).
        num_params: parameters.
        gmacs: giga multiply-adds per image at ``resolution`` (torchvision's "GFLOPS").
        acc1: ImageNet-1K validation top-1 accuracy, in percent.
        acc5: top-5 accuracy, in percent.
        resolution: evaluation crop size in pixels.
        is_default: whether these are the model's ``DEFAULT`` weights.
    """

    model: str
    weights: str
    num_params: int
    gmacs: float
    acc1: float
    acc5: float
    resolution: int
    is_default: bool


def torchvision_reference(*, all_weights: bool = False) -> list[ReferenceWeights]:
    """Accuracy and cost of torchvision's ImageNet classifiers, read offline from metadata.

    Args:
        all_weights: every published weights set (V1, V2, SWAG...); by
            default only each model's ``DEFAULT`` weights.

    Returns:
        One :class:`ReferenceWeights` per weights set, sorted by model name.
    """
    rows = []
    for name in sorted(list_models(module=torchvision.models)):
        enum = get_model_weights(name)
        default = enum.DEFAULT
        for w in enum if all_weights else [default]:
            meta = w.meta
            metrics = meta.get("_metrics", {}).get("ImageNet-1K")
            if metrics is None or "_ops" not in meta:
                continue
            crop = w.transforms().crop_size
            rows.append(
                ReferenceWeights(
                    model=name,
                    weights=w.name,
                    num_params=int(meta["num_params"]),
                    gmacs=float(meta["_ops"]),
                    acc1=float(metrics["acc@1"]),
                    acc5=float(metrics["acc@5"]),
                    resolution=int(crop[0] if isinstance(crop, (list, tuple)) else crop),
                    is_default=w == default,
                )
            )
    return rows
