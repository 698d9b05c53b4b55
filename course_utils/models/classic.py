"""Classic CNN families: VGG (stacked 3x3 convolutions) and GoogLeNet-style Inception networks."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from course_utils.models.base import (
    CourseModel,
    init_cnn_weights,
)
from course_utils.models.blocks import (
    ConvNormAct,
    InceptionModule,
    LayerFactory,
    VGGBlock,
)

__all__ = [
    "VGG",
    "InceptionNet",
]


class VGG(CourseModel):
    """VGG: stages of 3x3 convolutions and max-pools (Simonyan & Zisserman, 2014).

    With ``mlp_dim`` the head is torchvision's: 7x7 adaptive pool, flatten,
    two ``mlp_dim``-wide FC layers with ReLU and dropout, then the classifier.
    Without it: global average pooling straight into the classifier.
    """

    block_attrs = ("stages.*",)

    def __init__(
        self,
        stage_channels: Sequence[int],
        *,
        convs_per_stage: Sequence[int],
        num_classes: int = 1000,
        in_chans: int = 3,
        mlp_dim: int | None = 4096,
        pool_size: int = 7,
        drop_rate: float = 0.5,
        norm_layer: LayerFactory | None = None,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        stages, prev = [], in_chans
        for chs, n in zip(stage_channels, convs_per_stage, strict=True):
            stages.append(VGGBlock(prev, chs, num_convs=n, norm_layer=norm_layer, act_layer=act_layer))
            prev = chs
        self.stages = nn.Sequential(*stages)
        if mlp_dim:
            self._init_head(
                mlp_dim,
                num_classes,
                global_pool=nn.Sequential(nn.AdaptiveAvgPool2d(pool_size), nn.Flatten(1)),
                pre_logits=nn.Sequential(
                    nn.Linear(prev * pool_size * pool_size, mlp_dim),
                    act_layer(),
                    nn.Dropout(drop_rate),
                    nn.Linear(mlp_dim, mlp_dim),
                    act_layer(),
                ),
                drop_rate=drop_rate,
            )
        else:
            self._init_head(prev, num_classes, drop_rate=drop_rate)
        init_cnn_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C, H/2^S, W/2^S)`` for ``S`` stages."""
        return self.stages(x)


class InceptionNet(CourseModel):
    """A GoogLeNet-style network: a conv stem, then Inception modules and max-pools.

    ``layout`` lists :class:`~course_utils.models.blocks.InceptionModule`
    keyword arguments (``ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5,
    pool_proj``), or the string ``"pool"`` for a 3x3/2 max-pool.
    """

    def __init__(
        self,
        layout: Sequence[dict[str, int] | str],
        *,
        stem_chs: int = 32,
        num_classes: int = 10,
        in_chans: int = 3,
        drop_rate: float = 0.2,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
    ) -> None:
        super().__init__()
        self.stem = ConvNormAct(in_chans, stem_chs, 3, norm_layer=norm_layer, act_layer=act_layer)
        layers: list[nn.Module] = []
        prev = stem_chs
        for spec in layout:
            if spec == "pool":
                layers.append(nn.MaxPool2d(3, stride=2, padding=1))
            else:
                assert isinstance(spec, dict)
                block = InceptionModule(prev, **spec, norm_layer=norm_layer, act_layer=act_layer)
                layers.append(block)
                prev = block.out_chs
        self.stages = nn.Sequential(*layers)
        self._init_head(prev, num_classes, drop_rate=drop_rate)
        init_cnn_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C, H', W')``."""
        return self.stages(self.stem(x))
