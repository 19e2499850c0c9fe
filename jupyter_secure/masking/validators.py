"""Checks that turn "looks like" into "is": check digits, number plans, registries.

A shape alone (nine digits, sixteen digits) is weak evidence: order ids and
batch numbers have shapes too. Where a real check exists we use it, so that a
column or span is labelled only when the values pass it. The checks here are
hand-written where a library call would dominate the classification budget
(Luhn, IBAN mod-97 with the registry lengths from python-stdnum) and library
calls where the rules are large and change (libphonenumber).

Every function takes a ``str`` and returns a plain value; none raises on bad
input, because the engine calls them on arbitrary cell contents.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import import_module

import phonenumbers

__all__ = [
    "DISTINCTIVE_POSTCODES",
    "VALIDATORS",
    "CardIssuer",
    "IbanFormat",
    "card_issuer",
    "card_valid",
    "email_valid",
    "generalised_value",
    "iban_check_digits",
    "iban_formats",
    "iban_length",
    "iban_valid",
    "ip_version",
    "luhn_check_digit",
    "luhn_valid",
    "parse_date",
    "phone_possible",
    "postcode_shape",
    "resolve_validator",
    "ssn_valid",
    "stdnum_validator",
]

_NON_DIGIT = re.compile(r"\D")
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _digits(value: str) -> str:
    return _NON_DIGIT.sub("", value)


def luhn_valid(value: str) -> bool:
    """True if the digits of ``value`` (separators ignored) pass the Luhn check.

    >>> luhn_valid("4111 1111 1111 1111"), luhn_valid("4111 1111 1111 1112")
    (True, False)
    """
    digits = _digits(value)
    if len(digits) < 2:
        return False
    total = sum(map(int, digits[-1::-2]))
    total += sum(_DOUBLED[int(d)] for d in digits[-2::-2])
    return total % 10 == 0


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial + digit`` pass the Luhn check."""
    for candidate in "0123456789":
        if luhn_valid(partial + candidate):
            return candidate
    raise ValueError("no Luhn digit: input has no digits")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class CardIssuer:
    """One issuer identification number range and the lengths it issues."""

    name: str
    low: int
    high: int
    prefix_length: int
    lengths: frozenset[int]


def _issuer(name: str, low: int, high: int, lengths: Iterable[int]) -> CardIssuer:
    return CardIssuer(name, low, high, len(str(low)), frozenset(lengths))


# Ranges from the ISO/IEC 7812 registrations as published by the networks; a
# number outside every range is not a payment card however good its Luhn digit.
_ISSUERS: tuple[CardIssuer, ...] = (
    _issuer("visa", 4, 4, (13, 16, 19)),
    _issuer("mastercard", 51, 55, (16,)),
    _issuer("mastercard", 2221, 2720, (16,)),
    _issuer("amex", 34, 34, (15,)),
    _issuer("amex", 37, 37, (15,)),
    _issuer("discover", 6011, 6011, range(16, 20)),
    _issuer("discover", 644, 649, range(16, 20)),
    _issuer("discover", 65, 65, range(16, 20)),
    _issuer("unionpay", 62, 62, range(16, 20)),
    _issuer("jcb", 3528, 3589, range(16, 20)),
    _issuer("jcb", 1800, 1800, (15,)),
    _issuer("jcb", 2131, 2131, (15,)),
    _issuer("diners", 300, 305, range(14, 20)),
    _issuer("diners", 3095, 3095, range(14, 20)),
    _issuer("diners", 36, 36, range(14, 20)),
    _issuer("diners", 38, 39, range(14, 20)),
    _issuer("maestro", 5018, 5018, range(12, 20)),
    _issuer("maestro", 5020, 5020, range(12, 20)),
    _issuer("maestro", 5038, 5038, range(12, 20)),
    _issuer("maestro", 5893, 5893, range(12, 20)),
    _issuer("maestro", 56, 58, range(12, 20)),
    _issuer("maestro", 6304, 6304, range(12, 20)),
    _issuer("maestro", 6390, 6390, range(12, 20)),
    _issuer("maestro", 6759, 6759, range(12, 20)),
    _issuer("maestro", 6761, 6763, range(12, 20)),
    _issuer("maestro", 604, 604, range(12, 20)),
    _issuer("mir", 2200, 2204, range(16, 20)),
)


def card_issuer(value: str) -> str | None:
    """The network whose range and lengths fit the digits of ``value``, if any."""
    digits = _digits(value)
    n = len(digits)
    if n < 12 or n > 19:
        return None
    if digits.startswith("0604"):
        # Legacy Maestro prefix: the only issuer range with a leading zero.
        return "maestro"
    for issuer in _ISSUERS:
        if n in issuer.lengths and issuer.low <= int(digits[: issuer.prefix_length]) <= issuer.high:
            return issuer.name
    return None


def card_valid(value: str) -> bool:
    """A payment card number: 12-19 digits, a known issuer range, a Luhn digit.

    >>> card_valid("4111-1111-1111-1111"), card_valid("1234 5678 9012 3456")
    (True, False)
    """
    return card_issuer(value) is not None and luhn_valid(value)


# The SSA never issues these: area 000, 666 and 900-999, group 00, serial 0000,
# and two numbers printed in advertising that were used by thousands of people.
_SSN_NEVER_ISSUED = frozenset({"078051120", "219099999"})


def ssn_valid(value: str) -> bool:
    """A US SSN by the SSA's area/group/serial rules (dashes or spaces ignored).

    >>> ssn_valid("536-22-1234"), ssn_valid("666-22-1234"), ssn_valid("536-00-1234")
    (True, False, False)
    """
    digits = value.replace("-", "").replace(" ", "")
    if len(digits) != 9 or not digits.isdigit() or not digits.isascii():
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return digits not in _SSN_NEVER_ISSUED


@dataclass(frozen=True, slots=True)
class IbanFormat:
    """A country's IBAN length and BBAN structure (runs of n=digits, a=letters, c=either)."""

    length: int
    bban: re.Pattern[str]
    parts: tuple[tuple[int, str], ...]


_BBAN_PART = re.compile(r"([1-9][0-9]*)!([nac])")
_BBAN_CLASS = {"n": "[0-9]", "a": "[A-Z]", "c": "[A-Z0-9]"}


@lru_cache(maxsize=1)
def iban_formats() -> dict[str, IbanFormat]:
    """Country code -> IBAN length and BBAN structure, from python-stdnum's registry."""
    from stdnum import numdb

    formats: dict[str, IbanFormat] = {}
    for _length, low, _high, props, _children in numdb.get("iban").prefixes:
        structure = str(props.get("bban", ""))
        parts = _BBAN_PART.findall(structure)
        if not parts:
            continue
        pattern = "".join(f"{_BBAN_CLASS[kind]}{{{count}}}" for count, kind in parts)
        length = 4 + sum(int(count) for count, _kind in parts)
        structure_parts = tuple((int(count), kind) for count, kind in parts)
        formats[str(low)] = IbanFormat(length, re.compile(pattern), structure_parts)
    return formats


def iban_length(country: str) -> int | None:
    """The IBAN length registered for a two-letter country code."""
    fmt = iban_formats().get(country.upper())
    return fmt.length if fmt else None


_IBAN_LETTERS = {ord(c): str(ord(c) - 55) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


def _mod97(text: str) -> int:
    return int(text.translate(_IBAN_LETTERS)) % 97


def iban_valid(value: str) -> bool:
    """An IBAN: registered country, its exact length and BBAN structure, mod-97 = 1.

    >>> iban_valid("DE89 3704 0044 0532 0130 00"), iban_valid("DE89 3704 0044 0532 0130 01")
    (True, False)
    """
    compact = value.replace(" ", "").replace("-", "").upper()
    if len(compact) < 15 or not compact.isascii() or not compact.isalnum():
        return False
    fmt = iban_formats().get(compact[:2])
    if fmt is None or len(compact) != fmt.length or not compact[2:4].isdigit():
        return False
    if not fmt.bban.fullmatch(compact[4:]):
        return False
    return _mod97(compact[4:] + compact[:4]) == 1


def iban_check_digits(country: str, bban: str) -> str:
    """The two check digits for ``country + ?? + bban``."""
    return f"{98 - _mod97(bban.upper() + country.upper() + '00'):02d}"


def ip_version(value: str) -> int | None:
    """4 or 6 if ``value`` is an IP address, else ``None``."""
    text = value.strip()
    if not text or len(text) > 45 or ("." not in text and ":" not in text):
        return None
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return None


_GENERALISED = re.compile(
    r"\*"  # the top of every hierarchy; k-anonymity's suppressed cells
    r"|(?P<lo>\d{1,4})-(?P<hi>\d{1,4})"  # birth-year bands 1940-1944, age bands 30-39
    r"|\d{1,3}\+|\d{3}0s|\d{4}"  # 90+, decades 1980s, birth years
    r"|[^*]{1,3}\*\*|[^*]\*{4}"  # postcodes 902**, 9****
    r"|(?P<net>[0-9A-Fa-f.:]{2,39}/\d{1,3})"  # IP networks 81.2.69.0/24, 2001:db8:1::/48
)


def generalised_value(value: str) -> bool:
    """True if ``value`` reads as an output of generalisation, not as an identifier.

    The shapes :func:`~.strategies.generalize` produces (and k-anonymity, which
    climbs the same hierarchy): ``*``, birth years, 5-year bands and decades,
    age bands and ``90+``, truncated postcodes, IP networks. Some look like
    other entities (``1940-1944`` has the digits of a phone number), so the
    detectors ask here before calling a value a phone number: an already
    masked frame, masked again or printed through the output guard, must
    keep its bands. Ranges count only when ordered (low <= high) and, with
    four-digit ends, when both are years 1800-2199.

    >>> [generalised_value(v) for v in ("1940-1944", "30-39", "81.2.69.0/24", "902**")]
    [True, True, True, True]
    >>> [generalised_value(v) for v in ("2025-5501", "1944-1940", "81.2.69.7/24", "555-0132")]
    [False, False, False, False]
    """
    m = _GENERALISED.fullmatch(value.strip())
    if m is None:
        return False
    lo, hi, net = m.group("lo"), m.group("hi"), m.group("net")
    if lo is not None:
        low, high = int(lo), int(hi)
        if low > high:
            return False
        if len(lo) == 4 or len(hi) == 4:  # a year band: both ends years
            return len(lo) == len(hi) and low >= 1800 and high <= 2199
        return True
    if net is not None:
        try:
            ipaddress.ip_network(net, strict=True)  # host bits zero: a network, not a host
        except ValueError:
            return False
    return True


_EMAIL = re.compile(
    r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}"
)


def email_valid(value: str) -> bool:
    """An e-mail address by shape: local part, dotted domain, alphabetic TLD.

    >>> email_valid("a.b+c@example.co.uk"), email_valid("a@b"), email_valid("a..b@x")
    (True, False, False)
    """
    text = value.strip()
    return _EMAIL.fullmatch(text) is not None and ".." not in text


@lru_cache(maxsize=512)
def _region_plan(region: str) -> tuple[frozenset[int], str] | None:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.general_desc is None:
        return None
    lengths = frozenset(metadata.general_desc.possible_length or ())
    return lengths, metadata.national_prefix or ""


@lru_cache(maxsize=512)
def _calling_code_plan(code: int) -> tuple[frozenset[int], str] | None:
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code)
    if not regions:
        return None
    if regions[0] == "001":
        metadata = phonenumbers.PhoneMetadata.metadata_for_nongeo_region(code)
        if metadata is None or metadata.general_desc is None:
            return None
        return frozenset(metadata.general_desc.possible_length or ()), ""
    return _region_plan(regions[0])


def _fits(national: str, plan: tuple[frozenset[int], str]) -> bool:
    lengths, trunk = plan
    if len(national) in lengths:
        return True
    return bool(trunk) and national.startswith(trunk) and len(national) - len(trunk) in lengths


_PHONE_EXTENSION = re.compile(r"\s*(?:x|ext\.?|#)\s*\d{1,6}\s*$", re.IGNORECASE)


def phone_possible(value: str, regions: Iterable[str]) -> bool:
    """True if the number has a possible length in libphonenumber's number plan.

    International numbers (``+`` or ``00``) are checked against the plan of
    their calling code, national numbers against each of ``regions``, with
    the trunk prefix ("0" in most of Europe, "1" in the NANP) allowed. This is
    libphonenumber's "possible number" test made from its metadata directly:
    ~3 µs instead of ~40 µs for ``parse`` + ``is_possible_number``, which
    matters when a printed table holds thousands of numbers. "Possible"
    rather than "valid" (an allocated block) because synthetic and newly
    allocated numbers fail the stricter test and a masker should err towards
    masking.

    >>> phone_possible("+44 20 7946 0958", ["US"]), phone_possible("12345", ["US", "GB"])
    (True, False)
    """
    text = _PHONE_EXTENSION.sub("", value.strip())
    if len(text) > 40:
        return False
    digits = _digits(text)
    if len(digits) < 6 or len(digits) > 17:
        return False
    if text.startswith("+") or text.startswith("00"):
        if text.startswith("00"):
            digits = digits[2:]
        for width in (1, 2, 3):
            plan = _calling_code_plan(int(digits[:width]))
            if plan is not None:
                return _fits(digits[width:], plan)
        return False
    for region in regions:
        plan = _region_plan(region)
        if plan is not None and _fits(digits, plan):
            return True
    return False


_MONTHS = {
    name: index
    for index, names in enumerate(
        (
            ("jan", "january", "januar", "janvier", "jän", "jänner"),
            ("feb", "february", "februar", "février", "fevrier"),
            ("mar", "march", "märz", "maerz", "mars"),
            ("apr", "april", "avril"),
            ("may", "mai"),
            ("jun", "june", "juni", "juin"),
            ("jul", "july", "juli", "juillet"),
            ("aug", "august", "août", "aout"),
            ("sep", "sept", "september", "septembre"),
            ("oct", "october", "okt", "oktober", "octobre"),
            ("nov", "november", "novembre"),
            ("dec", "december", "dez", "dezember", "décembre", "decembre"),
        ),
        start=1,
    )
    for name in names
}
_MONTH_WORD = r"[A-Za-zÀ-ÿ]{3,9}\.?"
_DATE_FORMS = (
    (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"), "ymd"),
    (re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"), "ymd"),
    (re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})"), "dmy|mdy"),
    (re.compile(rf"({_MONTH_WORD}) (\d{{1,2}})(?:st|nd|rd|th)?,? (\d{{4}})"), "Mdy"),
    (re.compile(rf"(\d{{1,2}})(?:st|nd|rd|th|\.)? ({_MONTH_WORD}),? (\d{{4}})"), "dMy"),
)


def _make_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_date(value: str) -> date | None:
    """Parse the common written forms of a calendar date, or return ``None``.

    Day-first is tried before month-first for slashed dates; the engine only
    needs the year and whether the string is a date, not which reading won.

    >>> parse_date("1985-03-07"), parse_date("March 7, 1985"), parse_date("07.03.1985")
    (datetime.date(1985, 3, 7), datetime.date(1985, 3, 7), datetime.date(1985, 3, 7))
    """
    text = value.strip()
    if len(text) < 8 or len(text) > 30:
        return None
    for pattern, order in _DATE_FORMS:
        m = pattern.fullmatch(text)
        if m is None:
            continue
        a, b, c = m.groups()
        if order == "ymd":
            return _make_date(int(a), int(b), int(c))
        if order == "dmy|mdy":
            return _make_date(int(c), int(b), int(a)) or _make_date(int(c), int(a), int(b))
        if order == "Mdy":
            month = _MONTHS.get(a.rstrip(".").lower())
            return _make_date(int(c), month, int(b)) if month else None
        month = _MONTHS.get(b.rstrip(".").lower())
        return _make_date(int(c), month, int(a)) if month else None
    return None


_POSTCODE_SHAPES = (
    ("uk", re.compile(r"(?:[A-Z]{1,2}[0-9][A-Z0-9]?|GIR) ?[0-9][A-Z]{2}")),
    ("ca", re.compile(r"[A-Z][0-9][A-Z] ?[0-9][A-Z][0-9]")),
    ("us", re.compile(r"[0-9]{5}(?:-[0-9]{4})?")),
    ("nl", re.compile(r"[0-9]{4} ?[A-Z]{2}")),
    ("pl", re.compile(r"[0-9]{2}-[0-9]{3}")),
    ("pt", re.compile(r"[0-9]{4}-[0-9]{3}")),
    ("digits4", re.compile(r"[0-9]{4}")),
)
DISTINCTIVE_POSTCODES = frozenset({"uk", "ca"})
"""Shapes rare enough outside addresses to count without a header hint."""


def postcode_shape(value: str) -> str | None:
    """The postcode family whose shape ``value`` has (``uk``, ``us`` …), if any."""
    text = value.strip().upper()
    if len(text) < 4 or len(text) > 10:
        return None
    for name, pattern in _POSTCODE_SHAPES:
        if pattern.fullmatch(text):
            return name
    return None


_STDNUM_NAME = re.compile(r"[a-z]{2}\.[a-z_]{2,30}|[a-z][a-z0-9_]{2,30}")


@lru_cache(maxsize=64)
def stdnum_validator(name: str) -> Callable[[str], bool]:
    """``is_valid`` of the python-stdnum module ``name`` (e.g. ``"gb.nhs"``).

    Only modules inside the ``stdnum`` package can be named, so a policy file
    cannot make the engine import arbitrary code.
    """
    if not _STDNUM_NAME.fullmatch(name):
        raise ValueError(f"not a python-stdnum module name: {name!r}")
    try:
        module = import_module(f"stdnum.{name}")
    except ImportError as exc:
        raise ValueError(f"python-stdnum has no module {name!r}") from exc
    check = getattr(module, "is_valid", None)
    if not callable(check):
        raise ValueError(f"python-stdnum module {name!r} has no is_valid()")

    def valid(value: str) -> bool:
        try:
            return bool(check(value))
        except Exception:
            return False

    return valid


def _mod97_only(value: str) -> bool:
    compact = value.replace(" ", "").upper()
    return compact.isascii() and compact.isalnum() and _mod97(compact) == 1


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "luhn": luhn_valid,
    "credit_card": card_valid,
    "us_ssn": ssn_valid,
    "iban": iban_valid,
    "mod97": _mod97_only,
    "email": email_valid,
    "ip": lambda v: ip_version(v) is not None,
}
"""Validators a policy file may name for a custom identifier.

Names of the form ``stdnum:<module>`` (``stdnum:us.ein``) resolve to the
python-stdnum module's ``is_valid`` as well.
"""


def resolve_validator(spec: str | Callable[[str], bool]) -> Callable[[str], bool]:
    """Turn a validator name from policy (or a callable from code) into a callable."""
    if callable(spec):
        return spec
    if spec in VALIDATORS:
        return VALIDATORS[spec]
    if spec.startswith("stdnum:"):
        return stdnum_validator(spec.removeprefix("stdnum:"))
    known = ", ".join(sorted(VALIDATORS))
    raise ValueError(f"unknown validator {spec!r}; use one of {known} or 'stdnum:<module>'")
