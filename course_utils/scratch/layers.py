"""Layers written out: batch norm, Maxout, an FC layer as a 1x1 convolution, DropBlock."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_utils.scratch.conv import IntPair, _pair

__all__ = [
    "batch_norm_2d",
    "BatchNorm2dScratch",
    "Maxout",
    "linear_to_conv1x1",
    "DropBlock2d",
]

# --------------------------------------------------------------------------
# batch normalisation
# --------------------------------------------------------------------------


def batch_norm_2d(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                  weight: Tensor | None = None, bias: Tensor | None = None, *, training: bool,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation of (N, C, H, W), as ``F.batch_norm`` does it.

    Training: each channel is normalised with the mean and the (biased)
    variance over the batch and the pixels,
    ``y = gamma * (x - mean) / sqrt(var + eps) + beta``, and the running
    statistics move towards them in place:
    ``running = (1 - momentum) * running + momentum * batch`` (the running
    variance uses the unbiased batch variance, ``* m / (m - 1)`` with
    ``m = N H W``). Evaluation: the running statistics replace the batch's.
    """
    if x.dim() != 4:
        raise ValueError(f"expected (N, C, H, W), got {tuple(x.shape)}")
    if training:
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        m = x.numel() // x.shape[1]
        if m < 2:
            raise ValueError("batch norm in training mode needs more than one value per channel")
        if running_mean is not None and running_var is not None:
            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
                running_var.mul_(1 - momentum).add_(momentum * var.detach() * m / (m - 1))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("evaluation mode needs running statistics")
        mean, var = running_mean, running_var
    y = (x - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + eps)
    if weight is not None:
        y = y * weight.view(1, -1, 1, 1)
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y


class BatchNorm2dScratch(nn.Module):
    """``nn.BatchNorm2d`` written out: same parameters, buffers and state-dict keys.

    ``model.train()`` normalises with batch statistics and updates the running
    ones; ``model.eval()`` uses the running statistics (a fixed affine map).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            self.num_batches_tracked += 1
        return batch_norm_2d(x, self.running_mean, self.running_var, self.weight, self.bias,
                             training=self.training, momentum=self.momentum, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.weight is not None}"


# --------------------------------------------------------------------------
# maxout, the 1x1 head, DropBlock
# --------------------------------------------------------------------------


class Maxout(nn.Module):
    """Maxout unit (Goodfellow et al. 2013): the maximum of ``pieces`` linear maps.

    ``y_j = max_k (W_k x + b_k)_j``. With enough pieces it approximates any
    convex function; ``max(x, 0)`` (ReLU) and ``max(x, a x)`` (leaky ReLU)
    are special cases with two pieces. Costs ``pieces`` times the
    parameters of a linear layer.

    Args:
        in_features, out_features: as for ``nn.Linear``.
        pieces: linear pieces per output.

    Shapes: (..., in_features) -> (..., out_features).
    """

    def __init__(self, in_features: int, out_features: int, pieces: int = 2) -> None:
        super().__init__()
        if pieces < 1:
            raise ValueError("pieces must be >= 1")
        self.in_features, self.out_features, self.pieces = in_features, out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: Tensor) -> Tensor:
        z = self.linear(x)  # (..., out * pieces), pieces of one output are adjacent
        return z.view(*z.shape[:-1], self.out_features, self.pieces).amax(dim=-1)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, pieces={self.pieces}"


def linear_to_conv1x1(linear: nn.Linear, in_channels: int, spatial: IntPair = 1) -> nn.Conv2d:
    """The convolution that computes what ``linear`` computes on a flattened feature map.

    A classifier head ``Linear(C * h * w, K)`` applied to ``flatten(f)``
    for a feature map ``f`` of shape (C, h, w) equals a ``Conv2d(C, K,
    kernel_size=(h, w))``: each output's weights reshaped to (C, h, w). With
    ``spatial=1`` (a head after global pooling, or a per-pixel linear map) it
    is a 1x1 convolution. On a larger feature map the convolution slides,
    giving a map of class scores instead of one score per class: the network
    has no fully connected layer left.

    Args:
        linear: the trained head; its weights are copied.
        in_channels: ``C``, the channels of the feature map it reads.
        spatial: ``h`` or ``(h, w)``, the feature-map size it was trained on.
    """
    h, w = _pair(spatial, "spatial")
    if linear.in_features != in_channels * h * w:
        raise ValueError(f"linear has {linear.in_features} inputs but C*h*w = {in_channels}*{h}*{w} = "
                         f"{in_channels * h * w}")
    conv = nn.Conv2d(in_channels, linear.out_features, (h, w), bias=linear.bias is not None)
    conv = conv.to(device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.view(linear.out_features, in_channels, h, w))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


class DropBlock2d(nn.Module):
    """DropBlock (Ghiasi, Lin and Le, 2018): drop contiguous squares of a feature map.

    Dropout on convolutional features removes single pixels, which their
    neighbours can fill in. DropBlock removes ``block_size x block_size``
    squares. Block seeds are drawn with probability
    ``gamma = drop_prob / block_size^2 * (H W) / ((H - block_size + 1)(W - block_size + 1))``
    at the positions where a whole block fits, so that about ``drop_prob`` of
    the pixels are dropped; the kept pixels are scaled by
    ``numel / kept`` so the expected sum is unchanged. The identity in
    ``eval()`` mode or with ``drop_prob = 0``. Masks are drawn per image and
    channel. Set ``drop_prob`` during training for the paper's linear schedule.
    """

    def __init__(self, drop_prob: float = 0.1, block_size: int = 7) -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError("drop_prob must be in [0, 1)")
        if block_size < 1:
            raise ValueError("block_size must be >= 1")
        self.drop_prob, self.block_size = drop_prob, block_size

    def gamma(self, height: int, width: int) -> float:
        """The seed probability for a feature map of this size."""
        bs = min(self.block_size, height, width)
        return self.drop_prob / bs**2 * (height * width) / ((height - bs + 1) * (width - bs + 1))

    def block_mask(self, x: Tensor) -> Tensor:
        """A 0/1 mask shaped like ``x`` (1 = keep), drawn afresh."""
        n, c, h, w = x.shape
        bs = min(self.block_size, h, w)
        seeds = torch.bernoulli(torch.full((n, c, h - bs + 1, w - bs + 1), self.gamma(h, w),
                                           device=x.device, dtype=x.dtype))
        # a seed at (a, b) is the top-left corner of a block covering [a, a + bs) x [b, b + bs)
        dropped = F.max_pool2d(F.pad(seeds, (bs - 1, bs - 1, bs - 1, bs - 1)), kernel_size=bs, stride=1)
        return 1.0 - dropped

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        mask = self.block_mask(x)
        return x * mask * (mask.numel() / mask.sum().clamp_min(1.0))

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}, block_size={self.block_size}"
