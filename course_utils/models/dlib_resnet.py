"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1``) in PyTorch.

The network of dlib's ``examples/dnn_face_recognition_ex.cpp`` (also
``tools/python/src/face_recognition.cpp``), a 29-layer ResNet with half the
filters of ResNet-34, trained by Davis King on about 3 million faces with a
metric loss; 99.38 % on LFW. dlib's definition, read inside out::

    input_rgb_image_sized<150>                            (x - mean) / 256
    con<32,7,7,2,2> affine relu max_pool<3,3,2,2>         stem: 150 -> 72 -> 35
    alevel4: 3 x ares<32>                                 35 x 35
    alevel3: ares_down<64>, 3 x ares<64>                  17 x 17
    alevel2: ares_down<128>, 2 x ares<128>                8 x 8
    alevel1: ares_down<256>, 2 x ares<256>                4 x 4 (!)
    alevel0: ares_down<256>                               2 x 2 (!)
    avg_pool_everything fc_no_bias<128>                   (N, 128)

with ``block = affine(con3x3(relu(affine(con3x3/stride(x)))))``,
``ares = relu(x + block(x))`` and ``ares_down = relu(avg_pool2x2/2(x) + block(x))``.

dlib's conventions, kept exactly here:

* a convolution or pool with stride 1 pads by ``kernel // 2``, one with
  stride > 1 does not pad at all (so 150 -> 72 in the stem, 35 -> 17);
* ``add_prev`` of two tensors of different sizes adds them where they
  overlap (top-left aligned) and keeps the larger shape, as if the smaller
  were zero-padded: it pads channels (32 -> 64) and, at 8 x 8 -> 3 x 3
  (block) vs 4 x 4 (pooled skip), the spatial size too;
* the trained file stores ``affine`` layers (batch norm folded into
  ``y = gamma * x + beta`` per channel), represented by :class:`Affine2d`;
  the stem and the blocks fold each into the convolution before it
  (:func:`conv_affine`), which is faster and trains the same parameters.

Speed: the convolutions run in ``channels_last`` (oneDNN's fast layout on
CPUs; :func:`~course_utils.pretrained.dlib_format.load_dlib_resnet` stores the
weights that way too).

The pretrained weights come from
:func:`course_utils.pretrained.dlib_format.load_dlib_resnet`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_utils.models.base import CourseModel, GlobalAvgPool
from course_utils.models.registry import register_model

__all__ = [
    "DLIB_PIXEL_MEAN",
    "DLIB_LEVELS",
    "Affine2d",
    "DlibResidualBlock",
    "DlibStem",
    "DlibFaceResNet",
    "add_zero_padded",
    "conv_affine",
    "dlib_resnet_face",
]

#: dlib's ``input_rgb_image`` average pixel (R, G, B); inputs become ``(x - mean) / 256``.
DLIB_PIXEL_MEAN: tuple[float, float, float] = (122.782, 117.001, 104.298)

#: ``(channels, blocks, first block downsamples)`` of dlib's levels, input side first
#: (``alevel4`` ... ``alevel0``).
DLIB_LEVELS: tuple[tuple[int, int, bool], ...] = (
    (32, 3, False),
    (64, 4, True),
    (128, 3, True),
    (256, 3, True),
    (256, 1, True),
)


def add_zero_padded(a: Tensor, b: Tensor) -> Tensor:
    """dlib's ``add_prev``: ``(N, C1, H1, W1) + (N, C2, H2, W2)`` -> ``(N, max C, max H, max W)``.

    Elements missing from one operand count as zero (both top-left aligned).
    """
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(x, y) for x, y in zip(a.shape[1:], b.shape[1:]))

    def pad(t: Tensor) -> Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class Affine2d(nn.Module):
    """Per-channel ``y = weight * x + bias`` on ``(N, C, H, W)``: dlib's ``affine`` (a frozen batch norm).

    Both are trainable parameters (initialised to 1 and 0). Inside
    :class:`DlibStem` and :class:`DlibResidualBlock` it is folded into the
    preceding convolution (:func:`conv_affine`) rather than called.
    """

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> ``(N, C, H, W)``."""
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return str(self.num_channels)


def conv_affine(x: Tensor, conv: nn.Conv2d, affine: Affine2d) -> Tensor:
    """``affine(conv(x))`` as one convolution with folded weights: ``(N, C, H, W)`` -> ``(N, K, H', W')``.

    ``w' = w * gamma``, ``b' = b * gamma + beta`` per output channel: the same
    function (and the same gradients) with one pass over the output instead of
    two; the result differs from the two-step form by float32 rounding only.
    """
    gamma = affine.weight
    weight = conv.weight * gamma.view(-1, 1, 1, 1)
    bias = affine.bias if conv.bias is None else conv.bias * gamma + affine.bias
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def _conv3x3(in_chs: int, out_chs: int, stride: int) -> nn.Conv2d:
    """dlib's ``con<out,3,3,s,s>``: padding 1 at stride 1, none at stride 2."""
    return nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1 if stride == 1 else 0, bias=True)


class DlibResidualBlock(nn.Module):
    """dlib's ``ares`` / ``ares_down``: ``relu(skip(x) (+) affine(conv(relu(affine(conv(x))))))``.

    ``(+)`` is :func:`add_zero_padded`. With ``downsample`` the first
    convolution has stride 2 (no padding) and the skip path is a 2x2/2 average
    pool; otherwise the skip path is the identity.

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, max(in_chs, out_chs), H', W')``.
    """

    def __init__(self, in_chs: int, out_chs: int, *, downsample: bool = False) -> None:
        super().__init__()
        if not downsample and in_chs != out_chs:
            raise ValueError("a block without downsampling keeps its channel count")
        self.downsample = downsample
        self.conv1 = _conv3x3(in_chs, out_chs, 2 if downsample else 1)
        self.affine1 = Affine2d(out_chs)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(out_chs, out_chs, 1)
        self.affine2 = Affine2d(out_chs)
        self.skip: nn.Module = nn.AvgPool2d(2, stride=2, padding=0) if downsample else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C_out, H', W')``."""
        y = conv_affine(self.act1(conv_affine(x, self.conv1, self.affine1)), self.conv2, self.affine2)
        return self.act(add_zero_padded(self.skip(x), y))


class DlibInputNorm(nn.Module):
    """dlib's input layer: RGB 0-255 ``(N, 3, H, W)`` -> ``(x - pixel_mean) / 256`` (in ``channels_last``).

    ``pixel_mean`` ``(3,)`` is a buffer (:data:`DLIB_PIXEL_MEAN`, loaded from the weight file).
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("pixel_mean", torch.tensor(DLIB_PIXEL_MEAN, dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        return ((x - self.pixel_mean.view(1, 3, 1, 1)) / 256.0).contiguous(memory_format=torch.channels_last)


class DlibStem(nn.Module):
    """Input normalisation, ``con<32,7,7,2,2>`` (no padding), affine, relu, ``max_pool<3,3,2,2>`` (no padding).

    RGB 0-255 ``(N, 3, 150, 150)`` -> ``(N, 32, 35, 35)``. The normalisation lives
    in the stem so that the stem and the residual blocks, chained, are the whole
    backbone (what :func:`course_utils.transfer.split_model` relies on).
    """

    def __init__(self, in_chans: int = 3, out_chs: int = 32) -> None:
        super().__init__()
        self.norm = DlibInputNorm()
        self.conv = nn.Conv2d(in_chans, out_chs, 7, stride=2, padding=0, bias=True)
        self.affine = Affine2d(out_chs)
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(3, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        """RGB 0-255 ``(N, 3, H, W)`` -> ``(N, 32, H', W')``."""
        return self.pool(self.act(conv_affine(self.norm(x), self.conv, self.affine)))


class DlibFaceResNet(CourseModel):
    """dlib's face recognition ResNet: RGB ``(N, 3, 150, 150)`` in ``[0, 255]`` -> descriptors ``(N, 128)``.

    The module normalises its input itself, as dlib's input layer does:
    ``(x - pixel_mean) / 256`` in ``stem.norm``, with the buffer ``pixel_mean`` ``(3,)`` =
    :data:`DLIB_PIXEL_MEAN` (loaded from the weight file). Feed it
    ``dlib.get_face_chip(img, shape, size=150, padding=0.25)`` chips as
    float tensors; do not scale them to ``[0, 1]``.

    Layout (for fine-tuning): ``stem`` (:class:`DlibStem`), ``stages`` (a
    ``ModuleList`` of 5 ``Sequential`` of :class:`DlibResidualBlock`, dlib's
    ``alevel4`` ... ``alevel0``), ``global_pool`` and ``pre_logits`` (the
    bias-free ``fc`` to 128), then ``classifier`` (identity unless
    ``num_classes > 0``). ``num_features`` is 128.

    ``forward_features``: ``(N, 3, 150, 150)`` -> ``(N, 256, 2, 2)``;
    ``forward_head(f, pre_logits=True)`` -> ``(N, 128)``, the dlib descriptor.
    """

    image_size = 150

    def __init__(self, *, num_classes: int = 0, in_chans: int = 3, drop_rate: float = 0.0) -> None:
        super().__init__()
        if in_chans != 3:
            raise ValueError("dlib's face network reads RGB images: in_chans must be 3 (repeat grey images).")
        self.stem = DlibStem(in_chans, 32)
        stages, prev = [], 32
        for chs, n, down in DLIB_LEVELS:
            blocks = [DlibResidualBlock(prev, chs, downsample=down)]
            blocks += [DlibResidualBlock(chs, chs) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            prev = chs
        self.stages = nn.ModuleList(stages)
        self._init_head(
            128,
            num_classes,
            global_pool=GlobalAvgPool(),
            pre_logits=nn.Linear(prev, 128, bias=False),
            drop_rate=drop_rate,
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    @property
    def pixel_mean(self) -> Tensor:
        """The input layer's mean pixel ``(3,)`` (a buffer of ``stem.norm``)."""
        return self.stem.norm.pixel_mean

    def forward_features(self, x: Tensor) -> Tensor:
        """RGB 0-255 ``(N, 3, 150, 150)`` -> ``(N, 256, 2, 2)`` (computed in ``channels_last``)."""
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def residual_blocks(self) -> list[DlibResidualBlock]:
        """The 14 residual blocks, input side first (the last one is ``stages[-1][0]``)."""
        return [block for stage in self.stages for block in stage]  # type: ignore[misc]

    def head_modules(self) -> nn.ModuleList:
        """The layers after the last stage: ``global_pool``, ``pre_logits`` (fc 256 -> 128), ``classifier``."""
        return nn.ModuleList([self.global_pool, self.pre_logits, self.classifier])


@register_model(
    family="resnet",
    size="full",
    input_size=(3, 150, 150),
    num_classes=0,
    description="dlib's face recognition ResNet-29 (128-d descriptors, 99.38% on LFW); weights via load_dlib_resnet",
)
def dlib_resnet_face(*, num_classes: int = 0, in_chans: int = 3, **kwargs: Any) -> DlibFaceResNet:
    """dlib's face recognition ResNet-29: 150 px RGB faces -> 128-d descriptors (random weights)."""
    return DlibFaceResNet(num_classes=num_classes, in_chans=in_chans, **kwargs)
