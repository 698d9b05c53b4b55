"""Helpers shared by the transfer modules: the classification loss and seeded generators."""

from __future__ import annotations

import torch
from torch import nn

from course_utils.metric_learning.losses import LabelSmoothingCrossEntropy


def _loss(label_smoothing: float) -> nn.Module:
    return LabelSmoothingCrossEntropy(label_smoothing) if label_smoothing > 0 else nn.CrossEntropyLoss()


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g
