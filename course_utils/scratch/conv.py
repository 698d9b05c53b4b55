"""Convolution from scratch (loops, im2col), output sizes, and receptive fields (calculated and measured)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "conv_output_size",
    "conv2d_loop",
    "conv2d_unfold",
    "ReceptiveFieldRow",
    "receptive_field",
    "measured_receptive_field",
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
