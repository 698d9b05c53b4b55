"""The building blocks of the architecture zoo, one concept per class.

Every block is written out so that it can be read next to its paper. Blocks
that normalise or activate take ``norm_layer`` / ``act_layer`` arguments
(a class or ``functools.partial`` that builds the module), so an exercise can
swap BatchNorm for GroupNorm or ReLU for SiLU without editing the block.
``norm_layer=None`` or ``act_layer=None`` leaves the layer out.

Tensor shapes use ``N`` (batch), ``C`` (channels), ``H, W`` (height, width),
``L`` (tokens) and ``D`` (embedding width).

Modules: ``common`` (shared pieces), ``classic`` (VGG, Inception),
``residual`` (ResNet ... DenseNet, FractalNet), ``efficient`` (SE, MobileNet,
ShuffleNet, EfficientNet), ``modern`` (ConvNeXt, ViT). Map (family, block):

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

from course_utils.models.blocks.classic import (
    InceptionModule,
    VGGBlock,
)
from course_utils.models.blocks.common import (
    ConvNormAct,
    DropPath,
    LayerFactory,
    LayerNorm2d,
    drop_path,
)
from course_utils.models.blocks.efficient import (
    ChannelShuffle,
    CompoundScaling,
    DepthwiseSeparableConv,
    InvertedResidual,
    MBConv,
    ShuffleUnit,
    SqueezeExcite,
    channel_shuffle,
    compound_scaling,
    make_divisible,
    round_channels,
    round_repeats,
)
from course_utils.models.blocks.modern import (
    Attention,
    ConvNeXtBlock,
    EncoderBlock,
    Mlp,
    PatchEmbed,
)
from course_utils.models.blocks.residual import (
    BasicBlock,
    Bottleneck,
    DenseBlock,
    DenseLayer,
    FractalBlock,
    ResNeXtBottleneck,
    Transition,
    WideBasicBlock,
    fractal_join,
)

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
