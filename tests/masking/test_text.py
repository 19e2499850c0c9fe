from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from jupyter_secure.masking import (
    CustomIdentifier,
    DetectionConfig,
    Entity,
    NerSpan,
    scan_text,
)


def found(text: str, config: DetectionConfig | None = None, **kw: object) -> list[tuple[str, str]]:
    return [(text[s.start : s.end], s.entity) for s in scan_text(text, config, **kw)]


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        ("write to ann.lee@example.org today", "ann.lee@example.org", "EMAIL"),
        ("call (415) 555-0132 now", "(415) 555-0132", "PHONE"),
        ("call +44 20 7946 0958 now", "+44 20 7946 0958", "PHONE"),
        ("Voicemail from (715)947-7338x0151: please call back", "(715)947-7338x0151", "PHONE"),
        ("ssn 536-22-1234 on file", "536-22-1234", "US_SSN"),
        ("card 4111 1111 1111 1111 declined", "4111 1111 1111 1111", "CREDIT_CARD"),
        ("paid with card 4111111111111111", "4111111111111111", "CREDIT_CARD"),
        ("IBAN DE89 3704 0044 0532 0130 00 AND MORE", "DE89 3704 0044 0532 0130 00", "IBAN"),
        ("from 81.2.69.142 at noon", "81.2.69.142", "IP_ADDRESS"),
        ("from 2001:db8:85a3::8a2e:370:7334 at noon", "2001:db8:85a3::8a2e:370:7334", "IP_ADDRESS"),
        ("born March 7, 1985 in Ohio", "March 7, 1985", "DATE_OF_BIRTH"),
        ("DOB 07/03/1985.", "07/03/1985", "DATE_OF_BIRTH"),
        ("met Anna Schmidt yesterday", "Anna Schmidt", "PERSON"),
        ("ask Dr. John Smith MD about it", "Dr. John Smith MD", "PERSON"),
        (
            "moved to 221 Baker Street, London, NW1 6XE.",
            "221 Baker Street, London, NW1 6XE",
            "STREET_ADDRESS",
        ),
        ("wohnt Hauptstraße 5, 10115 Berlin", "Hauptstraße 5, 10115 Berlin", "STREET_ADDRESS"),
        (
            "habite 12, rue de la Paix, 75002 Paris",
            "12, rue de la Paix, 75002 Paris",
            "STREET_ADDRESS",
        ),
        ("new zip code 90210", "90210", "POSTCODE"),
        ("office SW1A 1AA", "SW1A 1AA", "POSTCODE"),
    ],
)
def test_known_spans(text: str, value: str, entity: str) -> None:
    assert (value, entity) in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "order 536221234 shipped",  # nine bare digits are not an SSN without context
        "order 4111111111111111 shipped",  # nor sixteen a card
        "batch 90210 done",  # nor five a ZIP
        "total 1234.56 on 2024-01-05 12:30:45",  # decimals and timestamps
        "version 1.2.3 released",
        "The meeting in May was fine.",
        "ticket 1740347704 closed after 3 days",
    ],
)
def test_numbers_without_context_are_not_pii(text: str) -> None:
    assert found(text) == []


def test_context_word_must_precede_or_follow_in_the_same_sentence() -> None:
    assert found("SSN: 536221234") == [("536221234", "US_SSN")]
    assert found("contract 6379252935. Call us later.") == []


def test_label_before_a_number_beats_context() -> None:
    assert found("call about order 6379252935") == []


def test_header_hint_makes_bare_digits_count() -> None:
    assert found("536221234", hint="ssn") == [("536221234", "US_SSN")]
    assert found("90210", hint="zip_code") == [("90210", "POSTCODE")]
    assert found("1985-03-07", hint="date_of_birth") == [("1985-03-07", "DATE_OF_BIRTH")]


def test_printed_table_of_ids_and_amounts_is_clean() -> None:
    frame = pd.DataFrame(
        {
            "order_id": [123456789012, 223456789, 4111111111111111],
            "batch": ["04521", "99999", "00001"],
            "amount": [12.5, 1234.56, 0.01],
            "created": pd.to_datetime(
                ["2024-01-01 10:00:00", "2024-02-03 11:12:13", "2025-12-31 00:00:01"]
            ),
        }
    )
    assert found(frame.to_string()) == []


def test_allow_and_deny_lists() -> None:
    config = DetectionConfig(
        allow_values=frozenset({"support@example.org"}),
        deny_terms={"PERSON": ("Project Falcon",)},
    )
    text = "mail support@example.org or bob@example.org about Project Falcon"
    assert found(text, config) == [("bob@example.org", "EMAIL"), ("Project Falcon", "PERSON")]


def test_custom_identifier_with_validator_and_context() -> None:
    mrn = CustomIdentifier(
        "MRN", r"(?<!\d)\d{7}(?!\d)", validator="luhn", context_words=("mrn",),
        requires_context=True,
    )  # fmt: skip
    config = DetectionConfig(custom=(mrn,))
    assert found("MRN 1234567", config) == []  # fails Luhn
    assert found("MRN 1234566", config) == [("1234566", "MRN")]
    assert found("lot 1234566", config) == []  # no context
    assert found("1234566", config, hint="mrn") == []  # hint only via header_hints
    hinted = DetectionConfig(custom=(CustomIdentifier(
        "MRN", r"(?<!\d)\d{7}(?!\d)", validator="luhn", header_hints=("mrn",),
        requires_context=True,
    ),))  # fmt: skip
    assert found("1234566", hinted, hint="patient_mrn") == [("1234566", "MRN")]


def test_country_packs_are_off_unless_enabled() -> None:
    text = "NHS number 943 476 5919, NINO AB 12 34 56 C"
    assert found(text) == []
    on = DetectionConfig(country_packs=frozenset({"uk"}))
    entities = {e for _, e in found(text, on)}
    assert {"UK_NHS_NUMBER", "UK_NINO"} <= entities


class FakeNer:
    """A stand-in model: reports one span per occurrence of a fixed word."""

    name = "fake-ner"

    def __init__(self, word: str, entity: str) -> None:
        self.word = word
        self.entity = entity

    def find(self, text: str) -> list[NerSpan]:
        at = text.find(self.word)
        spans = [NerSpan(at, at + len(self.word), self.entity, 0.95)] if at >= 0 else []
        return [*spans, NerSpan(-1, 3, "PERSON"), NerSpan(0, 2, "NOT_AN_ENTITY")]


def test_ner_plugin_spans_are_merged_and_checked() -> None:
    config = DetectionConfig(ner=FakeNer("Zorblax", "PERSON"))
    assert found("we met Zorblax today", config) == [("Zorblax", "PERSON")]
    assert [s.rule for s in scan_text("we met Zorblax today", config)] == ["ner: fake-ner"]


def test_entities_filter_and_plain_strings() -> None:
    spans = scan_text("ann@example.org 536-22-1234", entities=["US_SSN"])
    assert [s.entity for s in spans] == ["US_SSN"]
    assert type(spans[0].entity) is str


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_scan_text_never_raises_and_spans_are_sane(text: str) -> None:
    spans = scan_text(text)
    last_end = 0
    known = {e.value for e in Entity}
    for span in spans:
        assert 0 <= span.start < span.end <= len(text)
        assert span.start >= last_end
        assert span.entity in known
        last_end = span.end


@given(
    st.lists(
        st.sampled_from(
            [
                "ann.lee@example.org",
                "536-22-1234",
                "4111 1111 1111 1111",
                "81.2.69.142",
                "DE89 3704 0044 0532 0130 00",
                "order",
                "1234.56",
                "2024-01-01",
                "Mr.",
                "Smith",
                "\n",
                "  ",
                ",",
                "(",
                "+44 20 7946 0958",
                "Baker Street",
                "221",
            ]
        ),
        max_size=30,
    )
)
@example(["DE89 3704 0044 0532 0130 00", "536-22-1234", "536-22-1234", "4111 1111 1111 1111"])
@settings(max_examples=200, deadline=None)
def test_structured_values_are_found_anywhere(parts: list[str]) -> None:
    text = " ".join(parts)
    spans = scan_text(text)
    for value in ("ann.lee@example.org", "536-22-1234", "4111 1111 1111 1111", "81.2.69.142"):
        at = text.find(value)
        if at >= 0:
            assert any(s.start <= at and at + len(value) <= s.end for s in spans), value
