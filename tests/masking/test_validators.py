from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import iban as stdnum_iban
from stdnum import luhn as stdnum_luhn

from jupyter_secure.masking.validators import (
    card_issuer,
    card_valid,
    email_valid,
    iban_check_digits,
    iban_valid,
    ip_version,
    luhn_check_digit,
    luhn_valid,
    parse_date,
    phone_possible,
    postcode_shape,
    resolve_validator,
    ssn_valid,
    stdnum_validator,
)


@given(st.text(alphabet="0123456789", min_size=2, max_size=19))
@settings(max_examples=200, deadline=None)
def test_luhn_agrees_with_python_stdnum(digits: str) -> None:
    assert luhn_valid(digits) == stdnum_luhn.is_valid(digits)


def test_luhn_check_digit_completes_a_number() -> None:
    assert luhn_valid("411111111111111" + luhn_check_digit("411111111111111"))


@pytest.mark.parametrize(
    ("number", "issuer"),
    [
        ("4111111111111111", "visa"),
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("378282246310005", "amex"),
        ("6011111111111117", "discover"),
        ("3530111333300000", "jcb"),
        ("30569309025904", "diners"),
        ("1234567890123456", None),
    ],
)
def test_card_issuers(number: str, issuer: str | None) -> None:
    assert card_issuer(number) == issuer


def test_card_needs_luhn_and_range() -> None:
    assert card_valid("4111-1111-1111-1111")
    assert not card_valid("4111 1111 1111 1112")
    assert not card_valid("9111111111111119")


@pytest.mark.parametrize(
    ("ssn", "ok"),
    [
        ("536-22-1234", True),
        ("536221234", True),
        ("000-22-1234", False),
        ("666-22-1234", False),
        ("900-22-1234", False),
        ("536-00-1234", False),
        ("536-22-0000", False),
        ("078-05-1120", False),
        ("536-22-123", False),
    ],
)
def test_ssn_rules(ssn: str, ok: bool) -> None:
    assert ssn_valid(ssn) is ok


@pytest.mark.parametrize(
    "iban",
    ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR1420041010050500013M02606"],
)
def test_valid_ibans(iban: str) -> None:
    assert iban_valid(iban)
    assert stdnum_iban.is_valid(iban)


@pytest.mark.parametrize(
    "iban",
    [
        "DE89 3704 0044 0532 0130 01",
        "DE89370400440532013",
        "XX89370400440532013000",
        "DE8937040044",
    ],
)
def test_invalid_ibans(iban: str) -> None:
    assert not iban_valid(iban)


def test_iban_check_digits_match_python_stdnum() -> None:
    assert iban_check_digits("DE", "370400440532013000") == "89"
    assert stdnum_iban.calc_check_digits("DExx370400440532013000") == "89"


def test_ip_and_email() -> None:
    assert ip_version("81.2.69.142") == 4
    assert ip_version("2001:db8::1") == 6
    assert ip_version("999.1.1.1") is None
    assert ip_version("12:30:45") is None
    assert email_valid("a.b+c@example.co.uk")
    assert not email_valid("a@b")
    assert not email_valid("not an email")


def test_phone_possible_over_regions() -> None:
    assert phone_possible("+44 20 7946 0958", ["US"])
    assert phone_possible("001-239-515-0008x0636", ["US"])
    assert phone_possible("01 34 74 39 15", ["FR"])
    assert not phone_possible("12345", ["US", "GB"])
    assert not phone_possible("+999 123", ["US"])


def test_parse_date_forms() -> None:
    day = date(1985, 3, 7)
    for text in ("1985-03-07", "March 7, 1985", "07.03.1985", "7 March 1985", "7 März 1985"):
        assert parse_date(text) == day, text
    assert parse_date("1985-02-30") is None
    assert parse_date("order 12345") is None


def test_postcode_shapes() -> None:
    assert postcode_shape("SW1A 1AA") == "uk"
    assert postcode_shape("K1A 0B1") == "ca"
    assert postcode_shape("90210") == "us"
    assert postcode_shape("hello") is None


def test_validators_by_name() -> None:
    assert resolve_validator("luhn")("4111111111111111")
    assert resolve_validator("stdnum:us.ein")("04-2103594")
    assert stdnum_validator("gb.nhs")("943 476 5919")
    with pytest.raises(ValueError, match="unknown validator"):
        resolve_validator("nope")
    with pytest.raises(ValueError, match="python-stdnum"):
        stdnum_validator("os.path")
    with pytest.raises(ValueError, match="no module"):
        stdnum_validator("xx.nothing")
