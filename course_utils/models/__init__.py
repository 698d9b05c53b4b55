"""The course's architecture zoo: readable blocks, registered models, one interface.

Map of the sub-package:

- ``blocks``  one class per idea (VGG block, Inception module, residual
  basic/bottleneck, ResNeXt, wide block, dense block + transition,
  squeeze-excite, depthwise-separable, inverted residual, channel shuffle,
  MBConv + compound scaling, ConvNeXt block, fractal join, ViT pieces)
- ``zoo``     :class:`CourseModel` (``forward_features`` / ``forward_head`` /
  ``reset_classifier`` / ``num_features``), the model classes, and the
  registry: :func:`list_models`, :func:`create_model`, :func:`model_info`
- ``efficientnet_lite``  :class:`EfficientNetLite` (``efficientnet_lite0``: no
  squeeze-excite, ReLU6, TensorFlow "same" padding) and the renaming of its
  published ImageNet file (loaded by ``course_utils.pretrained``)

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
from course_utils.models.zoo import (
    EFFICIENTNET_B0_STAGES,
    EFFICIENTNET_B0_TABLE,
    FAMILIES,
    MOBILENET_V1_TABLE,
    MOBILENET_V1_UNITS,
    ConvNeXt,
    CourseModel,
    DenseNet,
    EfficientNet,
    EfficientNetRow,
    FamilyInfo,
    FractalNet,
    GlobalAvgPool,
    InceptionNet,
    MBConvStage,
    MobileNetV1,
    MobileNetV1Row,
    MobileNetV2,
    ModelInfo,
    ResNet,
    ShuffleNetV2,
    TokenPool,
    VGG,
    VisionTransformer,
    WideResNet,
    create_model,
    list_families,
    list_models,
    model_info,
    register_model,
)
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
    # reference tables
    "MOBILENET_V1_TABLE",
    "MobileNetV1Row",
    "MOBILENET_V1_UNITS",
    "EFFICIENTNET_B0_TABLE",
    "EfficientNetRow",
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
