"""TOTP against RFC 6238's own test vectors, and the replay guard."""

from __future__ import annotations

import base64

import pytest

from jupyter_secure.identity import recovery, totp

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
# RFC 6238 Appendix B, SHA-1: (time, 8-digit TOTP). Six-digit codes are the last six digits.
VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("when", "code8"), VECTORS)
def test_rfc6238_vectors(when: int, code8: str) -> None:
    result = totp.check_code(RFC_SECRET, code8[-6:], now=when, last_step=None)
    assert result.ok
    assert result.step == when // 30


def test_one_step_either_side_and_no_more() -> None:
    now = 1111111111
    for offset, ok in ((-60, False), (-30, True), (0, True), (30, True), (60, False)):
        code = next(c for t, c in VECTORS if t == 1111111111)[-6:] if offset == 0 else None
        if code is None:
            import pyotp

            code = pyotp.TOTP(RFC_SECRET).at(now + offset)
        assert totp.check_code(RFC_SECRET, code, now=now, last_step=None).ok is ok, offset


def test_a_code_is_accepted_once() -> None:
    first = totp.check_code(RFC_SECRET, "050471", now=1111111111, last_step=None)
    assert first.ok
    again = totp.check_code(RFC_SECRET, "050471", now=1111111111, last_step=first.step)
    assert (again.ok, again.reason) == (False, "replayed")


def test_an_older_code_after_a_newer_one_is_refused() -> None:
    import pyotp

    now = 1800000000
    newer = pyotp.TOTP(RFC_SECRET).at(now)
    older = pyotp.TOTP(RFC_SECRET).at(now - 30)
    accepted = totp.check_code(RFC_SECRET, newer, now=now, last_step=None)
    assert totp.check_code(RFC_SECRET, older, now=now, last_step=accepted.step).reason == "replayed"


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_malformed_codes(code: str) -> None:
    assert totp.check_code(RFC_SECRET, code, now=59, last_step=None).reason == "malformed"


def test_secrets_are_160_bits_and_uris_are_what_apps_read() -> None:
    secret = totp.new_secret()
    assert len(base64.b32decode(secret)) * 8 == 160
    uri = totp.provisioning_uri(secret, "alice", "jupyter-secure")
    assert uri.startswith("otpauth://totp/jupyter-secure:alice?secret=")
    assert "issuer=jupyter-secure" in uri
    assert "digits=6" in uri
    assert "period=30" in uri


def test_recovery_codes() -> None:
    codes = recovery.new_codes()
    assert len(codes) == len(set(codes)) == 10
    key = b"k" * 32
    assert recovery.hash_code(key, codes[0]) == recovery.hash_code(
        key, codes[0].upper().replace("-", " ")
    )
    assert recovery.hash_code(key, codes[0]) != recovery.hash_code(b"j" * 32, codes[0])
