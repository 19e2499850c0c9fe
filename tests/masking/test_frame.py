from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_secure.masking import (
    DecisionCache,
    DetectionConfig,
    MaskingPolicy,
    NerSpan,
    Strategy,
    classify_columns,
    display_positions,
    mask_for_display,
    mask_frame,
    mask_text,
)

TODAY = date(2026, 1, 1)
KEY = bytes(range(32))
POLICY = MaskingPolicy()
RESTRICTED = ("instructor", "data_scientist", "student", "auditor", "viewer", "somebody-else")


def masked(
    frame: pd.DataFrame, role: str, policy: MaskingPolicy = POLICY, **kw: object
) -> pd.DataFrame:
    return mask_frame(frame, policy.for_role(role, key=KEY), today=TODAY, **kw).frame  # type: ignore[arg-type]


def test_input_is_never_mutated(frame: pd.DataFrame) -> None:
    before = frame.copy(deep=True)
    for role in ("admin", *RESTRICTED):
        masked(frame, role)
    pd.testing.assert_frame_equal(frame, before)


def test_admin_sees_raw_values_but_the_report_lists_them(frame: pd.DataFrame) -> None:
    result = mask_frame(frame, POLICY.for_role("admin", key=KEY), today=TODAY)
    pd.testing.assert_frame_equal(result.frame, frame)
    raw = {e.column for e in result.report.entries if e.strategy == "raw"}
    assert {"email", "ssn", "notes"} <= raw
    assert result.report.kanon is None


def test_role_outputs(frame: pd.DataFrame) -> None:
    row = 0
    ds = masked(frame, "data_scientist")
    assert ds["email"].iat[row].startswith("EMAIL_")
    assert ds["sex"].iat[row] == frame["sex"].iat[row]  # raw quasi-identifier (k-anonymised)
    assert ds["notes"].iat[row] == "[FREE_TEXT]"  # no NER model: whole (fail closed)
    assert ds["order_id"].iat[row] == frame["order_id"].iat[row]
    student = masked(frame, "student")
    assert student["email"].iat[row].split("@")[1].startswith("example.")
    assert student["ssn"].iat[row].startswith("987-65-432")
    auditor = masked(frame, "auditor")
    assert auditor["card_number"].iat[row] == "[CREDIT_CARD]"
    assert auditor["date_of_birth"].iat[row] == "[DATE_OF_BIRTH]"
    instructor = masked(frame, "instructor")
    assert instructor["card_number"].iat[row].endswith(frame["card_number"].iat[row][-4:])
    assert set(instructor["card_number"].iat[row][:-4]) == {"*"}


def test_tokens_join_across_frames(frame: pd.DataFrame) -> None:
    left = masked(frame[["email", "amount"]], "data_scientist")
    right = masked(frame[["email"]].iloc[::-1].reset_index(drop=True), "data_scientist")
    assert set(left["email"]) == set(right["email"])


def test_drop_suppress_and_column_overrides(frame: pd.DataFrame) -> None:
    policy = MaskingPolicy.from_mapping(
        {
            "roles": {"student": {"IBAN": "drop", "PHONE": "suppress"}},
            "columns": {"student": {"email": "partial"}},
        }
    )
    out = masked(frame, "student", policy)
    assert "iban" not in out.columns
    assert out["phone"].isna().all()
    assert out["email"].iat[0].endswith(frame["email"].iat[0].split("@")[1])


class WordNer:
    name = "test-ner"

    def find(self, text: str) -> list[NerSpan]:
        at = text.find("Customer ")
        return [NerSpan(at + 9, at + 13, "PERSON")] if at >= 0 else []


def test_free_text_spans_need_a_model_or_the_opt_in(frame: pd.DataFrame) -> None:
    with_model = MaskingPolicy(detection=DetectionConfig(ner=WordNer()))
    out = masked(frame[["notes"]], "data_scientist", with_model)
    note, original = out["notes"].iat[0], frame["notes"].iat[0]
    assert note not in ("[FREE_TEXT]", original)
    assert "PHONE_" in note or "PERSON_" in note
    opt_in = MaskingPolicy(detection=DetectionConfig(free_text_rules_only=True))
    assert masked(frame[["notes"]], "student", opt_in)["notes"].iat[0] != "[FREE_TEXT]"
    report = mask_frame(frame[["notes"]], POLICY.for_role("student", key=KEY), today=TODAY).report
    assert any("fail closed" in note for note in report.notes)


def test_stray_pii_in_unlabelled_text_columns_is_masked() -> None:
    frame = pd.DataFrame({"comment": ["fine", "mail ann.lee@example.org pls", "ok", "good"] * 3})
    out = masked(frame, "auditor")
    assert out["comment"].iat[1] == "mail [EMAIL] pls"
    assert out["comment"].iat[0] == "fine"


def test_index_and_labels_are_masked() -> None:
    frame = pd.DataFrame(
        {"ann.lee@example.org": [1, 2], "n": [3, 4]},
        index=pd.Index(["bob@example.org", "eve@example.org"], name="who"),
    )
    result = mask_frame(frame, POLICY.for_role("auditor"), today=TODAY)
    assert list(result.frame.index) == ["[EMAIL]", "[EMAIL]"]
    assert list(result.frame.columns) == ["[EMAIL]", "n"]
    assert all("example.org" not in e.column for e in result.report.entries)


def test_no_key_means_redaction_and_a_note(frame: pd.DataFrame) -> None:
    result = mask_frame(frame[["email"]], POLICY.for_role("data_scientist"), today=TODAY)
    assert result.frame["email"].iat[0] == "[EMAIL]"
    assert any("no token key" in n for n in result.report.notes)


def test_kanon_applies_to_visible_quasi_identifiers(frame: pd.DataFrame) -> None:
    result = mask_frame(frame, POLICY.for_role("data_scientist", key=KEY), today=TODAY)
    assert result.report.kanon is not None
    assert "k=5" in result.report.kanon
    qi = result.frame[["postcode", "date_of_birth", "sex"]].astype(str)
    shown = qi[(qi != "*").any(axis=1)]  # rows whose quasi-identifiers were not all suppressed
    assert shown.value_counts().min() >= 5


def test_mask_for_display_renders_head_and_tail_with_cache(frame: pd.DataFrame) -> None:
    cache = DecisionCache()
    role = POLICY.for_role("data_scientist", key=KEY)
    first = mask_for_display(frame, role, max_rows=60, min_rows=10, cache=cache, today=TODAY)
    again = mask_for_display(frame, role, max_rows=60, min_rows=10, cache=cache, today=TODAY)
    assert list(first.frame.index) == [0, 1, 2, 3, 4, 395, 396, 397, 398, 399]
    assert first.report.cache == {"classification": False, "k_anonymity": False}
    assert again.report.cache == {"classification": True, "k_anonymity": True}
    pd.testing.assert_frame_equal(first.frame, again.frame)
    full = mask_frame(frame, role, today=TODAY).frame
    pd.testing.assert_frame_equal(first.frame, full.iloc[display_positions(400, 60, 10)])


def test_mask_text(key: bytes) -> None:
    result = mask_text(
        "mail ann.lee@example.org or call (415) 555-0132", POLICY.for_role("auditor")
    )
    assert result.text == "mail [EMAIL] or call [PHONE]"
    assert result.counts == {"EMAIL": 1, "PHONE": 1}


def test_rejects_non_frames() -> None:
    with pytest.raises(TypeError, match="DataFrame"):
        mask_frame(pd.Series([1]), POLICY.for_role("admin"))  # type: ignore[arg-type]


# -- property tests ---------------------------------------------------------------------------

PII_VALUES = [
    "ann.lee@example.org", "bob@example.net", "(415) 555-0132", "+44 20 7946 0958",
    "536-22-1234", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00", "81.2.69.142",
    "Dr. Maria Schmidt", "John Smith", "221 Baker Street", "90210", "SW1A 1AA", "F", "M",
]  # fmt: skip
labels = st.one_of(
    st.sampled_from(["email", "phone", "ssn", "name", "zip", "notes", "id", "sex", "dob", "x"]),
    st.integers(-3, 3),
    st.none(),
    st.text(max_size=8),
)


_ATOMS = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=10),
    st.floats(),
    st.sampled_from(PII_VALUES),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
_DATES = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1))
_KINDS: dict[str, tuple[st.SearchStrategy[object], object]] = {
    "pii": (st.one_of(st.none(), st.sampled_from(PII_VALUES)), object),
    "text": (st.one_of(st.none(), st.text(max_size=30)), None),
    "int": (st.integers(-(2**62), 2**62), "int64"),
    "float": (st.floats(allow_nan=True), "float64"),
    "bool": (st.booleans(), bool),
    "object": (_ATOMS, object),
    "category": (st.one_of(st.none(), st.sampled_from(PII_VALUES)), "category"),
    "datetime": (st.one_of(st.none(), _DATES), "datetime64[ns]"),
    "long": (st.sampled_from(["x" * 20_000, "ann@example.org " * 500, "a"]), None),
}


@st.composite
def columns(draw: st.DrawFn, n: int) -> pd.Series:
    """One column of ``n`` values of a random kind (mixed objects, NaN, categoricals...)."""
    elements, dtype = _KINDS[draw(st.sampled_from(sorted(_KINDS)))]
    values = draw(st.lists(elements, min_size=n, max_size=n))
    return pd.Series(values, dtype=dtype)  # type: ignore[arg-type]


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 12))
    width = draw(st.integers(0, 5))
    data = [draw(columns(n)) for _ in range(width)]
    multi = draw(st.booleans())
    if multi and width:
        names = pd.MultiIndex.from_tuples([(f"g{i % 2}", draw(labels)) for i in range(width)])
    else:
        names = pd.Index([draw(labels) for _ in range(width)], dtype=object)
    frame = pd.concat(data, axis=1) if data else pd.DataFrame(index=range(n))
    frame.columns = names if width else frame.columns
    if draw(st.booleans()) and n:
        frame.index = pd.Index(
            draw(st.lists(st.sampled_from([*PII_VALUES, "a", "b"]), min_size=n, max_size=n))
        )
    return frame


def _same(a: object, b: object) -> bool:
    return str(a) == str(b)


@given(frames(), st.sampled_from(("admin", *RESTRICTED)))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mask_frame_never_raises_and_never_leaks(frame: pd.DataFrame, role: str) -> None:
    policy = POLICY.for_role(role, key=KEY)
    result = mask_frame(frame, policy, today=TODAY)
    out = result.frame
    assert result.report.rows_in == len(frame) == len(out)
    if not policy.restricted:
        return
    decisions = classify_columns(frame, policy.detection, today=TODAY)
    kept = [
        d
        for d in decisions
        if policy.strategy_for(d.entity or "", d.name) is not Strategy.DROP or d.entity is None
    ]
    positions = {d.position: i for i, d in enumerate(kept)}
    for d in decisions:
        if d.entity is None:
            continue
        strategy = policy.strategy_for(d.entity, d.name)
        if strategy in (Strategy.RAW, Strategy.DROP):
            continue
        for row in range(len(frame)):
            original = frame.iat[row, d.position]
            if not isinstance(original, (list, dict)) and pd.isna(original):
                continue
            shown = out.iat[row, positions[d.position]]
            assert shown is None or not _same(shown, original), (d.entity, strategy, original)


@given(frames())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_report_never_contains_values(frame: pd.DataFrame) -> None:
    import json

    report = mask_frame(frame, POLICY.for_role("auditor"), today=TODAY).report
    dumped = json.dumps(report.to_dict(), default=str)
    for value in PII_VALUES:
        if len(value) > 3:
            assert value not in dumped


def test_display_positions_follow_pandas() -> None:
    frame = pd.DataFrame({"a": np.arange(100)})
    with pd.option_context("display.max_rows", 60, "display.min_rows", 10):
        text = frame.to_string(max_rows=60, min_rows=10)
    shown = [int(line.split()[0]) for line in text.splitlines()[1:] if line.split()[0].isdigit()]
    assert shown == display_positions(100, 60, 10).tolist()
