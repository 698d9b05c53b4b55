"""Efficient families: MobileNetV1/V2, ShuffleNetV2, EfficientNet (and its stage table)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

from torch import Tensor, nn

from course_utils.models.base import (
    CourseModel,
    init_cnn_weights,
)
from course_utils.models.blocks import (
    ConvNormAct,
    DepthwiseSeparableConv,
    InvertedResidual,
    LayerFactory,
    MBConv,
    ShuffleUnit,
    make_divisible,
    round_channels,
    round_repeats,
)

__all__ = [
    "MobileNetV1",
    "MobileNetV2",
    "ShuffleNetV2",
    "MBConvStage",
    "EfficientNet",
    "MOBILENET_V1_UNITS",
    "MOBILENET_V2_SETTINGS",
    "EFFICIENTNET_B0_STAGES",
]


#: MobileNetV1's 13 depthwise-separable units: (output channels, depthwise stride).
#: The paper's Table 1 prints "Conv dw / s2" for the last unit, but its input
#: and output are both 7x7, so the stride is 1 (a known typo; every
#: implementation uses 1).
MOBILENET_V1_UNITS: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)



class MobileNetV1(CourseModel):
    """MobileNetV1 (Howard et al., 2017): a 3x3 conv, then depthwise-separable units.

    Args:
        units: ``(out_channels, stride)`` per separable unit
            (default: the paper's :data:`MOBILENET_V1_UNITS`).
        width_mult: the paper's width multiplier ``alpha`` on every layer.
        stem_chs: channels of the first full convolution (before ``alpha``).
        stem_stride: 2 for ImageNet, 1 for 32 px images.
    """

    block_attrs = ("stem", "blocks.*")

    def __init__(
        self,
        units: Sequence[tuple[int, int]] = MOBILENET_V1_UNITS,
        *,
        width_mult: float = 1.0,
        stem_chs: int = 32,
        stem_stride: int = 2,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
    ) -> None:
        super().__init__()
        prev = int(stem_chs * width_mult)
        self.stem = ConvNormAct(in_chans, prev, 3, stride=stem_stride, norm_layer=norm_layer, act_layer=act_layer)
        blocks = []
        for out, stride in units:
            out = int(out * width_mult)
            blocks.append(
                DepthwiseSeparableConv(prev, out, stride=stride, norm_layer=norm_layer, act_layer=act_layer)
            )
            prev = out
        self.blocks = nn.Sequential(*blocks)
        self._init_head(prev, num_classes, drop_rate=drop_rate)
        init_cnn_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C, H/32, W/32)`` with the default units."""
        return self.blocks(self.stem(x))


#: MobileNetV2's body (Sandler et al., 2018, Table 2): (expansion t, channels c, repeats n, stride s).
MOBILENET_V2_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class MobileNetV2(CourseModel):
    """MobileNetV2 (Sandler et al., 2018): inverted residuals with linear bottlenecks.

    Channels are rounded to multiples of 8 after ``width_mult`` (as in
    torchvision); the last 1x1 conv has ``last_chs * max(1, width_mult)``.
    """

    block_attrs = ("stem", "blocks.*", "head_conv")

    def __init__(
        self,
        settings: Sequence[tuple[int, int, int, int]] = MOBILENET_V2_SETTINGS,
        *,
        width_mult: float = 1.0,
        stem_chs: int = 32,
        stem_stride: int = 2,
        last_chs: int = 1280,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.2,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU6,
    ) -> None:
        super().__init__()
        prev = make_divisible(stem_chs * width_mult, 8)
        self.stem = ConvNormAct(in_chans, prev, 3, stride=stem_stride, norm_layer=norm_layer, act_layer=act_layer)
        blocks = []
        for t, c, n, s in settings:
            out = make_divisible(c * width_mult, 8)
            for i in range(n):
                blocks.append(
                    InvertedResidual(
                        prev, out, stride=s if i == 0 else 1, expand_ratio=t, norm_layer=norm_layer, act_layer=act_layer
                    )
                )
                prev = out
        self.blocks = nn.Sequential(*blocks)
        last = make_divisible(last_chs * max(1.0, width_mult), 8)
        self.head_conv = ConvNormAct(prev, last, 1, norm_layer=norm_layer, act_layer=act_layer)
        self._init_head(last, num_classes, drop_rate=drop_rate)
        init_cnn_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, last, H/32, W/32)`` with the default settings."""
        return self.head_conv(self.blocks(self.stem(x)))


class ShuffleNetV2(CourseModel):
    """ShuffleNetV2 (Ma et al., 2018): a stem, three stages of :class:`ShuffleUnit`, a 1x1 conv.

    Args:
        stages_repeats: units per stage (the first of each has stride 2).
        stages_out_channels: stem, three stage widths, final 1x1 conv width.
        stem_pool: 3x3/2 max-pool after the stride-``stem_stride`` stem conv.
    """

    block_attrs = ("stem", "stages.*", "head_conv")

    def __init__(
        self,
        stages_repeats: Sequence[int] = (4, 8, 4),
        stages_out_channels: Sequence[int] = (24, 116, 232, 464, 1024),
        *,
        stem_stride: int = 2,
        stem_pool: bool = True,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
    ) -> None:
        super().__init__()
        if len(stages_out_channels) != len(stages_repeats) + 2:
            raise ValueError("stages_out_channels needs stem + one per stage + last conv")
        prev = stages_out_channels[0]
        self.stem = nn.Sequential(
            ConvNormAct(in_chans, prev, 3, stride=stem_stride, norm_layer=norm_layer, act_layer=act_layer),
            nn.MaxPool2d(3, stride=2, padding=1) if stem_pool else nn.Identity(),
        )
        stages = []
        for n, out in zip(stages_repeats, stages_out_channels[1:-1], strict=True):
            units = [ShuffleUnit(prev, out, stride=2, norm_layer=norm_layer, act_layer=act_layer)]
            units += [ShuffleUnit(out, out, stride=1, norm_layer=norm_layer, act_layer=act_layer) for _ in range(n - 1)]
            stages.append(nn.Sequential(*units))
            prev = out
        self.stages = nn.Sequential(*stages)
        last = stages_out_channels[-1]
        self.head_conv = ConvNormAct(prev, last, 1, norm_layer=norm_layer, act_layer=act_layer)
        self._init_head(last, num_classes, drop_rate=drop_rate)
        init_cnn_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, last, H/32, W/32)`` with the ImageNet stem."""
        return self.head_conv(self.stages(self.stem(x)))


class MBConvStage(NamedTuple):
    """One EfficientNet stage: ``MBConv{expand}``, ``kernel`` x ``kernel``, first stride, channels, layers."""

    expand: int
    kernel: int
    stride: int
    in_chs: int
    out_chs: int
    layers: int


#: EfficientNet-B0's seven MBConv stages (Tan & Le, 2019, Table 1; torchvision's config).
EFFICIENTNET_B0_STAGES: tuple[MBConvStage, ...] = (
    MBConvStage(1, 3, 1, 32, 16, 1),
    MBConvStage(6, 3, 2, 16, 24, 2),
    MBConvStage(6, 5, 2, 24, 40, 2),
    MBConvStage(6, 3, 2, 40, 80, 3),
    MBConvStage(6, 5, 1, 80, 112, 3),
    MBConvStage(6, 5, 2, 112, 192, 4),
    MBConvStage(6, 3, 1, 192, 320, 1),
)



class EfficientNet(CourseModel):
    """EfficientNet (Tan & Le, 2019): MBConv stages scaled by width and depth multipliers.

    Layout: ``stem`` (3x3/2 conv, SiLU), ``stages`` (one ``nn.Sequential`` of
    :class:`MBConv` per :class:`MBConvStage`), ``head_conv`` (1x1 conv to
    ``4 x`` the last stage width), pooling, dropout, classifier. Stochastic
    depth grows linearly to ``drop_path_rate`` over the blocks.

    Args:
        stages: stage table (default: B0's).
        width_mult: channel multiplier (``beta ** phi``), rounded to multiples of 8.
        depth_mult: layer multiplier (``alpha ** phi``), rounded up.
    """

    block_attrs = ("stem", "stages.*", "head_conv")

    def __init__(
        self,
        stages: Sequence[MBConvStage] = EFFICIENTNET_B0_STAGES,
        *,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        stem_stride: int = 2,
        head_chs: int | None = None,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.2,
        drop_path_rate: float = 0.2,
        norm_layer: LayerFactory | None = partial(nn.BatchNorm2d, eps=1e-3),
        act_layer: LayerFactory = nn.SiLU,
    ) -> None:
        super().__init__()
        stem_chs = round_channels(stages[0].in_chs, width_mult)
        self.stem = ConvNormAct(in_chans, stem_chs, 3, stride=stem_stride, norm_layer=norm_layer, act_layer=act_layer)
        repeats = [round_repeats(s.layers, depth_mult) for s in stages]
        total, idx = sum(repeats), 0
        built, prev = [], stem_chs
        for spec, n in zip(stages, repeats, strict=True):
            out = round_channels(spec.out_chs, width_mult)
            blocks = []
            for i in range(n):
                blocks.append(
                    MBConv(
                        prev,
                        out,
                        stride=spec.stride if i == 0 else 1,
                        expand_ratio=spec.expand,
                        kernel_size=spec.kernel,
                        drop_path=drop_path_rate * idx / total,
                        norm_layer=norm_layer,
                        act_layer=act_layer,
                    )
                )
                prev = out
                idx += 1
            built.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*built)
        head_chs = 4 * prev if head_chs is None else head_chs
        self.head_conv = ConvNormAct(prev, head_chs, 1, norm_layer=norm_layer, act_layer=act_layer)
        self._init_head(head_chs, num_classes, drop_rate=drop_rate)
        init_cnn_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, head_chs, H/32, W/32)`` with B0's stages."""
        return self.head_conv(self.stages(self.stem(x)))
