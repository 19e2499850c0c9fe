from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_secure.masking import MIN_KEY_BYTES, check_key, token

KEY_A = b"a" * 32
KEY_B = b"b" * 32


@pytest.mark.parametrize("bad", [b"", b"x" * 31, "a string key of more than 32 chars....", None])
def test_weak_keys_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="token key"):
        check_key(bad)


def test_minimum_is_256_bits() -> None:
    assert MIN_KEY_BYTES == 32
    assert check_key(bytearray(32)) == bytes(32)


def test_tokens_join_across_formatting() -> None:
    assert token("Ann@Example.org ", "EMAIL", KEY_A) == token("ann@example.org", "EMAIL", KEY_A)
    assert token("4111-1111-1111-1111", "CREDIT_CARD", KEY_A) == token(
        "4111111111111111", "CREDIT_CARD", KEY_A
    )


def test_entity_separates_domains() -> None:
    assert token("536221234", "US_SSN", KEY_A) != token("536221234", "PHONE", KEY_A)


def test_never_an_unsalted_hash() -> None:
    value = "536-22-1234"
    digest = hashlib.sha256(value.encode()).hexdigest()
    assert digest[:16] not in token(value, "US_SSN", KEY_A)


@given(st.text(min_size=1, max_size=60))
@settings(max_examples=150, deadline=None)
def test_tokens_are_stable_and_differ_across_keys(value: str) -> None:
    first = token(value, "EMAIL", KEY_A)
    assert first == token(value, "EMAIL", KEY_A)
    assert first != token(value, "EMAIL", KEY_B)
