"""The database witnesses the trail: cutting or rewriting the files together is still found."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from jupyter_secure.audit.index import AuditIndex
from jupyter_secure.audit.logger import AuditLogger, Identity
from jupyter_secure.audit.record import encode_record, genesis_hash, parse_record
from jupyter_secure.audit.segments import list_segments
from jupyter_secure.audit.sink import AuditSink
from jupyter_secure.audit.verify import verify_trail


@pytest.fixture
def witnessed(db, tmp_path: Path, signer):  # type: ignore[no-untyped-def]
    directory = tmp_path / "audit"
    sink = AuditSink(directory, "trail-w", signer, segment_max_bytes=1500)
    logger = AuditLogger(sink, source="server")
    index = AuditIndex(db, directory)
    sink.on_commit = index.enqueue
    sink.on_checkpoint = index.note_checkpoint
    sink.open()
    index.start()
    for i in range(12):
        logger.record("UserEnabled", identity=Identity.system(), request={"name": f"u{i}"})
    sink.close()
    index.flush()
    yield directory, index, {signer.key_id: signer.public_key}
    index.close()


def rewrite_all(directory: Path, trail: str) -> None:
    """Edit one record and recompute every hash after it; keep only the genesis checkpoint."""
    prev = genesis_hash(trail)
    for _, path in list_segments(directory):
        out = []
        for line in path.read_bytes().splitlines(keepends=True):
            rec = parse_record(line)
            start = line.index(b'",', line.index(b'"prev":"')) + 2
            payload = b"{" + line[start : line.rindex(b',"hash"')] + b"}"
            payload = payload.replace(b'"name":"u3"', b'"name":"zz"')
            new, prev = encode_record(rec.seq, prev, payload)
            out.append(new)
        path.write_bytes(b"".join(out))
    checkpoints = directory / "checkpoints.jsonl"
    checkpoints.write_bytes(checkpoints.read_bytes().splitlines(keepends=True)[0])


def test_a_full_rewrite_keeping_only_the_genesis_checkpoint(witnessed) -> None:  # type: ignore[no-untyped-def]
    directory, index, keys = witnessed
    rewrite_all(directory, "trail-w")
    alone = verify_trail(directory, public_keys=keys)
    assert alone.ok, "inside the directory the rewrite is consistent (documented limit)"
    report = verify_trail(directory, public_keys=keys, witness=index.witness())
    kinds = {p.kind for p in report.problems}
    assert {"checkpoint_witness", "witness_mismatch"} <= kinds


def test_a_trail_cut_short_with_its_checkpoints(witnessed) -> None:  # type: ignore[no-untyped-def]
    directory, index, keys = witnessed
    last = [p for _, p in list_segments(directory) if p.stat().st_size][-1]
    last.unlink()
    cps = directory / "checkpoints.jsonl"
    cps.write_bytes(cps.read_bytes().splitlines(keepends=True)[0])
    report = verify_trail(directory, public_keys=keys, witness=index.witness())
    assert {"truncated", "checkpoint_witness"} <= {p.kind for p in report.problems}


def test_newest_only_with_an_empty_newest_segment(witnessed) -> None:  # type: ignore[no-untyped-def]
    directory, index, keys = witnessed
    segments = list_segments(directory)
    assert segments[-1][1].stat().st_size == 0, "the last batch rolled the segment"
    report = verify_trail(directory, public_keys=keys, witness=index.witness(), newest_only=True)
    assert report.ok, report.problems
    assert report.last_seq == 12


def test_a_busy_writer_never_looks_like_truncation(db, tmp_path: Path, signer) -> None:  # type: ignore[no-untyped-def]
    directory = tmp_path / "audit"
    sink = AuditSink(directory, "trail-b", signer)
    logger = AuditLogger(sink, source="server")
    index = AuditIndex(db, directory)
    sink.on_commit = index.enqueue
    sink.on_checkpoint = index.note_checkpoint
    sink.open()
    index.start()
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            logger.record("UserEnabled", identity=Identity.system(), request={"name": f"b{i}"})
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        deadline = time.monotonic() + 3
        checks = 0
        while time.monotonic() < deadline:
            witness = index.witness()  # first, as the start-up check does
            report = verify_trail(
                directory, public_keys={signer.key_id: signer.public_key}, witness=witness
            )
            assert not [p for p in report.problems if p.kind != "torn_tail"], report.problems
            checks += 1
        assert checks > 3
    finally:
        stop.set()
        writer.join(30)
        sink.close()
        index.close()
