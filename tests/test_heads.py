"""course_utils.pretrained.heads: the UTKFace <-> FairFace race correspondence (no face models needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from course_utils.data import FAIRFACE_RACES, UTKFACE_RACES
from course_utils.pretrained import UTKFACE_TO_FAIRFACE_RACE as REEXPORTED
from course_utils.pretrained.heads import UTKFACE_TO_FAIRFACE_RACE, shared_race_labels


def _by_loop(races: list[str], source: str) -> list[str]:
    out = []
    for r in races:
        label = ""
        for utk, fairface_groups in UTKFACE_TO_FAIRFACE_RACE.items():
            if (source == "utkface" and r == utk) or (source == "fairface" and r in fairface_groups):
                label = utk
        out.append(label)
    return out


def test_the_mapping_names_only_real_categories_and_leaves_the_residual_ones_out() -> None:
    assert REEXPORTED is UTKFACE_TO_FAIRFACE_RACE
    assert set(UTKFACE_TO_FAIRFACE_RACE) == set(UTKFACE_RACES) - {"Others"}
    covered = [g for groups in UTKFACE_TO_FAIRFACE_RACE.values() for g in groups]
    assert len(covered) == len(set(covered)) and set(covered) <= set(FAIRFACE_RACES)
    assert set(FAIRFACE_RACES) - set(covered) == {"Latino_Hispanic", "Middle Eastern"}


@pytest.mark.parametrize("source, vocabulary", [("utkface", UTKFACE_RACES), ("fairface", FAIRFACE_RACES)])
def test_shared_race_labels_match_an_explicit_loop(source: str, vocabulary: tuple[str, ...]) -> None:
    races = list(np.random.default_rng(0).choice(list(vocabulary), size=200))
    got = shared_race_labels(races, source=source)
    assert got.dtype == object and got.shape == (200,)
    assert got.tolist() == _by_loop(races, source)
    # categoricals and 2-D input keep their shape
    assert shared_race_labels(pd.Categorical(races), source=source).tolist() == got.tolist()
    assert shared_race_labels(np.array(races).reshape(20, 10), source=source).shape == (20, 10)


def test_shared_race_labels_by_hand_and_errors() -> None:
    fairface = ["East Asian", "Southeast Asian", "Latino_Hispanic", "Black", "Middle Eastern", "Indian", "White"]
    assert shared_race_labels(fairface, source="fairface").tolist() == ["Asian", "Asian", "", "Black", "", "Indian",
                                                                         "White"]
    assert shared_race_labels(["Others", "Asian", "White"], source="utkface").tolist() == ["", "Asian", "White"]
    assert shared_race_labels(["Asian"], source="fairface").tolist() == [""]  # not a FairFace group
    with pytest.raises(ValueError, match="source"):
        shared_race_labels(["White"], source="lfw")  # type: ignore[arg-type]
