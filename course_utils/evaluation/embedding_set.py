"""A set of embeddings with what is known about each image: vectors, labels, group attributes.

Build one from the outputs of :func:`course_utils.train.predict`::

    emb = EmbeddingSet.from_predictions(predict(net, test_set, device="cpu"), name="net")
    emb.vectors  # (N, D)
    emb.labels   # (N,)
    emb.groups   # one row per image: the data set's group attributes
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from course_utils.train import Predictions

__all__ = ["EmbeddingSet"]


@dataclass(frozen=True)
class EmbeddingSet:
    """Embeddings with what is known about each image.

    Attributes:
        vectors: float32 ``(N, D)``.
        labels: int64 ``(N,)`` (identities or classes).
        groups: one row per image: the data set's group attributes (may have no columns).
        name: what produced them (a model name), for tables and titles.
    """

    vectors: np.ndarray
    labels: np.ndarray
    groups: pd.DataFrame = field(default_factory=pd.DataFrame)
    name: str = ""

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.labels.shape != (self.vectors.shape[0],):
            raise ValueError(f"EmbeddingSet: vectors (N, D) and labels (N,) expected; got "
                             f"{self.vectors.shape} and {self.labels.shape}.")
        if len(self.groups) not in (0, len(self.labels)) or (len(self.groups) == 0 and len(self.groups.columns)):
            raise ValueError(f"EmbeddingSet: groups has {len(self.groups)} rows; expected {len(self.labels)}.")

    @classmethod
    def from_predictions(cls, predictions: Predictions, *, name: str = "") -> EmbeddingSet:
        """The embeddings :func:`~course_utils.train.predict` computed, with their labels and groups.

        Feature maps ``(N, C, H, W)`` are average-pooled to ``(N, C)``; the
        groups are the data set's ``group_columns`` of its ``attributes`` (all
        of them when it names none), or no columns when it has none.

        Raises:
            ValueError: the data set gave no labels (its batches must be ``(images, labels, ...)``).
        """
        vectors = predictions.outputs
        vectors = vectors.mean(dim=(2, 3)) if vectors.ndim == 4 else vectors
        if predictions.targets is None:
            raise ValueError("EmbeddingSet.from_predictions: the data gave no labels; "
                             "it must yield (images, labels) batches.")
        n = int(vectors.shape[0])
        frame = predictions.attributes
        if frame is None:
            groups = pd.DataFrame(index=pd.RangeIndex(n))
        else:
            groups = frame.loc[:, list(predictions.group_columns) or list(frame.columns)].reset_index(drop=True)
        return cls(vectors.float().numpy(), predictions.targets.numpy().astype(np.int64), groups, name)

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        """D, the embedding size."""
        return int(self.vectors.shape[1])

    def subset(self, indices: Any) -> EmbeddingSet:
        """The rows ``indices`` (an index array or a boolean mask)."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        groups = self.groups.iloc[idx].reset_index(drop=True) if len(self.groups) else self.groups
        return EmbeddingSet(self.vectors[idx], self.labels[idx], groups, self.name)

    def normalized(self) -> EmbeddingSet:
        """The same set with unit-norm rows (cosine similarity becomes a dot product)."""
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        return EmbeddingSet((self.vectors / np.maximum(norms, 1e-12)).astype(np.float32), self.labels, self.groups,
                            self.name)
