"""Column-name hints and context words: the non-value evidence the detectors use.

A header is a hint, never proof: ``phone`` on a column of order numbers must
not mask it, and ``c07`` on a column of e-mail addresses must not hide them.
Columns therefore combine hints with value checks (:mod:`.columns`). In text,
the same idea is a context word near a bare number: "SSN 123456789" counts,
"order 123456789" does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping

from ._regex import trie_alternation
from .entities import Entity

__all__ = [
    "CONTEXT_WORDS",
    "HEADER_HINTS",
    "ContextWords",
    "header_entities",
    "header_tokens",
]

HEADER_HINTS: Mapping[str, tuple[str, ...]] = {
    Entity.EMAIL: ("email", "e mail", "mail", "emailaddress", "email address"),
    Entity.PHONE: (
        "phone", "tel", "telephone", "mobile", "cell", "cellphone", "fax", "msisdn",
        "phonenumber", "contact number", "handy", "telefon", "telefono",
    ),
    Entity.US_SSN: ("ssn", "social security", "socialsecurity", "ss number", "ssnumber"),
    Entity.CREDIT_CARD: (
        "card", "cc", "pan", "creditcard", "cardnumber", "ccnumber", "ccnum", "card number",
        "credit card",
    ),
    Entity.IBAN: ("iban", "bank account", "account iban"),
    Entity.IP_ADDRESS: (
        "ip", "ipaddress", "ip address", "ipv4", "ipv6", "ipaddr", "remote addr", "client ip",
    ),
    Entity.DATE_OF_BIRTH: (
        "dob", "birth", "birthday", "birthdate", "born", "geburtsdatum", "bday",
        "date of birth", "naissance",
    ),
    Entity.PERSON: (
        "surname", "forename", "firstname", "lastname", "fullname", "givenname",
        "familyname", "nachname", "vorname", "nom", "prenom", "cardholder",
    ),
    Entity.STREET_ADDRESS: (
        "address", "street", "addr", "addressline", "strasse", "straße", "adresse",
        "address line", "street address",
    ),
    Entity.POSTCODE: ("zip", "zipcode", "postcode", "postal", "plz", "postalcode", "post code"),
    Entity.AGE: ("age", "alter", "age years"),
    Entity.SEX: ("sex", "gender", "geschlecht", "sexe"),
    Entity.FREE_TEXT: (
        "notes", "note", "comment", "comments", "description", "remarks", "text", "message",
        "body", "feedback", "summary", "narrative",
    ),
}  # fmt: skip
"""Phrases (lower-case, space-separated tokens) that hint at an entity in a header."""

_PERSON_QUALIFIERS = frozenset(
    [
        "full",
        "first",
        "last",
        "given",
        "family",
        "middle",
        "maiden",
        "sur",
        "fore",
        "patient",
        "customer",
        "client",
        "employee",
        "contact",
        "person",
        "student",
        "owner",
        "holder",
        "cardholder",
        "account",
        "legal",
        "preferred",
        "display",
        "name",
    ]
)
_NOT_STREET = frozenset({"email", "mail", "ip", "mac", "web", "url", "wallet", "memory"})
_TOKEN = re.compile(r"[A-Z]?[a-zà-ÿß]+|[A-Z]+(?![a-z])|\d+")


def header_tokens(label: object) -> tuple[str, ...]:
    """Split a column label (any hashable; tuples for MultiIndex) into lower-case words."""
    text = " ".join(str(p) for p in label) if isinstance(label, tuple) else str(label)
    return tuple(t.lower() for t in _TOKEN.findall(text[:200]))


def header_entities(label: object, custom: Mapping[str, Iterable[str]] | None = None) -> set[str]:
    """Entities that a column label hints at (built-ins plus ``custom`` name -> phrases)."""
    tokens = header_tokens(label)
    if not tokens:
        return set()
    padded = " " + " ".join(tokens) + " "
    found: set[str] = set()
    tables: list[tuple[str, Iterable[str]]] = list(HEADER_HINTS.items())
    if custom:
        tables.extend(custom.items())
    for entity, phrases in tables:
        if any(f" {phrase.lower()} " in padded for phrase in phrases):
            found.add(str(entity))
    if "name" in tokens and set(tokens) <= _PERSON_QUALIFIERS:
        found.add(Entity.PERSON)
    if Entity.STREET_ADDRESS in found:
        index = tokens.index("address") if "address" in tokens else -1
        if index > 0 and tokens[index - 1] in _NOT_STREET:
            found.discard(Entity.STREET_ADDRESS)
    return found


CONTEXT_WORDS: Mapping[str, tuple[str, ...]] = {
    Entity.PHONE: (
        "phone", "tel", "telephone", "mobile", "cell", "call", "called", "calling", "fax",
        "contact", "reach", "reached", "dial", "whatsapp", "sms", "text", "voicemail",
        "hotline", "telefon", "téléphone", "portable", "handy", "ph", "callback",
    ),
    Entity.US_SSN: ("ssn", "social security", "soc sec", "ss#", "ss no", "taxpayer"),
    Entity.CREDIT_CARD: (
        "card", "credit", "debit", "visa", "mastercard", "amex", "cc", "pan", "payment",
        "paid", "charge", "charged", "refund", "refunded", "carte", "karte", "tarjeta",
    ),
    Entity.POSTCODE: ("zip", "zipcode", "postcode", "postal", "plz", "code postal"),
    Entity.DATE_OF_BIRTH: (
        "born", "birth", "dob", "d.o.b", "birthday", "birthdate", "geboren", "geb",
        "né", "née", "naissance", "nacimiento", "nascita",
    ),
}  # fmt: skip
"""Words that make a bare number (or a date) near them count as the entity."""


class ContextWords:
    """Find context words in lower-cased text and say which entities each supports.

    One prefix-factored pattern over all words, matched against
    ``text.lower()``, with the word boundary before a match checked in Python:
    that keeps the pattern starting with a plain character class, which
    CPython's regex engine scans several times faster than named groups,
    ``re.IGNORECASE`` or a leading ``\\b``.
    """

    __slots__ = ("_entities", "pattern")

    def __init__(self, words: Mapping[str, Iterable[str]]) -> None:
        entities: dict[str, set[str]] = {}
        for entity, phrases in words.items():
            for phrase in phrases:
                if phrase:
                    entities.setdefault(phrase.lower(), set()).add(str(entity))
        self._entities = {w: frozenset(e) for w, e in entities.items()}
        body = trie_alternation(sorted(self._entities))
        self.pattern = re.compile(f"(?:{body})(?!\\w)")

    def find(self, lowered: str) -> Iterator[tuple[int, frozenset[str]]]:
        """Yield (end offset, entities) for each context word in ``lowered``."""
        entities = self._entities
        for m in self.pattern.finditer(lowered):
            start = m.start()
            if start and (lowered[start - 1].isalnum() or lowered[start - 1] == "_"):
                continue
            yield m.end(), entities[m.group()]
