"""Printed Python and JSON containers: quotes, brackets and commas are never part of a span.

``print(emails)`` writes ``['ann.lee@example.org', 'bob@example.net']``; a span
that starts at the opening quote (or ends at the closing one) makes the masked
text lose that quote and breaks the repr. Each value of a printed list, tuple,
dict, set or JSON document must be found exactly, and masking must keep the
container readable.
"""

from __future__ import annotations

import ast
import json
import re

import pandas as pd
import pytest

from jupyter_secure.masking import MaskingPolicy, mask_frame, mask_text, scan_text

KEY = bytes(range(32))

VALUES = {
    "EMAIL": ["ann.lee@example.org", "bob@example.net"],
    "PERSON": ["Ann Lee", "Dr. Maria Schmidt"],
    "PHONE": ["+1 202-555-0143", "(415) 555-0132"],
    "US_SSN": ["536-22-1234", "372-84-2190"],
    "CREDIT_CARD": ["4111 1111 1111 1111", "5500-0000-0000-0004"],
    "IBAN": ["DE89370400440532013000", "GB82 WEST 1234 5698 7654 32"],
    "IP_ADDRESS": ["81.2.69.142", "2001:db8:85a3::8a2e:370:7334"],
    "STREET_ADDRESS": ["221 Baker Street", "Hauptstraße 5"],
}

CONTAINERS = {
    "list": lambda vs: repr(list(vs)),
    "tuple": lambda vs: repr(tuple(vs)),
    "one-tuple": lambda vs: repr((vs[0],)),
    "dict values": lambda vs: repr({f"k{i}": v for i, v in enumerate(vs)}),
    "dict keys": lambda vs: repr({v: i for i, v in enumerate(vs)}),
    "list of dicts": lambda vs: repr([{"value": v} for v in vs]),
    "json": lambda vs: json.dumps({"values": list(vs)}),
    "bytes": lambda vs: repr([v.encode() for v in vs if v.isascii()]),
    "nested": lambda vs: repr([(v, [v]) for v in vs]),
}


def spans(text: str) -> list[tuple[str, str]]:
    return [(s.entity, text[s.start : s.end]) for s in scan_text(text)]


@pytest.mark.parametrize("container", sorted(CONTAINERS))
@pytest.mark.parametrize("entity", sorted(VALUES))
def test_each_value_is_found_exactly(entity: str, container: str) -> None:
    text = CONTAINERS[container](VALUES[entity])
    found = spans(text)
    for _, value in found:
        assert value.strip(" '\"[]{},:") == value, (value, text)
        assert value.count("(") == value.count(")"), (value, text)
        assert not value.startswith("b'"), (value, text)
    for value in VALUES[entity]:
        if value in text:
            assert (entity, value) in found, (value, found)


def test_the_teachers_example() -> None:
    text = "['ann.lee@example.org', 'bob@example.net']"
    masked = mask_text(text, MaskingPolicy().for_role("student", key=KEY)).text
    assert re.fullmatch(r"\['[\w.]+@example\.(?:com|org|net)', '[\w.]+@example\.(?:com|org|net)'\]",
                        masked), masked  # fmt: skip
    assert mask_text(text, MaskingPolicy().for_role("auditor")).text == "['[EMAIL]', '[EMAIL]']"
    person = "{'name': 'Ann Lee'}"
    assert mask_text(person, MaskingPolicy().for_role("auditor")).text == "{'name': '[PERSON]'}"


@pytest.mark.parametrize("role", ["auditor", "data_scientist", "instructor"])
@pytest.mark.parametrize("container", ["list", "tuple", "dict values", "dict keys", "nested"])
def test_masked_repr_stays_a_literal_without_raw_values(role: str, container: str) -> None:
    values = [v for vs in VALUES.values() for v in vs]
    text = CONTAINERS[container](values)
    masked = mask_text(text, MaskingPolicy().for_role(role, key=KEY)).text
    parsed = ast.literal_eval(masked)  # quotes, brackets and commas are intact
    if container != "dict keys":  # redacted keys may collide
        assert len(parsed) == len(ast.literal_eval(text))
    for value in values:
        assert value not in masked, (value, masked)


@pytest.mark.parametrize("role", ["auditor", "data_scientist", "student"])
def test_masked_json_stays_json(role: str) -> None:
    record = {
        "name": "Ann Lee",
        "email": "ann.lee@example.org",
        "phone": "+1 202-555-0143",
        "ssn": "536-22-1234",
        "ip": "81.2.69.142",
        "iban": "DE89370400440532013000",
    }
    text = json.dumps([record, record], indent=None)
    masked = mask_text(text, MaskingPolicy().for_role(role, key=KEY)).text
    parsed = json.loads(masked)
    assert [sorted(r) for r in parsed] == [sorted(record)] * 2
    for value in record.values():
        assert value not in masked


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Ann Lee's notebook", "Ann Lee"),  # a possessive is not part of the name
        ("\u2018Ann Lee\u2019 wrote", "Ann Lee"),  # typographic quotes
        ("[\"Ann O'Brien\", 'Bob Smith']", "Ann O'Brien"),  # an apostrophe inside a name stays
        ("[\"Ann O'Brien\", 'Bob Smith']", "Bob Smith"),
        ("mail o'brien@example.com", "o'brien@example.com"),  # ... and inside an address
        ('"o\'brien@example.com"', "o'brien@example.com"),
        ("user=ann@example.org status=ok", "ann@example.org"),  # key=value logs
        ("{ann@example.org}", "ann@example.org"),
        ("|ann@example.org|", "ann@example.org"),
        ("`ann@example.org`", "ann@example.org"),
        ("phone: (2025550143, 2025550199)", "2025550143"),  # a tuple's paren is not a phone's
        ("['12, rue de la Paix', 'x']", "12, rue de la Paix"),
        ("['Hauptstraße 5', 'x']", "Hauptstraße 5"),
        ("['221 Baker Street', 'x']", "221 Baker Street"),
    ],
)
def test_delimiters_next_to_values(text: str, value: str) -> None:
    assert value in [v for _, v in spans(text)], spans(text)


def test_a_tuple_of_integers_is_not_a_phone_because_of_its_paren() -> None:
    # Bare ten-digit runs need a context word; the tuple's '(' is not phone formatting.
    assert spans("(2025550143, 2025550199)") == []
    assert spans("[2025550143, 2025550199]") == []


def test_frame_cells_holding_printed_containers() -> None:
    """The kernel's display path masks frame cells with the same scanner."""
    frame = pd.DataFrame(
        {"contacts": ["['ann.lee@example.org', 'bob@example.net']", "{'name': 'Ann Lee'}"]}
    )
    result = mask_frame(frame, MaskingPolicy().for_role("auditor"))
    assert result.frame["contacts"].tolist() == ["['[EMAIL]', '[EMAIL]']", "{'name': '[PERSON]'}"]
