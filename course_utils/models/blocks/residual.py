"""Shortcut and connectivity blocks: ResNet, ResNeXt, Wide ResNet, DenseNet, FractalNet.

SE-ResNet is a ResNet block with ``attn_layer=SqueezeExcite``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from course_utils.models.blocks.common import (
    ConvNormAct,
    DropPath,
    LayerFactory,
    _shortcut,
)

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNeXtBottleneck",
    "WideBasicBlock",
    "DenseLayer",
    "DenseBlock",
    "Transition",
    "fractal_join",
    "FractalBlock",
]

# --------------------------------------------------------------------------
# Residual families: ResNet, ResNeXt, Wide ResNet, (SE-ResNet via attn_layer)
# --------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """ResNet basic block: ``relu(x + bn(conv3x3(relu(bn(conv3x3(x))))))``.

    The block learns a residual ``F(x)`` added to its input (He et al., 2015);
    when the stride or width changes the shortcut is a 1x1 projection.
    ``attn_layer`` (e.g. :class:`SqueezeExcite`) re-weights the residual
    channels before the addition, which makes an SE-ResNet block.

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, planes, H/stride, W/stride)``.
    """

    expansion: int = 1

    def __init__(
        self,
        in_chs: int,
        planes: int,
        *,
        stride: int = 1,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
        attn_layer: LayerFactory | None = None,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        out_chs = planes * self.expansion
        self.conv1 = ConvNormAct(in_chs, planes, 3, stride=stride, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvNormAct(planes, out_chs, 3, norm_layer=norm_layer, act_layer=None)
        self.attn = nn.Identity() if attn_layer is None else attn_layer(out_chs)
        self.shortcut = _shortcut(in_chs, out_chs, stride=stride, norm_layer=norm_layer)
        self.drop_path = DropPath(drop_path)
        self.act = act_layer()
        self.in_chs, self.out_chs = in_chs, out_chs

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, out_chs, H/stride, W/stride)``."""
        residual = self.attn(self.conv2(self.conv1(x)))
        return self.act(self.shortcut(x) + self.drop_path(residual))


class Bottleneck(nn.Module):
    """ResNet bottleneck: 1x1 reduce -> 3x3 -> 1x1 expand (x4), plus shortcut.

    The 3x3 works on ``width = planes * base_width / 64 * groups`` channels;
    with the defaults that is ``planes`` and the block outputs
    ``4 * planes``. The stride sits on the 3x3 convolution ("ResNet v1.5", as
    in torchvision). ``groups > 1`` gives ResNeXt (see
    :class:`ResNeXtBottleneck`); ``base_width=128`` gives torchvision's
    ``wide_resnet50_2`` bottleneck (twice as wide inside, same output).

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, 4 * planes, H/stride, W/stride)``.
    """

    expansion: int = 4

    def __init__(
        self,
        in_chs: int,
        planes: int,
        *,
        stride: int = 1,
        groups: int = 1,
        base_width: int = 64,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
        attn_layer: LayerFactory | None = None,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        out_chs = planes * self.expansion
        self.conv1 = ConvNormAct(in_chs, width, 1, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvNormAct(
            width, width, 3, stride=stride, groups=groups, norm_layer=norm_layer, act_layer=act_layer
        )
        self.conv3 = ConvNormAct(width, out_chs, 1, norm_layer=norm_layer, act_layer=None)
        self.attn = nn.Identity() if attn_layer is None else attn_layer(out_chs)
        self.shortcut = _shortcut(in_chs, out_chs, stride=stride, norm_layer=norm_layer)
        self.drop_path = DropPath(drop_path)
        self.act = act_layer()
        self.in_chs, self.width, self.out_chs = in_chs, width, out_chs

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, out_chs, H/stride, W/stride)``."""
        residual = self.attn(self.conv3(self.conv2(self.conv1(x))))
        return self.act(self.shortcut(x) + self.drop_path(residual))


class ResNeXtBottleneck(Bottleneck):
    """ResNeXt block: a bottleneck whose 3x3 is split into ``cardinality`` groups.

    "Aggregated residual transformations" (Xie et al., 2016): ``cardinality``
    parallel paths of ``base_width`` channels each, implemented as one grouped
    convolution. ``resnext50_32x4d`` is ``cardinality=32, base_width=4``.

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, 4 * planes, H/stride, W/stride)``.
    """

    def __init__(
        self,
        in_chs: int,
        planes: int,
        *,
        cardinality: int = 32,
        base_width: int = 4,
        stride: int = 1,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
        attn_layer: LayerFactory | None = None,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__(
            in_chs,
            planes,
            stride=stride,
            groups=cardinality,
            base_width=base_width,
            norm_layer=norm_layer,
            act_layer=act_layer,
            attn_layer=attn_layer,
            drop_path=drop_path,
        )
        self.cardinality = cardinality


class WideBasicBlock(nn.Module):
    """Wide ResNet block (Zagoruyko & Komodakis, 2016), pre-activation order.

    ``BN-ReLU-conv3x3 -> BN-ReLU -> dropout -> conv3x3`` plus shortcut. Width
    comes from the caller (``planes = 16 * k`` etc.); dropout between the two
    convolutions is the paper's regulariser for wide blocks.

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, planes, H/stride, W/stride)``.
    """

    expansion: int = 1

    def __init__(
        self,
        in_chs: int,
        planes: int,
        *,
        stride: int = 1,
        dropout: float = 0.0,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        self.norm1 = norm_layer(in_chs)
        self.act1 = act_layer()
        self.conv1 = nn.Conv2d(in_chs, planes, 3, stride=stride, padding=1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.norm2 = norm_layer(planes)
        self.act2 = act_layer()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        needs_proj = stride != 1 or in_chs != planes
        self.shortcut = nn.Conv2d(in_chs, planes, 1, stride=stride, bias=False) if needs_proj else nn.Identity()
        self.in_chs, self.out_chs = in_chs, planes

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, out_chs, H/stride, W/stride)``."""
        pre = self.act1(self.norm1(x))
        out = self.conv1(pre)
        out = self.conv2(self.dropout(self.act2(self.norm2(out))))
        # the projection shortcut reads the pre-activated input (as in the paper's code)
        shortcut = self.shortcut(pre) if not isinstance(self.shortcut, nn.Identity) else x
        return out + shortcut


# --------------------------------------------------------------------------
# DenseNet
# --------------------------------------------------------------------------


class DenseLayer(nn.Module):
    """DenseNet-BC layer: ``BN-ReLU-conv1x1 (bn_size*k) -> BN-ReLU-conv3x3 (k)``.

    It returns only its ``growth_rate`` new channels; :class:`DenseBlock`
    concatenates them to everything that came before (Huang et al., 2016).

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, growth_rate, H, W)``.
    """

    def __init__(
        self,
        in_chs: int,
        *,
        growth_rate: int,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        mid = bn_size * growth_rate
        self.norm1 = norm_layer(in_chs)
        self.act1 = act_layer()
        self.conv1 = nn.Conv2d(in_chs, mid, 1, bias=False)
        self.norm2 = norm_layer(mid)
        self.act2 = act_layer()
        self.conv2 = nn.Conv2d(mid, growth_rate, 3, padding=1, bias=False)
        self.dropout = nn.Dropout(drop_rate)
        self.in_chs, self.out_chs = in_chs, growth_rate

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, growth_rate, H, W)``."""
        out = self.conv1(self.act1(self.norm1(x)))
        out = self.conv2(self.act2(self.norm2(out)))
        return self.dropout(out)


class DenseBlock(nn.Module):
    """DenseNet block: layer ``i`` sees the concatenation of the input and all earlier outputs.

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, in_chs + num_layers * growth_rate, H, W)``.
    """

    def __init__(
        self,
        in_chs: int,
        *,
        num_layers: int,
        growth_rate: int,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(
                in_chs + i * growth_rate,
                growth_rate=growth_rate,
                bn_size=bn_size,
                drop_rate=drop_rate,
                norm_layer=norm_layer,
                act_layer=act_layer,
            )
            for i in range(num_layers)
        )
        self.in_chs = in_chs
        self.out_chs = in_chs + num_layers * growth_rate

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, out_chs, H, W)``."""
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


class Transition(nn.Sequential):
    """DenseNet transition: ``BN-ReLU-conv1x1`` (compress channels), then 2x2 average pool.

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, out_chs, H/2, W/2)``.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        self.norm = norm_layer(in_chs)
        self.act = act_layer()
        self.conv = nn.Conv2d(in_chs, out_chs, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)
        self.in_chs, self.out_chs = in_chs, out_chs


# --------------------------------------------------------------------------
# FractalNet
# --------------------------------------------------------------------------


def fractal_join(inputs: Sequence[Tensor], *, drop_prob: float = 0.0, training: bool = False) -> Tensor:
    """FractalNet join: the element-wise mean of its inputs, with local drop-path.

    In training each input is dropped with probability ``drop_prob``, but at
    least one always survives; the mean is taken over the survivors
    (Larsson et al., 2016). The same inputs are dropped for the whole batch.

    Args:
        inputs: tensors of one shape ``(N, C, H, W)``.
        drop_prob: local drop-path probability per input.
        training: no dropping when ``False``.

    Returns:
        ``(N, C, H, W)``.
    """
    if len(inputs) == 1:
        return inputs[0]
    if training and drop_prob > 0.0:
        kept = [t for t in inputs if random.random() >= drop_prob]
        if not kept:
            kept = [random.choice(list(inputs))]
        inputs = kept
    return torch.stack(list(inputs), dim=0).mean(dim=0)


class FractalBlock(nn.Module):
    """A FractalNet block with ``num_columns`` columns, built by the fractal rule.

    ``f_1(z) = conv(z)`` and ``f_{C+1}(z) = join(f_C(f_C(z)), conv(z))``:
    column ``c`` (0 = shallowest) has ``2**c`` convolutions, the deepest
    ``2**(C-1)``, and there are no residual connections. Joins average
    columns; in training :func:`fractal_join` drops join inputs (local
    drop-path). Passing ``column=c`` to :meth:`forward` runs that single
    column only (global drop-path, also how one column is evaluated alone).

    Shapes: ``(N, in_chs, H, W)`` -> ``(N, out_chs, H, W)``.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        num_columns: int = 3,
        drop_path: float = 0.15,
        dropout: float = 0.0,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
    ) -> None:
        super().__init__()
        if num_columns < 1:
            raise ValueError("num_columns must be >= 1")
        self.num_columns = num_columns
        self.drop_prob = drop_path
        self.shallow = nn.Sequential(
            ConvNormAct(in_chs, out_chs, 3, norm_layer=norm_layer, act_layer=act_layer), nn.Dropout(dropout)
        )
        if num_columns > 1:
            kwargs = dict(
                num_columns=num_columns - 1,
                drop_path=drop_path,
                dropout=dropout,
                norm_layer=norm_layer,
                act_layer=act_layer,
            )
            self.deep_first: FractalBlock | None = FractalBlock(in_chs, out_chs, **kwargs)
            self.deep_second: FractalBlock | None = FractalBlock(out_chs, out_chs, **kwargs)
        else:
            self.deep_first = self.deep_second = None
        self.in_chs, self.out_chs = in_chs, out_chs

    def columns(self, x: Tensor, *, column: int | None = None) -> list[Tensor]:
        """Outputs of the columns that meet at this block's last join.

        Returns ``[shallowest, ..., deepest]`` (``num_columns`` tensors), or
        a one-element list with column ``column`` alone.
        """
        if column is not None and not 0 <= column < self.num_columns:
            raise ValueError(f"column must be in [0, {self.num_columns})")
        if self.deep_first is None or self.deep_second is None or column == 0:
            return [self.shallow(x)]
        sub = None if column is None else column - 1
        middle = fractal_join(
            self.deep_first.columns(x, column=sub), drop_prob=self.drop_prob, training=self.training
        )
        deep = self.deep_second.columns(middle, column=sub)
        return deep if column is not None else [self.shallow(x), *deep]

    def forward(self, x: Tensor, *, column: int | None = None) -> Tensor:
        """``(N, in_chs, H, W)`` -> ``(N, out_chs, H, W)``; ``column`` picks one column."""
        return fractal_join(self.columns(x, column=column), drop_prob=self.drop_prob, training=self.training)


