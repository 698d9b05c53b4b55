"""The registered zoo: one builder per model, full-size first, then the small course set.

Registration order is the order of :func:`~course_utils.models.registry.list_models`:
historical within each size, which is why the builders live together here and
the classes live in their family modules (``classic``, ``resnet``, ``dense``,
``efficient``, ``modern``).

Two sizes:

- ``size="full"``: ImageNet models (224 px, 1000 classes) whose parameter
  counts equal torchvision's exactly and whose multiply-adds match the
  figure in torchvision's weights metadata (``mobilenet_v1`` follows its
  paper's Table 1, which torchvision does not ship).
- ``size="small"``: course variants for 32-64 px inputs and 10 classes,
  each with roughly 0.1-0.3 M parameters so that families can be trained and
  compared on a CPU on the same budget.

No pretrained weights are shipped or downloaded.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from torch import nn

from course_utils.models.blocks import (
    BasicBlock,
    Bottleneck,
    ResNeXtBottleneck,
    SqueezeExcite,
)
from course_utils.models.classic import VGG, InceptionNet
from course_utils.models.dense import DenseNet, FractalNet
from course_utils.models.efficient import (
    EfficientNet,
    MBConvStage,
    MobileNetV1,
    MobileNetV2,
    ShuffleNetV2,
)
from course_utils.models.modern import ConvNeXt, VisionTransformer
from course_utils.models.registry import register_model
from course_utils.models.resnet import ResNet, WideResNet

__all__ = [
    "vgg16",
    "resnet18",
    "resnet50",
    "wide_resnet50_2",
    "densenet121",
    "resnext50_32x4d",
    "mobilenet_v1",
    "mobilenet_v2",
    "shufflenet_v2_x1_0",
    "efficientnet_b0",
    "vit_b_16",
    "convnext_tiny",
    "vgg_small",
    "inception_small",
    "resnet_small",
    "wrn_small",
    "fractalnet_small",
    "densenet_small",
    "resnext_small",
    "mobilenet_v1_small",
    "se_resnet_small",
    "mobilenet_v2_small",
    "shufflenet_small",
    "efficientnet_small",
    "vit_small_course",
    "convnext_small_course",
    "EFFICIENTNET_SMALL_STAGES",
]

_FULL = dict(size="full", input_size=(3, 224, 224), num_classes=1000)


@register_model(family="vgg", torchvision_name="vgg16", description="VGG-16 (configuration D), no BatchNorm", **_FULL)
def vgg16(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> VGG:
    """VGG-16: 13 conv layers in 5 stages + 3 FC layers (138M parameters)."""
    return VGG(
        (64, 128, 256, 512, 512),
        convs_per_stage=(2, 2, 3, 3, 3),
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


@register_model(family="resnet", torchvision_name="resnet18", description="ResNet-18, basic blocks", **_FULL)
def resnet18(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-18: basic blocks (2, 2, 2, 2)."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(family="resnet", torchvision_name="resnet50", description="ResNet-50, bottleneck blocks", **_FULL)
def resnet50(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-50: bottleneck blocks (3, 4, 6, 3)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(
    family="wide_resnet",
    torchvision_name="wide_resnet50_2",
    description="ResNet-50 with bottlenecks twice as wide inside",
    **_FULL,
)
def wide_resnet50_2(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """Wide ResNet-50-2: ResNet-50 with 2x wider 3x3 convolutions in every bottleneck."""
    return ResNet(
        Bottleneck,
        (3, 4, 6, 3),
        block_kwargs={"base_width": 128},
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


@register_model(family="densenet", torchvision_name="densenet121", description="DenseNet-121 (k=32)", **_FULL)
def densenet121(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> DenseNet:
    """DenseNet-121: growth 32, blocks (6, 12, 24, 16)."""
    return DenseNet(num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(
    family="resnext",
    torchvision_name="resnext50_32x4d",
    description="ResNeXt-50, cardinality 32, 4 channels per path",
    **_FULL,
)
def resnext50_32x4d(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """ResNeXt-50 (32x4d)."""
    return ResNet(
        ResNeXtBottleneck,
        (3, 4, 6, 3),
        block_kwargs={"cardinality": 32, "base_width": 4},
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


@register_model(
    family="mobilenet_v1",
    torchvision_name=None,
    description="MobileNetV1 1.0-224 as in the paper's Table 1",
    **_FULL,
)
def mobilenet_v1(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> MobileNetV1:
    """MobileNetV1 1.0-224 (paper Table 1; about 4.2M parameters)."""
    return MobileNetV1(num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(family="mobilenet_v2", torchvision_name="mobilenet_v2", description="MobileNetV2 1.0", **_FULL)
def mobilenet_v2(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> MobileNetV2:
    """MobileNetV2 1.0-224."""
    return MobileNetV2(num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(
    family="shufflenet_v2", torchvision_name="shufflenet_v2_x1_0", description="ShuffleNetV2 1.0x", **_FULL
)
def shufflenet_v2_x1_0(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ShuffleNetV2:
    """ShuffleNetV2 1.0x."""
    return ShuffleNetV2(num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(family="efficientnet", torchvision_name="efficientnet_b0", description="EfficientNet-B0", **_FULL)
def efficientnet_b0(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> EfficientNet:
    """EfficientNet-B0 (the searched baseline, phi = 0)."""
    return EfficientNet(num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(family="vit", torchvision_name="vit_b_16", description="ViT-Base, 16x16 patches", **_FULL)
def vit_b_16(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> VisionTransformer:
    """ViT-B/16: 12 layers, width 768, 12 heads, 224 px."""
    return VisionTransformer(num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(family="convnext", torchvision_name="convnext_tiny", description="ConvNeXt-T", **_FULL)
def convnext_tiny(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ConvNeXt:
    """ConvNeXt-T: depths (3, 3, 9, 3), widths (96, 192, 384, 768)."""
    return ConvNeXt(num_classes=num_classes, in_chans=in_chans, **kwargs)


# ---- small course variants: 32-64 px, 10 classes, ~0.1-0.3M parameters -------------


@register_model(family="vgg", description="3 VGG stages with BatchNorm, global average pooling")
def vgg_small(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> VGG:
    """Small VGG: stages (32, 64, 128) with (1, 1, 2) 3x3 convs + BN, GAP head."""
    kwargs.setdefault("drop_rate", 0.0)
    return VGG(
        (32, 64, 128),
        convs_per_stage=(1, 1, 2),
        mlp_dim=None,
        norm_layer=nn.BatchNorm2d,
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


def _inception(ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int, pool_proj: int) -> dict[str, int]:
    return dict(ch1x1=ch1x1, ch3x3red=ch3x3red, ch3x3=ch3x3, ch5x5red=ch5x5red, ch5x5=ch5x5, pool_proj=pool_proj)


@register_model(family="inception", description="GoogLeNet-style: 4 Inception modules, 2 max-pools")
def inception_small(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> InceptionNet:
    """Small GoogLeNet: 3x3 stem (32), pool, Inception 64 -> 120, pool, Inception 160 -> 176."""
    return InceptionNet(
        [
            "pool",
            _inception(16, 16, 32, 4, 8, 8),  # -> 64 channels
            _inception(32, 32, 48, 8, 24, 16),  # -> 120
            "pool",
            _inception(48, 32, 64, 8, 24, 24),  # -> 160
            _inception(48, 48, 64, 12, 32, 32),  # -> 176
        ],
        stem_chs=32,
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


@register_model(family="resnet", description="CIFAR-style ResNet, 3 stages of basic blocks")
def resnet_small(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """Small ResNet (ResNet-14-like): basic blocks (2, 2, 2) of widths (16, 32, 64), 3x3 stem.

    ``stem="imagenet"`` swaps in ResNet-18's 7x7/2 conv + max-pool stem: the stages run
    on 4x smaller maps, about 12x fewer multiply-adds at a given input size (the
    transfer-learning checkpoints of notebook 03 use it at 48 px).
    """
    kwargs.setdefault("stem", "cifar")
    kwargs.setdefault("stem_chs", 16)
    return ResNet(
        BasicBlock,
        (2, 2, 2),
        planes=(16, 32, 64),
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


@register_model(family="wide_resnet", description="WRN-10-2: 1 pre-activation block per stage, twice as wide")
def wrn_small(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> WideResNet:
    """Small Wide ResNet: WRN-10-2 on base widths (12, 24, 48), so (24, 48, 96); dropout 0.1."""
    kwargs.setdefault("dropout", 0.1)
    return WideResNet(
        depth=10, widen_factor=2, base_widths=(12, 24, 48), num_classes=num_classes, in_chans=in_chans, **kwargs
    )


@register_model(family="fractalnet", description="3 fractal blocks of 3 columns (7 convs each)")
def fractalnet_small(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> FractalNet:
    """Small FractalNet: 3 blocks of widths (16, 32, 64), 3 columns, local + global drop-path.

    Drop-path is milder than the paper's (local 0.15, global for half the
    batches): 0.1 and 0.25, because the course trains for a few epochs only.
    BatchNorm statistics mix the dropped and full networks, so eval accuracy
    lags train accuracy early in training.
    """
    kwargs.setdefault("drop_path", 0.1)
    kwargs.setdefault("global_drop_ratio", 0.25)
    return FractalNet((16, 32, 64), num_columns=3, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(family="densenet", description="DenseNet-BC, k=12, 3 dense blocks of 6 layers")
def densenet_small(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> DenseNet:
    """Small DenseNet-BC: growth 12, blocks (6, 6, 6), 3x3 stem of 24 channels."""
    return DenseNet(
        growth_rate=12,
        block_config=(6, 6, 6),
        num_init_features=24,
        stem="cifar",
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


@register_model(family="resnext", description="ResNeXt-29 layout, cardinality 8 x 4d, outputs 64-128-256")
def resnext_small(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """Small ResNeXt-29: 3 grouped bottlenecks per stage, cardinality 8 x 4 channels per path."""
    return ResNet(
        ResNeXtBottleneck,
        (3, 3, 3),
        planes=(16, 32, 64),
        block_kwargs={"cardinality": 8, "base_width": 4},
        stem="cifar",
        stem_chs=32,
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


@register_model(family="mobilenet_v1", description="MobileNetV1 body, stride-1 stem, 7 units")
def mobilenet_v1_small(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> MobileNetV1:
    """Small MobileNetV1: stride-1 stem, 7 separable units up to 256 channels."""
    units = ((32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1))
    return MobileNetV1(units, stem_chs=32, stem_stride=1, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(family="senet", description="resnet_small with squeeze-excite (r=8) in every block")
def se_resnet_small(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> ResNet:
    """Small SE-ResNet: :func:`resnet_small` + :class:`SqueezeExcite` (reduction 8) in each block."""
    return ResNet(
        BasicBlock,
        (2, 2, 2),
        planes=(16, 32, 64),
        stem="cifar",
        stem_chs=16,
        block_kwargs={"attn_layer": partial(SqueezeExcite, rd_ratio=1 / 8)},
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


@register_model(family="mobilenet_v2", description="MobileNetV2 body for 32 px, stride-1 stem")
def mobilenet_v2_small(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> MobileNetV2:
    """Small MobileNetV2: stride-1 stem, 8 inverted residuals (t = 1 or 6) up to 96 channels, head conv 256."""
    settings = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 2, 2), (6, 96, 1, 1))
    return MobileNetV2(
        settings,
        stem_chs=32,
        stem_stride=1,
        last_chs=256,
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


@register_model(family="shufflenet_v2", description="ShuffleNetV2 0.5x-like for 32 px")
def shufflenet_small(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> ShuffleNetV2:
    """Small ShuffleNetV2: stride-1 stem without pool, stages (2, 4, 2) of (48, 96, 192), head 512."""
    return ShuffleNetV2(
        (2, 4, 2),
        (24, 48, 96, 192, 512),
        stem_stride=1,
        stem_pool=False,
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


#: The small EfficientNet's stages: B0's operators, fewer layers and channels, for 32 px.
EFFICIENTNET_SMALL_STAGES: tuple[MBConvStage, ...] = (
    MBConvStage(1, 3, 1, 16, 16, 1),
    MBConvStage(6, 3, 2, 16, 24, 1),
    MBConvStage(6, 5, 2, 24, 40, 1),
    MBConvStage(6, 3, 2, 40, 80, 1),
    MBConvStage(6, 5, 1, 80, 96, 1),
)


@register_model(family="efficientnet", description="B0's MBConv stages shrunk for 32 px (SE + stochastic depth)")
def efficientnet_small(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> EfficientNet:
    """Small EfficientNet: 5 MBConv stages up to 96 channels, head 384; scale with width/depth_mult."""
    kwargs.setdefault("drop_path_rate", 0.1)
    return EfficientNet(
        EFFICIENTNET_SMALL_STAGES,
        stem_stride=1,
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


@register_model(family="vit", description="ViT for 32 px: 4x4 patches, width 64, 4 layers, 4 heads, MLP 2x")
def vit_small_course(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> VisionTransformer:
    """Small ViT: ``img_size=32`` (pass ``img_size=64`` for 64 px), patch 4, width 64, depth 4."""
    kwargs.setdefault("img_size", 32)
    return VisionTransformer(
        patch_size=4,
        embed_dim=64,
        depth=4,
        num_heads=4,
        mlp_ratio=2.0,
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )


@register_model(family="convnext", description="ConvNeXt for 32 px: 2x2 patchify stem, 3 stages")
def convnext_small_course(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> ConvNeXt:
    """Small ConvNeXt: 2x2 stem, depths (2, 2, 2), widths (24, 48, 96), 7x7 depthwise."""
    kwargs.setdefault("drop_path_rate", 0.05)
    return ConvNeXt(
        (2, 2, 2),
        (24, 48, 96),
        patch_size=2,
        num_classes=num_classes,
        in_chans=in_chans,
        **kwargs,
    )
