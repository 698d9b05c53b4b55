"""The building blocks of the architecture zoo, one concept per class.

Every block is written out so that it can be read next to its paper. Blocks
that normalise or activate take ``norm_layer`` / ``act_layer`` arguments
(a class or ``functools.partial`` that builds the module), so an exercise can
swap BatchNorm for GroupNorm or ReLU for SiLU without editing the block.
``norm_layer=None`` or ``act_layer=None`` leaves the layer out.

Tensor shapes use ``N`` (batch), ``C`` (channels), ``H, W`` (height, width),
``L`` (tokens) and ``D`` (embedding width).

Map (family, block):

- common: :class:`ConvNormAct`, :class:`DropPath`, :class:`LayerNorm2d`
- VGG: :class:`VGGBlock`
- Inception (GoogLeNet): :class:`InceptionModule`
- ResNet: :class:`BasicBlock`, :class:`Bottleneck`
- ResNeXt: :class:`ResNeXtBottleneck` (cardinality = groups of the 3x3 conv)
- Wide ResNet: :class:`WideBasicBlock`
- DenseNet: :class:`DenseLayer`, :class:`DenseBlock`, :class:`Transition`
- SENet: :class:`SqueezeExcite`
- MobileNetV1: :class:`DepthwiseSeparableConv`
- MobileNetV2: :class:`InvertedResidual`
- ShuffleNetV2: :func:`channel_shuffle`, :class:`ChannelShuffle`, :class:`ShuffleUnit`
- EfficientNet: :class:`MBConv`, :func:`compound_scaling`, :func:`round_channels`,
  :func:`round_repeats`
- ConvNeXt: :class:`ConvNeXtBlock`
- FractalNet: :func:`fractal_join`, :class:`FractalBlock`
- Vision Transformer: :class:`PatchEmbed`, :class:`Attention`, :class:`Mlp`,
  :class:`EncoderBlock`
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "LayerFactory",
    "drop_path",
    "DropPath",
    "ConvNormAct",
    "LayerNorm2d",
    "VGGBlock",
    "InceptionModule",
    "BasicBlock",
    "Bottleneck",
    "ResNeXtBottleneck",
    "WideBasicBlock",
    "DenseLayer",
    "DenseBlock",
    "Transition",
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
    "ConvNeXtBlock",
    "fractal_join",
    "FractalBlock",
    "PatchEmbed",
    "Attention",
    "Mlp",
    "EncoderBlock",
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


# --------------------------------------------------------------------------
# VGG and Inception
# --------------------------------------------------------------------------


class VGGBlock(nn.Sequential):
    """VGG stage: ``num_convs`` 3x3 convolutions, then a 2x2 max-pool.

    Two stacked 3x3 convolutions see a 5x5 window, three see 7x7, with fewer
    parameters and more non-linearities than one large kernel (Simonyan &
    Zisserman, 2014).

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, out_chs, H/2, W/2)``
    (``H, W`` unchanged when ``pool=False``).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        num_convs: int = 2,
        pool: bool = True,
        norm_layer: LayerFactory | None = None,
        act_layer: LayerFactory | None = nn.ReLU,
    ) -> None:
        layers: list[nn.Module] = []
        for i in range(num_convs):
            layers.append(
                ConvNormAct(in_chs if i == 0 else out_chs, out_chs, 3, norm_layer=norm_layer, act_layer=act_layer)
            )
        if pool:
            layers.append(nn.MaxPool2d(2, 2))
        super().__init__(*layers)
        self.in_chs, self.out_chs = in_chs, out_chs


class InceptionModule(nn.Module):
    """GoogLeNet (Inception v1) module: four parallel branches, concatenated.

    Branches: 1x1; 1x1 reduce -> 3x3; 1x1 reduce -> 5x5; 3x3 max-pool -> 1x1
    projection. The 1x1 "reduce" convolutions cut channels before the costly
    large kernels (Szegedy et al., 2014). (torchvision's GoogLeNet uses a 3x3
    where the paper has a 5x5; this module follows the paper.)

    Shapes: ``(N, in_chs, H, W)`` ->
    ``(N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)``.
    """

    def __init__(
        self,
        in_chs: int,
        *,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
    ) -> None:
        super().__init__()
        cna = partial(ConvNormAct, norm_layer=norm_layer, act_layer=act_layer)
        self.branch1 = cna(in_chs, ch1x1, 1)
        self.branch2 = nn.Sequential(cna(in_chs, ch3x3red, 1), cna(ch3x3red, ch3x3, 3))
        self.branch3 = nn.Sequential(cna(in_chs, ch5x5red, 1), cna(ch5x5red, ch5x5, 5))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), cna(in_chs, pool_proj, 1))
        self.in_chs = in_chs
        self.out_chs = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, out_chs, H, W)``."""
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


# --------------------------------------------------------------------------
# Residual families: ResNet, ResNeXt, Wide ResNet, (SE-ResNet via attn_layer)
# --------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """ResNet basic block: ``relu(x + bn(conv3x3(relu(bn(conv3x3(x))))))``.

    The block learns a residual ``F(x)`` added to its input (He et al., 2015);
    when the stride or width changes the shortcut is a 1x1 projection.
    ``attn_layer`` (e.g. :class:`SqueezeExcite`) re-weights the residual
    channels before the addition, which makes an SE-ResNet block.

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, planes, H/stride, W/stride)``.
    """

    expansion: int = 1

    def __init__(
        self,
        in_chs: int,
        planes: int,
        *,
        stride: int = 1,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
        attn_layer: LayerFactory | None = None,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        out_chs = planes * self.expansion
        self.conv1 = ConvNormAct(in_chs, planes, 3, stride=stride, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvNormAct(planes, out_chs, 3, norm_layer=norm_layer, act_layer=None)
        self.attn = nn.Identity() if attn_layer is None else attn_layer(out_chs)
        self.shortcut = _shortcut(in_chs, out_chs, stride=stride, norm_layer=norm_layer)
        self.drop_path = DropPath(drop_path)
        self.act = act_layer()
        self.in_chs, self.out_chs = in_chs, out_chs

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, out_chs, H/stride, W/stride)``."""
        residual = self.attn(self.conv2(self.conv1(x)))
        return self.act(self.shortcut(x) + self.drop_path(residual))


class Bottleneck(nn.Module):
    """ResNet bottleneck: 1x1 reduce -> 3x3 -> 1x1 expand (x4), plus shortcut.

    The 3x3 works on ``width = planes * base_width / 64 * groups`` channels;
    with the defaults that is ``planes`` and the block outputs
    ``4 * planes``. The stride sits on the 3x3 convolution ("ResNet v1.5", as
    in torchvision). ``groups > 1`` gives ResNeXt (see
    :class:`ResNeXtBottleneck`); ``base_width=128`` gives torchvision's
    ``wide_resnet50_2`` bottleneck (twice as wide inside, same output).

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, 4 * planes, H/stride, W/stride)``.
    """

    expansion: int = 4

    def __init__(
        self,
        in_chs: int,
        planes: int,
        *,
        stride: int = 1,
        groups: int = 1,
        base_width: int = 64,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
        attn_layer: LayerFactory | None = None,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        out_chs = planes * self.expansion
        self.conv1 = ConvNormAct(in_chs, width, 1, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvNormAct(
            width, width, 3, stride=stride, groups=groups, norm_layer=norm_layer, act_layer=act_layer
        )
        self.conv3 = ConvNormAct(width, out_chs, 1, norm_layer=norm_layer, act_layer=None)
        self.attn = nn.Identity() if attn_layer is None else attn_layer(out_chs)
        self.shortcut = _shortcut(in_chs, out_chs, stride=stride, norm_layer=norm_layer)
        self.drop_path = DropPath(drop_path)
        self.act = act_layer()
        self.in_chs, self.width, self.out_chs = in_chs, width, out_chs

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, out_chs, H/stride, W/stride)``."""
        residual = self.attn(self.conv3(self.conv2(self.conv1(x))))
        return self.act(self.shortcut(x) + self.drop_path(residual))


class ResNeXtBottleneck(Bottleneck):
    """ResNeXt block: a bottleneck whose 3x3 is split into ``cardinality`` groups.

    "Aggregated residual transformations" (Xie et al., 2016): ``cardinality``
    parallel paths of ``base_width`` channels each, implemented as one grouped
    convolution. ``resnext50_32x4d`` is ``cardinality=32, base_width=4``.

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, 4 * planes, H/stride, W/stride)``.
    """

    def __init__(
        self,
        in_chs: int,
        planes: int,
        *,
        cardinality: int = 32,
        base_width: int = 4,
        stride: int = 1,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
        attn_layer: LayerFactory | None = None,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__(
            in_chs,
            planes,
            stride=stride,
            groups=cardinality,
            base_width=base_width,
            norm_layer=norm_layer,
            act_layer=act_layer,
            attn_layer=attn_layer,
            drop_path=drop_path,
        )
        self.cardinality = cardinality


class WideBasicBlock(nn.Module):
    """Wide ResNet block (Zagoruyko & Komodakis, 2016), pre-activation order.

    ``BN-ReLU-conv3x3 -> BN-ReLU -> dropout -> conv3x3`` plus shortcut. Width
    comes from the caller (``planes = 16 * k`` etc.); dropout between the two
    convolutions is the paper's regulariser for wide blocks.

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, planes, H/stride, W/stride)``.
    """

    expansion: int = 1

    def __init__(
        self,
        in_chs: int,
        planes: int,
        *,
        stride: int = 1,
        dropout: float = 0.0,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        self.norm1 = norm_layer(in_chs)
        self.act1 = act_layer()
        self.conv1 = nn.Conv2d(in_chs, planes, 3, stride=stride, padding=1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.norm2 = norm_layer(planes)
        self.act2 = act_layer()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        needs_proj = stride != 1 or in_chs != planes
        self.shortcut = nn.Conv2d(in_chs, planes, 1, stride=stride, bias=False) if needs_proj else nn.Identity()
        self.in_chs, self.out_chs = in_chs, planes

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, out_chs, H/stride, W/stride)``."""
        pre = self.act1(self.norm1(x))
        out = self.conv1(pre)
        out = self.conv2(self.dropout(self.act2(self.norm2(out))))
        # the projection shortcut reads the pre-activated input (as in the paper's code)
        shortcut = self.shortcut(pre) if not isinstance(self.shortcut, nn.Identity) else x
        return out + shortcut


# --------------------------------------------------------------------------
# DenseNet
# --------------------------------------------------------------------------


class DenseLayer(nn.Module):
    """DenseNet-BC layer: ``BN-ReLU-conv1x1 (bn_size*k) -> BN-ReLU-conv3x3 (k)``.

    It returns only its ``growth_rate`` new channels; :class:`DenseBlock`
    concatenates them to everything that came before (Huang et al., 2016).

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, growth_rate, H, W)``.
    """

    def __init__(
        self,
        in_chs: int,
        *,
        growth_rate: int,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        mid = bn_size * growth_rate
        self.norm1 = norm_layer(in_chs)
        self.act1 = act_layer()
        self.conv1 = nn.Conv2d(in_chs, mid, 1, bias=False)
        self.norm2 = norm_layer(mid)
        self.act2 = act_layer()
        self.conv2 = nn.Conv2d(mid, growth_rate, 3, padding=1, bias=False)
        self.dropout = nn.Dropout(drop_rate)
        self.in_chs, self.out_chs = in_chs, growth_rate

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, growth_rate, H, W)``."""
        out = self.conv1(self.act1(self.norm1(x)))
        out = self.conv2(self.act2(self.norm2(out)))
        return self.dropout(out)


class DenseBlock(nn.Module):
    """DenseNet block: layer ``i`` sees the concatenation of the input and all earlier outputs.

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, in_chs + num_layers * growth_rate, H, W)``.
    """

    def __init__(
        self,
        in_chs: int,
        *,
        num_layers: int,
        growth_rate: int,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(
                in_chs + i * growth_rate,
                growth_rate=growth_rate,
                bn_size=bn_size,
                drop_rate=drop_rate,
                norm_layer=norm_layer,
                act_layer=act_layer,
            )
            for i in range(num_layers)
        )
        self.in_chs = in_chs
        self.out_chs = in_chs + num_layers * growth_rate

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, out_chs, H, W)``."""
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


class Transition(nn.Sequential):
    """DenseNet transition: ``BN-ReLU-conv1x1`` (compress channels), then 2x2 average pool.

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, out_chs, H/2, W/2)``.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        self.norm = norm_layer(in_chs)
        self.act = act_layer()
        self.conv = nn.Conv2d(in_chs, out_chs, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)
        self.in_chs, self.out_chs = in_chs, out_chs


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


# --------------------------------------------------------------------------
# ConvNeXt
# --------------------------------------------------------------------------


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block (Liu et al., 2022): a ResNet block modernised after the Swin Transformer.

    7x7 depthwise conv -> LayerNorm -> Linear ``4x`` -> GELU -> Linear back
    (an inverted MLP, computed channels-last) -> layer scale ``gamma``
    (a learnable per-channel factor initialised at ``layer_scale_init``) ->
    stochastic depth -> add to the input.

    Shapes: ``(N, C, H, W)`` -> ``(N, C, H, W)``.
    """

    def __init__(
        self,
        dim: int,
        *,
        kernel_size: int = 7,
        mlp_ratio: float = 4.0,
        layer_scale_init: float | None = 1e-6,
        drop_path: float = 0.0,
        norm_layer: LayerFactory = partial(nn.LayerNorm, eps=1e-6),
        act_layer: LayerFactory = nn.GELU,
    ) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.conv_dw = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = norm_layer(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden, dim)
        self.layer_scale = (
            nn.Parameter(torch.full((dim,), float(layer_scale_init))) if layer_scale_init is not None else None
        )
        self.drop_path = DropPath(drop_path)
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> ``(N, C, H, W)``."""
        out = self.conv_dw(x).permute(0, 2, 3, 1)  # (N, H, W, C): channels-last for LayerNorm/Linear
        out = self.fc2(self.act(self.fc1(self.norm(out))))
        if self.layer_scale is not None:
            out = out * self.layer_scale
        return x + self.drop_path(out.permute(0, 3, 1, 2))


# --------------------------------------------------------------------------
# FractalNet
# --------------------------------------------------------------------------


def fractal_join(inputs: Sequence[Tensor], *, drop_prob: float = 0.0, training: bool = False) -> Tensor:
    """FractalNet join: the element-wise mean of its inputs, with local drop-path.

    In training each input is dropped with probability ``drop_prob``, but at
    least one always survives; the mean is taken over the survivors
    (Larsson et al., 2016). The same inputs are dropped for the whole batch.

    Args:
        inputs: tensors of one shape ``(N, C, H, W)``.
        drop_prob: local drop-path probability per input.
        training: no dropping when ``False``.

    Returns:
        ``(N, C, H, W)``.
    """
    if len(inputs) == 1:
        return inputs[0]
    if training and drop_prob > 0.0:
        kept = [t for t in inputs if random.random() >= drop_prob]
        if not kept:
            kept = [random.choice(list(inputs))]
        inputs = kept
    return torch.stack(list(inputs), dim=0).mean(dim=0)


class FractalBlock(nn.Module):
    """A FractalNet block with ``num_columns`` columns, built by the fractal rule.

    ``f_1(z) = conv(z)`` and ``f_{C+1}(z) = join(f_C(f_C(z)), conv(z))``:
    column ``c`` (0 = shallowest) has ``2**c`` convolutions, the deepest
    ``2**(C-1)``, and there are no residual connections. Joins average
    columns; in training :func:`fractal_join` drops join inputs (local
    drop-path). Passing ``column=c`` to :meth:`forward` runs that single
    column only (global drop-path, also how one column is evaluated alone).

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, out_chs, H, W)``.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        num_columns: int = 3,
        drop_path: float = 0.15,
        dropout: float = 0.0,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
    ) -> None:
        super().__init__()
        if num_columns < 1:
            raise ValueError("num_columns must be >= 1")
        self.num_columns = num_columns
        self.drop_prob = drop_path
        self.shallow = nn.Sequential(
            ConvNormAct(in_chs, out_chs, 3, norm_layer=norm_layer, act_layer=act_layer), nn.Dropout(dropout)
        )
        if num_columns > 1:
            kwargs = dict(
                num_columns=num_columns - 1,
                drop_path=drop_path,
                dropout=dropout,
                norm_layer=norm_layer,
                act_layer=act_layer,
            )
            self.deep_first: FractalBlock | None = FractalBlock(in_chs, out_chs, **kwargs)
            self.deep_second: FractalBlock | None = FractalBlock(out_chs, out_chs, **kwargs)
        else:
            self.deep_first = self.deep_second = None
        self.in_chs, self.out_chs = in_chs, out_chs

    def columns(self, x: Tensor, *, column: int | None = None) -> list[Tensor]:
        """Outputs of the columns that meet at this block's last join.

        Returns ``[shallowest, ..., deepest]`` (``num_columns`` tensors), or
        a one-element list with column ``column`` alone.
        """
        if column is not None and not 0 <= column < self.num_columns:
            raise ValueError(f"column must be in [0, {self.num_columns})")
        if self.deep_first is None or self.deep_second is None or column == 0:
            return [self.shallow(x)]
        sub = None if column is None else column - 1
        middle = fractal_join(
            self.deep_first.columns(x, column=sub), drop_prob=self.drop_prob, training=self.training
        )
        deep = self.deep_second.columns(middle, column=sub)
        return deep if column is not None else [self.shallow(x), *deep]

    def forward(self, x: Tensor, *, column: int | None = None) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, out_chs, H, W)``; ``column`` picks one column."""
        return fractal_join(self.columns(x, column=column), drop_prob=self.drop_prob, training=self.training)


# --------------------------------------------------------------------------
# Vision Transformer
# --------------------------------------------------------------------------


class PatchEmbed(nn.Module):
    """Cut the image into ``patch_size`` squares and project each to ``embed_dim``.

    One strided convolution (kernel = stride = patch size) is exactly a linear
    map applied to every flattened patch (Dosovitskiy et al., 2020).

    Shapes: ``(N, in_chans, H, W)`` -> ``(N, L, D)`` with
    ``L = (H / patch_size) * (W / patch_size)``.
    """

    def __init__(self, *, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.img_size, self.patch_size = img_size, patch_size
        self.grid_size = img_size // patch_size
        self.num_patches = self.grid_size**2
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> ``(N, L, D)``."""
        if x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"expected {self.img_size}x{self.img_size} images, got {tuple(x.shape[-2:])}")
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention, written out.

    ``q, k, v = x W_qkv`` split into ``num_heads`` heads of ``D / num_heads``;
    ``A = softmax(q k^T / sqrt(d_head))``; output ``(A v)`` re-joined and
    projected. Every token attends to every token: cost grows with ``L^2``.

    Shapes: ``(N, L, D)`` -> ``(N, L, D)``.
    """

    def __init__(
        self,
        dim: int,
        *,
        num_heads: int = 8,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, L, D)`` -> ``(N, L, D)``."""
        n, length, dim = x.shape
        qkv = self.qkv(x).reshape(n, length, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (N, heads, L, d_head)
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (N, heads, L, L)
        attn = self.attn_drop(attn.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(n, length, dim)
        return self.proj_drop(self.proj(out))


class Mlp(nn.Module):
    """Transformer MLP: Linear -> activation -> dropout -> Linear -> dropout.

    Shapes: ``(N, L, in_features)`` -> ``(N, L, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        *,
        hidden_features: int | None = None,
        out_features: int | None = None,
        act_layer: LayerFactory = nn.GELU,
        drop: float = 0.0,
    ) -> None:
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., in_features)`` -> ``(..., out_features)``."""
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class EncoderBlock(nn.Module):
    """Pre-norm Transformer encoder block: ``x + Attn(LN(x))``, then ``x + MLP(LN(x))``.

    Shapes: ``(N, L, D)`` -> ``(N, L, D)``.
    """

    def __init__(
        self,
        dim: int,
        *,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_layer: LayerFactory = partial(nn.LayerNorm, eps=1e-6),
        act_layer: LayerFactory = nn.GELU,
    ) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, L, D)`` -> ``(N, L, D)``."""
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))
