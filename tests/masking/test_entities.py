from __future__ import annotations

import pytest

from jupyter_secure.masking.entities import (
    COUNTRY_PACKS,
    ENTITY_INFO,
    QUASI_IDENTIFIERS,
    Entity,
    check_custom_name,
)


def test_every_entity_is_described() -> None:
    assert set(ENTITY_INFO) == set(Entity)
    assert all(info.description for info in ENTITY_INFO.values())


def test_issue_vocabulary_is_present() -> None:
    required = {
        "EMAIL", "PHONE", "US_SSN", "CREDIT_CARD", "IBAN", "IP_ADDRESS", "DATE_OF_BIRTH",
        "PERSON", "STREET_ADDRESS", "POSTCODE", "FREE_TEXT",
    }  # fmt: skip
    assert required <= {e.value for e in Entity}


def test_quasi_identifiers_and_packs() -> None:
    assert {"POSTCODE", "DATE_OF_BIRTH", "SEX", "AGE"} == set(QUASI_IDENTIFIERS)
    assert {"uk", "de", "fr", "ca", "nl"} == set(COUNTRY_PACKS)


@pytest.mark.parametrize("name", ["MRN", "HOSPITAL_ID", "X2"])
def test_custom_names_accepted(name: str) -> None:
    assert check_custom_name(name) == name


@pytest.mark.parametrize("name", ["mrn", "M", "EMAIL", "1ABC", "HAS SPACE", "X" * 41])
def test_custom_names_refused(name: str) -> None:
    with pytest.raises(ValueError, match="custom identifier name"):
        check_custom_name(name)
