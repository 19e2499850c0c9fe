"""The demo data set: synthetic patients generated with Faker, never real people.

Direct identifiers (name, e-mail, SSN, phone), quasi-identifiers (birth
date, ZIP, sex) and sensitive attributes (diagnosis, charges): the mix the
masking, k-anonymity and differential-privacy lessons need. A fixed seed
gives the same rows on every machine, so notebooks and tests can refer to
them.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl
from faker import Faker

__all__ = ["DIAGNOSES", "generate_patients", "write_patients"]

#: ICD-10 codes with their descriptions; weights roughly follow outpatient frequency.
DIAGNOSES: tuple[tuple[str, str, int], ...] = (
    ("I10", "Essential hypertension", 18),
    ("E11.9", "Type 2 diabetes without complications", 12),
    ("J06.9", "Acute upper respiratory infection", 14),
    ("M54.5", "Low back pain", 10),
    ("F32.9", "Major depressive disorder, single episode", 7),
    ("J45.909", "Asthma, uncomplicated", 6),
    ("E78.5", "Hyperlipidemia", 11),
    ("K21.9", "Gastro-oesophageal reflux disease", 6),
    ("N39.0", "Urinary tract infection", 5),
    ("F41.1", "Generalized anxiety disorder", 5),
    ("C50.919", "Malignant neoplasm of breast", 2),
    ("B20", "HIV disease", 1),
)
SEXES = ("F", "M")
_ADULT = dt.timedelta(days=18 * 365)


def generate_patients(rows: int = 1000, seed: int = 2026) -> pl.DataFrame:
    """``rows`` synthetic patient records, the same for the same seed."""
    if rows < 1:
        raise ValueError("rows must be at least 1")
    fake = Faker("en_US")
    fake.seed_instance(seed)
    codes = [d[0] for d in DIAGNOSES]
    labels = {d[0]: d[1] for d in DIAGNOSES}
    weights = [d[2] for d in DIAGNOSES]
    today = dt.date(2026, 1, 1)
    data: dict[str, list[object]] = {
        k: []
        for k in (
            "patient_id",
            "name",
            "email",
            "ssn",
            "phone",
            "birth_date",
            "zip",
            "sex",
            "diagnosis_code",
            "diagnosis",
            "charges",
        )
    }
    for i in range(rows):
        sex = SEXES[fake.random_int(0, 1)]
        first = fake.first_name_female() if sex == "F" else fake.first_name_male()
        last = fake.last_name()
        born = fake.date_between(
            today - dt.timedelta(days=90 * 365), today - dt.timedelta(days=18 * 365)
        )
        code = fake.random.choices(codes, weights=weights)[0]
        base = 120.0 + 40.0 * (today.year - born.year) ** 0.5
        data["patient_id"].append(100_000 + i)
        data["name"].append(f"{first} {last}")
        data["email"].append(
            f"{first}.{last}{fake.random_int(1, 99)}@{fake.free_email_domain()}".lower()
        )
        data["ssn"].append(fake.ssn())
        area, exchange, line = (
            fake.random_int(201, 989),
            fake.random_int(200, 999),
            fake.random_int(0, 9999),
        )
        data["phone"].append(f"({area}) {exchange}-{line:04d}")
        data["birth_date"].append(born)
        data["zip"].append(fake.zipcode())
        data["sex"].append(sex)
        data["diagnosis_code"].append(code)
        data["diagnosis"].append(labels[code])
        data["charges"].append(round(base * fake.random.lognormvariate(0.0, 0.6), 2))
    return pl.DataFrame(data)


def write_patients(path: Path, rows: int = 1000, seed: int = 2026) -> Path:
    """Write the data set as Parquet (0600), via a temporary file so it appears whole."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    generate_patients(rows, seed).write_parquet(tmp)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
