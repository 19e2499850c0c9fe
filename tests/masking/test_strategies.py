from __future__ import annotations

import pytest

from jupyter_secure.masking import Strategy, generalize, mask_value, partial, redact


@pytest.mark.parametrize(
    ("value", "entity", "expected"),
    [
        ("ann.lee@example.org", "EMAIL", "a***@example.org"),
        ("(415) 555-0132", "PHONE", "(***) ***-0132"),
        ("536-22-1234", "US_SSN", "***-**-1234"),
        ("4111 1111 1111 1111", "CREDIT_CARD", "**** **** **** 1111"),
        ("DE89 3704 0044 0532 0130 00", "IBAN", "DE****************3000"),
        ("Dr. Maria Schmidt", "PERSON", "M. S."),
        ("221 Baker Street", "STREET_ADDRESS", "* B**** S*****"),
        ("1985-03-07", "DATE_OF_BIRTH", "1985"),
        ("90210", "POSTCODE", "902**"),
        ("81.2.69.142", "IP_ADDRESS", "81.2.69.0/24"),
    ],
)
def test_partial(value: str, entity: str, expected: str) -> None:
    assert partial(value, entity) == expected


def test_generalisation_hierarchies() -> None:
    assert [generalize("2001:db8:1:2::1", "IP_ADDRESS", n) for n in (1, 2, 3)] == [
        "2001:db8:1::/48",
        "2001:db8::/32",
        "*",
    ]
    assert generalize(None, "AGE", 1) == "*"
    assert generalize("M", "SEX", 1) == "*"
    assert generalize("x", "EMAIL", 1) == "*"


def test_mask_value_strategies(key: bytes) -> None:
    assert mask_value("ann@example.org", "EMAIL", Strategy.REDACT) == ("[EMAIL]", Strategy.REDACT)
    assert mask_value("x", "EMAIL", Strategy.SUPPRESS) == (None, Strategy.SUPPRESS)
    assert mask_value("x", "EMAIL", Strategy.RAW) == ("x", Strategy.RAW)
    token, used = mask_value("ann@example.org", "EMAIL", Strategy.TOKEN, key=key)
    assert used is Strategy.TOKEN
    assert token.startswith("EMAIL_")
    fake, used = mask_value("ann@example.org", "EMAIL", Strategy.FAKE, key=key)
    assert used is Strategy.FAKE
    assert fake.endswith((".com", ".org", ".net"))


def test_keyed_strategies_fall_back_to_redact_without_a_key() -> None:
    assert mask_value("536-22-1234", "US_SSN", Strategy.TOKEN) == ("[US_SSN]", Strategy.REDACT)
    assert mask_value("536-22-1234", "US_SSN", Strategy.FAKE) == ("[US_SSN]", Strategy.REDACT)


def test_a_result_equal_to_its_input_is_redacted() -> None:
    assert mask_value("*", "MRN", Strategy.PARTIAL) == ("[MRN]", Strategy.REDACT)
    assert mask_value("[EMAIL]", "EMAIL", Strategy.REDACT)[0] == "[REDACTED]"
    assert redact("PHONE") == "[PHONE]"
