"""Pieces every family uses: conv-norm-act, stochastic depth, channels-last LayerNorm, shortcuts.

Blocks take ``norm_layer`` / ``act_layer`` factories (:data:`LayerFactory`);
``None`` leaves the layer out. Shapes: ``N`` batch, ``C`` channels, ``H, W``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "LayerFactory",
    "drop_path",
    "DropPath",
    "ConvNormAct",
    "LayerNorm2d",
]


#: A class or ``functools.partial`` that builds a layer, e.g. ``nn.ReLU`` or
#: ``partial(nn.BatchNorm2d, eps=1e-3)``. Norm layers are called with the
#: number of channels, activations with no argument.
LayerFactory = Callable[..., nn.Module]


def _act(act_layer: LayerFactory | None) -> nn.Module:
    return nn.Identity() if act_layer is None else act_layer()


def _norm(norm_layer: LayerFactory | None, channels: int) -> nn.Module:
    return nn.Identity() if norm_layer is None else norm_layer(channels)


# --------------------------------------------------------------------------
# Common pieces
# --------------------------------------------------------------------------


def drop_path(x: Tensor, drop_prob: float = 0.0, training: bool = False) -> Tensor:
    """Stochastic depth: zero whole samples of a residual branch.

    Each sample of the batch keeps the branch with probability ``1 - drop_prob``;
    kept samples are scaled by ``1 / (1 - drop_prob)`` so the expectation is
    unchanged (Huang et al., 2016, "Deep Networks with Stochastic Depth").

    Args:
        x: branch output, shape ``(N, ...)``.
        drop_prob: probability of dropping the branch for one sample.
        training: identity when ``False``.

    Returns:
        Tensor of the shape of ``x``.
    """
    if drop_prob == 0.0 or not training:
        return x
    if drop_prob >= 1.0:
        return torch.zeros_like(x)
    keep = 1.0 - drop_prob
    mask_shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    mask = x.new_empty(mask_shape).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    """Module form of :func:`drop_path` (stochastic depth per sample)."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, ...)`` -> ``(N, ...)``."""
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:.3f}"


class ConvNormAct(nn.Sequential):
    """Convolution, then normalisation, then activation: the workhorse unit.

    ``padding`` defaults to ``kernel_size // 2`` ("same" size at stride 1).
    The convolution has no bias when a norm layer follows (the norm's shift
    plays that role), unless ``bias`` says otherwise.

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, out_chs, H / stride, W / stride)``.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        bias: bool | None = None,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
    ) -> None:
        if padding is None:
            padding = kernel_size // 2
        if bias is None:
            bias = norm_layer is None
        super().__init__()
        self.conv = nn.Conv2d(
            in_chs, out_chs, kernel_size, stride=stride, padding=padding, groups=groups, bias=bias
        )
        self.norm = _norm(norm_layer, out_chs)
        self.act = _act(act_layer)
        self.in_chs, self.out_chs = in_chs, out_chs


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a channels-first map (ConvNeXt).

    Shapes: ``(N, C, H, W)`` -> ``(N, C, H, W)``; each pixel's ``C`` values are
    normalised on their own, as ``nn.LayerNorm(C)`` would do channels-last.
    """

    def __init__(self, num_channels: int, *, eps: float = 1e-6) -> None:
        super().__init__(num_channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> ``(N, C, H, W)``."""
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def _shortcut(
    in_chs: int, out_chs: int, *, stride: int, norm_layer: LayerFactory | None
) -> nn.Module:
    """Identity when shapes match, else a strided 1x1 projection (ResNet option B)."""
    if stride == 1 and in_chs == out_chs:
        return nn.Identity()
    return ConvNormAct(in_chs, out_chs, 1, stride=stride, norm_layer=norm_layer, act_layer=None)


