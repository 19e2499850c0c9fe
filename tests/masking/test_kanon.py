from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_secure.masking import QuasiColumn, generalize, plan_k_anonymity
from jupyter_secure.masking.kanon import class_sizes, level_codes


def partition(codes: np.ndarray) -> list[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for row, code in enumerate(codes.tolist()):
        groups.setdefault(code, set()).add(row)
    return sorted((frozenset(g) for g in groups.values()), key=min)


def reference(values: list[object], entity: str, level: int) -> list[frozenset[int]]:
    keys = ["<NA>" if pd.isna(v) else generalize(v, entity, level) for v in values]
    return partition(np.array(pd.factorize(np.array(keys, dtype=object))[0]))


zips = st.lists(st.one_of(st.none(), st.from_regex(r"[0-9A-Z ]{3,8}", fullmatch=True)), max_size=30)
ages = st.lists(st.one_of(st.none(), st.integers(-5, 130)), max_size=30)
dobs = st.lists(
    st.one_of(st.none(), st.datetimes(min_value=pd.Timestamp("1900-01-01").to_pydatetime(),
                                       max_value=pd.Timestamp("2030-01-01").to_pydatetime())),
    max_size=30,
)  # fmt: skip


@given(zips, st.integers(0, 3))
@settings(max_examples=80, deadline=None)
def test_postcode_codes_partition_like_generalize(values: list[object], level: int) -> None:
    series = pd.Series(values, dtype="str")
    assert partition(level_codes(series, "POSTCODE", level)) == reference(
        series.tolist(), "POSTCODE", level
    )


@given(ages, st.integers(0, 4))
@settings(max_examples=80, deadline=None)
def test_age_codes_partition_like_generalize(values: list[object], level: int) -> None:
    series = pd.Series(values, dtype="Float64")
    assert partition(level_codes(series, "AGE", level)) == reference(series.tolist(), "AGE", level)


@given(dobs, st.integers(0, 4))
@settings(max_examples=80, deadline=None)
def test_birth_date_codes_partition_like_generalize(values: list[object], level: int) -> None:
    series = pd.Series(pd.to_datetime(values))
    assert partition(level_codes(series, "DATE_OF_BIRTH", level)) == reference(
        series.tolist(), "DATE_OF_BIRTH", level
    )


def test_class_sizes() -> None:
    sizes = class_sizes([np.array([0, 0, 1, 1, 1]), np.array([0, 1, 0, 0, 0])])
    assert sizes.tolist() == [1, 1, 3, 3, 3]


def test_plan_generalises_then_suppresses() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "zip": [f"{z:05d}" for z in rng.integers(10000, 99999, 400)],
            "dob": pd.to_datetime(rng.integers(0, 20000, 400), unit="D", origin="1950-01-01"),
            "sex": rng.choice(["F", "M"], 400),
        }
    )
    columns = [
        QuasiColumn(0, "zip", "POSTCODE", 1),
        QuasiColumn(1, "dob", "DATE_OF_BIRTH", 1),
        QuasiColumn(2, "sex", "SEX", 0),
    ]
    plan = plan_k_anonymity(frame, columns, k=5, max_suppression=0.05)
    assert plan.min_class_before < 5
    assert plan.min_class_after >= 5
    assert plan.suppressed_rows <= 20
    assert max(plan.levels.values()) > 1
    text = plan.describe()
    assert "k=5" in text
    assert "zip" in text
    assert not any(z in text for z in frame["zip"])


def test_plan_on_satisfied_and_empty_frames() -> None:
    frame = pd.DataFrame({"sex": ["F", "M"] * 10})
    plan = plan_k_anonymity(frame, [QuasiColumn(0, "sex", "SEX", 0)], k=5, max_suppression=0.0)
    assert plan.levels == {0: 0}
    assert plan.suppressed_rows == 0
    assert "already satisfied" in plan.describe()
    empty = plan_k_anonymity(
        frame.iloc[:0], [QuasiColumn(0, "sex", "SEX", 0)], k=5, max_suppression=0
    )
    assert empty.suppressed_rows == 0
