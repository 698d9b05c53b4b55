"""Residual families: ResNet, ResNeXt and SE-ResNet (one :class:`ResNet` class), Wide ResNet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from course_utils.models.base import (
    CourseModel,
    init_cnn_weights,
    make_stem,
)
from course_utils.models.blocks import (
    BasicBlock,
    Bottleneck,
    LayerFactory,
    WideBasicBlock,
)

__all__ = [
    "ResNet",
    "WideResNet",
]


class ResNet(CourseModel):
    """ResNet / ResNeXt / wide ResNet / SE-ResNet: a stem and four (or fewer) residual stages.

    Args:
        block: :class:`BasicBlock`, :class:`Bottleneck` or
            :class:`ResNeXtBottleneck` (anything with ``expansion`` and the
            ``(in_chs, planes, *, stride, ...)`` signature).
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)`` for ResNet-50.
        planes: ``planes`` of each stage (outputs ``planes * expansion``).
        stem: ``"imagenet"`` (7x7/2 conv + max-pool) or ``"cifar"`` (3x3 conv).
        block_kwargs: extra block arguments (``groups``, ``base_width``,
            ``cardinality``, ``attn_layer``...).
        drop_path_rate: stochastic depth, increasing linearly to this value.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        *,
        planes: Sequence[int] = (64, 128, 256, 512),
        num_classes: int = 1000,
        in_chans: int = 3,
        stem: str = "imagenet",
        stem_chs: int = 64,
        block_kwargs: dict[str, Any] | None = None,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        block_kwargs = dict(block_kwargs or {})
        self.stem = make_stem(in_chans, stem_chs, kind=stem, norm_layer=norm_layer, act_layer=act_layer)
        total, idx = sum(layers), 0
        stages, prev = [], stem_chs
        for i, (n, p) in enumerate(zip(layers, planes, strict=True)):
            blocks = []
            for j in range(n):
                dp = drop_path_rate * idx / max(1, total - 1)
                blocks.append(
                    block(
                        prev,
                        p,
                        stride=2 if (i > 0 and j == 0) else 1,
                        norm_layer=norm_layer,
                        act_layer=act_layer,
                        drop_path=dp,
                        **block_kwargs,
                    )
                )
                prev = p * block.expansion
                idx += 1
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self._init_head(prev, num_classes, drop_rate=drop_rate)
        init_cnn_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C, H/32, W/32)`` (ImageNet stem, 4 stages)."""
        return self.stages(self.stem(x))


class WideResNet(CourseModel):
    """WRN-``d``-``k`` (Zagoruyko & Komodakis, 2016): three pre-activation stages, ``k`` times wider.

    ``depth = 6 n + 4`` with ``n`` :class:`WideBasicBlock` per stage of widths
    ``16k, 32k, 64k``, on a 3x3 stem of 16 channels; a final BN-ReLU follows
    the last (pre-activation) block.
    """

    block_attrs = ("stem", "stages.*", "final_norm", "final_act")

    def __init__(
        self,
        *,
        depth: int = 10,
        widen_factor: int = 2,
        base_widths: Sequence[int] = (16, 32, 64),
        num_classes: int = 10,
        in_chans: int = 3,
        dropout: float = 0.0,
        drop_rate: float = 0.0,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError("WRN depth must be 6n + 4")
        n = (depth - 4) // 6
        self.stem = nn.Conv2d(in_chans, 16, 3, padding=1, bias=False)
        stages, prev = [], 16
        for i, w in enumerate(base_widths):
            width = w * widen_factor
            stages.append(
                nn.Sequential(
                    *(
                        WideBasicBlock(
                            prev if j == 0 else width,
                            width,
                            stride=2 if (i > 0 and j == 0) else 1,
                            dropout=dropout,
                            norm_layer=norm_layer,
                            act_layer=act_layer,
                        )
                        for j in range(n)
                    )
                )
            )
            prev = width
        self.stages = nn.Sequential(*stages)
        self.final_norm = norm_layer(prev)
        self.final_act = act_layer()
        self._init_head(prev, num_classes, drop_rate=drop_rate)
        init_cnn_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, 64k, H/4, W/4)``."""
        return self.final_act(self.final_norm(self.stages(self.stem(x))))
