from __future__ import annotations

import stat
from pathlib import Path

import polars as pl
import pytest

from jupyter_secure.demo.dataset import generate_patients, write_patients


def test_same_seed_same_rows() -> None:
    assert generate_patients(50, seed=7).equals(generate_patients(50, seed=7))
    assert not generate_patients(50, seed=7).equals(generate_patients(50, seed=8))


def test_columns_and_formats() -> None:
    df = generate_patients(300)
    assert df.columns == [
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
    ]
    assert df["patient_id"].n_unique() == 300
    assert df["ssn"].str.contains(r"^\d{3}-\d{2}-\d{4}$").all()
    assert df["phone"].str.contains(r"^\([2-9]\d{2}\) \d{3}-\d{4}$").all()
    assert df["email"].str.contains(r"^[a-z.]+\d+@[a-z.]+$").all()
    assert df["zip"].str.contains(r"^\d{5}$").all()
    assert set(df["sex"]) <= {"F", "M"}
    assert (df["charges"] > 0).all()


def test_written_privately_and_whole(tmp_path: Path) -> None:
    path = write_patients(tmp_path / "p" / "patients.parquet", rows=20)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert pl.read_parquet(path).height == 20
    assert list(path.parent.iterdir()) == [path]


def test_rows_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        generate_patients(0)
