"""Verification meets hostile files: it reports, it never crashes and never hangs."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from jupyter_secure.audit.record import encode_record, genesis_hash
from jupyter_secure.audit.verify import verify_trail


@pytest.fixture
def closed(trail):  # type: ignore[no-untyped-def]
    trail.add(3)
    trail.close()
    return trail


def verify(t):  # type: ignore[no-untyped-def]
    return verify_trail(t.directory, public_keys=t.keys, expected_trail=t.trail_id)


@pytest.mark.parametrize(
    "line",
    [
        b'{"n":1e400,"trail":"t","seq":1,"hash":"x","time":"x","key":"x","prev":"x","sig":"x"}',
        b'{"n":Infinity,"trail":"t","seq":1,"hash":"x","time":"x","key":"x","prev":"x","sig":"x"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"n":true,"trail":"t","seq":1,"hash":"x","time":"x","key":"x","prev":"x","sig":"x"}',
        b'{"n":1,"trail":["t"],"seq":1,"hash":"x","time":"x","key":"x","prev":"x","sig":"x"}',
        b"\xff\xfe not utf-8",
    ],
)
def test_hostile_checkpoint_lines(closed, line: bytes) -> None:  # type: ignore[no-untyped-def]
    with (closed.directory / "checkpoints.jsonl").open("ab") as f:
        f.write(line + b"\n")
    report = verify(closed)
    assert report.problems[0].kind == "checkpoint_malformed"


def test_a_repair_marker_in_a_forged_line(closed) -> None:  # type: ignore[no-untyped-def]
    seg = closed.directory / "segment-00000001.jsonl"
    payload = b'{"eventName":"AuditTailRepaired","requestParameters":"x"}'
    line, _ = encode_record(4, genesis_hash("nope"), payload)
    with seg.open("ab") as f:
        f.write(line)
    report = verify(closed)
    assert not report.ok


@pytest.mark.parametrize("what", ["segment", "checkpoints.jsonl", "TRAIL"])
def test_a_directory_where_a_file_belongs(closed, what: str) -> None:  # type: ignore[no-untyped-def]
    name = "segment-00000002.jsonl" if what == "segment" else what
    path = closed.directory / name
    if path.exists():
        path.unlink()
    path.mkdir()
    assert not verify(closed).ok


def test_a_fifo_segment_does_not_hang(closed) -> None:  # type: ignore[no-untyped-def]
    fifo = closed.directory / "segment-00000002.jsonl"
    os.mkfifo(fifo)
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("r", verify(closed)))
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "verify hung on a FIFO"
    assert not result["r"].ok


def test_a_symlinked_segment_is_refused(closed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (closed.directory / "segment-00000002.jsonl").symlink_to("/dev/zero")
    report = verify(closed)
    assert any("symbolic link" in p.message for p in report.problems)


def test_a_non_ascii_trail_id(closed) -> None:  # type: ignore[no-untyped-def]
    (closed.directory / "TRAIL").write_bytes(b"\xff\xfe")
    assert verify(closed).problems[0].kind == "trail_missing"


def test_an_audit_path_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "audit"
    path.write_text("x")
    assert verify_trail(path, public_keys=None).problems[0].kind == "not_a_directory"
