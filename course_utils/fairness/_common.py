"""The order of group labels in every fairness table (labels themselves: :func:`course_utils.arrays.labels_1d`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def _order(g: np.ndarray, order: Sequence[Any] | None) -> list[Any]:
    present = pd.unique(g)
    if order is None:
        return sorted(present.tolist(), key=str)
    missing = [x for x in present if x not in set(order)]
    if missing:
        raise ValueError(f"groups {missing} are not in order={list(order)}.")
    return [x for x in order if x in set(present)]
