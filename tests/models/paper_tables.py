"""The papers' tables, typed in row by row, independent of the builders the tests check against them."""

from __future__ import annotations

from typing import NamedTuple


class MobileNetV1Row(NamedTuple):
    """One row of MobileNetV1's Table 1 (Howard et al., 2017).

    ``filter_shape`` uses the paper's notation: ``(k, k, in, out)`` for a full
    convolution, ``(k, k, C)`` for a depthwise one, ``(in, out)`` for the FC,
    ``(7, 7)`` for the pool; ``input_size`` is ``(H, W, C)``.
    """

    kind: str  # "conv", "conv_dw", "avg_pool" or "fc"
    stride: int
    filter_shape: tuple[int, ...]
    input_size: tuple[int, int, int]



_R = MobileNetV1Row
#: MobileNetV1's body, Table 1 of the paper, typed in row by row (independent of
#: the builder, which the tests check against it): 27 convolutions, average
#: pool, FC. Only the typo of the last depthwise stride is corrected (s2 -> s1).
MOBILENET_V1_TABLE: tuple[MobileNetV1Row, ...] = (
    _R("conv", 2, (3, 3, 3, 32), (224, 224, 3)),
    _R("conv_dw", 1, (3, 3, 32), (112, 112, 32)),
    _R("conv", 1, (1, 1, 32, 64), (112, 112, 32)),
    _R("conv_dw", 2, (3, 3, 64), (112, 112, 64)),
    _R("conv", 1, (1, 1, 64, 128), (56, 56, 64)),
    _R("conv_dw", 1, (3, 3, 128), (56, 56, 128)),
    _R("conv", 1, (1, 1, 128, 128), (56, 56, 128)),
    _R("conv_dw", 2, (3, 3, 128), (56, 56, 128)),
    _R("conv", 1, (1, 1, 128, 256), (28, 28, 128)),
    _R("conv_dw", 1, (3, 3, 256), (28, 28, 256)),
    _R("conv", 1, (1, 1, 256, 256), (28, 28, 256)),
    _R("conv_dw", 2, (3, 3, 256), (28, 28, 256)),
    _R("conv", 1, (1, 1, 256, 512), (14, 14, 256)),
    *(
        [
            _R("conv_dw", 1, (3, 3, 512), (14, 14, 512)),
            _R("conv", 1, (1, 1, 512, 512), (14, 14, 512)),
        ]
        * 5
    ),
    _R("conv_dw", 2, (3, 3, 512), (14, 14, 512)),
    _R("conv", 1, (1, 1, 512, 1024), (7, 7, 512)),
    _R("conv_dw", 1, (3, 3, 1024), (7, 7, 1024)),  # printed "s2" in the paper: a typo
    _R("conv", 1, (1, 1, 1024, 1024), (7, 7, 1024)),
    _R("avg_pool", 1, (7, 7), (7, 7, 1024)),
    _R("fc", 1, (1024, 1000), (1, 1, 1024)),
)
del _R



class EfficientNetRow(NamedTuple):
    """One row of EfficientNet-B0's Table 1: stage, operator, input resolution, output channels, layers."""

    stage: int
    operator: str
    resolution: int
    channels: int
    layers: int


#: EfficientNet-B0, Table 1 of Tan & Le (2019). ``resolution`` is the input
#: resolution of the stage, ``channels`` its output channels.
EFFICIENTNET_B0_TABLE: tuple[EfficientNetRow, ...] = (
    EfficientNetRow(1, "Conv3x3", 224, 32, 1),
    EfficientNetRow(2, "MBConv1, k3x3", 112, 16, 1),
    EfficientNetRow(3, "MBConv6, k3x3", 112, 24, 2),
    EfficientNetRow(4, "MBConv6, k5x5", 56, 40, 2),
    EfficientNetRow(5, "MBConv6, k3x3", 28, 80, 3),
    EfficientNetRow(6, "MBConv6, k5x5", 14, 112, 3),
    EfficientNetRow(7, "MBConv6, k5x5", 14, 192, 4),
    EfficientNetRow(8, "MBConv6, k3x3", 7, 320, 1),
    EfficientNetRow(9, "Conv1x1 & Pooling & FC", 7, 1280, 1),
)
