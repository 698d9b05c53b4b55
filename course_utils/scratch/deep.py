"""Deep plain stacks and their diagnostics: MLP stacks, initialisation schemes, gradient norms, activation statistics."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_utils.scratch.layers import Maxout

__all__ = [
    "mlp_stack",
    "init_weights",
    "layer_gradient_norms",
    "activation_stats",
]

# --------------------------------------------------------------------------
# deep stacks: initialisation, gradients, activation statistics
# --------------------------------------------------------------------------


def mlp_stack(depth: int, width: int, activation: Callable[[], nn.Module] | type[nn.Module] = nn.ReLU, *,
              in_features: int | None = None, out_features: int | None = None) -> nn.Sequential:
    """``depth`` blocks of ``Linear(width, width)`` + activation (a deep, plain stack).

    ``in_features`` sets the first layer's input width, ``out_features``
    appends a final linear layer (a classifier head).
    """
    layers: list[nn.Module] = []
    fan_in = in_features or width
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), activation()]
        fan_in = width
    if out_features is not None:
        layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def init_weights(model: nn.Module, scheme: str = "kaiming", *, nonlinearity: str = "relu") -> nn.Module:
    """Re-initialise every linear and convolution layer of ``model`` in place.

    Schemes:
        ``default``: leave PyTorch's default (uniform with bound ``1/sqrt(fan_in)``
        for the weights: variance ``1 / (3 fan_in)``).
        ``kaiming``: normal with variance ``2 / fan_in`` (He et al. 2015,
        keeps the activation scale through ReLUs); ``gain^2 / fan_in`` for
        other ``nonlinearity`` values.
        ``xavier``: normal with variance ``2 / (fan_in + fan_out)`` times ``gain^2``.
        ``orthogonal``: a random orthogonal matrix times the gain (Saxe et al. 2014).
        ``small``: normal with standard deviation 0.01 (a classic mistake).
    Biases are set to zero except for ``default``.
    """
    if scheme == "default":
        return model
    gain = nn.init.calculate_gain(nonlinearity)
    for m in model.modules():
        if not isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            continue
        if scheme == "kaiming":
            fan_in = m.weight[0].numel()
            nn.init.normal_(m.weight, std=gain / math.sqrt(fan_in))
        elif scheme == "xavier":
            nn.init.xavier_normal_(m.weight, gain=gain)
        elif scheme == "orthogonal":
            nn.init.orthogonal_(m.weight, gain=gain)
        elif scheme == "small":
            nn.init.normal_(m.weight, std=0.01)
        else:
            raise ValueError(f"unknown scheme {scheme!r}: use default, kaiming, xavier, orthogonal or small")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    return model


def _weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]


def layer_gradient_norms(model: nn.Module, inputs: Tensor, targets: Tensor | None = None,
                         loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None) -> list[float]:
    """The gradient norm of each linear/convolution layer's weight after one backward pass.

    Args:
        model: any module; its ``.grad`` fields are overwritten.
        inputs: one batch.
        targets: class indices for the default cross-entropy loss; without
            targets the loss is ``mean(output^2) / 2``.
        loss_fn: ``loss_fn(outputs, targets)`` to use instead.

    Returns:
        ``||dL/dW||`` for each weighted layer, input side first.
    """
    model.zero_grad(set_to_none=True)
    out = model(inputs)
    if loss_fn is not None:
        loss = loss_fn(out, targets)
    elif targets is not None:
        loss = F.cross_entropy(out, targets)
    else:
        loss = out.pow(2).mean() / 2
    loss.backward()
    return [float(m.weight.grad.norm()) if m.weight.grad is not None else 0.0 for _, m in _weighted_layers(model)]


def activation_stats(model: nn.Module, inputs: Tensor,
                     layer_types: tuple[type[nn.Module], ...] | None = None) -> list[dict[str, float]]:
    """Mean, standard deviation and fraction of zeros of each layer's output.

    Args:
        model: any module (run in its current train/eval mode, without gradients).
        inputs: one batch.
        layer_types: which leaf modules to record; default the activations
            (ReLU, LeakyReLU, ELU, GELU, Sigmoid, Tanh, SiLU, Maxout) and,
            when there are none, every linear/convolution layer.

    Returns:
        One dict per recorded layer: ``layer`` (its index among the
        recorded ones, from 1), ``name``, ``mean``, ``std``, ``frac_zero``,
        ``frac_saturated`` (share of outputs within 1% of +-1, for
        sigmoid/tanh-like outputs).
    """
    acts = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.SiLU, Maxout)
    if layer_types is None:
        layer_types = acts if any(isinstance(m, acts) for m in model.modules()) else \
            (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    records: list[dict[str, float]] = []
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, layer_types):
            def hook(module, _inp, out, name=name):
                o = out.detach().float()
                records.append({"layer": len(records) + 1, "name": name, "mean": float(o.mean()),
                                "std": float(o.std()), "frac_zero": float((o == 0).float().mean()),
                                "frac_saturated": float((o.abs() > 0.99).float().mean()
                                                        if isinstance(module, (nn.Tanh,)) else
                                                        ((o < 0.01) | (o > 0.99)).float().mean()
                                                        if isinstance(module, nn.Sigmoid) else 0.0)})
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    return records
