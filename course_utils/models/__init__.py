"""The course's architecture zoo: readable blocks, registered models, one interface.

Map of the sub-package:

- ``blocks``  one class per idea, by kind (``common``, ``classic``,
  ``residual``, ``efficient``, ``modern``): VGG block, Inception module,
  residual basic/bottleneck, ResNeXt, wide block, dense block + transition,
  squeeze-excite, depthwise-separable, inverted residual, channel shuffle,
  MBConv + compound scaling, ConvNeXt block, fractal join, ViT pieces
- ``base``    :class:`CourseModel` (``forward_features`` / ``forward_head`` /
  ``reset_classifier`` / ``num_features``, and its structure:
  ``feature_blocks()`` and ``head_blocks()``), the pooling heads
- ``classic`` (VGG, Inception), ``resnet`` (ResNet, ResNeXt, SE-ResNet, Wide
  ResNet), ``dense`` (DenseNet, FractalNet), ``efficient`` (MobileNetV1/V2,
  ShuffleNetV2, EfficientNet), ``modern`` (ConvNeXt, ViT): the model classes
- ``registry`` :func:`register_model` (refuses a duplicate name),
  :func:`create_model` (records ``arch_name``), :func:`list_models`,
  :func:`model_info`; the families' papers are data (``families.json``)
- ``zoo``     the registered builders, full-size then small, in historical order
- ``efficientnet_lite``  :class:`EfficientNetLite` (``efficientnet_lite0``: no
  squeeze-excite, ReLU6, TensorFlow "same" padding) and the renaming of its
  published ImageNet file (loaded by ``course_utils.pretrained``)
- ``dlib_resnet``  :class:`DlibFaceResNet`, the port of dlib's face ResNet
- ``embedding``  the face backbone and embedding / Siamese networks
- ``text_cnn``  :class:`KimTextCNN`, Kim's (2014) sentence CNN over a sequence
  of embeddings (not registered: the registry holds image models)

Costs (parameters, multiply-adds, latency) live in :mod:`course_utils.cost`.

Example::

    from course_utils.models import create_model, list_models, model_info

    list_models(size="small")            # ['vgg_small', 'inception_small', ...]
    model = create_model("resnet_small", num_classes=10)
    model_info("resnet_small").key_idea
    emb = model.forward_head(model.forward_features(x), pre_logits=True)
"""

from course_utils.models.blocks import (
    Attention,
    BasicBlock,
    Bottleneck,
    ChannelShuffle,
    CompoundScaling,
    ConvNeXtBlock,
    ConvNormAct,
    DenseBlock,
    DenseLayer,
    DepthwiseSeparableConv,
    DropPath,
    EncoderBlock,
    FractalBlock,
    InceptionModule,
    InvertedResidual,
    LayerNorm2d,
    MBConv,
    Mlp,
    PatchEmbed,
    ResNeXtBottleneck,
    ShuffleUnit,
    SqueezeExcite,
    Transition,
    VGGBlock,
    WideBasicBlock,
    channel_shuffle,
    compound_scaling,
    drop_path,
    fractal_join,
    make_divisible,
    round_channels,
    round_repeats,
)
from course_utils.models.base import CourseModel, GlobalAvgPool, TokenPool
from course_utils.models.classic import VGG, InceptionNet
from course_utils.models.dense import DenseNet, FractalNet
from course_utils.models.efficient import (
    EFFICIENTNET_B0_STAGES,
    MOBILENET_V1_UNITS,
    EfficientNet,
    MBConvStage,
    MobileNetV1,
    MobileNetV2,
    ShuffleNetV2,
)
from course_utils.models.modern import ConvNeXt, VisionTransformer
from course_utils.models.registry import (
    FAMILIES,
    FamilyInfo,
    ModelInfo,
    create_model,
    list_families,
    list_models,
    model_info,
    register_model,
)
from course_utils.models.resnet import ResNet, WideResNet
from course_utils.models import zoo  # noqa: F401  (registers the builders, in historical order)
from course_utils.models.efficientnet_lite import EfficientNetLite, efficientnet_lite0
from course_utils.models.dlib_resnet import DlibFaceResNet

__all__ = [
    # registry
    "create_model",
    "list_models",
    "list_families",
    "model_info",
    "register_model",
    "ModelInfo",
    "FamilyInfo",
    "FAMILIES",
    # models
    "CourseModel",
    "GlobalAvgPool",
    "TokenPool",
    "VGG",
    "InceptionNet",
    "ResNet",
    "WideResNet",
    "DenseNet",
    "FractalNet",
    "MobileNetV1",
    "MobileNetV2",
    "ShuffleNetV2",
    "EfficientNet",
    "EfficientNetLite",
    "efficientnet_lite0",
    "DlibFaceResNet",
    "ConvNeXt",
    "VisionTransformer",
    # architecture settings
    "MOBILENET_V1_UNITS",
    "EFFICIENTNET_B0_STAGES",
    "MBConvStage",
    # blocks
    "ConvNormAct",
    "DropPath",
    "drop_path",
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
    "MBConv",
    "make_divisible",
    "round_channels",
    "round_repeats",
    "CompoundScaling",
    "compound_scaling",
    "ConvNeXtBlock",
    "fractal_join",
    "FractalBlock",
    "PatchEmbed",
    "Attention",
    "Mlp",
    "EncoderBlock",
]
