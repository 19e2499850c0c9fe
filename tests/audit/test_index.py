"""The audit index on both backends: live inserts, catch-up after a crash, filtered queries."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jupyter_secure.audit.index import AuditIndex, AuditIntegrityError, QueryFilter
from jupyter_secure.audit.logger import AuditLogger, Identity, Resource
from jupyter_secure.audit.sink import AuditSink
from jupyter_secure.storage.database import Database


@pytest.fixture
def indexed(db_url: str, tmp_path: Path, signer):  # type: ignore[no-untyped-def]
    db = Database(db_url)
    db.migrate()
    directory = tmp_path / "audit"
    sink = AuditSink(directory, "trail-ix", signer)
    logger = AuditLogger(sink, source="server")
    index = AuditIndex(db, directory)
    sink.on_commit = index.enqueue
    sink.open()
    index.start()
    yield logger, index, db, directory
    sink.close()
    index.close()
    db.dispose()


def act(logger: AuditLogger, name: str, who: str, user: str, clock: float | None = None) -> None:
    if clock is not None:
        logger.clock = lambda: clock
    logger.record(
        name,
        identity=Identity("User", who, roles=("admin",)),
        request={"name": user},
        resources=[Resource("user", user)],
    )


def test_queries_filter_by_user_event_time_and_resource(indexed) -> None:  # type: ignore[no-untyped-def]
    logger, index, _, _ = indexed
    base = time.time() - 3600
    act(logger, "UserDisabled", "admin", "bob", base)
    act(logger, "UserEnabled", "admin", "bob", base + 60)
    act(logger, "UserDisabled", "carol", "dave", base + 120)
    index.flush()

    def names(**kw: object) -> list[str]:
        return [
            e["eventName"] + ":" + e["userIdentity"]["name"]
            for _, e in index.query(QueryFilter(**kw))
        ]  # type: ignore[arg-type]

    assert names() == ["UserDisabled:admin", "UserEnabled:admin", "UserDisabled:carol"]
    assert names(user="carol") == ["UserDisabled:carol"]
    assert names(event="UserEnabled") == ["UserEnabled:admin"]
    assert names(resource="user:dave") == ["UserDisabled:carol"]
    assert names(resource="bob") == ["UserDisabled:admin", "UserEnabled:admin"]
    assert names(resource="b%") == []
    assert names(since_us=int((base + 30) * 1e6), until_us=int((base + 90) * 1e6)) == [
        "UserEnabled:admin"
    ]
    assert names(limit=1) == ["UserDisabled:admin"]


def test_catch_up_indexes_what_a_crash_left_out(indexed, signer) -> None:  # type: ignore[no-untyped-def]
    logger, index, db, directory = indexed
    act(logger, "UserDisabled", "admin", "a")
    index.flush()
    # Another writer appends without an index (as if it crashed before indexing).
    other = AuditSink(directory, "trail-ix", signer)
    other_logger = AuditLogger(other, source="cli")
    other.open()
    for u in ("b", "c"):
        act(other_logger, "UserEnabled", "root", u)
    other.close()
    act(logger, "UserDisabled", "admin", "d")
    index.flush()
    assert index.count() == 2
    assert AuditIndex(db, directory).catch_up() == 2
    assert index.count() == 4
    seqs = [e["seq"] for _, e in index.query(QueryFilter())]
    assert seqs == [1, 2, 3, 4]
    assert AuditIndex(db, directory).catch_up() == 0


def test_query_refuses_a_record_that_no_longer_matches_its_hash(indexed) -> None:  # type: ignore[no-untyped-def]
    logger, index, _, directory = indexed
    act(logger, "UserDisabled", "admin", "zed")
    index.flush()
    path = directory / "segment-00000001.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"name":"zed"', b'"name":"zap"'))
    with pytest.raises(AuditIntegrityError, match="audit verify"):
        list(index.query(QueryFilter()))
