"""Real processes: a writer killed mid-burst, and eight writers at once."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyter_secure.audit.checkpoints import CheckpointSigner
from jupyter_secure.audit.logger import AuditLogger
from jupyter_secure.audit.segments import list_segments
from jupyter_secure.audit.sink import AuditSink
from jupyter_secure.audit.verify import verify_trail

WRITER = Path(__file__).parents[1] / "audit_writer.py"
TRAIL = "trail-proc"
pytestmark = pytest.mark.slow


def spawn(directory: Path, signer_raw: bytes, *args: str, **popen) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "TEST_SIGNING_KEY": signer_raw.hex()}
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(directory), TRAIL, *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        **popen,
    )


def records(directory: Path) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for _, path in list_segments(directory):
        for line in path.read_bytes().splitlines(keepends=True):
            if line.endswith(b"\n"):
                out.append(json.loads(line))
    return out


def keys_of(raw: bytes) -> dict[str, object]:
    s = CheckpointSigner(raw)
    return {s.key_id: s.public_key}


def test_sigkill_mid_burst_loses_no_acknowledged_event(tmp_path: Path) -> None:
    raw = CheckpointSigner.generate_raw()
    directory = tmp_path / "audit"
    torn_seen = 0
    acked: dict[str, int] = {}
    for attempt in range(3):
        tag = f"w{attempt}"
        proc = spawn(directory, raw, "100000", tag, "--threads", "16", "--code-bytes", "20000")
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        mine = 0
        while mine < 200 + 150 * attempt and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            _, who, i, seq = line.split()
            acked[f"{who}-{i}"] = int(seq)
            mine += 1
        proc.send_signal(signal.SIGKILL)
        # Acks already in the pipe were promised before the kill: read them too.
        rest, _ = proc.communicate(timeout=30)
        for line in rest.splitlines():
            _, who, i, seq = line.split()
            acked[f"{who}-{i}"] = int(seq)
        assert proc.returncode == -signal.SIGKILL

        report = verify_trail(directory, public_keys=keys_of(raw), expected_trail=TRAIL)
        assert all(p.kind == "torn_tail" for p in report.problems), report.problems
        if report.problems:
            torn_seen += 1
            p = report.problems[0]
            last = list_segments(directory)[-1][1]
            data = last.read_bytes()
            assert p.offset == data.rindex(b"\n") + 1
            assert f"{len(data) - p.offset} bytes" in p.message
        present = {
            e["requestParameters"]["name"]: e["seq"]
            for e in records(directory)
            if e["eventName"] != "AuditTailRepaired"  # the previous round's repair record
        }
        missing = {k: v for k, v in acked.items() if present.get(k) != v}
        assert not missing, f"acknowledged but lost: {sorted(missing)[:5]}"
        # The next writer repairs whatever the kill left, records the repair and carries
        # on. (A bare sink has no one to build that record: wired as the product does.)
        sink = AuditSink(directory, TRAIL, CheckpointSigner(raw))
        AuditLogger(sink, source="server")
        sink.open()
        sink.close()
        after = verify_trail(directory, public_keys=keys_of(raw), expected_trail=TRAIL)
        assert after.ok, after.problems
    print(f"torn tails seen in {torn_seen} of 3 kills")


def _limit_file_size(limit: int):  # type: ignore[no-untyped-def]
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_write_cut_short_by_a_crash_is_reported_then_repaired(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel stop a real write part-way and kill the writer
    (SIGXFSZ): a torn tail produced by the real sink, at a place we can predict."""
    raw = CheckpointSigner.generate_raw()
    directory = tmp_path / "audit"
    proc = spawn(
        directory,
        raw,
        "1000",
        "big",
        "--code-bytes",
        "3000",
        "--die-on-file-limit",
        preexec_fn=_limit_file_size(40_000),
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGXFSZ
    acked = [line.split() for line in out.splitlines() if line.startswith("ack")]
    segment = list_segments(directory)[-1][1]
    assert segment.stat().st_size == 40_000
    report = verify_trail(directory, public_keys=keys_of(raw), expected_trail=TRAIL)
    assert [p.kind for p in report.problems] == ["torn_tail"]
    p = report.problems[0]
    end = segment.read_bytes().rindex(b"\n") + 1
    assert (p.segment, p.offset) == (1, end)
    assert f"{40_000 - end} bytes" in p.message
    assert p.where.startswith(f"{segment.name}:")
    present = {e["requestParameters"]["name"] for e in records(directory)}
    assert {f"big-{i}" for _, _, i, _ in acked} <= present
    sink = AuditSink(directory, TRAIL, CheckpointSigner(raw))
    AuditLogger(sink, source="server")  # wires the repair record, as the product does
    sink.open()
    sink.close()
    after = verify_trail(directory, public_keys=keys_of(raw))
    assert after.ok, after.problems
    assert any(f"at offset {end}" in n for n in after.notices)
    assert len(list((directory / "quarantine").iterdir())) == 1


def test_a_failed_write_is_cut_back_and_refused(tmp_path: Path) -> None:
    """The same limit without the kill: write() fails with EFBIG. The sink undoes the
    partial write and fails the batch: nothing half-written, nothing acknowledged."""
    raw = CheckpointSigner.generate_raw()
    directory = tmp_path / "audit"
    proc = spawn(
        directory, raw, "40", "efbig", "--code-bytes", "3000", preexec_fn=_limit_file_size(40_000)
    )
    out, _ = proc.communicate(timeout=60)
    lines = [line.split(maxsplit=3) for line in out.splitlines()]
    acked = {int(i) for kind, _, i, _ in lines if kind == "ack"}
    refused = {int(i) for kind, _, i, _ in lines if kind == "refused"}
    assert acked
    assert refused
    assert acked | refused == set(range(40))
    report = verify_trail(directory, public_keys=keys_of(raw), expected_trail=TRAIL)
    assert report.ok, report.problems
    names = {e["requestParameters"]["name"] for e in records(directory)}
    assert names == {f"efbig-{i}" for i in acked}


def test_eight_processes_appending_at_once_leave_one_valid_chain(tmp_path: Path) -> None:
    raw = CheckpointSigner.generate_raw()
    directory = tmp_path / "audit"
    go = tmp_path / "go"
    procs = [
        spawn(directory, raw, "300", f"p{k}", "--threads", "2", "--wait-for", str(go))
        for k in range(8)
    ]
    time.sleep(1.0)
    go.touch()
    acks = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        acks.extend(line.split() for line in out.splitlines())
    assert len(acks) == 2400
    report = verify_trail(directory, public_keys=keys_of(raw), expected_trail=TRAIL)
    assert report.ok, report.problems
    assert report.records == 2400
    seqs = sorted(int(seq) for *_, seq in acks)
    assert seqs == list(range(1, 2401)), "every acknowledged seq is unique and none is lost"
    by_name = {e["requestParameters"]["name"]: e["seq"] for e in records(directory)}
    for _, tag, i, seq in acks:
        assert by_name[f"{tag}-{i}"] == int(seq)
