"""The split recipe: whole groups (people, source videos) to train, validation and test, seeded;
sides fixed in the manifest kept; a leak between sides refused.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepfake_detector.core.config import SplitParams
from deepfake_detector.core.errors import UserError

SPLITS = ("train", "val", "test")


class LeakageError(UserError, RuntimeError):
    """A group or a video sits on two sides of the split."""


class SplitError(UserError, ValueError):
    """The data cannot be split as asked (too few groups, conflicting fixed splits)."""


def assign_groups(groups: pd.DataFrame, params: SplitParams) -> dict[str, str]:
    """Map each group to a split: fixed splits from the manifest first, the rest by seeded shuffle.

    `groups` has one row per group with a `fixed` column ('' when the manifest set none).
    """
    fixed = {g: s for g, s in zip(groups["group"], groups["fixed"], strict=True) if s}
    free = sorted(g for g in groups["group"] if g not in fixed)
    order = np.random.default_rng(params.seed).permutation(len(free))
    shuffled = [free[i] for i in order]
    total = len(groups)
    targets = {name: getattr(params, name) * total for name in SPLITS}
    have = {name: sum(1 for s in fixed.values() if s == name) for name in SPLITS}
    assignment = dict(fixed)
    # Fill the split furthest below its target first, so small sets still get every side.
    for group in shuffled:
        name = max(SPLITS, key=lambda n: (targets[n] - have[n], -SPLITS.index(n)))
        assignment[group] = name
        have[name] += 1
    return assignment


def check_no_leakage(table: pd.DataFrame) -> None:
    """Fail loudly if any group or video appears in more than one split."""
    for column in ("group", "video_id"):
        sides = table.groupby(column)["split"].nunique()
        leaked = sorted(sides[sides > 1].index)
        if leaked:
            raise LeakageError(f"{column}s on more than one side of the split: {leaked[:10]}")


def split_faces(faces: pd.DataFrame, params: SplitParams) -> pd.DataFrame:
    """Return the faces table with its `split` column set group by group."""
    if faces.empty:
        raise SplitError("no faces to split: check the crop_faces report")
    fixed = faces.groupby("group")["split"].agg(lambda s: sorted(set(s) - {""}))
    conflicting = fixed[fixed.map(len) > 1]
    if not conflicting.empty:
        raise SplitError(
            f"groups with several fixed splits in the manifest: {list(conflicting.index)}"
        )
    unknown = {s for v in fixed for s in v} - set(SPLITS)
    if unknown:
        raise SplitError(f"unknown split names in the manifest: {sorted(unknown)}")
    groups = pd.DataFrame({"group": fixed.index, "fixed": [v[0] if v else "" for v in fixed]})
    sides = [name for name in SPLITS if getattr(params, name) > 0]
    if len(groups) < len(sides):
        raise SplitError(
            f"{len(groups)} group(s) cannot fill {', '.join(sides)}: need at least {len(sides)}"
        )
    assignment = assign_groups(groups, params)
    out = faces.copy()
    out["split"] = out["group"].map(assignment)
    check_no_leakage(out)
    return out


def own_fractions(params: SplitParams, extra: pd.DataFrame) -> SplitParams:
    """When other people's faces validate (an extra set with a `val_share`), none of the own
    groups is spent on validation: its share trains, so the model learns from every person
    that is not needed to test it."""
    if extra.empty or not (extra["split"] == "val").any():
        return params
    return params.model_copy(update={"train": params.train + params.val, "val": 0.0})
