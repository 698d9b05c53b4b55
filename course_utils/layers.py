"""From-scratch reference versions of the CNN building blocks.

Each function here is written to be read next to its formula and is checked
against PyTorch in ``tests/test_layers.py``; notebook 01 walks through them.
They are reference code: use ``torch.nn`` layers to train real networks.

Map:

- convolution: :func:`conv2d_loop` (explicit loops), :func:`conv2d_unfold`
  (im2col: ``F.unfold`` + one matrix product), :func:`conv_output_size`
- receptive fields: :func:`receptive_field` (the calculator, over
  ``(kernel, stride, dilation)`` tuples or a chain of layers) and
  :func:`measured_receptive_field` (the input region that reaches one output
  pixel, measured with gradients)
- classic filters: :func:`classic_filter`, :data:`CLASSIC_FILTERS`,
  :func:`apply_filter`
- pooling: :func:`shift_tolerance` (how much a feature changes when its input
  moves by a few pixels)
- normalisation and regularisation: :func:`batch_norm_2d`,
  :class:`BatchNorm2dScratch`, :class:`DropBlock2d`
- activations: :class:`Maxout`
- deep stacks: :func:`mlp_stack`, :func:`init_weights`,
  :func:`layer_gradient_norms`, :func:`activation_stats`
- "no fully connected layers": :func:`linear_to_conv1x1`
- augmentation on whole batches: :func:`random_crop_flip`, :class:`BatchAugment`

Shapes: ``N`` batch, ``C`` channels, ``H, W`` height and width, ``k`` kernel
size, ``s`` stride, ``p`` padding, ``d`` dilation, ``g`` groups.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "conv2d_loop",
    "conv2d_unfold",
    "conv_output_size",
    "ReceptiveFieldRow",
    "receptive_field",
    "measured_receptive_field",
    "CLASSIC_FILTERS",
    "classic_filter",
    "filter_min_size",
    "apply_filter",
    "shift_tolerance",
    "batch_norm_2d",
    "BatchNorm2dScratch",
    "Maxout",
    "linear_to_conv1x1",
    "DropBlock2d",
    "mlp_stack",
    "init_weights",
    "layer_gradient_norms",
    "activation_stats",
    "random_crop_flip",
    "BatchAugment",
]

IntPair = int | tuple[int, int]


def _pair(v: IntPair, name: str = "value") -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return v  # type: ignore[return-value]


# --------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------


def conv_output_size(n: int, k: int, *, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution or pooling along one dimension.

    ``floor((n + 2p - d(k - 1) - 1) / s) + 1``: the dilated kernel spans
    ``d(k - 1) + 1`` input pixels and slides in steps of ``s`` over the
    padded input of length ``n + 2p``.

    Raises:
        ValueError: the (dilated) kernel does not fit in the padded input.
    """
    if min(n, k, stride, dilation) < 1 or padding < 0:
        raise ValueError(f"need n, k, stride, dilation >= 1 and padding >= 0; got n={n}, k={k}, "
                         f"stride={stride}, padding={padding}, dilation={dilation}")
    span = dilation * (k - 1) + 1
    if n + 2 * padding < span:
        raise ValueError(f"the kernel spans {span} pixels but the padded input has only {n + 2 * padding}")
    return (n + 2 * padding - span) // stride + 1


def _check_conv_args(x: Tensor, weight: Tensor, groups: int) -> None:
    if x.dim() != 4 or weight.dim() != 4:
        raise ValueError(f"expected x (N, C, H, W) and weight (C_out, C_in/g, kH, kW); got {tuple(x.shape)} "
                         f"and {tuple(weight.shape)}")
    c_in, c_out = x.shape[1], weight.shape[0]
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide C_in={c_in} and C_out={c_out}")
    if weight.shape[1] != c_in // groups:
        raise ValueError(f"weight has {weight.shape[1]} input channels per group; expected C_in/groups = "
                         f"{c_in // groups}")


def conv2d_loop(x: Tensor, weight: Tensor, bias: Tensor | None = None, *, stride: IntPair = 1,
                padding: IntPair = 0, dilation: IntPair = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as in deep learning) with explicit loops.

    ``y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * x_pad[n, c0(o) + c, s i + d u, s j + d v]``
    where ``c`` runs over the ``C_in / g`` input channels of the group that
    output channel ``o`` belongs to, starting at
    ``c0(o) = (o // (C_out / g)) * (C_in / g)``. Loops over images, groups and output
    pixels; the sum over channels and kernel taps is one vectorised product.
    Slow: use it on small inputs to see what a convolution does.

    Args:
        x: input (N, C_in, H, W).
        weight: (C_out, C_in / groups, kH, kW).
        bias: (C_out,) or ``None``.
        stride, padding, dilation: ints or (height, width) pairs; zero padding.
        groups: split the channels into this many independent convolutions.
    """
    _check_conv_args(x, weight, groups)
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    n, c_in, h, w = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    h_out = conv_output_size(h, kh, stride=sh, padding=ph, dilation=dh)
    w_out = conv_output_size(w, kw, stride=sw, padding=pw, dilation=dw)
    x_pad = F.pad(x, (pw, pw, ph, ph))
    out = x.new_zeros(n, c_out, h_out, w_out)
    o_per_group = c_out // groups
    for b in range(n):
        for g in range(groups):
            w_g = weight[g * o_per_group:(g + 1) * o_per_group]  # (O/g, C/g, kH, kW)
            x_g = x_pad[b, g * c_per_group:(g + 1) * c_per_group]  # (C/g, H+2p, W+2p)
            for i in range(h_out):
                for j in range(w_out):
                    # the input pixels under the (dilated) kernel for output pixel (i, j)
                    patch = x_g[:, i * sh: i * sh + dh * (kh - 1) + 1: dh, j * sw: j * sw + dw * (kw - 1) + 1: dw]
                    out[b, g * o_per_group:(g + 1) * o_per_group, i, j] = (w_g * patch).sum(dim=(1, 2, 3))
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def conv2d_unfold(x: Tensor, weight: Tensor, bias: Tensor | None = None, *, stride: IntPair = 1,
                  padding: IntPair = 0, dilation: IntPair = 1, groups: int = 1) -> Tensor:
    """2-D convolution as one matrix product (im2col).

    ``F.unfold`` copies every receptive-field patch into a column:
    ``cols`` has shape (N, C_in * kH * kW, L) with ``L = H_out * W_out``.
    The weights flattened to (C_out, C_in * kH * kW) times ``cols`` give
    (N, C_out, L), which is reshaped to (N, C_out, H_out, W_out). With
    groups, each group multiplies its own block of rows.
    Same arguments as :func:`conv2d_loop`.
    """
    _check_conv_args(x, weight, groups)
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    n, _, h, w = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    h_out = conv_output_size(h, kh, stride=sh, padding=ph, dilation=dh)
    w_out = conv_output_size(w, kw, stride=sw, padding=pw, dilation=dw)
    cols = F.unfold(x, (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))  # (N, C*kH*kW, L)
    cols = cols.view(n, groups, c_per_group * kh * kw, h_out * w_out)  # channel blocks are contiguous
    w_mat = weight.reshape(groups, c_out // groups, c_per_group * kh * kw)
    out = torch.einsum("gok,ngkl->ngol", w_mat, cols).reshape(n, c_out, h_out, w_out)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


# --------------------------------------------------------------------------
# receptive fields
# --------------------------------------------------------------------------


@dataclass
class ReceptiveFieldRow:
    """One layer of a receptive-field table.

    Attributes:
        layer: name of the layer.
        kernel, stride, dilation, padding: its geometry (one dimension).
        rf: receptive field after this layer, in input pixels.
        jump: distance in input pixels between neighbouring outputs
            (the product of the strides so far).
        start: input coordinate of the centre of the first output pixel.
        size: feature-map size after this layer (``None`` without ``input_size``).
    """

    layer: str
    kernel: int
    stride: int
    dilation: int
    padding: int
    rf: int
    jump: int
    start: float
    size: int | None


_SPATIAL = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
            nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_STOP = (nn.Flatten, nn.Linear, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
         nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


def _first(v) -> int:
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def _layer_geometry(model: nn.Module) -> list[tuple[str, int, int, int, int]]:
    """(name, kernel, stride, dilation, padding) of each spatial leaf of a chain, in order."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, _STOP):
            break
        if not isinstance(m, _SPATIAL):
            continue
        k = _first(m.kernel_size)
        s = _first(m.stride if m.stride is not None else m.kernel_size)
        d = _first(getattr(m, "dilation", 1))
        pad = m.padding
        if isinstance(pad, str):
            if pad == "valid":
                pad = 0
            else:  # "same": output size equals input size (stride 1)
                pad = d * (k - 1) // 2
        p = _first(pad)
        out.append((f"{name} ({type(m).__name__})", k, s, d, p))
    return out


def receptive_field(layers: nn.Module | Iterable[Sequence[int]], *,
                    input_size: int | None = None) -> list[ReceptiveFieldRow]:
    """Receptive field, jump and feature-map size after each layer of a chain.

    The recurrences (one dimension; ``k_eff = d (k - 1) + 1``)::

        rf_out    = rf_in + (k_eff - 1) * jump_in
        jump_out  = jump_in * s
        start_out = start_in + ((k_eff - 1) / 2 - p) * jump_in

    starting from ``rf = 1, jump = 1, start = 0.5`` (pixel centres at
    0.5, 1.5, ...).

    Args:
        layers: an ``nn.Module`` whose convolution and pooling layers form a
            chain (``nn.Sequential``, possibly nested; activations, norms and
            dropout do not change the geometry and are skipped; the table
            stops at the first flatten, linear or adaptive pooling layer),
            or a sequence of ``(kernel, stride)``, ``(kernel, stride,
            dilation)`` or ``(kernel, stride, dilation, padding)`` tuples.
        input_size: input length (height or width) to also compute the
            feature-map sizes.

    Returns:
        One :class:`ReceptiveFieldRow` per layer (pass the list to
        ``pandas.DataFrame`` for a table).
    """
    if isinstance(layers, nn.Module):
        geometry = _layer_geometry(layers)
    else:
        geometry = []
        for i, spec in enumerate(layers):
            spec = tuple(int(v) for v in spec)
            if not 2 <= len(spec) <= 4:
                raise ValueError(f"layer {i}: expected (kernel, stride[, dilation[, padding]]), got {spec}")
            k, s, d, p = spec + (1, 0)[len(spec) - 2:]  # dilation 1 and padding 0 unless given
            geometry.append((f"layer {i + 1}", k, s, d, p))
    rows: list[ReceptiveFieldRow] = []
    rf, jump, start, size = 1, 1, 0.5, input_size
    for name, k, s, d, p in geometry:
        k_eff = d * (k - 1) + 1
        rf = rf + (k_eff - 1) * jump
        start = start + ((k_eff - 1) / 2 - p) * jump
        jump = jump * s
        if size is not None:
            size = conv_output_size(size, k, stride=s, padding=p, dilation=d)
        rows.append(ReceptiveFieldRow(name, k, s, d, p, rf, jump, start, size))
    return rows


def measured_receptive_field(model: nn.Module, input_shape: Sequence[int]) -> tuple[int, int]:
    """Height and width of the input region that influences the centre output pixel.

    Measured, not computed: a copy of ``model`` has its weights set to 1 and
    biases to 0 (so no contributions cancel), max pooling replaced by average
    pooling with the same geometry (max pooling passes a gradient to one
    input per window only) and activations removed; then the gradient of the
    centre output pixel (summed over channels) with respect to the input is
    non-zero exactly on its receptive field. Choose ``input_shape`` large
    enough that the field does not reach the border (padding would cut it).

    Args:
        model: a chain of convolution/pooling layers (``nn.Sequential``).
        input_shape: (C, H, W) of one input image.
    """
    probe = copy.deepcopy(model).eval()

    def swap(module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, nn.MaxPool2d):
                if _first(child.dilation) != 1:
                    raise ValueError("dilated max pooling has no average-pooling twin")
                setattr(module, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                   ceil_mode=child.ceil_mode))
            elif isinstance(child, (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.ELU, nn.Sigmoid, nn.Tanh, nn.SiLU,
                                    nn.Dropout, nn.Dropout2d, nn.BatchNorm2d)):
                setattr(module, name, nn.Identity())
            else:
                swap(child)

    swap(probe)
    with torch.no_grad():
        for p_name, p in probe.named_parameters():
            p.fill_(0.0 if p_name.endswith("bias") else 1.0)
    x = torch.zeros(1, *input_shape, requires_grad=True)
    y = probe(x)
    if y.dim() != 4:
        raise ValueError(f"expected a 4-D feature map, got shape {tuple(y.shape)}")
    y[0, :, y.shape[2] // 2, y.shape[3] // 2].sum().backward()
    nz = x.grad[0].abs().sum(0) > 0
    rows = torch.nonzero(nz.any(1)).flatten()
    cols = torch.nonzero(nz.any(0)).flatten()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


# --------------------------------------------------------------------------
# classic filters
# --------------------------------------------------------------------------


def _binomial(n: int) -> np.ndarray:
    """Row ``n - 1`` of Pascal's triangle: the discrete Gaussian of length ``n``."""
    row = np.array([1.0])
    for _ in range(n - 1):
        row = np.convolve(row, [1.0, 1.0])
    return row


_MIN_SIZE = {"identity": 1, "box blur": 1, "gaussian blur": 1, "sobel x": 2, "sobel y": 2,
             "laplacian": 3, "sharpen": 3}


def filter_min_size(name: str) -> int:
    """The smallest kernel size :func:`classic_filter` builds for ``name``."""
    if name not in _MIN_SIZE:
        raise KeyError(f"unknown filter {name!r}; choose from {sorted(_MIN_SIZE)}")
    return _MIN_SIZE[name]


def classic_filter(name: str, size: int = 3) -> Tensor:
    """A hand-designed ``size x size`` filter (float32 tensor).

    - ``identity``: 1 in the centre.
    - ``box blur``: the mean of the window, ``1 / size^2`` everywhere.
    - ``gaussian blur``: outer product of binomial coefficients (``[1, 2, 1] / 4`` for 3).
    - ``sobel x`` / ``sobel y``: smoothing across, derivative along
      (``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`` for x, size 3): responds to
      vertical / horizontal edges.
    - ``laplacian``: the second derivative in both directions
      (``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]`` for size 3; larger sizes smooth
      it with binomials): responds to blobs and thin lines; sums to 0.
    - ``sharpen``: identity minus the Laplacian (``[[0, -1, 0], [-1, 5, -1], [0, -1, 0]]``):
      boosts what differs from its neighbourhood; sums to 1.
    """
    min_size = filter_min_size(name)
    if size < min_size:
        raise ValueError(f"{name!r} needs a kernel of at least {min_size}x{min_size}, got {size}")
    smooth = _binomial(size)
    if name == "identity":
        k = np.zeros((size, size))
        k[(size - 1) // 2, (size - 1) // 2] = 1.0
    elif name == "box blur":
        k = np.full((size, size), 1.0 / size**2)
    elif name == "gaussian blur":
        k = np.outer(smooth, smooth) / smooth.sum() ** 2
    elif name in ("sobel x", "sobel y"):
        # [-1, 0, 1] for size 3: positive where the intensity grows to the right (x) or downwards (y)
        deriv = np.convolve(_binomial(size - 1), [-1.0, 1.0])
        k = np.outer(smooth, deriv) if name == "sobel x" else np.outer(deriv, smooth)
        k = k * 4.0 / k[k > 0].sum()  # positive weights sum to 4, as in the 3x3 Sobel
    elif name in ("laplacian", "sharpen"):
        if size == 3:
            lap = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
        else:
            d2 = np.convolve(_binomial(size - 2), [1.0, -2.0, 1.0])
            sm = smooth / smooth.sum()
            lap = np.outer(sm, d2) + np.outer(d2, sm)
            lap = lap * (4.0 / -lap[(size - 1) // 2, (size - 1) // 2]) if size % 2 else lap
        if name == "laplacian":
            k = lap
        else:
            k = 0.0 - lap
            k[(size - 1) // 2, (size - 1) // 2] += 1.0
    else:  # pragma: no cover - filter_min_size already rejected it
        raise KeyError(name)
    return torch.tensor(k, dtype=torch.float32)


#: The six classic 3x3 filters (plus identity) by name.
CLASSIC_FILTERS: dict[str, Tensor] = {name: classic_filter(name, 3) for name in _MIN_SIZE}


def apply_filter(image: Tensor, kernel: Tensor, *, stride: int = 1, padding: int | str = "same",
                 dilation: int = 1, padding_mode: str = "reflect") -> Tensor:
    """Convolve every channel of an image with one 2-D kernel (a depthwise convolution).

    Args:
        image: (H, W), (C, H, W) or (N, C, H, W) float tensor.
        kernel: (kH, kW).
        padding: pixels added on each side, or ``"same"`` (keep the size at
            stride 1: ``d (k - 1) / 2`` on each side, odd kernels).
        padding_mode: ``"reflect"`` (no dark frame around blurred images),
            ``"zeros"`` or ``"replicate"``.

    Returns:
        The filtered image with the dimensions of ``image``.
    """
    shape = image.shape
    x = image.float()
    while x.dim() < 4:
        x = x.unsqueeze(0)
    c = x.shape[1]
    kh, kw = kernel.shape
    if padding == "same":
        ph, pw = dilation * (kh - 1) // 2, dilation * (kw - 1) // 2
    else:
        ph = pw = int(padding)
    if ph or pw:
        mode = "constant" if padding_mode == "zeros" else padding_mode
        x = F.pad(x, (pw, pw, ph, ph), mode=mode)
    w = kernel.to(x).expand(c, 1, kh, kw)
    y = F.conv2d(x, w, stride=stride, dilation=dilation, groups=c)
    return y.reshape(*shape[:-2], *y.shape[-2:]) if len(shape) < 4 else y


# --------------------------------------------------------------------------
# pooling and shifts
# --------------------------------------------------------------------------


def shift_tolerance(fn: Callable[[Tensor], Tensor], images: Tensor, shifts: Iterable[int] = range(0, 9),
                    *, size: int | None = None) -> np.ndarray:
    """How much ``fn``'s output changes when its input moves by ``s`` pixels.

    For each shift ``s`` the window ``images[..., :, s:s + size]`` (moved
    ``s`` pixels to the right, so real content enters on one side, no
    wrap-around) is compared with the window at 0:
    ``||fn(shifted) - fn(x)|| / ||fn(x)||`` per image, averaged.

    Args:
        fn: maps (N, C, H, W) to features (any shape with batch first).
        images: (N, C, H, W), at least ``size + max(shifts)`` pixels wide.
        shifts: horizontal shifts in pixels.
        size: width of the window; default ``W - max(shifts)``.

    Returns:
        Relative change per shift (0 means the output did not change).
    """
    shifts = list(shifts)
    width = images.shape[-1]
    size = width - max(shifts) if size is None else size
    if size + max(shifts) > width:
        raise ValueError(f"images are {width} wide; need size + max shift = {size + max(shifts)}")
    with torch.no_grad():
        ref = fn(images[..., :size]).flatten(1)
        ref_norm = ref.norm(dim=1).clamp_min(1e-12)
        out = []
        for s in shifts:
            moved = fn(images[..., s:s + size]).flatten(1)
            out.append(float(((moved - ref).norm(dim=1) / ref_norm).mean()))
    return np.array(out)


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


# --------------------------------------------------------------------------
# deep stacks: initialisation, gradients, activation statistics
# --------------------------------------------------------------------------


def mlp_stack(depth: int, width: int, activation: Callable[[], nn.Module] | type[nn.Module] = nn.ReLU, *,
              in_features: int | None = None, out_features: int | None = None) -> nn.Sequential:
    """``depth`` blocks of ``Linear(width, width)`` + activation (a deep, plain stack).

    ``in_features`` sets the first layer's input width, ``out_features``
    appends a final linear layer (a classifier head).
    """
    layers: list[nn.Module] = []
    fan_in = in_features or width
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), activation()]
        fan_in = width
    if out_features is not None:
        layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def init_weights(model: nn.Module, scheme: str = "kaiming", *, nonlinearity: str = "relu") -> nn.Module:
    """Re-initialise every linear and convolution layer of ``model`` in place.

    Schemes:
        ``default``: leave PyTorch's default (uniform with bound ``1/sqrt(fan_in)``
        for the weights: variance ``1 / (3 fan_in)``).
        ``kaiming``: normal with variance ``2 / fan_in`` (He et al. 2015,
        keeps the activation scale through ReLUs); ``gain^2 / fan_in`` for
        other ``nonlinearity`` values.
        ``xavier``: normal with variance ``2 / (fan_in + fan_out)`` times ``gain^2``.
        ``orthogonal``: a random orthogonal matrix times the gain (Saxe et al. 2014).
        ``small``: normal with standard deviation 0.01 (a classic mistake).
    Biases are set to zero except for ``default``.
    """
    if scheme == "default":
        return model
    gain = nn.init.calculate_gain(nonlinearity)
    for m in model.modules():
        if not isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            continue
        if scheme == "kaiming":
            fan_in = m.weight[0].numel()
            nn.init.normal_(m.weight, std=gain / math.sqrt(fan_in))
        elif scheme == "xavier":
            nn.init.xavier_normal_(m.weight, gain=gain)
        elif scheme == "orthogonal":
            nn.init.orthogonal_(m.weight, gain=gain)
        elif scheme == "small":
            nn.init.normal_(m.weight, std=0.01)
        else:
            raise ValueError(f"unknown scheme {scheme!r}: use default, kaiming, xavier, orthogonal or small")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    return model


def _weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]


def layer_gradient_norms(model: nn.Module, inputs: Tensor, targets: Tensor | None = None,
                         loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None) -> list[float]:
    """The gradient norm of each linear/convolution layer's weight after one backward pass.

    Args:
        model: any module; its ``.grad`` fields are overwritten.
        inputs: one batch.
        targets: class indices for the default cross-entropy loss; without
            targets the loss is ``mean(output^2) / 2``.
        loss_fn: ``loss_fn(outputs, targets)`` to use instead.

    Returns:
        ``||dL/dW||`` for each weighted layer, input side first.
    """
    model.zero_grad(set_to_none=True)
    out = model(inputs)
    if loss_fn is not None:
        loss = loss_fn(out, targets)
    elif targets is not None:
        loss = F.cross_entropy(out, targets)
    else:
        loss = out.pow(2).mean() / 2
    loss.backward()
    return [float(m.weight.grad.norm()) if m.weight.grad is not None else 0.0 for _, m in _weighted_layers(model)]


def activation_stats(model: nn.Module, inputs: Tensor,
                     layer_types: tuple[type[nn.Module], ...] | None = None) -> list[dict[str, float]]:
    """Mean, standard deviation and fraction of zeros of each layer's output.

    Args:
        model: any module (run in its current train/eval mode, without gradients).
        inputs: one batch.
        layer_types: which leaf modules to record; default the activations
            (ReLU, LeakyReLU, ELU, GELU, Sigmoid, Tanh, SiLU, Maxout) and,
            when there are none, every linear/convolution layer.

    Returns:
        One dict per recorded layer: ``layer`` (its index among the
        recorded ones, from 1), ``name``, ``mean``, ``std``, ``frac_zero``,
        ``frac_saturated`` (share of outputs within 1% of +-1, for
        sigmoid/tanh-like outputs).
    """
    acts = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.SiLU, Maxout)
    if layer_types is None:
        layer_types = acts if any(isinstance(m, acts) for m in model.modules()) else \
            (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    records: list[dict[str, float]] = []
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, layer_types):
            def hook(module, _inp, out, name=name):
                o = out.detach().float()
                records.append({"layer": len(records) + 1, "name": name, "mean": float(o.mean()),
                                "std": float(o.std()), "frac_zero": float((o == 0).float().mean()),
                                "frac_saturated": float((o.abs() > 0.99).float().mean()
                                                        if isinstance(module, (nn.Tanh,)) else
                                                        ((o < 0.01) | (o > 0.99)).float().mean()
                                                        if isinstance(module, nn.Sigmoid) else 0.0)})
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    return records


# --------------------------------------------------------------------------
# augmentation on whole batches
# --------------------------------------------------------------------------


def random_crop_flip(x: Tensor, *, padding: int = 0, flip: bool = False,
                     generator: torch.Generator | None = None) -> Tensor:
    """Batched augmentation: a random crop of each zero-padded image, and a random horizontal flip.

    The same as ``torchvision.transforms.v2.RandomCrop(size, padding)`` and
    ``RandomHorizontalFlip()`` applied image by image, but done for the whole
    batch with one indexing operation (much faster on small images).

    Args:
        x: (N, C, H, W).
        padding: pixels of zeros added on each side before cropping back to
            (H, W): shifts of up to ``padding`` pixels in each direction.
        flip: mirror half of the images left-right (only where that keeps the
            class: cars and cats, not digits).
    """
    n, _, h, w = x.shape
    if padding:
        padded = F.pad(x, (padding,) * 4)
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        rows = (dy[:, None] + torch.arange(h)).to(x.device)  # (N, H)
        cols = (dx[:, None] + torch.arange(w)).to(x.device)  # (N, W)
        idx = torch.arange(n, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mirror = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
    return x.contiguous()


class BatchAugment:
    """A ``collate_fn`` that stacks a batch and applies :func:`random_crop_flip` to it.

    Use it for the training loader only:
    ``make_loader(train_set, shuffle=True, collate_fn=BatchAugment(padding=2, flip=True))``.
    """

    def __init__(self, *, padding: int = 0, flip: bool = False) -> None:
        self.padding, self.flip = padding, flip

    def __call__(self, batch: list) -> tuple[Tensor, Tensor]:
        from torch.utils.data import default_collate

        images, targets = default_collate(batch)[:2]
        return random_crop_flip(images, padding=self.padding, flip=self.flip), targets

    def __repr__(self) -> str:
        return f"BatchAugment(padding={self.padding}, flip={self.flip})"
