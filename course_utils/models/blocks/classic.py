"""VGG and Inception (GoogLeNet) blocks: stacked 3x3 convolutions, parallel branches."""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from course_utils.models.blocks.common import ConvNormAct, LayerFactory

__all__ = [
    "VGGBlock",
    "InceptionModule",
]

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


