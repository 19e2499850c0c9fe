"""What happens to a value once it is found: the masking strategies.

``redact``
    Replace with ``[ENTITY]``. Nothing of the value survives.
``partial``
    Keep what people need to recognise their own data and no more: last four
    digits of a card, phone or SSN; first letter and domain of an e-mail;
    initials of a name; country and last four of an IBAN.
``token``
    Keyed HMAC-SHA256 token (:mod:`.tokens`): joinable, not reversible.
``fake``
    Deterministic realistic substitute from reserved ranges (:mod:`.fakes`).
``generalize``
    Coarser value on a fixed hierarchy: date of birth -> year -> 5-year band
    -> decade, ZIP -> first three -> first one, age -> 5-, 10-, 20-year band,
    IP -> /24 -> /16. k-anonymity climbs the same hierarchy.
``suppress``
    The cell becomes missing (the row stays).
``drop``
    The column is removed from the frame.
``raw``
    Shown as is (the report still lists it, so the audit trail does).
``spans``
    FREE_TEXT only: mask each entity found inside the text with the role's
    strategy for that entity. Needs an NER model (or an explicit opt-in).

A strategy that cannot be applied to a value (a token without a key, a
date that does not parse) falls back to ``redact``; the caller learns which
strategy was really applied so the report can say so. A result that equals
its input is redacted too, so a restricted role never sees an original.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from datetime import date, datetime
from enum import StrEnum

import numpy as np

from .entities import Entity
from .fakes import fake_value
from .resources import TITLES
from .tokens import token
from .validators import parse_date

__all__ = [
    "DEFAULT_LEVEL",
    "GENERALIZE_DEPTH",
    "Strategy",
    "generalize",
    "mask_value",
    "partial",
    "redact",
]


class Strategy(StrEnum):
    """The closed vocabulary of masking strategies."""

    RAW = "raw"
    REDACT = "redact"
    PARTIAL = "partial"
    TOKEN = "token"  # noqa: S105 - a strategy name, not a credential
    FAKE = "fake"
    GENERALIZE = "generalize"
    SUPPRESS = "suppress"
    DROP = "drop"
    SPANS = "spans"


GENERALIZE_DEPTH: Mapping[str, int] = {
    Entity.POSTCODE: 3,
    Entity.DATE_OF_BIRTH: 4,
    Entity.AGE: 4,
    Entity.SEX: 1,
    Entity.IP_ADDRESS: 3,
}
"""How many levels each generalisation hierarchy has (the last is ``*``)."""

DEFAULT_LEVEL: Mapping[str, int] = {
    Entity.POSTCODE: 1,
    Entity.DATE_OF_BIRTH: 1,
    Entity.AGE: 2,
    Entity.SEX: 1,
    Entity.IP_ADDRESS: 1,
}
"""The level ``generalize`` starts at: ZIP3, birth year, 10-year age band, /24."""


def redact(entity: str) -> str:
    """The redaction marker for an entity.

    >>> redact("EMAIL")
    '[EMAIL]'
    """
    return f"[{entity}]"


def _keep_last(text: str, keep: int) -> str:
    """Mask digits and letters except the last ``keep`` of them; keep separators."""
    total = sum(ch.isalnum() for ch in text)
    out = []
    seen = 0
    for ch in text:
        if ch.isalnum():
            seen += 1
            out.append(ch if seen > total - keep else "*")
        else:
            out.append(ch)
    return "".join(out)


def _partial_email(text: str) -> str:
    if "@" not in text:
        return _keep_last(text, 4) if len(text) >= 8 else "*" * max(1, len(text))
    local, _, domain = text.rpartition("@")
    return f"{local[:1]}***@{domain}"


def _partial_iban(text: str) -> str:
    compact = text.replace(" ", "")
    return compact[:2] + _keep_last(compact[2:], 4)


def _partial_person(text: str) -> str:
    words = [w for w in text.split() if w.rstrip(".").casefold() not in TITLES]
    initials = [f"{w[0]}." for w in words if w[:1].isalpha()]
    return " ".join(initials[:3]) or "*"


def _partial_address(text: str) -> str:
    return " ".join(w[:1] + "*" * (len(w) - 1) if w[:1].isalpha() else "*" for w in text.split())


_PARTIAL: Mapping[str, Callable[[str], str]] = {
    Entity.EMAIL: _partial_email,
    Entity.PHONE: lambda t: _keep_last(t, 4),
    Entity.US_SSN: lambda t: _keep_last(t, 4),
    Entity.CREDIT_CARD: lambda t: _keep_last(t, 4),
    Entity.IBAN: _partial_iban,
    Entity.PERSON: _partial_person,
    Entity.STREET_ADDRESS: _partial_address,
}


def partial(value: object, entity: str) -> str:
    """Show the part of a value its owner recognises, hide the rest.

    Quasi-identifiers get their default generalisation; anything else keeps
    its last four characters if it has at least eight.

    >>> partial("ann.lee@example.org", "EMAIL"), partial("4111 1111 1111 1111", "CREDIT_CARD")
    ('a***@example.org', '**** **** **** 1111')
    >>> partial("Dr. Ann Lee", "PERSON"), partial("536-22-1234", "US_SSN")
    ('A. L.', '***-**-1234')
    """
    text = (value if isinstance(value, str) else str(value)).strip()
    if entity in _PARTIAL:
        return _PARTIAL[entity](text)
    if entity in GENERALIZE_DEPTH:
        return generalize(value, entity, DEFAULT_LEVEL[entity])
    return _keep_last(text, 4) if len(text) >= 8 else "*" * max(1, len(text))


def _year(value: object) -> int | None:
    if isinstance(value, (datetime, date)):
        return value.year
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else int(str(value)[:4])
    parsed = parse_date(str(value))
    return parsed.year if parsed else None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if not np.isnan(number) and abs(number) < 1e6 else None


def _postcode_level(value: object, level: int) -> str:
    text = str(value).strip().upper()
    return text[:3] + "**" if level == 1 else text[:1] + "****"


def _birth_level(value: object, level: int) -> str:
    year = _year(value)
    if year is None:
        return "*"
    if level == 1:
        return str(year)
    if level == 2:
        return f"{year // 5 * 5}-{year // 5 * 5 + 4}"
    return f"{year // 10 * 10}s"


def _age_level(value: object, level: int) -> str:
    number = _number(value)
    if number is None or number < 0:
        return "*"
    age = int(number)
    if age >= 90:
        return "90+"
    width = {1: 5, 2: 10, 3: 20}[level]
    low = age // width * width
    return f"{low}-{low + width - 1}"


def _ip_level(value: object, level: int) -> str:
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        return "*"
    prefix = (24 if level == 1 else 16) if address.version == 4 else (48 if level == 1 else 32)
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


_LEVELS: Mapping[str, Callable[[object, int], str]] = {
    Entity.POSTCODE: _postcode_level,
    Entity.DATE_OF_BIRTH: _birth_level,
    Entity.AGE: _age_level,
    Entity.IP_ADDRESS: _ip_level,
}


def generalize(value: object, entity: str, level: int) -> str:
    """The value at ``level`` of its entity's hierarchy (0 = as is, top = ``*``).

    >>> [generalize("1985-03-07", "DATE_OF_BIRTH", n) for n in range(1, 5)]
    ['1985', '1985-1989', '1980s', '*']
    >>> [generalize("90210", "POSTCODE", n) for n in range(1, 4)]
    ['902**', '9****', '*']
    >>> [generalize(37, "AGE", n) for n in range(1, 5)], generalize(93, "AGE", 1)
    (['35-39', '30-39', '20-39', '*'], '90+')
    """
    if level >= GENERALIZE_DEPTH.get(entity, 1):
        return "*"
    if level <= 0:
        return value if isinstance(value, str) else str(value)
    step = _LEVELS.get(entity)
    return step(value, level) if step else "*"


def mask_value(
    value: object,
    entity: str,
    strategy: Strategy,
    *,
    key: bytes | None = None,
    level: int | None = None,
) -> tuple[object, Strategy]:
    """Mask one non-null value; return (masked value, strategy actually applied).

    ``SUPPRESS`` returns ``None``. ``RAW`` and ``DROP`` return the value (the
    frame layer drops columns). Anything that cannot be done falls back to
    ``REDACT``.

    >>> mask_value("536-22-1234", "US_SSN", Strategy.TOKEN)
    ('[US_SSN]', <Strategy.REDACT: 'redact'>)
    """
    if strategy in (Strategy.RAW, Strategy.DROP):
        return value, strategy
    if strategy is Strategy.SUPPRESS:
        return None, strategy
    out: str | None
    if strategy is Strategy.PARTIAL:
        out = partial(value, entity)
    elif strategy is Strategy.GENERALIZE:
        if entity not in GENERALIZE_DEPTH:
            out = None
        else:
            out = generalize(value, entity, DEFAULT_LEVEL[entity] if level is None else level)
    elif strategy is Strategy.TOKEN:
        out = token(value if isinstance(value, str) else str(value), entity, key) if key else None
    elif strategy is Strategy.FAKE:
        out = fake_value(value, entity, key) if key else None
    else:
        out = None
    original = value if isinstance(value, str) else str(value)
    if out is None or out == original:
        marker = redact(entity)
        return (marker if marker != original else "[REDACTED]"), Strategy.REDACT
    return out, strategy
