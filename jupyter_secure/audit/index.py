"""The audit index: a table in the state database that makes the trail queryable.

The segment files are the record of truth; the index is derived from them
and only says where each record is and the fields queries filter on (time,
user, event name, resources). It is filled from the sink's commits on a
thread of its own, so a slow database never slows an append, and caught up
from the files at start-up (``catch_up``) for anything a crash left out.
Every record a query returns is read back from its segment and its hash
checked before it is shown.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ..errors import SecureError
from ..storage.database import Database
from ..storage.models import AuditIndexEntry, AuditIndexResource, Meta
from .logger import AuditLogger, IndexFields
from .record import RecordFormatError, parse_record
from .segments import iter_lines, read_at, segment_sizes
from .sink import Receipt
from .verify import Witness

__all__ = ["AuditIndex", "AuditIntegrityError", "QueryFilter"]

log = logging.getLogger(__name__)

WATERMARK = "audit_index_complete_through"
CHECKPOINT_WITNESS = "audit_checkpoint_witness"
_CHUNK = 1000
_ROWS_PER_STATEMENT = 500


@dataclass(frozen=True)
class _CheckpointSeen:
    n: int
    line_hash: str


class AuditIntegrityError(SecureError):
    """A record read back for a query does not match its hash."""

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        #: the sequence number of the record that failed (None when unknown)
        self.seq = seq


@dataclass(frozen=True)
class QueryFilter:
    user: str | None = None
    event: str | None = None
    since_us: int | None = None
    until_us: int | None = None
    resource: str | None = None
    limit: int | None = None
    #: only records with a sequence number above this (a follower's cursor)
    after_seq: int | None = None
    #: only records with a sequence number below this (the next page, newest first)
    before_seq: int | None = None
    #: only records made by, or naming as a ``user`` resource, one of these people, and
    #: naming nobody else as a ``user`` resource
    about: frozenset[str] | None = None
    #: newest first (``limit`` then keeps the newest)
    newest_first: bool = False


class AuditIndex:
    """Writes and reads the ``audit_index`` tables."""

    def __init__(self, db: Database, directory: Path) -> None:
        self.db = db
        self.directory = directory
        self._queue: queue.Queue[list[tuple[Receipt, Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.errors = 0

    # -- writing ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="audit-index", daemon=True)
        self._thread.start()

    def enqueue(self, committed: list[tuple[Receipt, Any]]) -> None:
        """Called by the sink after a commit (its ``on_commit``)."""
        self._queue.put(committed)

    def note_checkpoint(self, n: int, line_hash: str) -> None:
        """Called by the sink after it signs a checkpoint (its ``on_checkpoint``)."""
        self._queue.put([(Receipt(0, "", 0, 0, 0), _CheckpointSeen(n, line_hash))])

    def witness(self) -> Witness:
        """The highest indexed record and the last checkpoint the database saw."""
        with self.db.read() as session:
            top = session.execute(
                select(AuditIndexEntry.seq, AuditIndexEntry.hash)
                .order_by(AuditIndexEntry.seq.desc())
                .limit(1)
            ).one_or_none()
            mark = session.get(Meta, CHECKPOINT_WITNESS)
            record = (int(top[0]), str(top[1])) if top is not None and top[1] else None
            checkpoint = None
            if mark is not None:
                n, _, digest = mark.value.partition(":")
                checkpoint = (int(n), digest)
        return Witness(record=record, checkpoint=checkpoint)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything enqueued so far is in the table."""
        if self._thread is None:
            return
        done = threading.Event()
        self._queue.put([(Receipt(0, "", 0, 0, 0), done)])
        done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    #: seconds the index thread waits for more committed batches before writing: the
    #: trail (not the index) is the durable record, and one database commit for many
    #: small batches saves an fsync each (a cell makes two records, moments apart)
    coalesce = 0.02
    _COALESCE_MAX = 2000

    def _next_items(self) -> tuple[list[tuple[Receipt, Any]], bool]:
        """The next queued batches merged into one, and whether to stop afterwards."""
        first = self._queue.get()
        if first is None:
            return [], True
        item = list(first)
        deadline = time.monotonic() + self.coalesce
        while len(item) < self._COALESCE_MAX:
            try:
                more = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if more is None:
                return item, True
            item.extend(more)
        return item, False

    def _run(self) -> None:
        stop = False
        while not stop:
            item, stop = self._next_items()
            rows = []
            seen: _CheckpointSeen | None = None
            waiters = []
            for receipt, context in item:
                if isinstance(context, threading.Event):
                    waiters.append(context)
                elif isinstance(context, IndexFields):
                    rows.append((receipt, context))
                elif isinstance(context, _CheckpointSeen):
                    seen = context
            try:
                if rows:
                    with self.db.write_connection() as conn:
                        _insert(conn, rows)
                if seen is not None:
                    self._store_checkpoint_witness(seen)
            except Exception:
                self.errors += 1
                log.exception("audit index update failed; catch_up will fill the gap")
            for waiter in waiters:
                waiter.set()

    def _store_checkpoint_witness(self, seen: _CheckpointSeen) -> None:
        with self.db.write() as session:
            row = session.get(Meta, CHECKPOINT_WITNESS)
            value = f"{seen.n}:{seen.line_hash}"
            if row is None:
                session.add(Meta(key=CHECKPOINT_WITNESS, value=value))
            elif int(row.value.partition(":")[0]) < seen.n:
                row.value = value

    def catch_up(self, progress: Callable[[int], None] | None = None) -> int:
        """Index every record the table is missing; returns how many were added."""
        with self.db.read() as session:
            mark_row = session.get(Meta, WATERMARK)
            mark = int(mark_row.value) if mark_row else 0
            top = session.scalar(select(func.max(AuditIndexEntry.seq))) or 0
            after = session.scalar(
                select(func.count()).select_from(AuditIndexEntry).where(AuditIndexEntry.seq > mark)
            )
            start_seq = top if after == top - mark else mark
            start = None
            if start_seq:
                start = session.execute(
                    select(
                        AuditIndexEntry.segment, AuditIndexEntry.offset, AuditIndexEntry.length
                    ).where(AuditIndexEntry.seq == start_seq)
                ).one_or_none()
        limits = segment_sizes(self.directory)
        if start is None:
            lines = iter_lines(self.directory, limits=limits)
        else:
            segment, offset, length = start
            lines = iter_lines(self.directory, segment, offset + length, limits=limits)
        before = self.count()
        last = start_seq
        batch: list[tuple[Receipt, IndexFields]] = []
        for seen, (segment, offset, line) in enumerate(lines, 1):
            event = json.loads(line)
            fields = AuditLogger.index_fields(event)
            batch.append((Receipt(event["seq"], event["hash"], segment, offset, len(line)), fields))
            last = event["seq"]
            if len(batch) >= _CHUNK:
                self._insert_batch(batch)
                batch = []
                if progress is not None:
                    progress(seen)
        if batch:
            self._insert_batch(batch)
        with self.db.write() as session:
            row = session.get(Meta, WATERMARK)
            if row is None:
                session.add(Meta(key=WATERMARK, value=str(last)))
            elif int(row.value) < last:
                row.value = str(last)
        return self.count() - before

    def _insert_batch(self, batch: Sequence[tuple[Receipt, IndexFields]]) -> None:
        with self.db.write_connection() as conn:
            _insert(conn, batch)

    # -- reading ----------------------------------------------------------------------------

    def query(self, flt: QueryFilter) -> Iterator[tuple[bytes, dict[str, Any]]]:
        """Matching records in order, each read back from its segment and hash-checked."""
        stmt = select(
            AuditIndexEntry.seq,
            AuditIndexEntry.segment,
            AuditIndexEntry.offset,
            AuditIndexEntry.length,
        ).order_by(AuditIndexEntry.seq.desc() if flt.newest_first else AuditIndexEntry.seq)
        stmt = _filtered(stmt, flt)
        if flt.limit is not None:
            stmt = stmt.limit(flt.limit)
        with self.db.read() as session:
            rows = session.execute(stmt).all()
        for seq, segment, offset, length in rows:
            line = read_at(self.directory, segment, offset, length)
            try:
                parsed = parse_record(line)
            except RecordFormatError:
                parsed = None
            if parsed is None or not parsed.hash_ok or parsed.seq != seq:
                raise AuditIntegrityError(
                    f"audit record seq {seq} does not match its hash or position; "
                    "run `jupyter secure audit verify`",
                    seq=seq,
                )
            yield line, json.loads(line)

    def last_seq(self) -> int:
        """The highest sequence number indexed so far (0 for an empty trail)."""
        with self.db.read() as session:
            return int(session.scalar(select(func.max(AuditIndexEntry.seq))) or 0)

    def count(self) -> int:
        with self.db.read() as session:
            return session.scalar(select(func.count()).select_from(AuditIndexEntry)) or 0


def _filtered(stmt: Any, flt: QueryFilter) -> Any:
    """``stmt`` with the filter's conditions (all but the limit)."""
    if flt.user is not None:
        stmt = stmt.where(AuditIndexEntry.user_name == flt.user)
    if flt.event is not None:
        stmt = stmt.where(AuditIndexEntry.event_name == flt.event)
    if flt.after_seq is not None:
        stmt = stmt.where(AuditIndexEntry.seq > flt.after_seq)
    if flt.before_seq is not None:
        stmt = stmt.where(AuditIndexEntry.seq < flt.before_seq)
    if flt.about is not None:
        about = sorted(f"user:{u}" for u in flt.about)
        named = select(AuditIndexResource.seq).where(AuditIndexResource.resource.in_(about))
        # A record naming anyone else as a user is about them, whoever made it.
        others = select(AuditIndexResource.seq).where(
            AuditIndexResource.resource.like("user:%"), AuditIndexResource.resource.not_in(about)
        )
        stmt = stmt.where(
            AuditIndexEntry.user_name.in_(sorted(flt.about)) | AuditIndexEntry.seq.in_(named)
        ).where(AuditIndexEntry.seq.not_in(others))
    if flt.since_us is not None:
        stmt = stmt.where(AuditIndexEntry.event_time_us >= flt.since_us)
    if flt.until_us is not None:
        stmt = stmt.where(AuditIndexEntry.event_time_us < flt.until_us)
    if flt.resource is not None:
        res = select(AuditIndexResource.seq)
        if ":" in flt.resource:
            res = res.where(AuditIndexResource.resource == flt.resource)
        else:
            res = res.where(
                AuditIndexResource.resource.like(f"%:{_escape_like(flt.resource)}", "\\")
            )
        stmt = stmt.where(AuditIndexEntry.seq.in_(res))
    return stmt


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _insert(conn: Connection, rows: Sequence[tuple[Receipt, IndexFields]]) -> None:
    """Insert index rows, skipping ones another process already wrote.

    Chunked so a large group commit stays under SQLite's bound-parameter limit.
    """
    if len(rows) > _ROWS_PER_STATEMENT:
        for i in range(0, len(rows), _ROWS_PER_STATEMENT):
            _insert(conn, rows[i : i + _ROWS_PER_STATEMENT])
        return
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    entries = [
        {
            "seq": r.seq,
            "event_id": f.event_id[:36],
            "event_time_us": f.time_us,
            "event_name": f.name[:100],
            "event_source": f.source[:100],
            # The index is for finding records; the record itself keeps the full values.
            "user_name": f.user[:200] if f.user is not None else None,
            "error_code": f.error_code[:100] if f.error_code is not None else None,
            "segment": r.segment,
            "offset": r.offset,
            "length": r.length,
            "hash": r.hash,
        }
        for r, f in rows
    ]
    resources = [{"seq": r.seq, "resource": res[:300]} for r, f in rows for res in set(f.resources)]
    conn.execute(dialect.insert(AuditIndexEntry).values(entries).on_conflict_do_nothing())
    if resources:
        conn.execute(dialect.insert(AuditIndexResource).values(resources).on_conflict_do_nothing())
