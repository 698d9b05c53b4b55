"""The 2020s: ConvNeXt and the Vision Transformer."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from course_utils.models.base import (
    CourseModel,
    TokenPool,
    init_transformer_weights,
)
from course_utils.models.blocks import (
    ConvNeXtBlock,
    EncoderBlock,
    LayerNorm2d,
    PatchEmbed,
)

__all__ = [
    "ConvNeXt",
    "VisionTransformer",
]


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
        init_transformer_weights(self)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, dims[-1], H/32, W/32)`` with 4 stages."""
        return self.stages(self.stem(x))


class VisionTransformer(CourseModel):
    """Vision Transformer (Dosovitskiy et al., 2020), as torchvision's ``vit_*``.

    Patch embedding, a learnable class token, learnable position embeddings,
    ``depth`` pre-norm :class:`EncoderBlock` layers, a final LayerNorm. The
    head reads the class token. Inputs must be ``img_size`` square.
    """

    block_attrs = ("patch_embed", "blocks.*", "norm")

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
        init_transformer_weights(self)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> tokens ``(N, 1 + L, D)`` (class token first)."""
        x = self.patch_embed(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = self.pos_drop(torch.cat([cls, x], dim=1) + self.pos_embed)
        return self.norm(self.blocks(x))
