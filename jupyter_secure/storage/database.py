"""Connections to the state database: SQLite by default, PostgreSQL by URL.

SQLite runs in WAL mode with ``synchronous=FULL`` (a committed admin change
survives power loss) and foreign keys on. The driver's own transaction
handling is switched off and replaced by explicit ``BEGIN`` statements, so
that writers can ask for ``BEGIN IMMEDIATE``: the write lock is taken before
anything is read, which is what makes read-check-write sequences (budget
charges, first-start initialisation) safe across processes. On PostgreSQL the
same sequences take row or advisory locks.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import InvalidInput

__all__ = ["Database", "sqlite_url"]

DB_FILENAME = "state.db"
_SQLITE_BUSY_MS = 30_000
# Arbitrary constant naming "jupyter-secure migrations" for pg_advisory_xact_lock.
_PG_MIGRATION_LOCK = 0x6A_73_65_63
_LOCKED_RETRIES = 20


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{path}"


class Database:
    """An engine plus session factories for ordinary and locking transactions."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        try:
            parsed = make_url(url)
            parsed.port  # noqa: B018 - parses the port now, so a bad one is refused here
        except (ArgumentError, ValueError):
            # Never echo the URL: it may carry a password.
            raise InvalidInput("db_url", "not a database URL (dialect://user@host/db)") from None
        backend = parsed.get_backend_name()
        if backend not in {"sqlite", "postgresql"}:
            raise InvalidInput(
                "db_url", f"unsupported database {backend!r}; use sqlite or postgresql"
            )
        if backend == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url = parsed
        self.dialect = backend
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if backend == "sqlite":
            kwargs["connect_args"] = {"timeout": _SQLITE_BUSY_MS / 1000, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(parsed, **kwargs)
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise InvalidInput(
                "db_url",
                f"no driver for {parsed.drivername!r} ({exc}); "
                "for PostgreSQL install jupyter-secure[postgres]",
            ) from None
        if backend == "sqlite":
            _install_sqlite_hooks(self.engine)
        self._write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(self._write_engine, expire_on_commit=False)

    def describe(self) -> str:
        """The URL without its password, for messages and logs."""
        return self.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; rolled back at the end."""
        with self._sessions() as session:
            try:
                yield session
            finally:
                session.rollback()

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction holds the write lock from its first statement.

        Commits when the block ends normally, rolls back on any exception.
        """
        with self._write_sessions() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A Core connection inside a locking transaction (used by migrations and the index)."""
        with self._write_engine.begin() as conn:
            yield conn

    def migrate(self) -> None:
        """Bring the schema to the newest migration, once even when processes race.

        SQLite can answer "database is locked" without waiting while another
        connection is switching a brand-new file to WAL; migrating is
        idempotent, so that case is retried.
        """
        from .migrate import upgrade_to_head

        for attempt in range(_LOCKED_RETRIES):
            try:
                with self.write_connection() as conn:
                    if self.dialect == "postgresql":
                        conn.execute(
                            text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK}
                        )
                    upgrade_to_head(conn)
                return
            except OperationalError as exc:
                if not _sqlite_locked(exc) or attempt == _LOCKED_RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_locked(exc: OperationalError) -> bool:
    return "database is locked" in str(exc.orig)


def _set_wal(cur: Any) -> None:
    """Switch to WAL, retrying the moment when another connection holds the switch lock."""
    for attempt in range(_LOCKED_RETRIES):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == _LOCKED_RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Autocommit at the driver level; transactions begin in _on_begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
            _set_wal(cur)
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
