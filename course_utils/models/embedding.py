"""Embedding networks for face verification: a backbone, a projection, a unit sphere.

An :class:`EmbeddingNet` maps an image to a point on the unit hypersphere::

    image -> backbone.forward_features -> global pool -> linear (D) -> BatchNorm -> L2 normalise

so that the cosine similarity of two faces is their dot product and
``||x - y||^2 = 2 - 2 cos(x, y)``. Any zoo model works as the backbone
(:func:`course_utils.models.create_model` with ``num_classes=0``); for
64x64 faces on a CPU, :func:`face_backbone` is a small, fast ResNet whose
stem downsamples at once.

A :class:`SiameseNet` is *one* embedding network applied to both images of a
pair: the weights are shared by construction (there is only one set), so
``f(a, b)`` and ``f(b, a)`` give the same two embeddings in swapped order.

:func:`course_utils.train.predict` runs a network over a loader (or a data
set) and returns the embeddings with their labels, on the CPU.

Example::

    net = EmbeddingNet(face_backbone(in_chans=1), embedding_dim=64)
    emb, labels = predict(net, test_set, device="cpu")   # (N, 64), (N,)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_utils.models.base import CourseModel
from course_utils.models.blocks import BasicBlock, ConvNormAct

__all__ = [
    "EmbeddingNet",
    "SiameseNet",
    "FaceBackbone",
    "face_backbone",
    "PerImageStandardize",
]


class FaceBackbone(CourseModel):
    """A small ResNet for 48-112 px faces: a stride-2 stem, then one basic block per stage.

    Every stage halves the resolution, so a 64x64 face becomes a 4x4 map of
    ``widths[-1]`` channels after the default three stages; that costs about
    12 M multiply-adds per image, small enough to train several networks on a
    laptop CPU in a few minutes.

    Args:
        in_chans: 1 for grey faces (ORL), 3 for colour.
        widths: output channels of the stem and of each stage
            (``widths[0]`` is the stem).
        blocks_per_stage: basic blocks in each stage (the first one strides).
        num_classes: classifier outputs; 0 (default) for none, so that
            ``model(x)`` returns the pooled features ``(N, widths[-1])``.
        drop_rate: dropout before the classifier.
    """

    def __init__(
        self,
        *,
        in_chans: int = 1,
        widths: Sequence[int] = (24, 32, 64, 128),
        blocks_per_stage: int = 1,
        num_classes: int = 0,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"FaceBackbone: widths needs the stem width and at least one stage, got {widths}.")
        if blocks_per_stage < 1:
            raise ValueError(f"FaceBackbone: blocks_per_stage must be >= 1, got {blocks_per_stage}.")
        self.stem = ConvNormAct(in_chans, widths[0], 3, stride=2)
        stages, prev = [], widths[0]
        for w in widths[1:]:
            blocks = [BasicBlock(prev if j == 0 else w, w, stride=2 if j == 0 else 1) for j in range(blocks_per_stage)]
            stages.append(nn.Sequential(*blocks))
            prev = w
        self.stages = nn.Sequential(*stages)
        self.in_chans = in_chans
        self._init_head(prev, num_classes, drop_rate=drop_rate)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, widths[-1], H / 2^len(widths), W / 2^len(widths))``."""
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(
                f"FaceBackbone expects images of shape (N, {self.in_chans}, H, W), got {tuple(x.shape)}."
            )
        return self.stages(self.stem(x))


def face_backbone(*, in_chans: int = 1, widths: Sequence[int] = (24, 32, 64, 128), **kwargs: Any) -> FaceBackbone:
    """The course's default face backbone (see :class:`FaceBackbone`), without a classifier."""
    return FaceBackbone(in_chans=in_chans, widths=widths, **kwargs)


class PerImageStandardize(nn.Module):
    """Give every image zero mean and unit standard deviation: ``(N, C, H, W)`` -> same shape.

    Removes global brightness and contrast, which say nothing about who is
    in the picture. No parameters.
    """

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """Standardise each image on its own."""
        if x.ndim != 4:
            raise ValueError(f"PerImageStandardize expects (N, C, H, W), got {tuple(x.shape)}.")
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) / (x.std(dim=(1, 2, 3), keepdim=True) + self.eps)


def _num_features(backbone: nn.Module) -> int:
    n = getattr(backbone, "num_features", None)
    if not isinstance(n, int) or n < 1:
        raise ValueError(
            f"EmbeddingNet: cannot tell the feature width of a {type(backbone).__name__}; "
            "pass num_features=... (the channels of its output)."
        )
    return n


class EmbeddingNet(nn.Module):
    """Backbone features -> pooled -> linear projection -> BatchNorm -> (optional) L2 normalisation.

    Args:
        backbone: a zoo model (anything with ``forward_features`` and
            ``forward_head(..., pre_logits=True)``, e.g. ``create_model(name,
            num_classes=0)`` or :func:`face_backbone`), or any module whose
            output is a feature map ``(N, C, H, W)`` or a vector ``(N, C)``.
        embedding_dim: D, the size of the embedding.
        normalize: L2-normalise the output (unit vectors, so that cosine
            similarity is a dot product). Center loss + softmax trains on the
            raw projection, so the flag can be switched off (and back on)
            at any time: ``net.normalize = False``.
        num_features: the backbone's output width, when it has no
            ``num_features`` attribute.
        dropout: dropout on the pooled features during training.
        input_norm: a module applied to the images first, e.g.
            :class:`PerImageStandardize` (part of the model, so it is never
            forgotten at test time).

    Shapes: ``(N, C_in, H, W)`` -> ``(N, embedding_dim)``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        embedding_dim: int = 128,
        normalize: bool = True,
        num_features: int | None = None,
        dropout: float = 0.0,
        input_norm: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if embedding_dim < 1:
            raise ValueError(f"EmbeddingNet: embedding_dim must be >= 1, got {embedding_dim}.")
        self.input_norm = input_norm if input_norm is not None else nn.Identity()
        self.backbone = backbone
        self.num_features = num_features if num_features is not None else _num_features(backbone)
        self.embedding_dim = embedding_dim
        self.normalize = normalize
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(self.num_features, embedding_dim, bias=False)
        self.bn = nn.BatchNorm1d(embedding_dim)

    def pooled_features(self, x: Tensor) -> Tensor:
        """The backbone's pooled features ``(N, num_features)``, before the projection."""
        b = self.backbone
        x = self.input_norm(x)
        if hasattr(b, "forward_features") and hasattr(b, "forward_head"):
            f = b.forward_head(b.forward_features(x), pre_logits=True)
        else:
            f = b(x)
        if f.ndim == 4:
            f = f.mean(dim=(2, 3))
        if f.ndim != 2 or f.shape[1] != self.num_features:
            raise ValueError(
                f"EmbeddingNet: the backbone gave features of shape {tuple(f.shape)}; expected "
                f"(N, {self.num_features}) after pooling."
            )
        return f

    def feature_blocks(self) -> list[tuple[str, nn.Module]]:
        """The backbone's blocks in forward order (``backbone.``-prefixed), or the backbone as one block."""
        blocks = getattr(self.backbone, "feature_blocks", None)
        if blocks is None:
            return [("backbone", self.backbone)]
        return [(f"backbone.{name}", m) for name, m in blocks()]

    def head_blocks(self) -> list[tuple[str, nn.Module]]:
        """The embedding head after the pooled features: ``dropout``, ``proj``, ``bn``."""
        return [("dropout", self.dropout), ("proj", self.proj), ("bn", self.bn)]

    def forward(self, x: Tensor) -> Tensor:
        """Images ``(N, C, H, W)`` -> embeddings ``(N, D)`` (unit norm when ``normalize``)."""
        e = self.bn(self.proj(self.dropout(self.pooled_features(x))))
        return F.normalize(e, dim=1) if self.normalize else e


class SiameseNet(nn.Module):
    """Two branches with shared weights: one embedding network applied to both images of a pair.

    ``forward(x1, x2)`` (or ``forward((x1, x2))``, the form ``fit`` uses for a
    pair data set) returns ``(e1, e2)``, each ``(N, D)``. Because there is a
    single ``embedding_net``, a gradient from either branch updates the same
    weights, and swapping the two images swaps the two embeddings.
    """

    def __init__(self, embedding_net: nn.Module) -> None:
        super().__init__()
        self.embedding_net = embedding_net

    def embed(self, x: Tensor) -> Tensor:
        """One branch: images ``(N, C, H, W)`` -> ``(N, D)``."""
        return self.embedding_net(x)

    def forward(self, x1: Tensor | Sequence[Tensor], x2: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Embed both images of each pair: ``(N, C, H, W)`` x 2 -> ``(e1, e2)``, each ``(N, D)``."""
        if x2 is None:
            if not isinstance(x1, (tuple, list)) or len(x1) != 2:
                raise ValueError("SiameseNet: call it with two image batches, net(x1, x2) or net((x1, x2)).")
            x1, x2 = x1
        if x1.shape != x2.shape:
            raise ValueError(
                f"SiameseNet: both images of a pair need the same shape, got {tuple(x1.shape)} and {tuple(x2.shape)}."
            )
        # one pass over the concatenated batch: the same weights, and BatchNorm sees both halves
        e = self.embedding_net(torch.cat([x1, x2], dim=0))
        return e[: x1.shape[0]], e[x1.shape[0]:]
