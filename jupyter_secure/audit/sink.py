"""The append-only audit sink: hash-chained JSONL segments, group commit, signed checkpoints.

Many threads (and many processes: the server, admin commands, a hub service)
append to one trail. Each process runs one writer thread that takes every
event waiting in its queue, and, holding an exclusive ``flock`` on the trail:

1. re-reads the head of the trail if another process moved it (one ``fstat``
   tells: the size of the active segment is the head's fingerprint),
2. numbers and chains the batch, writes it with one ``write`` and one
   ``fdatasync`` (*group commit*: one disk flush for the whole batch),
3. signs a checkpoint when the last one is a second old (or 60 s when idle),
4. rolls to a new segment when the active one is full.

Only then are the callers' futures resolved: an acknowledged event is on
disk. A writer killed mid-write leaves a torn last line; the next writer (in
any process) moves those bytes to ``quarantine/``, truncates, and records an
``AuditTailRepaired`` event that names the cut — reported, never silently
dropped.

Failing closed: a write error fails the batch (callers see
:class:`AuditUnavailable`) and the partial write is cut back; a failed
``fdatasync`` marks the sink broken, because after one the kernel may have
dropped the dirty pages and nothing written since can be trusted as durable.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitlets import Float, Int, Unicode
from traitlets.config import LoggingConfigurable

from ..errors import SecureError, StartupRefused
from ..storage.paths import ensure_private_dir
from ..storage.paths import fsync_dir as _fsync_dir
from .checkpoints import CHECKPOINT_GENESIS, CheckpointSigner, line_hash, parse_checkpoint
from .mirror import MirrorPump, mirror_from_url
from .record import RESERVED_FIELDS, RecordFormatError, encode_record, genesis_hash, parse_record
from .segments import (
    CHECKPOINTS_FILE,
    LOCK_FILE,
    QUARANTINE_DIR,
    TRAIL_FILE,
    last_line,
    list_segments,
    read_trail_id,
    segment_path,
)

__all__ = ["RECORDED_SUFFIX", "AuditSink", "AuditUnavailable", "Receipt", "TailRepair"]

#: Appended to a quarantined tail's file name once its AuditTailRepaired record is durable.
RECORDED_SUFFIX = ".recorded"
_QUARANTINED = re.compile(r"^segment-([0-9]{8})\.at-([0-9]+)\.[0-9]+\.torn$")

log = logging.getLogger(__name__)


class AuditUnavailable(SecureError):
    """The event could not be made durable; the action that wanted it must not proceed."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where a durable record landed."""

    seq: int
    hash: str
    segment: int
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class TailRepair:
    """A torn last line that was cut off and kept in quarantine."""

    segment: int
    offset: int
    length: int
    sha256: str
    quarantine: str


@dataclass(slots=True)
class _Pending:
    payload: bytes
    future: Future[Receipt]
    context: Any
    queued: float  # time.monotonic() at submit


@dataclass(slots=True)
class _Head:
    segment: int
    fd: int
    size: int
    seq: int
    hash: str


@dataclass(slots=True)
class _CheckpointHead:
    fd: int
    size: int
    n: int
    line_hash: str


_CLOSE = object()


def _utc_iso(ts: float) -> str:
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class AuditSink(LoggingConfigurable):
    """Appends events durably to one audit trail; safe across threads and processes."""

    segment_max_bytes = Int(
        64 * 1024 * 1024,
        help="""Start a new segment file once the active one reaches this size
        (bytes). Smaller segments make a damaged file cost less to set aside;
        larger ones mean fewer files.""",
    ).tag(config=True)

    checkpoint_interval = Float(
        1.0,
        help="""Sign a checkpoint of the trail's head at most this many seconds
        after the first unsigned record. Records after the last checkpoint can
        be cut off without a trace inside the state directory, so this is the
        window of undetectable truncation.""",
    ).tag(config=True)

    heartbeat_interval = Float(
        60.0,
        help="""While no events arrive, sign a checkpoint this often anyway, so
        that a mirror shows the trail was alive and unchanged.""",
    ).tag(config=True)

    max_batch = Int(
        4096, help="Most events written together in one group commit (one fdatasync)."
    ).tag(config=True)

    checkpoint_mirror = Unicode(
        "",
        help="""Where to send a copy of every checkpoint, outside the state
        directory: an absolute directory path (or file:// URL), syslog://host:port
        (or syslog:///dev/log), or an http(s):// endpoint that accepts a JSON POST.
        Empty: no copy (truncating the trail and its checkpoints together is then
        undetectable).""",
    ).tag(config=True)

    append_timeout = Float(
        30.0, help="Seconds a caller waits for its event to become durable before giving up."
    ).tag(config=True)

    def __init__(
        self,
        directory: Path,
        trail_id: str,
        signer: CheckpointSigner,
        *,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.directory = Path(directory)
        self.trail_id = trail_id
        self.signer = signer
        self.clock = clock
        self.on_commit: Callable[[list[tuple[Receipt, Any]]], None] | None = None
        #: told (n, line hash) of every checkpoint written, so the database can witness them
        self.on_checkpoint: Callable[[int, str], None] | None = None
        self.repair_event: Callable[[TailRepair], tuple[Mapping[str, Any], Any]] | None = None
        #: told, after each committed batch, the seconds each record waited from submit
        #: to durable (metrics); called on the writer thread, so it must be quick
        self.on_durable: Callable[[list[float]], None] | None = None
        #: when this process last signed a checkpoint (Unix time; None: not yet)
        self.last_checkpoint_time: float | None = None
        self.repairs: list[TailRepair] = []
        self._pending_repairs: list[TailRepair] = []
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._lock_fd = -1
        self._mutex = threading.Lock()
        self._head: _Head | None = None
        self._ckpt: _CheckpointHead | None = None
        self._last_checkpoint_mono = 0.0
        self._signed_seq = -1
        self._thread: threading.Thread | None = None
        self._closed = False
        self._broken: str | None = None
        self._last_error = ""
        self._mirror: MirrorPump | None = None
        self.stats = {
            "events": 0,
            "batches": 0,
            "checkpoints": 0,
            "write_errors": 0,
            "checkpoint_errors": 0,
        }

    # -- life cycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Check the directory and trail id, probe the mirror, repair a torn tail, start."""
        ensure_private_dir(self.directory, what="audit directory")
        self._bind_trail()
        try:
            self._lock_fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StartupRefused(f"cannot open the audit lock: {exc.strerror}") from None
        mirror = mirror_from_url(self.checkpoint_mirror, self.trail_id)
        if mirror is not None:
            mirror.probe()
            self._mirror = MirrorPump(mirror)
        self._commit_and_notify([], force_checkpoint=False)
        if not self.stats["write_errors"] and not self._broken:
            self._learn_signed_head()
        if self.stats["write_errors"] or self._broken:
            reason = self._broken or self._last_error
            self.close()
            raise StartupRefused(f"audit trail in {self.directory} is unusable: {reason}")
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Write what is queued, sign a final checkpoint, stop the writer."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(_CLOSE)
            self._thread.join(self.append_timeout)
            if self._thread.is_alive():
                # Still writing (a stuck disk): closing its descriptors under it could let
                # it append without the lock or into a reused descriptor. Leave them.
                self._broken = "the writer did not stop"
                log.error("audit writer did not stop within %.0f s", self.append_timeout)
                return
        if self._mirror is not None:
            self._mirror.close()
        if self._head is not None:
            os.close(self._head.fd)
            self._head = None
        if self._ckpt is not None:
            os.close(self._ckpt.fd)
            self._ckpt = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    @property
    def broken(self) -> str | None:
        """Why the sink refuses appends, or None while it is healthy."""
        return self._broken

    @property
    def queue_depth(self) -> int:
        """Records submitted and not yet taken by the writer (approximate)."""
        return self._queue.qsize()

    # -- appending --------------------------------------------------------------------------

    def submit(self, event: Mapping[str, Any], context: Any = None) -> Future[Receipt]:
        """Queue ``event``; the future resolves once it is durable.

        ``context`` travels with the event to :attr:`on_commit` (the index uses it).
        """
        if self._closed or self._thread is None:
            raise AuditUnavailable("the audit sink is not open")
        if self._broken:
            raise AuditUnavailable(f"the audit sink is out of service: {self._broken}")
        clash = RESERVED_FIELDS.intersection(event)
        if clash:
            raise ValueError(f"events may not set {sorted(clash)}; the sink assigns them")
        payload = json.dumps(
            event, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")
        future: Future[Receipt] = Future()
        self._queue.put(_Pending(payload, future, context, time.monotonic()))
        return future

    def append(self, event: Mapping[str, Any], context: Any = None) -> Receipt:
        """Append ``event`` and wait until it is durable."""
        try:
            return self.submit(event, context).result(self.append_timeout)
        except TimeoutError:
            raise AuditUnavailable("timed out waiting for the audit trail") from None

    def checkpoint(self) -> None:
        """Sign a checkpoint now (incident response, tests); raises if it cannot."""
        if self._closed or self._broken:
            raise AuditUnavailable(self._broken or "the audit sink is closed")
        before = self.stats["checkpoints"]
        self._commit_and_notify([], force_checkpoint=True)
        if self.stats["checkpoints"] == before and self._head is not None and self._head.seq:
            raise AuditUnavailable(f"could not sign a checkpoint: {self._last_error}")

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # the writer must never die silently
            self._broken = f"the audit writer stopped: {exc!r}"
            log.exception("audit writer stopped")
            self._fail_leftovers()

    def _loop(self) -> None:
        while True:
            item = self._next(self._wait_timeout())
            batch: list[_Pending] = []
            closing = item is _CLOSE
            if isinstance(item, _Pending) and item.future.set_running_or_notify_cancel():
                batch.append(item)
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _CLOSE:
                    closing = True
                elif isinstance(more, _Pending) and more.future.set_running_or_notify_cancel():
                    batch.append(more)
            due = self._checkpoint_due() or (closing and self._unsigned())
            if batch or due or self._pending_repairs:
                self._commit_and_notify(batch, force_checkpoint=due)
            if closing:
                self._fail_leftovers()
                return

    def _fail_leftovers(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Pending) and not item.future.done():
                item.future.set_exception(AuditUnavailable("the audit sink was closed"))

    def _next(self, timeout: float) -> object:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def _wait_timeout(self) -> float:
        since = time.monotonic() - self._last_checkpoint_mono
        if self._unsigned():
            return max(0.0, self.checkpoint_interval - since)
        return max(0.0, self.heartbeat_interval - since)

    def _unsigned(self) -> bool:
        return self._head is not None and self._head.seq > self._signed_seq

    def _checkpoint_due(self) -> bool:
        since = time.monotonic() - self._last_checkpoint_mono
        if self._unsigned():
            return since >= self.checkpoint_interval
        return since >= self.heartbeat_interval

    def _commit_and_notify(self, batch: list[_Pending], *, force_checkpoint: bool) -> None:
        try:
            receipts, extras = self._commit(batch, force_checkpoint=force_checkpoint)
        except BaseException as exc:
            self.stats["write_errors"] += 1
            self._last_error = str(exc)
            log.error("audit append failed: %s", exc)
            error = AuditUnavailable(f"audit append failed: {exc}")
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(error)
            return
        if batch and self.on_durable is not None:
            now = time.monotonic()
            try:
                self.on_durable([now - p.queued for p in batch])
            except Exception:
                log.exception("audit on_durable hook failed")
        for p, r in zip(batch, receipts, strict=True):
            if not p.future.done():
                p.future.set_result(r)
        committed = extras + [(r, p.context) for p, r in zip(batch, receipts, strict=True)]
        if committed and self.on_commit is not None:
            try:
                self.on_commit(committed)
            except Exception:
                log.exception("audit index update failed (the trail itself is intact)")

    # -- under the lock ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The trail's lock: a mutex for this process's threads, flock for other processes."""
        with self._mutex:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _commit(
        self, batch: list[_Pending], *, force_checkpoint: bool
    ) -> tuple[list[Receipt], list[tuple[Receipt, Any]]]:
        """Write ``batch`` (after the record of any torn tail cut off) under the lock.

        Returns the batch's receipts and the records the sink added itself,
        with their index context. Once the records are durable they stand:
        a failure to sign a checkpoint or roll the segment afterwards is
        logged and counted, not reported as a failed append.
        """
        if self._broken:
            raise AuditUnavailable(self._broken)
        with self._locked():
            head = self._sync_head()
            payloads = [p.payload for p in batch]
            make_event = self.repair_event
            repairs = list(self._pending_repairs) if make_event is not None else []
            contexts: list[Any] = []
            for repair in repairs:
                event, context = make_event(repair)  # type: ignore[misc]
                payloads.insert(len(contexts), json.dumps(event, separators=(",", ":")).encode())
                contexts.append(context)
            receipts = self._write(head, payloads) if payloads else []
            for repair in repairs:
                self._mark_recorded(repair)
            extras = list(zip(receipts[: len(contexts)], contexts, strict=True))
            receipts = receipts[len(contexts) :]
            try:
                if force_checkpoint or (payloads and self._checkpoint_due()):
                    self._write_checkpoint(head)
                if payloads and head.size >= self.segment_max_bytes:
                    self._roll(head)
            except OSError as exc:
                self.stats["checkpoint_errors"] += 1
                self._last_error = str(exc)
                log.error("audit trail: records are durable but signing or rolling failed: %s", exc)
        return receipts, extras

    def _mark_recorded(self, repair: TailRepair) -> None:
        """The repair's record is durable: rename its quarantine file so no one records it again."""
        self._pending_repairs = [r for r in self._pending_repairs if r != repair]
        self.repairs.append(repair)
        source = self.directory / repair.quarantine
        try:
            os.replace(source, source.with_name(source.name + RECORDED_SUFFIX))
            _fsync_dir(source.parent)
        except OSError as exc:  # a later writer records it again: a duplicate, not a loss
            log.error("could not mark %s as recorded: %s", source, exc)

    def _write(self, head: _Head, payloads: list[bytes]) -> list[Receipt]:
        parts = []
        receipts = []
        seq, prev, offset = head.seq, head.hash, head.size
        for payload in payloads:
            seq += 1
            line, prev = encode_record(seq, prev, payload)
            receipts.append(Receipt(seq, prev, head.segment, offset, len(line)))
            parts.append(line)
            offset += len(line)
        data = b"".join(parts)
        try:
            _write_all(head.fd, data)
        except OSError:
            self._cut_back(head)
            raise
        try:
            os.fdatasync(head.fd)
        except OSError as exc:
            self._broken = f"fdatasync failed ({exc.strerror}); durability unknown"
            raise
        head.seq, head.hash, head.size = seq, prev, offset
        self.stats["events"] += len(payloads)
        self.stats["batches"] += 1
        return receipts

    def _cut_back(self, head: _Head) -> None:
        try:
            os.ftruncate(head.fd, head.size)
            os.fsync(head.fd)
        except OSError as exc:
            self._broken = f"could not undo a failed write ({exc.strerror})"

    def _bind_trail(self) -> None:
        existing = read_trail_id(self.directory)
        if existing is None:
            if list_segments(self.directory):
                raise StartupRefused(
                    f"audit directory {self.directory} has segments but no {TRAIL_FILE} file"
                )
            path = self.directory / TRAIL_FILE
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                existing = read_trail_id(self.directory)
            else:
                try:
                    _write_all(fd, self.trail_id.encode("ascii") + b"\n")
                    os.fsync(fd)
                finally:
                    os.close(fd)
                _fsync_dir(self.directory)
                return
        if existing != self.trail_id:
            raise StartupRefused(
                f"audit directory {self.directory} holds trail {existing}, "
                f"but this state store belongs to trail {self.trail_id}"
            )

    def _sync_head(self) -> _Head:
        """The trail's head, re-read from disk when another writer has moved it.

        A re-read also cuts off a torn last line (into ``quarantine/``) and picks
        up quarantined tails whose record was never written; both wait in
        ``_pending_repairs`` until the next write records them.
        """
        head = self._head
        if head is not None:
            st = os.fstat(head.fd)
            if (
                st.st_size == head.size
                and st.st_nlink > 0
                and not segment_path(self.directory, head.segment + 1).exists()
            ):
                return head
            os.close(head.fd)
            self._head = None
        self._find_unrecorded_repairs()
        segments = list_segments(self.directory)
        if not segments:
            fd = self._create_segment(1)
            self._head = _Head(1, fd, 0, 0, genesis_hash(self.trail_id))
            self._write_checkpoint(self._head)
            return self._head
        number, path = segments[-1]
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
        size = os.fstat(fd).st_size
        line, end = last_line(fd, size)
        if end < size:
            repair = self._quarantine(number, fd, end, size)
            self._pending_repairs.append(repair)
            log.warning(
                "audit trail: cut a torn tail of %d bytes off segment %d at offset %d (kept as %s)",
                repair.length,
                repair.segment,
                repair.offset,
                repair.quarantine,
            )
            size = end
        if line is None:
            seq, prev = self._head_before(segments[:-1])
        else:
            seq, prev = self._parse_head(line, number)
        self._head = _Head(number, fd, size, seq, prev)
        return self._head

    def _find_unrecorded_repairs(self) -> None:
        """Quarantined tails another writer cut but did not manage to record."""
        qdir = self.directory / QUARANTINE_DIR
        try:
            names = sorted(os.listdir(qdir))
        except FileNotFoundError:
            return
        known = {r.quarantine for r in self._pending_repairs}
        for name in names:
            m = _QUARANTINED.match(name)
            rel = f"{QUARANTINE_DIR}/{name}"
            if m is None or rel in known:
                continue
            data = (qdir / name).read_bytes()
            self._pending_repairs.append(
                TailRepair(
                    int(m.group(1)),
                    int(m.group(2)),
                    len(data),
                    hashlib.sha256(data).hexdigest(),
                    rel,
                )
            )

    def _head_before(self, earlier: list[tuple[int, Path]]) -> tuple[int, str]:
        for number, path in reversed(earlier):
            with path.open("rb") as f:
                line, _ = last_line(f.fileno(), os.fstat(f.fileno()).st_size)
            if line is not None:
                return self._parse_head(line, number)
        return 0, genesis_hash(self.trail_id)

    def _parse_head(self, line: bytes, segment: int) -> tuple[int, str]:
        try:
            parsed = parse_record(line)
        except RecordFormatError as exc:
            self._broken = f"the last record of segment {segment} is damaged ({exc})"
            raise AuditUnavailable(self._broken) from None
        if not parsed.hash_ok:
            self._broken = f"the last record of segment {segment} fails its hash"
            raise AuditUnavailable(self._broken)
        return parsed.seq, parsed.hash

    def _quarantine(self, segment: int, fd: int, end: int, size: int) -> TailRepair:
        fragment = os.pread(fd, size - end, end)
        qdir = self.directory / QUARANTINE_DIR
        qdir.mkdir(mode=0o700, exist_ok=True)
        name = f"segment-{segment:08d}.at-{end}.{int(self.clock() * 1000)}.torn"
        qfd = os.open(qdir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(qfd, fragment)
            os.fsync(qfd)
        finally:
            os.close(qfd)
        _fsync_dir(qdir)
        os.ftruncate(fd, end)
        os.fsync(fd)
        digest = hashlib.sha256(fragment).hexdigest()
        return TailRepair(segment, end, len(fragment), digest, f"{QUARANTINE_DIR}/{name}")

    def _create_segment(self, number: int) -> int:
        fd = os.open(
            segment_path(self.directory, number),
            os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL,
            0o600,
        )
        _fsync_dir(self.directory)
        return fd

    def _roll(self, head: _Head) -> None:
        fd = self._create_segment(head.segment + 1)
        os.close(head.fd)
        self._head = _Head(head.segment + 1, fd, 0, head.seq, head.hash)

    def _learn_signed_head(self) -> None:
        """Note how far the trail is already signed, so a new writer does not re-sign it."""
        try:
            with self._locked():
                ck = self._sync_checkpoint_head()
                if ck.size:
                    line, _ = last_line(ck.fd, ck.size)
                    if line is not None:
                        self._signed_seq = parse_checkpoint(line).seq
                        self._last_checkpoint_mono = time.monotonic()
        except (OSError, ValueError, AuditUnavailable) as exc:
            self._last_error = str(exc)
            self.stats["write_errors"] += 1

    # -- checkpoints ------------------------------------------------------------------------

    def _sync_checkpoint_head(self) -> _CheckpointHead:
        ck = self._ckpt
        path = self.directory / CHECKPOINTS_FILE
        if ck is not None:
            st = os.fstat(ck.fd)
            try:
                same_file = os.stat(path).st_ino == st.st_ino
            except FileNotFoundError:
                same_file = False
            if st.st_size == ck.size and st.st_nlink > 0 and same_file:
                return ck
            os.close(ck.fd)
            self._ckpt = None
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        size = os.fstat(fd).st_size
        line, end = last_line(fd, size)
        if end < size:
            log.warning("audit checkpoints: cut a torn last line of %d bytes", size - end)
            os.ftruncate(fd, end)
            os.fsync(fd)
            size = end
        if line is None:
            self._ckpt = _CheckpointHead(fd, size, 0, CHECKPOINT_GENESIS)
        else:
            try:
                last = parse_checkpoint(line)
            except ValueError as exc:
                os.close(fd)
                self._broken = f"the last checkpoint is damaged ({exc})"
                raise AuditUnavailable(self._broken) from None
            self._ckpt = _CheckpointHead(fd, size, last.n, line_hash(line))
        return self._ckpt

    def _write_checkpoint(self, head: _Head) -> None:
        """Sign the head. An empty trail gets one genesis checkpoint (seq 0) and no more,
        so that "no checkpoint file" always means someone deleted it."""
        ck = self._sync_checkpoint_head()
        self._last_checkpoint_mono = time.monotonic()
        if head.seq == 0 and ck.n > 0:
            self._signed_seq = 0
            return
        cp = self.signer.sign(
            n=ck.n + 1,
            trail=self.trail_id,
            seq=head.seq,
            hash=head.hash,
            time=_utc_iso(self.clock()),
            prev=ck.line_hash,
        )
        line = cp.line()
        try:
            _write_all(ck.fd, line)
        except OSError:
            os.ftruncate(ck.fd, ck.size)
            raise
        try:
            os.fdatasync(ck.fd)
        except OSError as exc:
            self._broken = f"fdatasync of checkpoints failed ({exc.strerror})"
            raise
        ck.size += len(line)
        ck.n = cp.n
        ck.line_hash = line_hash(line)
        if self.on_checkpoint is not None:
            self.on_checkpoint(cp.n, ck.line_hash)
        self._signed_seq = head.seq
        self.last_checkpoint_time = self.clock()
        self.stats["checkpoints"] += 1
        if self._mirror is not None:
            self._mirror.put(line)
