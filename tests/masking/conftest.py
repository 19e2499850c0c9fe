"""Shared fixtures for the masking tests: a seeded Faker frame, keys and known values."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pandas as pd
import pytest
from faker import Faker

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))

KNOWN = {
    "EMAIL": "ann.lee@example.org",
    "PHONE": "(415) 555-0132",
    "US_SSN": "536-22-1234",
    "CREDIT_CARD": "4111 1111 1111 1111",
    "IBAN": "DE89 3704 0044 0532 0130 00",
    "IP_ADDRESS": "81.2.69.142",
    "PERSON": "Dr. Maria Schmidt",
    "STREET_ADDRESS": "221 Baker Street",
    "POSTCODE": "90210",
    "DATE_OF_BIRTH": "1985-03-07",
}


def faker_frame(rows: int = 400, seed: int = 11) -> pd.DataFrame:
    """A 16-column frame like the benchmark's (smaller, deterministic)."""
    rng = random.Random(seed)
    fakers = {}
    for i, locale in enumerate(("en_US", "en_GB", "de_DE", "fr_FR")):
        fk = Faker(locale)
        fk.seed_instance(seed + i)
        fakers[locale] = fk
    us = fakers["en_US"]
    data: dict[str, list[object]] = {k: [] for k in (
        "full_name", "email", "phone", "ssn", "card_number", "iban", "ip_address",
        "date_of_birth", "street_address", "postcode", "sex", "notes", "order_id",
        "batch_id", "amount", "created_at",
    )}  # fmt: skip
    for _ in range(rows):
        fk = fakers[rng.choice(list(fakers))]
        data["full_name"].append(fk.name())
        data["email"].append(fk.email())
        data["phone"].append(fk.phone_number())
        data["ssn"].append(us.ssn())
        data["card_number"].append(us.credit_card_number())
        data["iban"].append(fk.iban())
        data["ip_address"].append(fk.ipv4() if rng.random() < 0.8 else fk.ipv6())
        data["date_of_birth"].append(fk.date_of_birth(minimum_age=18, maximum_age=90))
        data["street_address"].append(fk.street_address())
        data["postcode"].append(fk.postcode())
        data["sex"].append(rng.choice("FM"))
        data["notes"].append(
            f"Customer {fk.name()} called from {fk.phone_number()} about order "
            f"{rng.randint(10**6, 10**9)}. {us.sentence()}"
        )
        data["order_id"].append(rng.randint(10**8, 10**12))
        data["batch_id"].append(f"{rng.randint(0, 99999):05d}")
        data["amount"].append(round(rng.uniform(1, 5000), 2))
        data["created_at"].append(datetime(2024, 1, 1) + timedelta(seconds=rng.randint(0, 10**7)))
    frame = pd.DataFrame(data)
    frame["date_of_birth"] = pd.to_datetime(frame["date_of_birth"])
    return frame


EXPECTED = {
    "full_name": "PERSON",
    "email": "EMAIL",
    "phone": "PHONE",
    "ssn": "US_SSN",
    "card_number": "CREDIT_CARD",
    "iban": "IBAN",
    "ip_address": "IP_ADDRESS",
    "date_of_birth": "DATE_OF_BIRTH",
    "street_address": "STREET_ADDRESS",
    "postcode": "POSTCODE",
    "sex": "SEX",
    "notes": "FREE_TEXT",
    "order_id": None,
    "batch_id": None,
    "amount": None,
    "created_at": None,
}


@pytest.fixture(scope="session")
def frame() -> pd.DataFrame:
    """The 16-column Faker frame (never mutate it in a test)."""
    return faker_frame()


@pytest.fixture(scope="session")
def key() -> bytes:
    return KEY


@pytest.fixture(scope="session")
def other_key() -> bytes:
    return OTHER_KEY


@pytest.fixture(scope="session")
def known() -> dict[str, str]:
    return dict(KNOWN)


@pytest.fixture(scope="session")
def expected() -> dict[str, str | None]:
    return dict(EXPECTED)
