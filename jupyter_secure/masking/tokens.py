"""Keyed tokens: the same value gives the same token in every table, and nothing else does.

A token is ``HMAC-SHA256(key, "jupyter-secure/token/v1" | entity | normalised value)``,
truncated to 64 bits and prefixed with the entity name. With the key, tokens
join across tables and notebooks (an e-mail address tokenised in ``orders``
matches the same address in ``tickets``); without it, they cannot be
reversed by hashing candidate values, which is what defeats an unsalted hash
of a 10^9-value space like SSNs. The key comes from the product's secret
store and is never derived here.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable

from .entities import Entity

__all__ = ["MIN_KEY_BYTES", "check_key", "keyed_digest", "normalise", "token"]

MIN_KEY_BYTES = 32
"""Keys shorter than this are refused: 256 bits is HMAC-SHA256's full strength."""

_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")
_NON_DIGIT = re.compile(r"\D")
_SPACES = re.compile(r"\s+")
_EXTENSION = re.compile(r"\s*(?:x|ext\.?|#)\s*\d{1,6}\s*$", re.IGNORECASE)


def check_key(key: object) -> bytes:
    """Return ``key`` as bytes if it is a usable HMAC key, else raise ``ValueError``.

    >>> check_key(b"short")
    Traceback (most recent call last):
    ...
    ValueError: token key must be at least 32 bytes (got 5)
    """
    if not isinstance(key, (bytes, bytearray)):
        raise ValueError("token key must be bytes")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"token key must be at least {MIN_KEY_BYTES} bytes (got {len(key)})")
    return bytes(key)


def _phone(text: str) -> str:
    digits = _NON_DIGIT.sub("", _EXTENSION.sub("", text))
    return digits[2:] if text.startswith("00") else digits


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text.lower()


_NORMALISERS: dict[str, Callable[[str], str]] = {
    Entity.EMAIL: str.lower,
    Entity.PHONE: _phone,
    Entity.CREDIT_CARD: lambda t: _NON_ALNUM.sub("", t).upper(),
    Entity.US_SSN: lambda t: _NON_ALNUM.sub("", t).upper(),
    Entity.IBAN: lambda t: _NON_ALNUM.sub("", t).upper(),
    Entity.IP_ADDRESS: _ip,
    Entity.PERSON: lambda t: _SPACES.sub(" ", t).casefold(),
    Entity.STREET_ADDRESS: lambda t: _SPACES.sub(" ", t).casefold(),
}


def normalise(value: str, entity: str) -> str:
    """The canonical form of a value, so that formatting differences still join.

    >>> normalise(" Ann@Example.ORG ", "EMAIL"), normalise("+1 (555) 010-0199", "PHONE")
    ('ann@example.org', '15550100199')
    """
    text = value.strip()
    normaliser = _NORMALISERS.get(entity)
    return normaliser(text) if normaliser else text


def keyed_digest(key: bytes, purpose: str, entity: str, value: str) -> bytes:
    """HMAC-SHA256 over a purpose label, the entity and the normalised value."""
    message = "\x00".join(("jupyter-secure", purpose, entity, normalise(value, entity)))
    return hmac.new(key, message.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()


def token(value: str, entity: str, key: bytes) -> str:
    """The token for ``value`` as ``entity`` under ``key``.

    >>> token("ann@example.org", "EMAIL", b"k" * 32) == token("ANN@example.org", "EMAIL", b"k" * 32)
    True
    >>> token("ann@example.org", "EMAIL", b"k" * 32).startswith("EMAIL_")
    True
    """
    digest = keyed_digest(check_key(key), "token/v1", entity, value)
    return f"{entity}_{digest[:8].hex()}"
