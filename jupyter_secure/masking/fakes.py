"""Deterministic, realistic fakes from reserved ranges.

A fake keeps a value's shape, so code and charts keep working, but points at
nothing real: e-mail at ``example.com/.org/.net`` (RFC 2606), phone numbers
in the NANP 555-0100…0199 block and Ofcom's drama range, SSNs in the SSA's
advertising range 987-65-4320…4329, published test card numbers (valid Luhn
digit and issuer range), IBANs on a bank code of zeros with correct mod-97
check digits, IPs in the documentation networks (RFC 5737, RFC 3849).

The choice is driven by an HMAC of the value under the site key, so the same
input always gives the same fake, and nobody without the key can invert the
mapping by faking every candidate value (a plain hash of an SSN can be
inverted in minutes).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from functools import lru_cache

from .entities import Entity
from .resources import DEFAULT_NAME_LOCALES, name_lexicon, street_suffixes
from .tokens import check_key, keyed_digest
from .validators import iban_check_digits, iban_formats, ip_version, parse_date

__all__ = ["TEST_CARD_NUMBERS", "fake_value"]

TEST_CARD_NUMBERS: tuple[str, ...] = (
    "4111111111111111",
    "4012888888881881",
    "4242424242424242",
    "4000056655665556",
    "4222222222222",
    "5555555555554444",
    "5105105105105100",
    "2223003122003222",
    "378282246310005",
    "371449635398431",
    "6011111111111117",
    "6011000990139424",
    "3530111333300000",
    "3566002020360505",
    "30569309025904",
    "38520000023237",
)
"""Card numbers the networks publish for testing; none can be charged."""


class _Stream:
    """An endless keyed byte stream for one value: choices without randomness."""

    def __init__(self, key: bytes, entity: str, value: str) -> None:
        self._key = key
        self._entity = entity
        self._value = value
        self._counter = 0
        self._buffer = b""

    def _bytes(self) -> Iterator[int]:
        while True:
            if not self._buffer:
                purpose = f"fake/v1/{self._counter}"
                self._buffer = keyed_digest(self._key, purpose, self._entity, self._value)
                self._counter += 1
            byte, self._buffer = self._buffer[0], self._buffer[1:]
            yield byte

    def below(self, n: int) -> int:
        """A number in [0, n) (bias below 2^-24 for the n used here)."""
        source = self._bytes()
        acc = 0
        for _ in range(4):
            acc = (acc << 8) | next(source)
        return acc % n

    def digit(self) -> str:
        return str(self.below(10))

    def letter(self) -> str:
        return chr(ord("A") + self.below(26))

    def pick(self, options: tuple[str, ...]) -> str:
        return options[self.below(len(options))]


def _substitute(template: str, digits: str) -> str:
    """Write ``digits`` into the digit positions of ``template``, keeping separators."""
    out = []
    feed = iter(digits)
    for ch in template:
        out.append(next(feed, "0") if ch.isdigit() else ch)
    return "".join(out)


@lru_cache(maxsize=4)
def _names(locales: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    lexicon = name_lexicon(locales)
    first = tuple(sorted(w.title() for w in lexicon.first if w.isalpha() and len(w) > 2))
    last = tuple(sorted(w.title() for w in lexicon.last if w.isalpha() and len(w) > 2))
    return first or ("Alex",), last or ("Example",)


@lru_cache(maxsize=1)
def _street_types() -> tuple[str, ...]:
    return tuple(sorted(w for w in street_suffixes() if len(w) > 3))


def _email(s: _Stream, _value: str) -> str:
    first, _last = _names(DEFAULT_NAME_LOCALES)
    local = s.pick(first).lower()
    return f"{local}.{s.below(10**6):06d}@example.{s.pick(('com', 'org', 'net'))}"


def _phone(s: _Stream, value: str) -> str:
    digits = re.sub(r"\D", "", re.sub(r"\s*(?:x|ext\.?)\s*\d+\s*$", "", value, flags=re.I))
    line = f"01{s.below(100):02d}"
    if value.strip().startswith(("+44", "0044")) or (len(digits) == 11 and digits[0] == "0"):
        return f"+44 20 7946 0{s.below(1000):03d}"
    area = f"{2 + s.below(8)}{s.below(10)}{s.below(10)}"
    if area[1:] == "11":
        area = area[0] + "20"
    nanp = f"{area}555{line}"
    core = re.sub(r"\s*(?:x|ext\.?)\s*\d+\s*$", "", value.strip(), flags=re.I)
    if len(digits) == 10 and digits[0] in "23456789" and not core.startswith("+"):
        return _substitute(core, nanp)
    if len(digits) == 11 and digits[0] == "1":
        return _substitute(core, "1" + nanp)
    return f"+1 {area}-555-{line}"


def _ssn(s: _Stream, value: str) -> str:
    fake = f"98765432{s.below(10)}"
    return (
        _substitute(value.strip(), fake)
        if len(re.sub(r"\D", "", value)) == 9
        else (f"{fake[:3]}-{fake[3:5]}-{fake[5:]}")
    )


def _card(s: _Stream, value: str) -> str:
    digits = re.sub(r"\D", "", value)
    same_length = tuple(c for c in TEST_CARD_NUMBERS if len(c) == len(digits))
    same_brand = tuple(c for c in same_length if digits and c[0] == digits[0])
    choice = s.pick(same_brand or same_length or TEST_CARD_NUMBERS[:1])
    if len(choice) == len(digits):
        return _substitute(value.strip(), choice)
    return choice


def _iban(s: _Stream, value: str) -> str:
    compact = re.sub(r"[\s-]", "", value).upper()
    formats = iban_formats()
    country = compact[:2] if compact[:2] in formats else "GB"
    fmt = formats[country]
    chars: list[str] = []
    for count, kind in fmt.parts:
        for _ in range(count):
            bank_part = len(chars) < 4
            if kind == "a":
                chars.append("X" if bank_part else s.letter())
            else:
                chars.append("0" if bank_part else s.digit())
    bban = "".join(chars)
    iban = f"{country}{iban_check_digits(country, bban)}{bban}"
    if " " in value.strip():
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


def _ip(s: _Stream, value: str) -> str:
    if ip_version(value) == 6:
        return f"2001:db8::{s.below(0x10000):x}:{s.below(0x10000):x}"
    net = s.pick(("192.0.2", "198.51.100", "203.0.113"))
    return f"{net}.{1 + s.below(254)}"


def _person(s: _Stream, value: str) -> str:
    first, last = _names(DEFAULT_NAME_LOCALES)
    if len(value.split()) <= 1:
        return s.pick(first)
    return f"{s.pick(first)} {s.pick(last)}"


def _address(s: _Stream, _value: str) -> str:
    _first, last = _names(DEFAULT_NAME_LOCALES)
    return f"{1 + s.below(999)} {s.pick(last)} {s.pick(_street_types())}"


def _date(s: _Stream, value: object) -> str | None:
    if isinstance(value, datetime):
        day: date | None = value.date()
    elif isinstance(value, date):
        day = value
    else:
        day = parse_date(str(value))
    if day is None:
        return None
    shift = 1 + s.below(180)
    moved = day + timedelta(days=shift if s.below(2) else -shift)
    return moved.isoformat()


def _postcode(s: _Stream, value: str) -> str:
    text = value.strip().upper()
    if re.fullmatch(r"\d{5}(?:-\d{4})?", text):
        return f"000{s.below(100):02d}"
    if re.fullmatch(r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}", text):
        return f"ZZ99 {s.digit()}{s.letter()}{s.letter()}"
    return _shape(s, value)


def _shape(s: _Stream, value: str) -> str:
    """Format-preserving fake: each digit and letter replaced, punctuation kept."""
    out = []
    for ch in value:
        if ch.isdigit():
            out.append(s.digit())
        elif ch.isalpha():
            letter = s.letter()
            out.append(letter if ch.isupper() else letter.lower())
        else:
            out.append(ch)
    return "".join(out)


def _age(s: _Stream, value: str) -> str:
    try:
        age = int(float(value))
    except (ValueError, OverflowError):
        return _shape(s, value)
    shift = 1 + s.below(3)
    moved = age + shift if s.below(2) or age - shift < 0 else age - shift
    return str(moved)


_BY_ENTITY = {
    Entity.EMAIL: _email,
    Entity.PHONE: _phone,
    Entity.US_SSN: _ssn,
    Entity.CREDIT_CARD: _card,
    Entity.IBAN: _iban,
    Entity.IP_ADDRESS: _ip,
    Entity.PERSON: _person,
    Entity.STREET_ADDRESS: _address,
    Entity.POSTCODE: _postcode,
    Entity.AGE: _age,
}


def fake_value(value: object, entity: str, key: bytes) -> str | None:
    """A deterministic fake for ``value`` as ``entity``, or ``None`` if none can be made.

    ``None`` tells the caller to redact instead (a date that does not parse,
    an entity with no meaningful fake such as FREE_TEXT).

    >>> k = b"k" * 32
    >>> fake_value("536-22-1234", "US_SSN", k) == fake_value("536-22-1234", "US_SSN", k)
    True
    >>> fake_value("536-22-1234", "US_SSN", k)[:9]
    '987-65-43'
    """
    check_key(key)
    text = value if isinstance(value, str) else str(value)
    stream = _Stream(key, entity, text)
    if entity == Entity.DATE_OF_BIRTH:
        return _date(stream, value)
    if entity in (Entity.FREE_TEXT, Entity.UNCLASSIFIED, Entity.SEX):
        # No fake for SEX: in a two-value domain a fake that may equal the
        # original tells the reader the original whenever it does not.
        return None
    maker = _BY_ENTITY.get(entity)  # type: ignore[call-overload]
    if maker is not None:
        return str(maker(stream, text))
    return _shape(stream, text) if text.strip() else None
