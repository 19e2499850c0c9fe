from __future__ import annotations

import pytest

from jupyter_secure.masking import (
    DEFAULT_TABLE,
    ROLES,
    MaskingPolicy,
    PolicyError,
    Strategy,
)


def test_default_table_covers_every_product_role() -> None:
    assert set(ROLES) == set(DEFAULT_TABLE)
    policy = MaskingPolicy()
    assert policy.for_role("admin").strategy_for("EMAIL") is Strategy.RAW
    assert policy.for_role("data_scientist").strategy_for("EMAIL") is Strategy.TOKEN
    assert policy.for_role("data_scientist").strategy_for("DATE_OF_BIRTH") is Strategy.GENERALIZE
    assert policy.for_role("student").strategy_for("US_SSN") is Strategy.FAKE
    assert policy.for_role("auditor").strategy_for("PERSON") is Strategy.REDACT
    assert policy.for_role("instructor").strategy_for("CREDIT_CARD") is Strategy.PARTIAL


def test_unknown_role_fails_closed() -> None:
    role = MaskingPolicy().for_role("intruder")
    assert not role.known_role
    assert role.restricted
    assert {role.strategy_for(e) for e in ("EMAIL", "FREE_TEXT", "SEX", "UNCLASSIFIED", "MRN")} == {
        Strategy.REDACT
    }
    assert role.kanon is not None


def test_admin_is_not_restricted_and_exempt_from_kanon() -> None:
    admin = MaskingPolicy().for_role("admin")
    assert not admin.restricted
    assert admin.kanon is None


def test_key_is_checked_and_hidden() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        MaskingPolicy().for_role("student", key=b"short")
    role = MaskingPolicy().for_role("student", key=b"s" * 32)
    assert "s" * 32 not in repr(role)


def test_from_mapping_merges_over_defaults() -> None:
    policy = MaskingPolicy.from_mapping(
        {
            "roles": {
                "student": {"EMAIL": "partial"},
                "researcher": {"*": "token", "FREE_TEXT": "redact", "MRN": "redact"},
            },
            "detection": {
                "phone_regions": ["US", "GB"],
                "country_packs": ["uk"],
                "custom": [{"name": "MRN", "pattern": r"\bMRN-?\d{7}\b", "context_words": ["mrn"]}],
                "column_entities": {"batch_id": None, "notes": "FREE_TEXT"},
                "allow_values": ["support@example.org"],
                "deny_terms": {"PERSON": ["Project Falcon"]},
            },
            "columns": {"data_scientist": {"email": "partial"}},
            "k_anonymity": {"k": 10, "max_suppression": 0.01},
        }
    )
    assert policy.for_role("student").strategy_for("EMAIL") is Strategy.PARTIAL
    assert policy.for_role("student").strategy_for("US_SSN") is Strategy.FAKE
    assert policy.for_role("researcher").strategy_for("MRN") is Strategy.REDACT
    assert policy.for_role("data_scientist").strategy_for("EMAIL", "email") is Strategy.PARTIAL
    assert policy.k_anonymity.k == 10
    assert [i.name for i in policy.detection.identifiers] == ["UK_NHS_NUMBER", "UK_NINO", "MRN"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"roles": {"student": {"EMAIL": "fak"}}}, "roles.student.EMAIL: unknown strategy 'fak'"),
        ({"roles": {"student": {"EMIAL": "fake"}}}, "roles.student.EMIAL: unknown entity"),
        (
            {"roles": {"student": {"EMAIL": "generalize"}}},
            "roles.student.EMAIL: strategy 'generalize'",
        ),
        ({"roles": {"student": {"PHONE": "spans"}}}, "roles.student.PHONE: strategy 'spans'"),
        (
            {"roles": {"student": {"FREE_TEXT": "token"}}},
            "roles.student.FREE_TEXT: FREE_TEXT takes",
        ),
        ({"roles": {"newrole": {"EMAIL": "raw"}}}, "roles.newrole: needs a '*' entry"),
        ({"roles": {"Bad Role": {"*": "raw"}}}, "roles.Bad Role: role names"),
        ({"detection": {"phone_regions": ["XX"]}}, "detection.phone_regions"),
        ({"detection": {"country_packs": ["mars"]}}, "detection.country_packs"),
        ({"detection": {"custom": [{"name": "MRN", "pattern": "("}]}}, "detection.custom[0]"),
        ({"detection": {"custom": [{"name": "mrn", "pattern": "x"}]}}, "detection.custom[0]"),
        (
            {"detection": {"custom": [{"name": "MRN", "pattern": "x", "validator": "nah"}]}},
            "validator",
        ),
        (
            {"detection": {"custom": [{"name": "MRN"}]}},
            "detection.custom[0]: needs a name and a pattern",
        ),
        ({"detection": {"allow_patterns": ["("]}}, "detection.allow_patterns[0]"),
        ({"detection": {"deny_terms": {"NOPE": ["x"]}}}, "detection.deny: unknown entity"),
        ({"detection": {"column_entities": {"c": "NOPE"}}}, "detection.column_entities['c']"),
        ({"detection": {"colour": 1}}, "detection.colour: unknown setting"),
        ({"columns": {"ghost": {"c": "raw"}}}, "columns.ghost: unknown role"),
        ({"columns": {"student": {"c": "nope"}}}, "columns.student.c: unknown strategy"),
        ({"k_anonymity": {"k": 1}}, "k_anonymity.k"),
        ({"k_anonymity": {"kk": 5}}, "k_anonymity.kk: unknown setting"),
        ({"rolez": {}}, "rolez: unknown policy section"),
    ],
)
def test_errors_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(PolicyError) as info:
        MaskingPolicy.from_mapping(data)
    assert field in str(info.value)
