"""Fixtures shared by the whole suite.

Every test runs with a clean environment: no master key in the environment,
a keyring that holds nothing (keyring's null backend), and no state directory
but the test's own. PostgreSQL tests get a schema of their own on the real
server at 127.0.0.1:5432 (database ``test``), dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import SECURE_ENV, Trail
from sqlalchemy import create_engine, text

from jupyter_secure.audit.checkpoints import CheckpointSigner
from jupyter_secure.storage.database import Database

PG_BASE = os.environ.get(
    "JUPYTER_SECURE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SECURE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "jupyter-config"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema."""
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(PG_BASE)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both backends: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated database on each backend."""
    database = Database(db_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner(CheckpointSigner.generate_raw())


@pytest.fixture
def trail(tmp_path: Path, signer: CheckpointSigner) -> Iterator[Trail]:
    t = Trail(tmp_path / "audit", signer)
    yield t
    t.close()


@pytest.fixture
def make_trail(tmp_path: Path, signer: CheckpointSigner):  # type: ignore[no-untyped-def]
    made: list[Trail] = []

    def make(**traits: object) -> Trail:
        t = Trail(tmp_path / "audit", signer, **traits)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()
