"""split_dataset: whole groups per side, deterministic, fixed splits honoured, leakage caught."""

from __future__ import annotations

import pandas as pd
import pytest

from deepfake_detector.core.config import SplitParams
from deepfake_detector.recipes.splitting import (
    LeakageError,
    SplitError,
    check_no_leakage,
    split_faces,
)


def faces(n_groups: int, fixed: dict[str, str] | None = None) -> pd.DataFrame:
    rows = []
    for g in range(n_groups):
        for label in ("real", "fake"):
            for frame in range(3):
                video = f"g{g}_{label}"
                rows.append(
                    {
                        "video_id": video,
                        "frame_index": frame,
                        "file": f"{video}/{frame}.jpg",
                        "label": label,
                        "group": f"g{g}",
                        "split": (fixed or {}).get(f"g{g}", ""),
                    }
                )
    return pd.DataFrame(rows)


def test_no_group_on_two_sides_and_fractions_roughly_kept() -> None:
    table = split_faces(faces(20), SplitParams())
    sides = table.groupby("group")["split"].nunique()
    assert (sides == 1).all()
    per_split = table.groupby("split")["group"].nunique().to_dict()
    assert per_split == {"train": 12, "val": 4, "test": 4}
    check_no_leakage(table)


def test_deterministic_and_seed_dependent() -> None:
    a = split_faces(faces(20), SplitParams(seed=1))
    b = split_faces(faces(20), SplitParams(seed=1))
    c = split_faces(faces(20), SplitParams(seed=2))
    assert a.equals(b)
    assert not a["split"].equals(c["split"])


def test_fixed_splits_from_the_manifest_are_kept() -> None:
    table = split_faces(faces(10, {"g3": "test", "g4": "test"}), SplitParams())
    assert set(table.loc[table["group"].isin(["g3", "g4"]), "split"]) == {"test"}
    assert table.groupby("split")["group"].nunique()["test"] == 2


def test_too_few_groups_or_conflicting_fixed_splits_fail_clearly() -> None:
    with pytest.raises(SplitError, match="at least 3"):
        split_faces(faces(2), SplitParams())
    bad = faces(5)
    bad.loc[(bad["group"] == "g1") & (bad["label"] == "real"), "split"] = "train"
    bad.loc[(bad["group"] == "g1") & (bad["label"] == "fake"), "split"] = "test"
    with pytest.raises(SplitError, match="several fixed splits"):
        split_faces(bad, SplitParams())


def test_leakage_check_fails_loudly() -> None:
    table = split_faces(faces(6), SplitParams())
    table.loc[table.index[0], "split"] = (
        "test" if table.loc[table.index[0], "split"] != "test" else "train"
    )
    with pytest.raises(LeakageError, match="on more than one side"):
        check_no_leakage(table)


def test_fractions_must_sum_to_one() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        SplitParams(train=0.7, val=0.2, test=0.2)
