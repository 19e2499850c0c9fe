"""The engine's own generalisation outputs are never re-detected as phone numbers.

Birth dates generalised to 5-year bands read ``1940-1944``: nine characters,
digits and a dash, eight digits that fit a national number plan. A frame that
was masked once (or a printed masked frame going through the server's output
guard) must not show those bands again as fake phone numbers.
"""

from __future__ import annotations

import random
from datetime import date

import pandas as pd
import pytest

from jupyter_secure.masking import MaskingPolicy, classify_columns, mask_frame, scan_text
from jupyter_secure.masking.strategies import GENERALIZE_DEPTH, generalize
from jupyter_secure.masking.validators import generalised_value

TODAY = date(2026, 1, 1)
KEY = bytes(range(32))


def _dates(n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.randint(1930, 2008)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            for _ in range(n)]  # fmt: skip


def _originals(entity: str, n: int = 240, seed: int = 5) -> list[object]:
    rng = random.Random(seed)
    if entity == "DATE_OF_BIRTH":
        return list(_dates(n, seed))
    if entity == "AGE":
        return [rng.randint(0, 99) for _ in range(n)]
    if entity == "POSTCODE":
        return [f"{rng.randint(1000, 99999):05d}" for _ in range(n)]
    if entity == "IP_ADDRESS":
        v4 = [f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.7"
              for _ in range(n // 2)]  # fmt: skip
        v6 = [f"2001:db8:{rng.randint(0, 65535):x}:1::{rng.randint(1, 65535):x}"
              for _ in range(n - n // 2)]  # fmt: skip
        return v4 + v6
    return ["M", "F"] * (n // 2)


LEVELS = [
    (entity, level)
    for entity, depth in sorted(GENERALIZE_DEPTH.items())
    for level in range(1, depth + 1)
]


@pytest.mark.parametrize(("entity", "level"), LEVELS)
def test_every_generalisation_output_is_recognised(entity: str, level: int) -> None:
    for value in _originals(entity):
        out = generalize(value, entity, level)
        assert generalised_value(out), (entity, level, value, out)


@pytest.mark.parametrize(("entity", "level"), LEVELS)
@pytest.mark.parametrize("header", ["value", "col_7", "dob", "age", "ip", "phone"])
def test_generalised_columns_are_not_phone(entity: str, level: int, header: str) -> None:
    values = [generalize(v, entity, level) for v in _originals(entity)]
    (decision,) = classify_columns(pd.DataFrame({header: values}), today=TODAY)
    assert decision.entity != "PHONE", (entity, level, values[:3], decision.evidence)


@pytest.mark.parametrize(
    "values",
    [
        ["1940-1944", "1985-1989", "1960-1964", "2000-2004"] * 50,
        ["30-34", "35-39", "40-44", "90+"] * 50,
        ["1990-2020", "1914-1918", "1939-1945", "2019-2023"] * 50,  # any year range
        ["81.2.69.0/24", "10.55.0.0/16", "192.0.2.0/24", "203.0.0.0/16"] * 50,
    ],
)
def test_ranges_and_networks_are_not_phone(values: list[str]) -> None:
    (decision,) = classify_columns(pd.DataFrame({"band": values}), today=TODAY)
    assert decision.entity is None, decision.evidence


@pytest.mark.parametrize(
    "values",
    [
        ["(415) 555-0132", "415-555-0199", "+1 202-555-0143", "202.555.0187"] * 50,
        ["+44 20 7946 0958", "020 7946 0123", "+49 30 1234567", "030 12345678"] * 50,
        ["01 23 45 67 89", "+33 1 23 45 67 89", "0612345678", "+33612345678"] * 50,
        ["0301-2345678", "089-1234567", "0211-123456", "040-12345678"] * 50,
    ],
)
def test_real_phone_columns_are_still_phone(values: list[str]) -> None:
    (decision,) = classify_columns(pd.DataFrame({"contact": values}), today=TODAY)
    assert decision.entity == "PHONE", decision.evidence


def test_year_ranges_in_text_are_not_phone() -> None:
    assert scan_text("phone 1940-1944") == []
    assert scan_text("call between 1990-2020") == []
    printed = "   phone             dob\n0  (312) 555-0187  1940-1944\n1  (312) 555-0188  1975-1979"
    found = [(printed[s.start : s.end], s.entity) for s in scan_text(printed)]
    assert found == [("(312) 555-0187", "PHONE"), ("(312) 555-0188", "PHONE")]


def test_generalised_ipv6_networks_are_not_addresses_in_text() -> None:
    assert scan_text("net 2001:db8:1::/48 and 2001:db8::/32") == []
    host = "inet6 2001:db8::1/64 scope global"  # an interface's address is still one
    assert [(host[s.start : s.end], s.entity) for s in scan_text(host)] == [
        ("2001:db8::1", "IP_ADDRESS")
    ]


def test_masking_a_masked_frame_does_not_turn_bands_into_phones() -> None:
    frame = pd.DataFrame(
        {
            "date_of_birth": _dates(200),
            "phone": [f"(415) 555-{100 + i % 100:04d}" for i in range(200)],
        }
    )
    policy = MaskingPolicy().for_role("student", key=KEY)
    once = mask_frame(frame, policy, today=TODAY).frame
    twice = mask_frame(once, policy, today=TODAY)
    bands = once["date_of_birth"].tolist()
    assert all(generalised_value(b) for b in bands)
    assert twice.frame["date_of_birth"].tolist() == bands
    assert all(e.entity != "PHONE" for e in twice.report.entries if e.column == "date_of_birth")
