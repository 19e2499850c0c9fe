from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from jupyter_secure.masking import DetectionConfig, classify_columns
from jupyter_secure.masking import columns as columns_module

TODAY = date(2026, 1, 1)


def labels(frame: pd.DataFrame, config: DetectionConfig | None = None) -> dict[str, str | None]:
    return {d.name: d.entity for d in classify_columns(frame, config, today=TODAY)}


def test_sixteen_columns(frame: pd.DataFrame, expected: dict[str, str | None]) -> None:
    assert labels(frame) == expected


def test_hidden_headers_only_lose_what_needs_a_hint(frame: pd.DataFrame) -> None:
    hidden = frame.copy()
    hidden.columns = [f"c{i:02d}" for i in range(frame.shape[1])]
    decisions = classify_columns(hidden, today=TODAY)
    got = dict(zip(frame.columns, (d.entity for d in decisions), strict=True))
    assert got["email"] == "EMAIL"
    assert got["card_number"] == "CREDIT_CARD"
    assert got["order_id"] is None
    assert got["batch_id"] is None
    assert got["postcode"] is None  # bare digits need a header hint...
    postcode = decisions.columns[list(frame.columns).index("postcode")]
    assert any("postcode shape" in note for note in postcode.review)  # ...and say so


def test_evidence_carries_no_values(frame: pd.DataFrame) -> None:
    cells = {str(v) for col in frame.columns for v in frame[col].head(50).tolist()}
    for decision in classify_columns(frame, today=TODAY):
        for sentence in (*decision.evidence, *decision.review):
            assert not any(cell in sentence for cell in cells if len(cell) > 3), sentence


def test_header_hint_without_support_is_reviewed() -> None:
    frame = pd.DataFrame({"email": ["n/a", "unknown", "none given", "-"] * 5})
    (decision,) = classify_columns(frame, today=TODAY).columns
    assert decision.entity is None
    assert any("column name suggests EMAIL" in note for note in decision.review)


def test_dtype_rules() -> None:
    frame = pd.DataFrame(
        {
            "phone": [4155550132.0, 4155550133.0, np.nan],  # floats never hold identifiers
            "is_customer": [True, False, True],
            "zip": [2134, 90210, 10001],  # integers with a hint
            "age": [34, 51, 27],
            "card": [4111111111111111, 5555555555554444, 378282246310005],  # Luhn, no hint needed
            "count": [1, 2, 3],
        }
    )
    got = labels(frame)
    assert got == {
        "phone": None,
        "is_customer": None,
        "zip": "POSTCODE",
        "age": "AGE",
        "card": "CREDIT_CARD",
        "count": None,
    }
    phone = classify_columns(frame, today=TODAY).columns[0]
    assert any("float" in note for note in phone.review)


def test_birth_dates_need_a_hint_but_are_flagged_for_review() -> None:
    dob = pd.to_datetime(["1950-01-02", "1970-05-06", "1990-07-08", "2001-09-10"] * 3)
    assert labels(pd.DataFrame({"dob": dob})) == {"dob": "DATE_OF_BIRTH"}
    (decision,) = classify_columns(pd.DataFrame({"d": dob}), today=TODAY).columns
    assert decision.entity is None
    assert any("birth dates?" in note for note in decision.review)


def test_overrides_pin_or_clear_a_column(frame: pd.DataFrame) -> None:
    config = DetectionConfig(column_entities={"order_id": "US_SSN", "email": None})
    got = labels(frame[["order_id", "email"]], config)
    assert got == {"order_id": "US_SSN", "email": None}


def test_classification_failure_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_args: object, **_kwargs: object) -> object:
        raise RuntimeError("detector bug")

    monkeypatch.setattr(columns_module, "_decide", boom)
    (decision,) = classify_columns(pd.DataFrame({"x": ["a"]}), today=TODAY).columns
    assert decision.entity == "UNCLASSIFIED"
    assert "RuntimeError" in decision.evidence[0]


def test_odd_frames() -> None:
    assert len(classify_columns(pd.DataFrame(), today=TODAY)) == 0
    frame = pd.DataFrame(
        [["ann@example.org", 1]], columns=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)])
    )
    assert [d.name for d in classify_columns(frame, today=TODAY)] == ["a / 1", "b / 2"]
    dup = pd.DataFrame([["ann@example.org", "bob@example.org"]] * 3, columns=["x", "x"])
    assert [d.entity for d in classify_columns(dup, today=TODAY)] == ["EMAIL", "EMAIL"]
    cats = pd.DataFrame({"sex": pd.Categorical(["F", "M", "F", None])})
    assert labels(cats) == {"sex": "SEX"}


def test_index_levels_are_classified() -> None:
    frame = pd.DataFrame(
        {"n": [1, 2]}, index=pd.Index(["ann@example.org", "bob@example.org"], name="who")
    )
    result = classify_columns(frame, today=TODAY)
    assert [d.entity for d in result.index] == ["EMAIL"]
