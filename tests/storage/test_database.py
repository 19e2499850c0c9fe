"""The schema on both backends: migrations from an empty database, and what they promise."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from jupyter_secure.errors import InvalidInput
from jupyter_secure.storage.database import Database
from jupyter_secure.storage.migrate import current_revision, head_revision
from jupyter_secure.storage.models import Base, GroupMember, Meta, User, UserRole


def test_migrations_from_empty_match_the_models(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.migrate()
        with db.engine.connect() as conn:
            assert current_revision(conn) == head_revision()
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == []
        tables = set(inspect(db.engine).get_table_names())
        assert {"meta", "secrets", "users", "user_roles", "group_members", "audit_index"} <= tables
    finally:
        db.dispose()


def test_migrate_is_idempotent_and_safe_when_processes_race(db_url: str) -> None:
    dbs = [Database(db_url) for _ in range(4)]
    errors: list[BaseException] = []

    def run(db: Database) -> None:
        try:
            db.migrate()
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(db,)) for db in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    for db in dbs:
        db.dispose()


def test_rows_round_trip_with_aware_utc_times(db_url: str) -> None:
    db = Database(db_url)
    db.migrate()
    when = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with db.write() as s:
        user = User(name="alice", disabled=False, created_at=when, updated_at=when)
        user.roles = [UserRole(role="student")]
        user.groups = [GroupMember(group_name="class-a")]
        s.add(user)
    with db.read() as s:
        got = s.scalar(select(User).where(User.name == "alice"))
        assert got is not None
        assert got.created_at == when
        assert got.created_at.tzinfo is not None
        assert [r.role for r in got.roles] == ["student"]
    db.dispose()


def test_naive_datetimes_are_refused(db_url: str) -> None:
    db = Database(db_url)
    db.migrate()
    with pytest.raises(Exception, match="naive datetimes"), db.write() as s:
        s.add(User(name="bob", disabled=False, created_at=dt.datetime(2026, 1, 1)))
        s.flush()
    db.dispose()


def test_a_failed_transaction_writes_nothing(db_url: str) -> None:
    db = Database(db_url)
    db.migrate()
    with pytest.raises(RuntimeError), db.write() as s:
        s.add(Meta(key="half", value="written"))
        s.flush()
        raise RuntimeError("boom")
    with db.read() as s:
        assert s.get(Meta, "half") is None
    db.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 's.db'}")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    db.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a database URL"),
        ("mysql://root@localhost/x", "unsupported database 'mysql'"),
        ("postgresql+nodriver://x/y", "no driver"),
    ],
)
def test_bad_urls_are_refused_naming_the_setting(url: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        Database(url)
    assert info.value.field == "db_url"
