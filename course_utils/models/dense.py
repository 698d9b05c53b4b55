"""Beyond shortcuts: DenseNet (concatenated features) and FractalNet (fractal joins, no residuals)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from torch import Tensor, nn

from course_utils.models.base import (
    CourseModel,
    init_cnn_weights,
    make_stem,
)
from course_utils.models.blocks import (
    DenseBlock,
    FractalBlock,
    LayerFactory,
    Transition,
)

__all__ = [
    "DenseNet",
    "FractalNet",
]


class DenseNet(CourseModel):
    """DenseNet-BC (Huang et al., 2016): dense blocks separated by compressing transitions.

    Args:
        growth_rate: ``k``, channels each dense layer adds.
        block_config: dense layers per block, e.g. ``(6, 12, 24, 16)`` for DenseNet-121.
        num_init_features: stem width.
        bn_size: bottleneck width factor (``bn_size * k`` channels in the 1x1).
        compression: transition output = ``floor(compression * input)``.
        stem: ``"imagenet"`` (7x7/2 + max-pool) or ``"cifar"`` (3x3).
    """

    block_attrs = ("stem", "stages.*", "final_norm", "final_act")

    def __init__(
        self,
        *,
        growth_rate: int = 32,
        block_config: Sequence[int] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        compression: float = 0.5,
        num_classes: int = 1000,
        in_chans: int = 3,
        stem: str = "imagenet",
        drop_rate: float = 0.0,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        self.stem = make_stem(in_chans, num_init_features, kind=stem, norm_layer=norm_layer, act_layer=act_layer)
        stages: list[nn.Module] = []
        prev = num_init_features
        for i, n in enumerate(block_config):
            block = DenseBlock(
                prev, num_layers=n, growth_rate=growth_rate, bn_size=bn_size, norm_layer=norm_layer, act_layer=act_layer
            )
            stages.append(block)
            prev = block.out_chs
            if i < len(block_config) - 1:
                out = int(math.floor(prev * compression))
                stages.append(Transition(prev, out, norm_layer=norm_layer, act_layer=act_layer))
                prev = out
        self.stages = nn.Sequential(*stages)
        self.final_norm = norm_layer(prev)
        self.final_act = act_layer()
        self._init_head(prev, num_classes, drop_rate=drop_rate)
        init_cnn_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C, H', W')`` after the final BN-ReLU."""
        return self.final_act(self.final_norm(self.stages(self.stem(x))))


class FractalNet(CourseModel):
    """FractalNet (Larsson et al., 2016): fractal blocks + max-pools, no residuals.

    In training, each forward pass picks global drop-path with probability
    ``global_drop_ratio``: one random column for the whole network; otherwise
    local drop-path inside every join. Set :attr:`eval_column` to evaluate
    a single column (e.g. the shallowest, ``0``) as a stand-alone network.
    """

    block_attrs = ("blocks.*",)

    def __init__(
        self,
        channels: Sequence[int] = (32, 64, 128),
        *,
        num_columns: int = 3,
        num_classes: int = 10,
        in_chans: int = 3,
        drop_path: float = 0.15,
        global_drop_ratio: float = 0.5,
        dropout: float = 0.0,
        drop_rate: float = 0.0,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
    ) -> None:
        super().__init__()
        self.num_columns = num_columns
        self.global_drop_ratio = global_drop_ratio
        self.eval_column: int | None = None
        blocks, prev = [], in_chans
        for chs in channels:
            blocks.append(
                FractalBlock(
                    prev,
                    chs,
                    num_columns=num_columns,
                    drop_path=drop_path,
                    dropout=dropout,
                    norm_layer=norm_layer,
                    act_layer=act_layer,
                )
            )
            prev = chs
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.MaxPool2d(2, 2)
        self._init_head(prev, num_classes, drop_rate=drop_rate)
        init_cnn_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C, H/2^B, W/2^B)`` for ``B`` blocks."""
        column = self.eval_column
        if self.training and column is None and random.random() < self.global_drop_ratio:
            column = random.randrange(self.num_columns)
        for block in self.blocks:
            x = self.pool(block(x, column=column))
        return x
