from __future__ import annotations

import pytest

from jupyter_secure.errors import InvalidInput
from jupyter_secure.identity.passwords import (
    PasswordPolicy,
    hash_password,
    needs_rehash,
    verify_password,
)


def test_argon2id_round_trip() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "correct horse batterY")
    assert not needs_rehash(stored)


def test_no_hash_never_verifies() -> None:
    assert not verify_password(None, "jupyter-secure timing equaliser")
    assert not verify_password(None, "")
    assert not verify_password("not-a-hash", "x")


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "at least 12"),
        ("x" * 1025, "at most 1024"),
        (" " * 20, "blank"),
        ("Alice-Example", "user name"),
    ],
)
def test_policy(password: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        PasswordPolicy().check(password, user="alice-example")
    assert info.value.field == "password"
    assert password not in str(info.value)


def test_policy_is_configurable() -> None:
    PasswordPolicy(min_length=4).check("abcd", user="alice")
