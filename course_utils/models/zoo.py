"""The model zoo: architectures assembled from :mod:`course_utils.models.blocks`.

Every model is a :class:`CourseModel`, with one interface for all families::

    feats = model.forward_features(x)                    # (N, C, H', W') or tokens (N, L, D)
    emb = model.forward_head(feats, pre_logits=True)     # (N, model.num_features)
    logits = model.forward_head(feats)                   # (N, num_classes) == model(x)
    model.reset_classifier(5)                            # new head for transfer learning

Models are registered by name (:func:`register_model`) and built with
:func:`create_model`; :func:`list_models` lists them in the historical order of
their papers, and :func:`model_info` says where each comes from.

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

import difflib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple, TypeVar

import torch
from torch import Tensor, nn

from course_utils.models.blocks import (
    Bottleneck,
    BasicBlock,
    ConvNeXtBlock,
    ConvNormAct,
    DenseBlock,
    DepthwiseSeparableConv,
    EncoderBlock,
    FractalBlock,
    InceptionModule,
    InvertedResidual,
    LayerFactory,
    LayerNorm2d,
    MBConv,
    PatchEmbed,
    ResNeXtBottleneck,
    ShuffleUnit,
    SqueezeExcite,
    Transition,
    VGGBlock,
    WideBasicBlock,
    make_divisible,
    round_channels,
    round_repeats,
)

__all__ = [
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
    "ConvNeXt",
    "VisionTransformer",
    "FamilyInfo",
    "FAMILIES",
    "ModelInfo",
    "register_model",
    "create_model",
    "list_models",
    "list_families",
    "model_info",
    "MobileNetV1Row",
    "MOBILENET_V1_TABLE",
    "MOBILENET_V1_UNITS",
    "EfficientNetRow",
    "EFFICIENTNET_B0_TABLE",
    "MBConvStage",
    "EFFICIENTNET_B0_STAGES",
]


# --------------------------------------------------------------------------
# The common interface
# --------------------------------------------------------------------------


class GlobalAvgPool(nn.Module):
    """Global average pooling of a feature map: ``(N, C, H, W)`` -> ``(N, C)``."""

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> ``(N, C)``."""
        return x.mean(dim=(2, 3))


class TokenPool(nn.Module):
    """Take the class token of a token sequence: ``(N, L, D)`` -> ``(N, D)``."""

    def forward(self, x: Tensor) -> Tensor:
        """``(N, L, D)`` -> ``(N, D)``."""
        return x[:, 0]


class CourseModel(nn.Module):
    """Base class of every zoo model: features, head, and a replaceable classifier.

    The head is ``global_pool -> pre_logits -> head_drop -> classifier``:

    - ``global_pool``: :class:`GlobalAvgPool` for CNNs, :class:`TokenPool` for
      the ViT (VGG-16 keeps torchvision's 7x7 pooling + flatten);
    - ``pre_logits``: identity, or the layers before the last linear one
      (VGG's two 4096-wide FC layers, ConvNeXt's LayerNorm);
    - ``classifier``: a single ``nn.Linear(num_features, num_classes)``.

    Attributes:
        num_features: width of the vector that enters the classifier (the
            embedding returned by ``forward_head(..., pre_logits=True)``).
        num_classes: number of outputs (0 after ``reset_classifier(0)``).
    """

    num_features: int
    num_classes: int

    def _init_head(
        self,
        num_features: int,
        num_classes: int,
        *,
        global_pool: nn.Module | None = None,
        pre_logits: nn.Module | None = None,
        drop_rate: float = 0.0,
    ) -> None:
        self.num_features = num_features
        self.num_classes = num_classes
        self.global_pool = GlobalAvgPool() if global_pool is None else global_pool
        self.pre_logits = nn.Identity() if pre_logits is None else pre_logits
        self.head_drop = nn.Dropout(drop_rate)
        self.classifier: nn.Module = (
            nn.Linear(num_features, num_classes) if num_classes > 0 else nn.Identity()
        )

    def forward_features(self, x: Tensor) -> Tensor:
        """Images ``(N, C_in, H, W)`` -> feature map ``(N, C, H', W')`` (or tokens ``(N, L, D)``)."""
        raise NotImplementedError

    def forward_head(self, features: Tensor, *, pre_logits: bool = False) -> Tensor:
        """Features -> logits ``(N, num_classes)``, or the embedding ``(N, num_features)``.

        Args:
            features: output of :meth:`forward_features`.
            pre_logits: return the pooled features that enter the classifier.
        """
        x = self.pre_logits(self.global_pool(features))
        if pre_logits:
            return x
        return self.classifier(self.head_drop(x))

    def forward(self, x: Tensor) -> Tensor:
        """Images ``(N, C_in, H, W)`` -> logits ``(N, num_classes)``."""
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The last linear layer (``nn.Identity`` when there is none)."""
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a freshly initialised one with ``num_classes`` outputs.

        ``num_classes=0`` removes it: the model then returns embeddings.
        The new layer lives on the device and dtype of the old parameters.
        """
        ref = next(self.parameters(), None)
        self.num_classes = num_classes
        if num_classes > 0:
            layer = nn.Linear(self.num_features, num_classes)
            if ref is not None:
                layer = layer.to(device=ref.device, dtype=ref.dtype)
            self.classifier = layer
        else:
            self.classifier = nn.Identity()


def _init_cnn_weights(model: nn.Module) -> None:
    """He (fan-out) init for convolutions, unit/zero affine norms, zero linear biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


def _init_transformer_weights(model: nn.Module) -> None:
    """Truncated-normal (std 0.02) linear and conv weights, zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _stem(
    in_chans: int,
    out_chs: int,
    *,
    kind: str,
    norm_layer: LayerFactory | None = nn.BatchNorm2d,
    act_layer: LayerFactory | None = nn.ReLU,
) -> nn.Sequential:
    """``"imagenet"``: 7x7/2 conv + 3x3/2 max-pool (4x smaller); ``"cifar"``: one 3x3 conv."""
    if kind == "imagenet":
        return nn.Sequential(
            ConvNormAct(in_chans, out_chs, 7, stride=2, norm_layer=norm_layer, act_layer=act_layer),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
    if kind == "cifar":
        return nn.Sequential(ConvNormAct(in_chans, out_chs, 3, norm_layer=norm_layer, act_layer=act_layer))
    raise ValueError(f"stem must be 'imagenet' or 'cifar', got {kind!r}")


# --------------------------------------------------------------------------
# Architectures
# --------------------------------------------------------------------------


class VGG(CourseModel):
    """VGG: stages of 3x3 convolutions and max-pools (Simonyan & Zisserman, 2014).

    With ``mlp_dim`` the head is torchvision's: 7x7 adaptive pool, flatten,
    two ``mlp_dim``-wide FC layers with ReLU and dropout, then the classifier.
    Without it: global average pooling straight into the classifier.
    """

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
        _init_cnn_weights(self)

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
        _init_cnn_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C, H', W')``."""
        return self.stages(self.stem(x))


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
        self.stem = _stem(in_chans, stem_chs, kind=stem, norm_layer=norm_layer, act_layer=act_layer)
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
        _init_cnn_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C, H/32, W/32)`` (ImageNet stem, 4 stages)."""
        return self.stages(self.stem(x))


class WideResNet(CourseModel):
    """WRN-``d``-``k`` (Zagoruyko & Komodakis, 2016): three pre-activation stages, ``k`` times wider.

    ``depth = 6 n + 4`` with ``n`` :class:`WideBasicBlock` per stage of widths
    ``16k, 32k, 64k``, on a 3x3 stem of 16 channels; a final BN-ReLU follows
    the last (pre-activation) block.
    """

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
        _init_cnn_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, 64k, H/4, W/4)``."""
        return self.final_act(self.final_norm(self.stages(self.stem(x))))


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
        self.stem = _stem(in_chans, num_init_features, kind=stem, norm_layer=norm_layer, act_layer=act_layer)
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
        _init_cnn_weights(self)

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
        _init_cnn_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C, H/2^B, W/2^B)`` for ``B`` blocks."""
        column = self.eval_column
        if self.training and column is None and random.random() < self.global_drop_ratio:
            column = random.randrange(self.num_columns)
        for block in self.blocks:
            x = self.pool(block(x, column=column))
        return x


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


class MobileNetV1(CourseModel):
    """MobileNetV1 (Howard et al., 2017): a 3x3 conv, then depthwise-separable units.

    Args:
        units: ``(out_channels, stride)`` per separable unit
            (default: the paper's :data:`MOBILENET_V1_UNITS`).
        width_mult: the paper's width multiplier ``alpha`` on every layer.
        stem_chs: channels of the first full convolution (before ``alpha``).
        stem_stride: 2 for ImageNet, 1 for 32 px images.
    """

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
        _init_cnn_weights(self)

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
        _init_cnn_weights(self)

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
        _init_cnn_weights(self)

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
        _init_cnn_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, head_chs, H/32, W/32)`` with B0's stages."""
        return self.head_conv(self.stages(self.stem(x)))


class ConvNeXt(CourseModel):
    """ConvNeXt (Liu et al., 2022): a patchify stem and four stages of :class:`ConvNeXtBlock`.

    Stem: ``patch_size`` x ``patch_size`` conv with the same stride, then
    LayerNorm. Between stages: LayerNorm + 2x2/2 conv. Head: global pool,
    LayerNorm (part of ``pre_logits``), classifier. Stochastic depth grows
    linearly from 0 to ``drop_path_rate`` over the blocks.
    """

    def __init__(
        self,
        depths: Sequence[int] = (3, 3, 9, 3),
        dims: Sequence[int] = (96, 192, 384, 768),
        *,
        patch_size: int = 4,
        num_classes: int = 1000,
        in_chans: int = 3,
        layer_scale_init: float | None = 1e-6,
        drop_path_rate: float = 0.1,
        drop_rate: float = 0.0,
        kernel_size: int = 7,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, dims[0], patch_size, stride=patch_size), LayerNorm2d(dims[0])
        )
        total, idx = sum(depths), 0
        stages: list[nn.Module] = []
        for i, (depth, dim) in enumerate(zip(depths, dims, strict=True)):
            layers: list[nn.Module] = []
            if i > 0:
                layers.append(nn.Sequential(LayerNorm2d(dims[i - 1]), nn.Conv2d(dims[i - 1], dim, 2, stride=2)))
            for _ in range(depth):
                layers.append(
                    ConvNeXtBlock(
                        dim,
                        kernel_size=kernel_size,
                        layer_scale_init=layer_scale_init,
                        drop_path=drop_path_rate * idx / max(1, total - 1),
                    )
                )
                idx += 1
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self._init_head(
            dims[-1], num_classes, pre_logits=nn.LayerNorm(dims[-1], eps=1e-6), drop_rate=drop_rate
        )
        _init_transformer_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, dims[-1], H/32, W/32)`` with 4 stages."""
        return self.stages(self.stem(x))


class VisionTransformer(CourseModel):
    """Vision Transformer (Dosovitskiy et al., 2020), as torchvision's ``vit_*``.

    Patch embedding, a learnable class token, learnable position embeddings,
    ``depth`` pre-norm :class:`EncoderBlock` layers, a final LayerNorm. The
    head reads the class token. Inputs must be ``img_size`` square.
    """

    def __init__(
        self,
        *,
        img_size: int = 224,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path_rate: float = 0.0,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(drop)
        self.blocks = nn.Sequential(
            *(
                EncoderBlock(
                    embed_dim,
                    num_heads=num_heads,
                    mlp_ratio=mlp_ratio,
                    drop=drop,
                    attn_drop=attn_drop,
                    drop_path=drop_path_rate * i / max(1, depth - 1),
                )
                for i in range(depth)
            )
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self._init_head(embed_dim, num_classes, global_pool=TokenPool(), drop_rate=drop_rate)
        _init_transformer_weights(self)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> tokens ``(N, 1 + L, D)`` (class token first)."""
        x = self.patch_embed(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = self.pos_drop(torch.cat([cls, x], dim=1) + self.pos_embed)
        return self.norm(self.blocks(x))


# --------------------------------------------------------------------------
# Registry and metadata
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FamilyInfo:
    """Where an architecture family comes from.

    Attributes:
        family: short name (``"resnet"``).
        paper: authors, title.
        year: year of the first (arXiv) version.
        key_idea: what the family changed, in one sentence.
        evidence: one result reported in the paper.
    """

    family: str
    paper: str
    year: int
    key_idea: str
    evidence: str


FAMILIES: dict[str, FamilyInfo] = {
    f.family: f
    for f in (
        FamilyInfo(
            "vgg",
            "Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition",
            2014,
            "Depth from uniform stacks of small 3x3 convolutions: two 3x3 layers see a 5x5 window "
            "with fewer parameters and an extra non-linearity.",
            "Error fell steadily from 11 to 19 weight layers, and the team's ILSVRC-2014 submission "
            "took second place in classification with 7.3% top-5 test error.",
        ),
        FamilyInfo(
            "inception",
            "Szegedy et al., Going Deeper with Convolutions (GoogLeNet)",
            2014,
            "Parallel 1x1, 3x3, 5x5 and pooling branches, with 1x1 convolutions reducing channels "
            "before the costly filters, to widen and deepen the network at a fixed compute budget.",
            "GoogLeNet won ILSVRC 2014 classification with 6.67% top-5 error while using 12 times "
            "fewer parameters than the 2012 winner (AlexNet).",
        ),
        FamilyInfo(
            "resnet",
            "He et al., Deep Residual Learning for Image Recognition",
            2015,
            "Blocks learn a residual F(x) added to an identity shortcut, so very deep networks "
            "stay easy to optimise.",
            "An ensemble of residual nets (up to 152 layers) reached 3.57% top-5 error on the "
            "ImageNet test set and won ILSVRC 2015 classification.",
        ),
        FamilyInfo(
            "wide_resnet",
            "Zagoruyko & Komodakis, Wide Residual Networks",
            2016,
            "Make residual networks wider and shallower (width factor k), with dropout between "
            "the convolutions of a block.",
            "A 16-layer wide residual network outperformed all previous deep residual networks, "
            "including thousand-layer-deep ones, in accuracy and efficiency on CIFAR.",
        ),
        FamilyInfo(
            "fractalnet",
            "Larsson et al., FractalNet: Ultra-Deep Neural Networks without Residuals",
            2016,
            "A self-similar expansion rule joins columns of different depths by averaging; "
            "drop-path regularises, and no residual connection is needed.",
            "Fractal networks without residual connections matched standard residual networks "
            "on CIFAR and ImageNet, and drop-path made single columns usable on their own.",
        ),
        FamilyInfo(
            "densenet",
            "Huang et al., Densely Connected Convolutional Networks",
            2016,
            "Every layer receives the concatenated feature maps of all earlier layers in its "
            "block and adds only k (the growth rate) new channels.",
            "DenseNet-BC (L=100, k=12) with 0.8M parameters reached 4.51% error on augmented "
            "CIFAR-10, better than a 1001-layer pre-activation ResNet with 10.2M parameters (4.62%).",
        ),
        FamilyInfo(
            "resnext",
            "Xie et al., Aggregated Residual Transformations for Deep Neural Networks",
            2016,
            "Cardinality, the number of parallel paths in a block (a grouped convolution), "
            "as a new dimension next to depth and width.",
            "At the same complexity as ResNet-50, ResNeXt-50 (32x4d) lowered ImageNet top-1 "
            "validation error from 23.9% to 22.2%.",
        ),
        FamilyInfo(
            "mobilenet_v1",
            "Howard et al., MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
            2017,
            "Factor each convolution into a depthwise 3x3 and a pointwise 1x1 convolution, "
            "cutting cost by a factor 1/N + 1/Dk^2.",
            "MobileNet-224 reached 70.6% ImageNet top-1 with 569M multiply-adds and 4.2M "
            "parameters, against 71.5% for VGG-16 with 15,300M multiply-adds and 138M parameters.",
        ),
        FamilyInfo(
            "senet",
            "Hu et al., Squeeze-and-Excitation Networks",
            2017,
            "Channel attention: pool each channel to one number, pass the vector through a "
            "small bottleneck MLP and re-weight the channels with a sigmoid gate.",
            "SENets won ILSVRC 2017 classification with 2.251% top-5 error, about 25% relative "
            "improvement over the 2016 winner.",
        ),
        FamilyInfo(
            "mobilenet_v2",
            "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks",
            2018,
            "Inverted residuals: expand a thin tensor with a 1x1 conv, filter it depthwise, "
            "project it back linearly (no ReLU), and skip-connect the thin ends.",
            "MobileNetV2 reached 72.0% ImageNet top-1 with 300M multiply-adds and 3.4M "
            "parameters, against 70.6% with 575M for MobileNetV1.",
        ),
        FamilyInfo(
            "shufflenet_v2",
            "Ma et al., ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
            2018,
            "Design for measured speed, not FLOPs: equal channel widths, few groups, little "
            "fragmentation and few element-wise ops; split channels, then shuffle them.",
            "The paper showed that networks with similar FLOPs run at clearly different speeds "
            "on GPU and ARM, so FLOPs alone are an indirect and unreliable measure of speed.",
        ),
        FamilyInfo(
            "efficientnet",
            "Tan & Le, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
            2019,
            "Scale depth, width and resolution together with one coefficient phi "
            "(alpha^phi, beta^phi, gamma^phi with alpha*beta^2*gamma^2 ~ 2) from a searched "
            "MBConv baseline, B0.",
            "EfficientNet-B7 reached 84.3% ImageNet top-1 while being 8.4x smaller and 6.1x "
            "faster at inference than the best existing ConvNet.",
        ),
        FamilyInfo(
            "vit",
            "Dosovitskiy et al., An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
            2020,
            "Cut the image into 16x16 patches, embed them as tokens and use a standard "
            "Transformer encoder, with no convolutions after the patch embedding.",
            "Pre-trained on JFT-300M, ViT-H/14 reached 88.55% ImageNet top-1; trained on "
            "ImageNet alone without strong regularisation, ViTs fell a few points short of "
            "comparable ResNets.",
        ),
        FamilyInfo(
            "convnext",
            "Liu et al., A ConvNet for the 2020s",
            2022,
            "Modernise a ResNet step by step with Transformer-era choices: patchify stem, "
            "7x7 depthwise convs, inverted MLP blocks, LayerNorm, GELU, fewer activations.",
            "ConvNeXt-T reached 82.1% ImageNet-1K top-1 against 81.3% for Swin-T at similar "
            "FLOPs (4.5G).",
        ),
    )
}


@dataclass(frozen=True)
class ModelInfo:
    """Metadata of one registered model (see :func:`model_info`).

    Attributes:
        name: registry name.
        family: family key of :data:`FAMILIES`.
        size: ``"full"`` (ImageNet size) or ``"small"`` (course budget).
        input_size: default input ``(C, H, W)``.
        num_classes: default number of classes.
        torchvision_name: the torchvision builder with the same architecture, if any.
        description: what this variant is.
        paper, year, key_idea, evidence: copied from the family.
    """

    name: str
    family: str
    size: str
    input_size: tuple[int, int, int]
    num_classes: int
    torchvision_name: str | None
    description: str
    paper: str = ""
    year: int = 0
    key_idea: str = ""
    evidence: str = ""
    builder: Callable[..., CourseModel] | None = field(default=None, repr=False, compare=False)


_REGISTRY: dict[str, ModelInfo] = {}

F = TypeVar("F", bound=Callable[..., CourseModel])


def register_model(
    *,
    family: str,
    size: str = "small",
    input_size: tuple[int, int, int] = (3, 32, 32),
    num_classes: int = 10,
    torchvision_name: str | None = None,
    description: str = "",
    name: str | None = None,
) -> Callable[[F], F]:
    """Decorator: register a builder ``fn(*, num_classes, in_chans, **kwargs)`` under its name.

    ``family`` should be a key of :data:`FAMILIES` (paper, year, key idea and
    evidence are copied from it); ``size="full"`` models default to 1000
    classes at 224 px, ``"small"`` ones to 10 classes at 32 px.

    Example::

        @register_model(family="resnet", description="my variant")
        def my_resnet(*, num_classes=10, in_chans=3, **kwargs):
            return ResNet(BasicBlock, (1, 1, 1), planes=(16, 32, 64), stem="cifar",
                          stem_chs=16, num_classes=num_classes, in_chans=in_chans, **kwargs)

        model = create_model("my_resnet")
    """
    if size not in {"full", "small"}:
        raise ValueError("size must be 'full' or 'small'")

    def decorator(fn: F) -> F:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"A model named {key!r} is already registered ({_REGISTRY[key].description!r}); "
                             "pick another name.")
        fam = FAMILIES.get(family)
        _REGISTRY[key] = ModelInfo(
            name=key,
            family=family,
            size=size,
            input_size=input_size,
            num_classes=num_classes,
            torchvision_name=torchvision_name,
            description=description or (fn.__doc__ or "").strip().split("\n")[0],
            paper=fam.paper if fam else "",
            year=fam.year if fam else 0,
            key_idea=fam.key_idea if fam else "",
            evidence=fam.evidence if fam else "",
            builder=fn,
        )
        return fn

    return decorator


def _lookup(name: str) -> ModelInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"No model named {name!r}.{hint} See list_models().") from None


def create_model(name: str, *, num_classes: int | None = None, in_chans: int = 3, **kwargs: Any) -> CourseModel:
    """Build a registered model, randomly initialised.

    Args:
        name: a name from :func:`list_models`.
        num_classes: classifier outputs (default: the model's, 1000 for
            ``size="full"``, 10 for ``size="small"``); 0 for no classifier.
        in_chans: input channels (1 for grey images).
        **kwargs: passed on to the model class (``drop_rate``,
            ``drop_path_rate``, ``width_mult``, ``img_size`` for ViTs...).

    Tip: build full-size models with ``with torch.device("meta"):`` to count
    parameters and multiply-adds without allocating memory.
    """
    info = _lookup(name)
    assert info.builder is not None
    n = info.num_classes if num_classes is None else num_classes
    model = info.builder(num_classes=n, in_chans=in_chans, **kwargs)
    model.arch_name = info.name  # checkpoints record the registered name, not the class name
    return model


def list_models(*, size: str | None = None, family: str | None = None) -> list[str]:
    """Registered model names, in order of their families' papers.

    Args:
        size: ``"full"`` or ``"small"`` to filter.
        family: a family key (see :func:`list_families`) to filter.
    """
    return [
        n
        for n, info in _REGISTRY.items()
        if (size is None or info.size == size) and (family is None or info.family == family)
    ]


def list_families() -> list[str]:
    """Family keys in historical order (see :data:`FAMILIES`)."""
    return list(FAMILIES)


def model_info(name: str) -> ModelInfo:
    """Metadata of a registered model: family, paper, year, key idea, evidence, sizes."""
    return _lookup(name)


# --------------------------------------------------------------------------
# Builders. Full-size first (torchvision parity), then the small course set.
# Registration order is historical within each size.
# --------------------------------------------------------------------------

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
