"""Freezing, the model's blocks and head, and learning rates per part.

- :func:`freeze`, :func:`unfreeze`, :func:`freeze_all_but_head`,
  :func:`unfreeze_last_blocks`, :func:`trainable_table` (frozen batch-norm
  layers stay in eval mode even when ``fit`` calls ``model.train()``); count
  what will train with ``course_utils.cost.count_parameters(model, trainable_only=True)``;
- :func:`backbone_blocks` and :func:`head_modules`: a model's parts in forward order;
- learning rates per part: :func:`param_groups` (head vs backbone) and
  :func:`layerwise_lr_groups` (discriminative, decaying towards the input).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
from torch import nn

__all__ = [
    "freeze",
    "unfreeze",
    "freeze_all_but_head",
    "unfreeze_last_blocks",
    "trainable_table",
    "head_modules",
    "backbone_blocks",
    "param_groups",
    "layerwise_lr_groups",
]



# --------------------------------------------------------------------------
# freezing
# --------------------------------------------------------------------------


def _keep_eval(module: nn.Module, _args: Any) -> None:
    module.train(False)


def freeze(module: nn.Module) -> nn.Module:
    """Stop ``module`` from learning: no gradients, and its batch norms keep their statistics.

    ``requires_grad`` is switched off for every parameter. Batch-norm layers
    inside get a forward pre-hook that puts them in eval mode on every call,
    so ``fit`` (which calls ``model.train()``) neither updates their running
    statistics nor normalises with batch statistics: a frozen layer computes
    the same function in training and at test time.

    Returns:
        ``module`` (frozen in place).
    """
    for p in module.parameters():
        p.requires_grad_(False)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not _has_keep_eval(m):
            m.register_forward_pre_hook(_keep_eval)
    return module


def _has_keep_eval(m: nn.Module) -> bool:
    # found by identity, so it also works on deep copies (whose hook handles would be stale)
    return any(fn is _keep_eval for fn in m._forward_pre_hooks.values())


def unfreeze(module: nn.Module) -> nn.Module:
    """Undo :func:`freeze`: gradients on, batch norms follow ``train()``/``eval()`` again."""
    for p in module.parameters():
        p.requires_grad_(True)
    for m in module.modules():
        for key in [k for k, fn in m._forward_pre_hooks.items() if fn is _keep_eval]:
            del m._forward_pre_hooks[key]
    return module


def head_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules after the pooled features, as the model lists them (``model.head_blocks()``).

    Zoo models: ``pre_logits``, ``head_drop``, ``classifier``; an
    :class:`~course_utils.models.embedding.EmbeddingNet`: its projection head.
    For a plain ``nn.Sequential`` the head is its last child.
    """
    if hasattr(model, "head_blocks"):
        return list(model.head_blocks())
    if isinstance(model, nn.Sequential) and len(model) > 0:
        return [(str(len(model) - 1), model[-1])]
    raise TypeError(f"{type(model).__name__} lists no head (no head_blocks()) and is not an nn.Sequential.")


def freeze_all_but_head(model: nn.Module) -> nn.Module:
    """Freeze everything except the head (``pre_logits`` and ``classifier``): feature extraction."""
    freeze(model)
    for _, m in head_modules(model):
        unfreeze(m)
    return model



def backbone_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The backbone's blocks in forward order, as ``(name, module)``, as the model lists them.

    Zoo models answer with ``model.feature_blocks()``: ``stem`` (or
    ``patch_embed``), then their stages block by block (a ResNet stage of two
    basic blocks gives two entries), then trailing layers (``final_norm``,
    ``head_conv`` ...). For an ``nn.Sequential``: every child but the last.
    The head (:func:`head_modules`) is not included.
    """
    if hasattr(model, "feature_blocks"):
        return list(model.feature_blocks())
    if isinstance(model, nn.Sequential):
        return [(name, m) for name, m in list(model.named_children())[:-1]]
    raise TypeError(f"Cannot find the blocks of {type(model).__name__}: it lists none (no feature_blocks()) "
                    "and is not an nn.Sequential.")


def unfreeze_last_blocks(model: nn.Module, n: int) -> nn.Module:
    """Freeze the whole model, then unfreeze its last ``n`` backbone blocks and the head.

    ``n=0`` is :func:`freeze_all_but_head`; ``n >= len(backbone_blocks(model))``
    unfreezes everything (parameters outside the blocks, such as a ViT's
    position embedding, stay frozen unless ``n`` covers all blocks).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}.")
    blocks = backbone_blocks(model)
    if n >= len(blocks):
        return unfreeze(model)
    freeze_all_but_head(model)
    for _, m in blocks[len(blocks) - n:]:
        unfreeze(m)
    return model


def trainable_table(model: nn.Module) -> Any:
    """A DataFrame with one row per block and head part: parameters, trainable ones, learning state."""
    rows = []
    parts = backbone_blocks(model) + head_modules(model)
    seen: set[int] = set()
    for name, m in parts:
        params = [p for p in m.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        n = sum(p.numel() for p in params)
        t = sum(p.numel() for p in params if p.requires_grad)
        rows.append({"part": name, "params": n, "trainable": t,
                     "state": "trainable" if n and t == n else "frozen" if n and t == 0 else "mixed" if n else "-"})
    rest = [p for p in model.parameters() if id(p) not in seen]
    if rest:
        rows.append({"part": "(other)", "params": sum(p.numel() for p in rest),
                     "trainable": sum(p.numel() for p in rest if p.requires_grad), "state": "mixed"})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------
# learning rates per part
# --------------------------------------------------------------------------


def _trainable(params: Iterable[nn.Parameter], seen: set[int]) -> list[nn.Parameter]:
    out = []
    for p in params:
        if p.requires_grad and id(p) not in seen:
            out.append(p)
            seen.add(id(p))
    return out


def param_groups(model: nn.Module, *, lr: float, backbone_lr_factor: float = 0.1,
                 weight_decay: float = 0.0) -> list[dict[str, Any]]:
    """Two optimizer groups: the head at ``lr``, the rest at ``lr * backbone_lr_factor``.

    Pass the result to any ``torch.optim`` optimizer. Frozen parameters are
    left out; each group carries a ``"name"`` for display.
    """
    seen: set[int] = set()
    head = _trainable((p for _, m in head_modules(model) for p in m.parameters()), seen)
    body = _trainable(model.parameters(), seen)
    groups = [{"name": "head", "params": head, "lr": lr, "weight_decay": weight_decay},
              {"name": "backbone", "params": body, "lr": lr * backbone_lr_factor, "weight_decay": weight_decay}]
    return [g for g in groups if g["params"]]


def layerwise_lr_groups(model: nn.Module, *, lr: float, decay: float = 0.5,
                        weight_decay: float = 0.0) -> list[dict[str, Any]]:
    """Discriminative learning rates: the head at ``lr``, each block below it ``decay`` times smaller.

    With blocks ``b_1 ... b_L`` (input side first, see :func:`backbone_blocks`)
    block ``b_i`` gets ``lr * decay ** (L - i + 1)``; parameters outside the
    blocks (a ViT's class token ...) get the smallest rate. The early layers,
    which compute generic edges and textures, barely move; the last ones
    adapt. Frozen parameters are left out.

    Returns:
        One group per part with trainable parameters, head first, each with
        ``"name"``, ``"params"``, ``"lr"``, ``"weight_decay"``.
    """
    if not 0 < decay <= 1:
        raise ValueError(f"decay must be in (0, 1], got {decay}.")
    seen: set[int] = set()
    groups = [{"name": "head", "params": _trainable((p for _, m in head_modules(model) for p in m.parameters()), seen),
               "lr": lr, "weight_decay": weight_decay}]
    blocks = backbone_blocks(model)
    for depth, (name, m) in enumerate(reversed(blocks), start=1):
        groups.append({"name": name, "params": _trainable(m.parameters(), seen), "lr": lr * decay**depth,
                       "weight_decay": weight_decay})
    groups.append({"name": "(other)", "params": _trainable(model.parameters(), seen),
                   "lr": lr * decay ** (len(blocks) + 1), "weight_decay": weight_decay})
    return [g for g in groups if g["params"]]
