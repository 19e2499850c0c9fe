"""Check a whole audit trail and name the first bad record.

What is checked, and what each failure looks like:

==========================  ===================================================
tampering                   detected as
==========================  ===================================================
flipped byte, edited field  ``hash_mismatch`` (the line's bytes fail its hash)
deleted record              ``seq_gap`` (and ``chain_break`` on the next one)
inserted record             ``chain_break`` / ``seq_repeat``
duplicated record           ``seq_repeat``
reordered records           ``seq_order``
missing segment             ``segment_missing`` (numbering gap)
spliced segment             ``chain_break`` at its first record
rewritten chain (no key)    ``checkpoint_mismatch`` / ``checkpoint_signature``
truncated tail              ``truncated`` (a signed checkpoint points past the end)
truncated past the mirror   ``mirror_ahead`` (the mirror holds a later checkpoint)
torn last line (crash)      ``torn_tail`` with segment, offset and length
==========================  ===================================================

Records after the last signed checkpoint are reported as a notice: until the
writer signs them they are protected by the chain only (see the threat
model). Repairs of torn tails that the writer made are listed as notices.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .checkpoints import CHECKPOINT_GENESIS, Checkpoint, line_hash, parse_checkpoint, signature_ok
from .record import ParsedRecord, RecordFormatError, genesis_hash, parse_body, parse_record
from .segments import (
    CHECKPOINTS_FILE,
    QUARANTINE_DIR,
    TRAIL_FILE,
    Unreadable,
    last_line,
    list_segments,
    read_regular,
    read_trail_id,
)

__all__ = ["Problem", "VerifyReport", "Witness", "verify_trail"]

_REPAIR_MARK = b'"eventName":"AuditTailRepaired"'
MAX_PROBLEMS = 100


@dataclass(frozen=True)
class Problem:
    """One finding; ``where`` is ``segment-…jsonl:line N (offset O)`` or a file name."""

    kind: str
    where: str
    message: str
    seq: int | None = None
    segment: int | None = None
    offset: int | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Witness:
    """What the state database remembers of the trail, to hold the files against.

    ``record`` is the highest (seq, hash) the audit index has seen; ``checkpoint``
    the number and line hash of the last checkpoint the writers reported. Both
    lag the files and never lead them, so either being ahead of, or different
    from, what the files hold means the files were cut or rewritten.
    """

    record: tuple[int, str] | None = None
    checkpoint: tuple[int, str] | None = None


@dataclass
class VerifyReport:
    trail_id: str | None = None
    records: int = 0
    segments: int = 0
    checkpoints: int = 0
    last_seq: int = 0
    last_hash: str = ""
    signed_seq: int = 0
    #: when the newest checkpoint was signed (its own ``time`` field), if any
    last_checkpoint_time: str | None = None
    #: when this verification ended (ISO 8601), set by callers that share a report
    checked_at: str | None = None
    problems: list[Problem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "trail": self.trail_id,
            "records": self.records,
            "segments": self.segments,
            "checkpoints": self.checkpoints,
            "last_seq": self.last_seq,
            "signed_seq": self.signed_seq,
            "problems": [
                {"kind": p.kind, "where": p.where, "message": p.message, "seq": p.seq}
                for p in self.problems
            ],
            "notices": list(self.notices),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Cursor:
    """Where the walk is: the seq and prev the next record must have."""

    seq: int
    prev: str
    segment: int
    last_hash: str | None = None
    file: str = ""
    number: int = 0


class _Verifier:
    def __init__(
        self,
        directory: Path,
        *,
        keys: Mapping[str, Ed25519PublicKey] | None,
        expected_trail: str | None,
        progress: Callable[[int, int], None] | None,
        newest_only: bool = False,
        witness: Witness | None = None,
    ) -> None:
        self.newest_only = newest_only
        self.witness = witness or Witness()
        self.checkpoint_line_hashes: list[str] = []
        self.recorded_repairs: set[str] = set()
        self.directory = directory
        self.keys = keys
        self.expected_trail = expected_trail
        self.progress = progress
        self.report = VerifyReport()
        self.skipped_through = 0
        self.skipped_floor = 0

    def problem(
        self,
        kind: str,
        where: str,
        message: str,
        *,
        seq: int | None = None,
        segment: int | None = None,
        offset: int | None = None,
    ) -> None:
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(Problem(kind, where, message, seq, segment, offset))

    def run(self, mirror_lines: Sequence[bytes] | None) -> VerifyReport:
        started = time.perf_counter()
        rep = self.report
        if self.directory.exists() and not self.directory.is_dir():
            self.problem(
                "not_a_directory", str(self.directory), "the audit path is not a directory"
            )
            return rep
        try:
            trail = read_trail_id(self.directory)
        except Unreadable as exc:
            self.problem("trail_missing", TRAIL_FILE, str(exc))
            rep.seconds = time.perf_counter() - started
            return rep
        rep.trail_id = trail
        if trail is None:
            if self.directory.is_dir() and not list_segments(self.directory):
                rep.notices.append("the trail is empty")
            else:
                self.problem("trail_missing", TRAIL_FILE, "no trail id: not an audit directory")
            rep.seconds = time.perf_counter() - started
            return rep
        if self.expected_trail is not None and trail != self.expected_trail:
            self.problem(
                "trail_mismatch",
                TRAIL_FILE,
                f"trail {trail} is not this store's trail {self.expected_trail}",
            )
        segments = list_segments(self.directory)
        start = _Cursor(seq=1, prev=genesis_hash(trail), segment=1)
        if self.newest_only and len(segments) > 1:
            start = self.skip_to_newest(segments)
            segments = segments[-1:]
            self.skipped_floor = self.skipped_through
        checkpoints = self.read_checkpoints(trail)
        wanted = {cp.seq for cp in checkpoints}
        if self.witness.record is not None:
            wanted.add(self.witness.record[0])
        seen_hashes = self.scan_segments(segments, start, wanted)
        self.check_checkpoints(checkpoints, seen_hashes)
        self.check_witness(seen_hashes)
        self.check_quarantine()
        if mirror_lines is not None:
            self.check_mirror(trail, checkpoints, mirror_lines)
        rep.seconds = time.perf_counter() - started
        return rep

    # -- records ------------------------------------------------------------------------------

    def scan_segments(
        self, segments: list[tuple[int, Path]], cur: _Cursor, wanted: set[int]
    ) -> dict[int, str]:
        """Walk the records in order; returns the hashes at the seqs in ``wanted``."""
        self.report.segments = len(list_segments(self.directory))
        total_bytes = sum(p.stat().st_size for _, p in segments)
        done_bytes = 0
        seen: dict[int, str] = {}
        for index, (number, path) in enumerate(segments):
            if number != cur.segment:
                missing = (
                    f"segment {cur.segment}"
                    if number == cur.segment + 1
                    else f"segments {cur.segment}..{number - 1}"
                )
                self.problem("segment_missing", path.name, f"{missing} missing before this one")
            cur.segment = number + 1
            try:
                data = read_regular(path)
            except Unreadable as exc:
                self.problem("malformed", path.name, str(exc), segment=number)
                continue
            lines = data.split(b"\n")
            torn = lines.pop()
            offset = 0
            cur.file, cur.number = path.name, number
            for lineno, raw in enumerate(lines, 1):
                self.check_line(raw, lineno, offset, cur)
                if cur.last_hash is not None and self.report.last_seq in wanted:
                    seen[self.report.last_seq] = cur.last_hash
                offset += len(raw) + 1
            if torn and index == len(segments) - 1 and _still_growing(path, len(data)):
                self.report.notices.append(
                    f"{path.name}: a writer was appending while this ran; the records it "
                    "added after the read were not checked"
                )
            elif torn:
                last = index == len(segments) - 1
                self.problem(
                    "torn_tail" if last else "malformed",
                    f"{path.name}:{len(lines) + 1} (offset {offset})",
                    f"{'torn last line' if last else 'unterminated line'}: {len(torn)} bytes "
                    "with no newline (an interrupted write)",
                    segment=number,
                    offset=offset,
                )
            done_bytes += len(data)
            if self.progress is not None:
                self.progress(done_bytes, total_bytes)
        return seen

    def check_line(self, raw: bytes, lineno: int, offset: int, cur: _Cursor) -> None:
        """Check one record (``raw``: its line without the newline) against itself and the
        record before it. The common case does no more than slice, hash and compare."""
        cur.last_hash = None
        try:
            rec = parse_body(raw)
        except RecordFormatError as exc:
            self.problem(
                "malformed",
                f"{cur.file}:{lineno} (offset {offset})",
                f"not an audit record ({exc})",
                segment=cur.number,
                offset=offset,
            )
            return
        if not rec.hash_ok or rec.seq != cur.seq or rec.prev != cur.prev:
            self.explain(rec, f"{cur.file}:{lineno} (offset {offset})", offset, cur)
        if rec.hash_ok and _REPAIR_MARK in raw:
            notice, quarantine = _describe_repair(raw, rec.seq)
            self.report.notices.append(notice)
            if quarantine:
                self.recorded_repairs.add(quarantine)
        cur.prev = rec.hash
        cur.last_hash = rec.hash
        if rec.seq >= cur.seq:
            cur.seq = rec.seq + 1
        rep = self.report
        rep.records += 1
        rep.last_seq = rec.seq
        rep.last_hash = rec.hash

    def explain(self, rec: ParsedRecord, where: str, offset: int, cur: _Cursor) -> None:
        """Record what is wrong with a record that failed a check."""
        at = {"seq": rec.seq, "segment": cur.number, "offset": offset}
        if not rec.hash_ok:
            self.problem(
                "hash_mismatch",
                where,
                f"record seq {rec.seq} does not match its hash: it was modified",
                **at,
            )
        if rec.seq != cur.seq:
            kind, what = _classify_seq(rec.seq, cur.seq)
            self.problem(kind, where, what, **at)
        elif rec.prev != cur.prev:
            self.problem(
                "chain_break",
                where,
                f"record seq {rec.seq} does not follow the record before it "
                "(inserted, spliced or rewritten)",
                **at,
            )

    def skip_to_newest(self, segments: list[tuple[int, Path]]) -> _Cursor:
        """Start values for checking only the newest segment: trust the one before it."""
        self.report.notices.append(
            f"checked the newest segment only; {len(segments) - 1} older segments not read"
        )
        number, path = segments[-2]
        with path.open("rb") as f:
            line, _ = last_line(f.fileno(), os.fstat(f.fileno()).st_size)
        if line is None:
            return _Cursor(1, genesis_hash(self.report.trail_id or ""), number + 1)
        try:
            rec = parse_record(line)
        except RecordFormatError:
            self.problem("malformed", path.name, "the last record is not an audit record")
            return _Cursor(1, "", number + 1)
        self.skipped_through = rec.seq
        self.report.last_seq, self.report.last_hash = rec.seq, rec.hash
        return _Cursor(rec.seq + 1, rec.hash, number + 1)

    # -- checkpoints --------------------------------------------------------------------------

    def read_checkpoints(self, trail: str) -> list[Checkpoint]:
        path = self.directory / CHECKPOINTS_FILE
        if not path.exists() and not path.is_symlink():
            return []
        try:
            data = read_regular(path)
        except Unreadable as exc:
            self.problem("checkpoint_malformed", CHECKPOINTS_FILE, str(exc))
            return []
        lines = data.split(b"\n")
        torn = lines.pop()
        out: list[Checkpoint] = []
        prev = CHECKPOINT_GENESIS
        for lineno, raw in enumerate(lines, 1):
            where = f"{CHECKPOINTS_FILE}:{lineno}"
            try:
                cp = parse_checkpoint(raw)
            except ValueError as exc:
                self.problem("checkpoint_malformed", where, f"not a checkpoint ({exc})")
                continue
            if self.keys is not None and self.signature_due(cp) and not signature_ok(cp, self.keys):
                self.problem(
                    "checkpoint_signature",
                    where,
                    f"checkpoint {cp.n} has no valid signature from a trusted key (key {cp.key})",
                    seq=cp.seq,
                )
            if cp.trail != trail:
                self.problem(
                    "checkpoint_trail", where, f"checkpoint {cp.n} is for trail {cp.trail}"
                )
            if cp.n != len(out) + 1 or cp.prev != prev:
                self.problem(
                    "checkpoint_chain",
                    where,
                    f"checkpoint {cp.n} does not follow the one before it (removed or reordered)",
                )
            prev = line_hash(raw)
            self.checkpoint_line_hashes.append(prev)
            out.append(cp)
        if torn:
            self.report.notices.append(
                f"{CHECKPOINTS_FILE}: torn last line of {len(torn)} bytes (an interrupted write)"
            )
        if self.keys is None:
            self.report.notices.append("no public key given: checkpoint signatures not checked")
        self.report.checkpoints = len(out)
        return out

    def signature_due(self, cp: Checkpoint) -> bool:
        """Newest-only checks skip signatures of checkpoints inside the segments it skips."""
        return not self.newest_only or cp.seq >= self.skipped_floor

    def check_witness(self, seen: Mapping[int, str]) -> None:
        """Hold the files against what the database saw them hold."""
        rep = self.report
        if self.witness.record is not None:
            seq, digest = self.witness.record
            if seq > rep.last_seq:
                self.problem(
                    "truncated",
                    "database",
                    f"the database indexed record seq {seq}, but the trail ends at seq "
                    f"{rep.last_seq}: records were cut off (or the trail restored from an "
                    "older backup)",
                    seq=seq,
                )
            elif seq > self.skipped_through and seen.get(seq) != digest:
                self.problem(
                    "witness_mismatch",
                    "database",
                    f"record seq {seq} is not the record the database indexed: the trail was "
                    "rewritten",
                    seq=seq,
                )
        if self.witness.checkpoint is not None:
            n, digest = self.witness.checkpoint
            hashes = self.checkpoint_line_hashes
            if n > len(hashes):
                self.problem(
                    "checkpoint_witness",
                    CHECKPOINTS_FILE,
                    f"the database saw checkpoint {n}, but the file ends at checkpoint "
                    f"{len(hashes)}: checkpoints were cut off",
                )
            elif hashes[n - 1] != digest:
                self.problem(
                    "checkpoint_witness",
                    CHECKPOINTS_FILE,
                    f"checkpoint {n} is not the one the database saw: checkpoints were rewritten",
                )

    def check_quarantine(self) -> None:
        """A tail cut off without its AuditTailRepaired record is an unexplained cut."""
        qdir = self.directory / QUARANTINE_DIR
        try:
            names = sorted(os.listdir(qdir))
        except (FileNotFoundError, NotADirectoryError):
            return
        for name in names:
            if not name.endswith(".torn"):
                continue
            rel = f"{QUARANTINE_DIR}/{name}"
            if rel in self.recorded_repairs:
                self.report.notices.append(f"{rel}: recorded; its file was not yet marked so")
            else:
                self.problem(
                    "unrecorded_repair",
                    rel,
                    "a torn tail was cut off the trail but no AuditTailRepaired record says so",
                )

    def check_checkpoints(self, checkpoints: list[Checkpoint], seen: Mapping[int, str]) -> None:
        rep = self.report
        if rep.segments and not checkpoints:
            self.problem(
                "no_checkpoint",
                CHECKPOINTS_FILE,
                f"{rep.records} records but no signed checkpoint: every trail starts with a "
                "genesis checkpoint, so the checkpoint file was removed or emptied",
            )
            return
        for cp in checkpoints:
            where = f"{CHECKPOINTS_FILE}:{cp.n}"
            if cp.seq == 0:
                if cp.hash != genesis_hash(rep.trail_id or ""):
                    self.problem(
                        "checkpoint_mismatch", where, "the genesis checkpoint is for another trail"
                    )
                continue
            if cp.seq <= self.skipped_through:
                continue
            if cp.seq > rep.last_seq:
                self.problem(
                    "truncated",
                    where,
                    f"checkpoint {cp.n} signs record seq {cp.seq}, but the trail ends at seq "
                    f"{rep.last_seq}: records were cut off",
                    seq=cp.seq,
                )
            elif seen.get(cp.seq) != cp.hash:
                self.problem(
                    "checkpoint_mismatch",
                    where,
                    f"record seq {cp.seq} is not the record checkpoint {cp.n} signed: "
                    "the chain was rewritten",
                    seq=cp.seq,
                )
        if checkpoints:
            rep.signed_seq = max(cp.seq for cp in checkpoints)
            rep.last_checkpoint_time = checkpoints[-1].time
            unsigned = rep.last_seq - rep.signed_seq
            if unsigned > 0:
                rep.notices.append(
                    f"{unsigned} records after the last signed checkpoint (seq {rep.signed_seq}); "
                    "the writer signs them within its checkpoint interval"
                )

    def check_mirror(
        self, trail: str, checkpoints: list[Checkpoint], mirror_lines: Sequence[bytes]
    ) -> None:
        mirrored: list[Checkpoint] = []
        for raw in mirror_lines:
            try:
                cp = parse_checkpoint(raw)
            except ValueError:
                continue
            if cp.trail == trail and (self.keys is None or signature_ok(cp, self.keys)):
                mirrored.append(cp)
        if not mirrored:
            if checkpoints:
                self.problem(
                    "mirror_empty",
                    "mirror",
                    "the mirror holds no checkpoint of this trail (missing, unmounted or wrong "
                    "directory): truncation cannot be checked",
                )
            return
        newest = max(mirrored, key=lambda cp: cp.n)
        local = {cp.n: cp for cp in checkpoints}
        mine = local.get(newest.n)
        if mine is None:
            self.problem(
                "mirror_ahead",
                "mirror",
                f"the mirror holds checkpoint {newest.n} (seq {newest.seq}) which this trail "
                "no longer has: the trail and its checkpoints were truncated",
                seq=newest.seq,
            )
        elif (mine.seq, mine.hash) != (newest.seq, newest.hash):
            self.problem(
                "mirror_mismatch",
                "mirror",
                f"checkpoint {newest.n} differs from the mirrored copy",
                seq=newest.seq,
            )
        else:
            self.report.notices.append(f"mirror agrees up to checkpoint {newest.n}")


def _still_growing(path: Path, size_read: int) -> bool:
    """A live writer's unfinished line, not a crash: the file has moved on since it was read."""
    try:
        return os.stat(path).st_size != size_read
    except OSError:
        return False


def _classify_seq(found: int, expected: int) -> tuple[str, str]:
    if found < expected - 1:
        return "seq_order", f"record seq {found} appears after seq {expected - 1}: out of order"
    if found == expected - 1:
        return "seq_repeat", f"record seq {found} appears twice (duplicated or inserted)"
    return (
        "seq_gap",
        f"expected seq {expected}, found seq {found}: "
        f"{found - expected} record(s) missing or out of order",
    )


def _describe_repair(line: bytes, seq: int) -> tuple[str, str | None]:
    """A notice for an AuditTailRepaired record, and the quarantine file it names."""
    try:
        params = json.loads(line).get("requestParameters")
    except (ValueError, RecursionError, AttributeError):
        params = None
    if not isinstance(params, dict):
        return f"seq {seq}: a torn-tail repair record without readable details", None
    quarantine = params.get("quarantine")
    notice = (
        f"seq {seq}: a torn tail was cut off segment {params.get('segment')} at offset "
        f"{params.get('offset')} ({params.get('length')} bytes, kept as {quarantine})"
    )
    return notice, quarantine if isinstance(quarantine, str) else None


def verify_trail(
    directory: Path,
    *,
    public_keys: Mapping[str, Ed25519PublicKey] | None,
    expected_trail: str | None = None,
    mirror_lines: Sequence[bytes] | None = None,
    progress: Callable[[int, int], None] | None = None,
    newest_only: bool = False,
    witness: Witness | None = None,
) -> VerifyReport:
    """Verify every segment and checkpoint in ``directory``.

    ``public_keys`` maps key ids to trusted Ed25519 keys; ``None`` skips the
    signature checks (and says so in the report). ``newest_only`` reads just
    the newest segment (trusting the last record before it) and every
    checkpoint signature: the quick check short-lived commands run.
    """
    verifier = _Verifier(
        directory,
        keys=public_keys,
        expected_trail=expected_trail,
        progress=progress,
        newest_only=newest_only,
        witness=witness,
    )
    return verifier.run(mirror_lines)
