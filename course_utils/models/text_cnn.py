"""Kim's (2014) sentence CNN: convolutions over a sequence of embeddings.

Y. Kim, "Convolutional Neural Networks for Sentence Classification", EMNLP
2014. A sequence of ``L`` tokens becomes a ``D x L`` "image" of height ``D``
(the embedding) and one row per position; filters of several widths ``k``
slide along the sequence only (a ``Conv1d`` over channels ``D``, the same as
a ``Conv2d`` with kernel ``(k, 1)`` on an image of width 1), each filter's
response is reduced by **max-over-time pooling** to one number (is the
pattern anywhere in the sequence?), and a linear layer classifies the
concatenated maxima. Here the tokens are characters, so each filter is a
learned detector of a ``k``-gram of letters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from course_utils.models.blocks import LayerFactory

__all__ = ["KimTextCNN"]


class KimTextCNN(nn.Module):
    """Embedding -> parallel ``Conv1d`` of widths ``widths`` -> max over time -> dropout -> linear.

    Args:
        vocab_size: number of token indices (index 0 is padding).
        num_classes: outputs of the classifier (0: no classifier, features only).
        embed_dim: ``D``, the embedding size (the "height" of the sequence image).
        widths: filter widths in tokens (Kim used 3, 4, 5 on words).
        channels: filters per width.
        dropout: on the pooled features, before the classifier.
        act_layer: the non-linearity after each convolution.

    Shapes: input ``(N, L)`` int64 with ``L >= max(widths)``; features
    ``(N, channels * len(widths))``; logits ``(N, num_classes)``.
    """

    def __init__(self, vocab_size: int, *, num_classes: int, embed_dim: int = 32,
                 widths: Sequence[int] = (2, 3, 4, 5), channels: int = 64, dropout: float = 0.5,
                 act_layer: LayerFactory = nn.ReLU) -> None:
        super().__init__()
        self.widths = tuple(int(k) for k in widths)
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, channels, kernel_size=k) for k in self.widths)
        self.act = act_layer()
        self.num_features = channels * len(self.widths)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def sequence_image(self, tokens: Tensor) -> Tensor:
        """The embedded sequence as the convolutions see it: ``(N, D, L)``."""
        return self.embed(tokens).transpose(1, 2)

    def feature_maps(self, tokens: Tensor) -> list[Tensor]:
        """Each width's activations along the sequence: ``[(N, channels, L - k + 1) for k in widths]``."""
        x = self.sequence_image(tokens)
        return [self.act(conv(x)) for conv in self.convs]

    def forward_features(self, tokens: Tensor) -> Tensor:
        """Max-over-time pooled responses of every filter: ``(N, channels * len(widths))``."""
        return torch.cat([m.amax(dim=2) for m in self.feature_maps(tokens)], dim=1)

    def forward_head(self, features: Tensor, *, pre_logits: bool = False) -> Tensor:
        features = self.drop(features)
        return features if pre_logits else self.head(features)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(tokens))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier (0 removes it)."""
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
