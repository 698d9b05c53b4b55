"""The common interface of every zoo model: :class:`CourseModel` and its pooling heads.

Every model is a :class:`CourseModel`, with one interface for all families::

    feats = model.forward_features(x)                    # (N, C, H', W') or tokens (N, L, D)
    emb = model.forward_head(feats, pre_logits=True)     # (N, model.num_features)
    logits = model.forward_head(feats)                   # (N, num_classes) == model(x)
    model.reset_classifier(5)                            # new head for transfer learning
"""

from __future__ import annotations

from torch import Tensor, nn

from course_utils.models.blocks import ConvNormAct, LayerFactory

__all__ = ["CourseModel", "GlobalAvgPool", "TokenPool", "init_cnn_weights", "init_transformer_weights", "make_stem", "stage_blocks"]


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

    #: The backbone's parts in forward order (attribute names), as
    #: :meth:`feature_blocks` lists them; each family declares its own.
    #: ``"stages.*"``: a container of stages, listed stage by stage.
    block_attrs: tuple[str, ...] = ("stem", "stages.*")
    #: The trainable head after the pooling, in forward order (:meth:`head_blocks`).
    head_attrs: tuple[str, ...] = ("pre_logits", "head_drop", "classifier")

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

    def feature_blocks(self) -> list[tuple[str, nn.Module]]:
        """The backbone's blocks in forward order, as ``(name, module)``; the head is not included.

        Each attribute of :attr:`block_attrs` is one block, except a container
        marked ``"name.*"``, which is listed child by child, and a child that is
        itself an ``nn.Sequential`` (a stage) block by block: a ResNet stage of
        two basic blocks gives ``stages.0.0`` and ``stages.0.1``. What freezing
        unfreezes from the end.
        """
        out: list[tuple[str, nn.Module]] = []
        for attr in self.block_attrs:
            name = attr.removesuffix(".*")
            part = getattr(self, name)
            out += stage_blocks(name, part) if attr.endswith(".*") else [(name, part)]
        return out

    def head_blocks(self) -> list[tuple[str, nn.Module]]:
        """The head after the pooling, in forward order: ``pre_logits``, ``head_drop``, ``classifier``."""
        return [(name, getattr(self, name)) for name in self.head_attrs]

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


def stage_blocks(name: str, stages: nn.Module) -> list[tuple[str, nn.Module]]:
    """The children of a container of stages, a stage (an ``nn.Sequential``) listed block by block.

    ``stage_blocks("stages", resnet.stages)`` -> ``[("stages.0.0", block), ("stages.0.1", block), ...]``.
    """
    out: list[tuple[str, nn.Module]] = []
    for sub_name, sub in stages.named_children():
        if isinstance(sub, nn.Sequential):
            out.extend((f"{name}.{sub_name}.{n}", m) for n, m in sub.named_children())
        else:
            out.append((f"{name}.{sub_name}", sub))
    return out


def init_cnn_weights(model: nn.Module) -> None:
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


def init_transformer_weights(model: nn.Module) -> None:
    """Truncated-normal (std 0.02) linear and conv weights, zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def make_stem(
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
