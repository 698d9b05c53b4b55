"""Efficient-family blocks: squeeze-excite, MobileNetV1/V2, ShuffleNetV2, EfficientNet (MBConv, compound scaling)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from course_utils.models.blocks.common import ConvNormAct, DropPath, LayerFactory

__all__ = [
    "SqueezeExcite",
    "DepthwiseSeparableConv",
    "InvertedResidual",
    "channel_shuffle",
    "ChannelShuffle",
    "ShuffleUnit",
    "make_divisible",
    "round_channels",
    "round_repeats",
    "CompoundScaling",
    "compound_scaling",
    "MBConv",
]

# --------------------------------------------------------------------------
# Channel attention
# --------------------------------------------------------------------------


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al., 2017): learn a weight per channel.

    Squeeze: global average pool to ``(N, C, 1, 1)``. Excite: 1x1 conv down
    to ``rd_channels``, activation, 1x1 conv back to ``C``, sigmoid gate.
    Output: input times the gate. ``rd_channels`` defaults to
    ``round(channels * rd_ratio)`` (at least 1).

    Shapes: ``(N, C, H, W)`` -> ``(N, C, H, W)``.
    """

    def __init__(
        self,
        channels: int,
        *,
        rd_ratio: float = 1.0 / 16,
        rd_channels: int | None = None,
        act_layer: LayerFactory = nn.ReLU,
        gate_layer: LayerFactory = nn.Sigmoid,
    ) -> None:
        super().__init__()
        if rd_channels is None:
            rd_channels = max(1, round(channels * rd_ratio))
        self.fc1 = nn.Conv2d(channels, rd_channels, 1)
        self.act = act_layer()
        self.fc2 = nn.Conv2d(rd_channels, channels, 1)
        self.gate = gate_layer()
        self.channels, self.rd_channels = channels, rd_channels

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> ``(N, C, H, W)``."""
        s = x.mean(dim=(2, 3), keepdim=True)
        s = self.gate(self.fc2(self.act(self.fc1(s))))
        return x * s


# --------------------------------------------------------------------------
# Efficient families: MobileNetV1/V2, ShuffleNetV2, EfficientNet
# --------------------------------------------------------------------------


class DepthwiseSeparableConv(nn.Module):
    """MobileNetV1 unit: 3x3 depthwise conv-BN-ReLU, then 1x1 pointwise conv-BN-ReLU.

    Cost ``Dk^2 M Df^2 + M N Df^2`` multiply-adds instead of ``Dk^2 M N Df^2``
    for a full convolution: a ratio of ``1/N + 1/Dk^2`` (Howard et al., 2017;
    see :func:`course_utils.cost.depthwise_separable_macs`).

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, out_chs, H/stride, W/stride)``.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        stride: int = 1,
        kernel_size: int = 3,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
    ) -> None:
        super().__init__()
        self.conv_dw = ConvNormAct(
            in_chs, in_chs, kernel_size, stride=stride, groups=in_chs, norm_layer=norm_layer, act_layer=act_layer
        )
        self.conv_pw = ConvNormAct(in_chs, out_chs, 1, norm_layer=norm_layer, act_layer=act_layer)
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, out_chs, H/stride, W/stride)``."""
        return self.conv_pw(self.conv_dw(x))


class InvertedResidual(nn.Module):
    """MobileNetV2 inverted residual with linear bottleneck (Sandler et al., 2018).

    1x1 expand (``expand_ratio`` times, ReLU6) -> 3x3 depthwise (ReLU6) ->
    1x1 project with *no* activation (a linear bottleneck: ReLU on a thin
    tensor destroys information). The skip connects the thin ends when
    stride is 1 and widths match. With ``expand_ratio == 1`` the expansion
    conv is left out.

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, out_chs, H/stride, W/stride)``.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        stride: int = 1,
        expand_ratio: float = 6,
        kernel_size: int = 3,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU6,
    ) -> None:
        super().__init__()
        mid = int(round(in_chs * expand_ratio))
        self.use_residual = stride == 1 and in_chs == out_chs
        self.conv_pw = (
            ConvNormAct(in_chs, mid, 1, norm_layer=norm_layer, act_layer=act_layer)
            if expand_ratio != 1
            else nn.Identity()
        )
        self.conv_dw = ConvNormAct(
            mid, mid, kernel_size, stride=stride, groups=mid, norm_layer=norm_layer, act_layer=act_layer
        )
        self.conv_pwl = ConvNormAct(mid, out_chs, 1, norm_layer=norm_layer, act_layer=None)
        self.in_chs, self.mid_chs, self.out_chs, self.stride = in_chs, mid, out_chs, stride

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, out_chs, H/stride, W/stride)``."""
        out = self.conv_pwl(self.conv_dw(self.conv_pw(x)))
        return x + out if self.use_residual else out


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave channels across ``groups`` (Zhang et al., 2017, ShuffleNet).

    Channels ``[a0 a1 a2 b0 b1 b2]`` with ``groups=2`` become
    ``[a0 b0 a1 b1 a2 b2]``, so the next group convolution (or split) mixes
    information from every group.

    Args:
        x: ``(N, C, H, W)`` with ``C`` divisible by ``groups``.
        groups: number of groups.

    Returns:
        ``(N, C, H, W)``.
    """
    n, c, h, w = x.shape
    x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, c, h, w)


class ChannelShuffle(nn.Module):
    """Module form of :func:`channel_shuffle`. Shapes: ``(N, C, H, W)`` -> same."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> ``(N, C, H, W)``."""
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit (Ma et al., 2018).

    Stride 1: split the channels in two halves; one passes untouched, the
    other goes through 1x1 -> 3x3 depthwise -> 1x1; concatenate, then
    channel-shuffle. Stride 2: both branches see the whole input (the left
    one is 3x3 depthwise -> 1x1), which doubles the channels. Equal widths in
    and out of each 1x1 and no group 1x1 follow the paper's guidelines for
    low memory-access cost.

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, out_chs, H/stride, W/stride)``.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        stride: int = 1,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
    ) -> None:
        super().__init__()
        if stride == 1 and in_chs != out_chs:
            raise ValueError("a stride-1 ShuffleUnit keeps the width: in_chs must equal out_chs")
        if out_chs % 2:
            raise ValueError("out_chs must be even")
        branch = out_chs // 2
        self.stride = stride
        cna = partial(ConvNormAct, norm_layer=norm_layer)
        if stride > 1:
            self.branch1: nn.Module = nn.Sequential(
                cna(in_chs, in_chs, 3, stride=stride, groups=in_chs, act_layer=None),
                cna(in_chs, branch, 1, act_layer=act_layer),
            )
        else:
            self.branch1 = nn.Identity()
        self.branch2 = nn.Sequential(
            cna(in_chs if stride > 1 else branch, branch, 1, act_layer=act_layer),
            cna(branch, branch, 3, stride=stride, groups=branch, act_layer=None),
            cna(branch, branch, 1, act_layer=act_layer),
        )
        self.shuffle = ChannelShuffle(2)
        self.in_chs, self.out_chs = in_chs, out_chs

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, out_chs, H/stride, W/stride)``."""
        if self.stride == 1:
            left, right = x.chunk(2, dim=1)
            out = torch.cat([left, self.branch2(right)], dim=1)
        else:
            out = torch.cat([self.branch1(x), self.branch2(x)], dim=1)
        return self.shuffle(out)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` without losing more than 10%.

    The rule MobileNetV2 and EfficientNet use for channel counts.
    """
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def round_channels(channels: int, width_mult: float, *, divisor: int = 8) -> int:
    """Width scaling: ``channels * width_mult`` rounded by :func:`make_divisible`."""
    return make_divisible(channels * width_mult, divisor)


def round_repeats(repeats: int, depth_mult: float) -> int:
    """Depth scaling: ``ceil(repeats * depth_mult)`` layers in a stage."""
    return int(math.ceil(repeats * depth_mult))


@dataclass(frozen=True)
class CompoundScaling:
    """Multipliers from :func:`compound_scaling`.

    Attributes:
        phi: the compound coefficient.
        depth_mult: ``alpha ** phi`` (layers per stage).
        width_mult: ``beta ** phi`` (channels).
        resolution: ``base_resolution * gamma ** phi``, rounded to an int.
        flops_mult: ``(alpha * beta**2 * gamma**2) ** phi``, about ``2 ** phi``.
    """

    phi: float
    depth_mult: float
    width_mult: float
    resolution: int
    flops_mult: float


def compound_scaling(
    phi: float,
    *,
    alpha: float = 1.2,
    beta: float = 1.1,
    gamma: float = 1.15,
    base_resolution: int = 224,
) -> CompoundScaling:
    """EfficientNet's compound scaling rule (Tan & Le, 2019, eq. 3).

    Depth ``d = alpha^phi``, width ``w = beta^phi``, resolution ``r = gamma^phi``
    under ``alpha * beta^2 * gamma^2 ~ 2``: FLOPs grow with ``d * w^2 * r^2``, so
    each unit of ``phi`` roughly doubles the cost. The defaults are the
    paper's grid-searched ``alpha=1.2, beta=1.1, gamma=1.15``
    (``1.2 * 1.21 * 1.3225 = 1.92``).

    Note: the released B1-B7 use hand-rounded multipliers (e.g. B1 = width
    1.0, depth 1.1, 240 px), not exactly this formula.
    """
    return CompoundScaling(
        phi=phi,
        depth_mult=alpha**phi,
        width_mult=beta**phi,
        resolution=int(round(base_resolution * gamma**phi)),
        flops_mult=(alpha * beta**2 * gamma**2) ** phi,
    )


class MBConv(nn.Module):
    """EfficientNet MBConv: inverted residual + squeeze-excite + stochastic depth.

    1x1 expand (SiLU) -> ``k x k`` depthwise (SiLU) -> squeeze-excite (reduced
    to ``in_chs * se_ratio`` channels, as in EfficientNet) -> 1x1 linear
    projection. The residual branch is dropped per sample with probability
    ``drop_path`` during training (stochastic depth).

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, out_chs, H/stride, W/stride)``.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        stride: int = 1,
        expand_ratio: float = 6,
        kernel_size: int = 3,
        se_ratio: float = 0.25,
        drop_path: float = 0.0,
        norm_layer: LayerFactory | None = partial(nn.BatchNorm2d, eps=1e-3),
        act_layer: LayerFactory = nn.SiLU,
    ) -> None:
        super().__init__()
        mid = make_divisible(in_chs * expand_ratio, 8)
        self.use_residual = stride == 1 and in_chs == out_chs
        self.conv_pw = (
            ConvNormAct(in_chs, mid, 1, norm_layer=norm_layer, act_layer=act_layer)
            if expand_ratio != 1
            else nn.Identity()
        )
        self.conv_dw = ConvNormAct(
            mid, mid, kernel_size, stride=stride, groups=mid, norm_layer=norm_layer, act_layer=act_layer
        )
        self.se = (
            SqueezeExcite(mid, rd_channels=max(1, int(in_chs * se_ratio)), act_layer=act_layer)
            if se_ratio > 0
            else nn.Identity()
        )
        self.conv_pwl = ConvNormAct(mid, out_chs, 1, norm_layer=norm_layer, act_layer=None)
        self.drop_path = DropPath(drop_path)
        self.in_chs, self.mid_chs, self.out_chs, self.stride = in_chs, mid, out_chs, stride

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, out_chs, H/stride, W/stride)``."""
        out = self.conv_pwl(self.se(self.conv_dw(self.conv_pw(x))))
        return x + self.drop_path(out) if self.use_residual else out


