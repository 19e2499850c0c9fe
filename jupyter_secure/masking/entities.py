"""The closed vocabulary of entity types the PII engine can report.

Every decision the engine makes, every strategy in a role table and every
report line names one of these (or a custom identifier declared in policy,
see :mod:`jupyter_secure.masking.config`). Keeping the vocabulary closed
means a typo in a policy file is an error at load time instead of a column
that silently stays unmasked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "COUNTRY_PACKS",
    "ENTITY_INFO",
    "QUASI_IDENTIFIERS",
    "Entity",
    "EntityInfo",
    "EntityKind",
    "check_custom_name",
]


class EntityKind(StrEnum):
    """How an entity type behaves in masking and k-anonymity."""

    DIRECT = "direct"
    """Identifies a person on its own (an e-mail address, an SSN)."""
    QUASI = "quasi"
    """Identifies a person only in combination (ZIP + birth date + sex)."""
    TEXT = "text"
    """A column of prose that may contain any of the above."""
    FAIL_CLOSED = "fail-closed"
    """The engine could not decide; restricted roles get it redacted."""


class Entity(StrEnum):
    """Built-in entity types. Custom identifiers add their own names."""

    EMAIL = "EMAIL"
    PHONE = "PHONE"
    US_SSN = "US_SSN"
    CREDIT_CARD = "CREDIT_CARD"
    IBAN = "IBAN"
    IP_ADDRESS = "IP_ADDRESS"
    DATE_OF_BIRTH = "DATE_OF_BIRTH"
    PERSON = "PERSON"
    STREET_ADDRESS = "STREET_ADDRESS"
    POSTCODE = "POSTCODE"
    AGE = "AGE"
    SEX = "SEX"
    FREE_TEXT = "FREE_TEXT"
    UNCLASSIFIED = "UNCLASSIFIED"
    UK_NHS_NUMBER = "UK_NHS_NUMBER"
    UK_NINO = "UK_NINO"
    DE_TAX_ID = "DE_TAX_ID"
    FR_NIR = "FR_NIR"
    CA_SIN = "CA_SIN"
    NL_BSN = "NL_BSN"


@dataclass(frozen=True, slots=True)
class EntityInfo:
    """Description of one entity type, used by docs, reports and policy errors."""

    description: str
    kind: EntityKind
    pack: str | None = None
    """Country pack that enables detection; ``None`` means always on."""


ENTITY_INFO: dict[Entity, EntityInfo] = {
    Entity.EMAIL: EntityInfo("E-mail address", EntityKind.DIRECT),
    Entity.PHONE: EntityInfo(
        "Telephone number, validated with libphonenumber for the configured regions",
        EntityKind.DIRECT,
    ),
    Entity.US_SSN: EntityInfo(
        "US Social Security number (area/group/serial rules)", EntityKind.DIRECT
    ),
    Entity.CREDIT_CARD: EntityInfo(
        "Payment card number (Luhn check digit and issuer ranges)", EntityKind.DIRECT
    ),
    Entity.IBAN: EntityInfo(
        "International bank account number (mod-97 and country length)", EntityKind.DIRECT
    ),
    Entity.IP_ADDRESS: EntityInfo("IPv4 or IPv6 address", EntityKind.DIRECT),
    Entity.DATE_OF_BIRTH: EntityInfo("Date of birth", EntityKind.QUASI),
    Entity.PERSON: EntityInfo("Name of a person", EntityKind.DIRECT),
    Entity.STREET_ADDRESS: EntityInfo("Street address", EntityKind.DIRECT),
    Entity.POSTCODE: EntityInfo("ZIP or postal code", EntityKind.QUASI),
    Entity.AGE: EntityInfo("Age in years", EntityKind.QUASI),
    Entity.SEX: EntityInfo("Sex or gender", EntityKind.QUASI),
    Entity.FREE_TEXT: EntityInfo(
        "Free text (notes, comments) that may contain any entity", EntityKind.TEXT
    ),
    Entity.UNCLASSIFIED: EntityInfo(
        "A column whose classification failed; treated as PII (fail closed)",
        EntityKind.FAIL_CLOSED,
    ),
    Entity.UK_NHS_NUMBER: EntityInfo("UK NHS number (mod-11)", EntityKind.DIRECT, "uk"),
    Entity.UK_NINO: EntityInfo("UK National Insurance number", EntityKind.DIRECT, "uk"),
    Entity.DE_TAX_ID: EntityInfo(
        "German tax identification number (Steuer-IdNr)", EntityKind.DIRECT, "de"
    ),
    Entity.FR_NIR: EntityInfo("French social security number (NIR)", EntityKind.DIRECT, "fr"),
    Entity.CA_SIN: EntityInfo("Canadian Social Insurance Number", EntityKind.DIRECT, "ca"),
    Entity.NL_BSN: EntityInfo("Dutch citizen service number (BSN)", EntityKind.DIRECT, "nl"),
}

QUASI_IDENTIFIERS: frozenset[str] = frozenset(
    e.value for e, info in ENTITY_INFO.items() if info.kind is EntityKind.QUASI
)
"""Entities that k-anonymity treats as quasi-identifiers by default."""

COUNTRY_PACKS: frozenset[str] = frozenset(
    info.pack for info in ENTITY_INFO.values() if info.pack is not None
)
"""Country packs that a policy may enable; all are off by default."""

_CUSTOM_NAME = re.compile(r"[A-Z][A-Z0-9_]{1,39}")


def check_custom_name(name: str) -> str:
    """Return ``name`` if it may name a custom identifier, else raise ``ValueError``.

    Custom names share the report and policy namespace with the built-ins, so
    they must look like them and must not shadow one.
    """
    if not _CUSTOM_NAME.fullmatch(name):
        raise ValueError(
            f"custom identifier name {name!r} must be 2-40 characters of A-Z, 0-9 and _,"
            " starting with a letter"
        )
    if name in Entity.__members__:
        raise ValueError(f"custom identifier name {name!r} shadows a built-in entity")
    return name
