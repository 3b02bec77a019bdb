"""Who a real face belongs to, where a set names it: UTKFace's `age_gender_race_date` file names.

Error rates by group need people labelled by age, gender and race, and not used in training:
UTKFace names each crop `age_gender_race_date.jpg` (gender 0 male, 1 female; race 0 White,
1 Black, 2 Asian, 3 Indian, 4 Others). Read from a video id (`utkface:<file stem>`) or a name.
"""

from __future__ import annotations

import re

AGE_BANDS = ((0, 12, "0-12"), (13, 19, "13-19"), (20, 39, "20-39"), (40, 59, "40-59"))
OLDEST = "60+"
GENDERS = {"0": "male", "1": "female"}
RACES = {"0": "White", "1": "Black", "2": "Asian", "3": "Indian", "4": "Others"}
ATTRIBUTES = ("age_band", "gender", "race")
_NAME = re.compile(r"(?:^|[:/])(\d{1,3})_([01])_([0-4])_\d+")


def age_band(age: int) -> str:
    """The band of an age in years."""
    for low, high, name in AGE_BANDS:
        if low <= age <= high:
            return name
    return OLDEST


def utkface_attributes(name: str) -> dict[str, str] | None:
    """Age band, gender and race from a UTKFace name or a video id holding one; else None."""
    match = _NAME.search(str(name))
    if match is None:
        return None
    age, gender, race = match.groups()
    return {"age_band": age_band(int(age)), "gender": GENDERS[gender], "race": RACES[race]}
