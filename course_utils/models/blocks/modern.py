"""2020s blocks: ConvNeXt, and the Vision Transformer's patch embedding, attention, MLP, encoder block."""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from course_utils.models.blocks.common import DropPath, LayerFactory

__all__ = [
    "ConvNeXtBlock",
    "PatchEmbed",
    "Attention",
    "Mlp",
    "EncoderBlock",
]

# --------------------------------------------------------------------------
# ConvNeXt
# --------------------------------------------------------------------------


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block (Liu et al., 2022): a ResNet block modernised after the Swin Transformer.

    7x7 depthwise conv -> LayerNorm -> Linear ``4x`` -> GELU -> Linear back
    (an inverted MLP, computed channels-last) -> layer scale ``gamma``
    (a learnable per-channel factor initialised at ``layer_scale_init``) ->
    stochastic depth -> add to the input.

    Shapes: ``(N, C, H, W)`` -> ``(N, C, H, W)``.
    """

    def __init__(
        self,
        dim: int,
        *,
        kernel_size: int = 7,
        mlp_ratio: float = 4.0,
        layer_scale_init: float | None = 1e-6,
        drop_path: float = 0.0,
        norm_layer: LayerFactory = partial(nn.LayerNorm, eps=1e-6),
        act_layer: LayerFactory = nn.GELU,
    ) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.conv_dw = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = norm_layer(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden, dim)
        self.layer_scale = (
            nn.Parameter(torch.full((dim,), float(layer_scale_init))) if layer_scale_init is not None else None
        )
        self.drop_path = DropPath(drop_path)
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> ``(N, C, H, W)``."""
        out = self.conv_dw(x).permute(0, 2, 3, 1)  # (N, H, W, C): channels-last for LayerNorm/Linear
        out = self.fc2(self.act(self.fc1(self.norm(out))))
        if self.layer_scale is not None:
            out = out * self.layer_scale
        return x + self.drop_path(out.permute(0, 3, 1, 2))


# --------------------------------------------------------------------------
# Vision Transformer
# --------------------------------------------------------------------------


class PatchEmbed(nn.Module):
    """Cut the image into ``patch_size`` squares and project each to ``embed_dim``.

    One strided convolution (kernel = stride = patch size) is exactly a linear
    map applied to every flattened patch (Dosovitskiy et al., 2020).

    Shapes: ``(N, in_chans, H, W)`` -> ``(N, L, D)`` with
    ``L = (H / patch_size) * (W / patch_size)``.
    """

    def __init__(self, *, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.img_size, self.patch_size = img_size, patch_size
        self.grid_size = img_size // patch_size
        self.num_patches = self.grid_size**2
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` -> ``(N, L, D)``."""
        if x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"expected {self.img_size}x{self.img_size} images, got {tuple(x.shape[-2:])}")
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention, written out.

    ``q, k, v = x W_qkv`` split into ``num_heads`` heads of ``D / num_heads``;
    ``A = softmax(q k^T / sqrt(d_head))``; output ``(A v)`` re-joined and
    projected. Every token attends to every token: cost grows with ``L^2``.

    Shapes: ``(N, L, D)`` -> ``(N, L, D)``.
    """

    def __init__(
        self,
        dim: int,
        *,
        num_heads: int = 8,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, L, D)`` -> ``(N, L, D)``."""
        n, length, dim = x.shape
        qkv = self.qkv(x).reshape(n, length, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (N, heads, L, d_head)
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (N, heads, L, L)
        attn = self.attn_drop(attn.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(n, length, dim)
        return self.proj_drop(self.proj(out))


class Mlp(nn.Module):
    """Transformer MLP: Linear -> activation -> dropout -> Linear -> dropout.

    Shapes: ``(N, L, in_features)`` -> ``(N, L, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        *,
        hidden_features: int | None = None,
        out_features: int | None = None,
        act_layer: LayerFactory = nn.GELU,
        drop: float = 0.0,
    ) -> None:
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., in_features)`` -> ``(..., out_features)``."""
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class EncoderBlock(nn.Module):
    """Pre-norm Transformer encoder block: ``x + Attn(LN(x))``, then ``x + MLP(LN(x))``.

    Shapes: ``(N, L, D)`` -> ``(N, L, D)``.
    """

    def __init__(
        self,
        dim: int,
        *,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_layer: LayerFactory = partial(nn.LayerNorm, eps=1e-6),
        act_layer: LayerFactory = nn.GELU,
    ) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, L, D)`` -> ``(N, L, D)``."""
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))
