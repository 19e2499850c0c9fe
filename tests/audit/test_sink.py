"""The sink's promises: durable before acknowledged, group commit, segments, checkpoints."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from jupyter_secure.audit.checkpoints import parse_checkpoint
from jupyter_secure.audit.logger import Identity
from jupyter_secure.audit.mirror import read_mirror
from jupyter_secure.audit.segments import list_segments
from jupyter_secure.audit.sink import AuditSink, AuditUnavailable
from jupyter_secure.audit.verify import verify_trail
from jupyter_secure.errors import StartupRefused


def test_acknowledged_means_on_disk_in_order(trail) -> None:  # type: ignore[no-untyped-def]
    receipts = [
        trail.logger.record("UserEnabled", identity=Identity.system(), request={"name": f"u{i}"})
        for i in range(10)
    ]
    assert [r.seq for r in receipts] == list(range(1, 11))
    data = (trail.directory / "segment-00000001.jsonl").read_bytes()
    for r in receipts:
        line = data[r.offset : r.offset + r.length]
        assert json.loads(line)["hash"] == r.hash


def test_many_threads_share_few_fsyncs(trail) -> None:  # type: ignore[no-untyped-def]
    def worker(k: int) -> None:
        for i in range(50):
            trail.logger.record(
                "UserEnabled", identity=Identity.system(), request={"name": f"t{k}-{i}"}
            )

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert trail.sink.stats["events"] == 400
    assert trail.sink.stats["batches"] < 400, "group commit batches concurrent appends"
    report = verify_trail(trail.directory, public_keys=trail.keys)
    assert report.ok
    assert report.records == 400


def test_segments_roll_and_chain(make_trail) -> None:  # type: ignore[no-untyped-def]
    t = make_trail(segment_max_bytes=1500)
    for i in range(12):
        t.add(1, user=f"s{i}-")
    t.close()
    assert len(list_segments(t.directory)) > 3
    report = verify_trail(t.directory, public_keys=t.keys)
    assert report.ok, report.problems
    assert report.records == 12


def test_checkpoint_within_the_interval_while_events_arrive(make_trail) -> None:  # type: ignore[no-untyped-def]
    t = make_trail(checkpoint_interval=0.2)
    t.add(1)
    path = t.directory / "checkpoints.jsonl"

    def signed() -> list[int]:
        return [parse_checkpoint(x).seq for x in path.read_bytes().splitlines()]

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and signed()[-1] != 1:
        time.sleep(0.05)
    assert signed() == [0, 1], "the genesis checkpoint, then the head"


def test_heartbeat_checkpoint_when_idle(make_trail) -> None:  # type: ignore[no-untyped-def]
    t = make_trail(heartbeat_interval=0.2, checkpoint_interval=0.05)
    t.add(1)
    path = t.directory / "checkpoints.jsonl"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(path.read_bytes().splitlines()) < 4:
        time.sleep(0.05)
    seqs = [parse_checkpoint(x).seq for x in path.read_bytes().splitlines()]
    assert seqs[0] == 0
    assert seqs[1:] == [1] * (len(seqs) - 1)
    assert len(seqs) >= 4, "heartbeats re-sign the unchanged head while idle"


def test_close_signs_the_tail(make_trail) -> None:  # type: ignore[no-untyped-def]
    t = make_trail(checkpoint_interval=3600)
    t.add(5)
    t.close()
    report = verify_trail(t.directory, public_keys=t.keys)
    assert report.ok
    assert report.signed_seq == 5


def test_a_second_writer_continues_the_chain(trail, signer) -> None:  # type: ignore[no-untyped-def]
    trail.add(3)
    other = AuditSink(trail.directory, trail.trail_id, signer)
    other.open()
    try:
        other.append({"eventID": "x", "eventName": "Other"})
        trail.add(2)
    finally:
        other.close()
    trail.close()
    report = verify_trail(trail.directory, public_keys=trail.keys)
    assert report.ok, report.problems
    assert report.records == 6


def test_checkpoint_copies_go_to_the_mirror(make_trail, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror = tmp_path / "offsite"
    mirror.mkdir()
    t = make_trail(checkpoint_mirror=str(mirror))
    t.add(3)
    t.close()
    copies = read_mirror(mirror, t.trail_id)
    local = (t.directory / "checkpoints.jsonl").read_bytes().splitlines(keepends=True)
    assert copies == local


def test_an_unwritable_mirror_refuses_to_open(tmp_path: Path, signer) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "mirror-is-a-file").write_text("x")
    sink = AuditSink(
        tmp_path / "audit",
        "trail-x",
        signer,
        checkpoint_mirror=str(tmp_path / "mirror-is-a-file" / "sub"),
    )
    with pytest.raises(StartupRefused, match="mirror"):
        sink.open()


def test_a_sink_refuses_another_trails_directory(trail, signer) -> None:  # type: ignore[no-untyped-def]
    trail.add(1)
    with pytest.raises(StartupRefused, match="holds trail trail-test"):
        AuditSink(trail.directory, "trail-other", signer).open()


def test_appending_after_close_fails_closed(make_trail) -> None:  # type: ignore[no-untyped-def]
    t = make_trail()
    t.close()
    with pytest.raises(AuditUnavailable):
        t.sink.append({"eventID": "x", "eventName": "Late"})


def test_reserved_fields_are_refused(trail) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="sink assigns"):
        trail.sink.submit({"eventID": "x", "seq": 5})


def test_a_damaged_last_record_stops_appends(make_trail) -> None:  # type: ignore[no-untyped-def]
    t = make_trail()
    t.add(2)
    t.close()
    path = t.directory / "segment-00000001.jsonl"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(StartupRefused, match="fails its hash"):
        AuditSink(t.directory, t.trail_id, t.signer).open()


def test_torn_tail_is_cut_kept_and_recorded(make_trail) -> None:  # type: ignore[no-untyped-def]
    t = make_trail()
    t.add(3)
    t.close()
    path = t.directory / "segment-00000001.jsonl"
    size = path.stat().st_size
    with path.open("ab") as f:
        f.write(b'{"seq":4,"prev":"half a line')
    t2 = make_trail()
    t2.add(1)
    t2.close()
    report = verify_trail(t2.directory, public_keys=t2.keys)
    assert report.ok, report.problems
    assert any("torn tail was cut off segment 1 at offset" in n for n in report.notices)
    kept = list((t2.directory / "quarantine").iterdir())
    assert [p.read_bytes() for p in kept] == [b'{"seq":4,"prev":"half a line']
    assert f".at-{size}." in kept[0].name
    events = [json.loads(x) for x in path.read_bytes().splitlines()]
    assert [e["eventName"] for e in events][3] == "AuditTailRepaired"
    assert events[3]["requestParameters"]["offset"] == size


def test_files_are_private(trail) -> None:  # type: ignore[no-untyped-def]
    trail.add(1)
    trail.close()
    assert os.stat(trail.directory).st_mode & 0o777 == 0o700
    for p in trail.directory.iterdir():
        assert p.stat().st_mode & 0o077 == 0, p


def test_a_cancelled_caller_does_not_stop_the_writer(trail) -> None:  # type: ignore[no-untyped-def]
    futures = [
        trail.logger.submit("UserEnabled", identity=Identity.system(), request={"name": f"c{i}"})
        for i in range(200)
    ]
    cancelled = sum(f.cancel() for f in futures[::2])
    trail.add(1)  # would time out if the writer had died
    assert trail.sink._thread.is_alive()
    assert trail.sink.broken is None
    trail.close()
    report = verify_trail(trail.directory, public_keys=trail.keys)
    assert report.ok
    assert report.records == 201 - cancelled


def test_a_checkpoint_file_replaced_under_a_running_writer(trail) -> None:  # type: ignore[no-untyped-def]
    trail.add(2)
    trail.sink.checkpoint()
    path = trail.directory / "checkpoints.jsonl"
    copy = trail.directory / "copy.jsonl"
    copy.write_bytes(path.read_bytes())
    os.replace(copy, path)  # the writer's descriptor now points at an unlinked file
    before = len(path.read_bytes().splitlines())
    trail.add(2)
    trail.sink.checkpoint()
    assert len(path.read_bytes().splitlines()) > before, "the writer follows the visible file"


def test_checkpoint_reports_a_closed_sink(make_trail) -> None:  # type: ignore[no-untyped-def]
    t = make_trail()
    t.add(1)
    t.close()
    with pytest.raises(AuditUnavailable):
        t.sink.checkpoint()


def test_an_empty_trail_does_not_spin(tmp_path: Path, signer) -> None:  # type: ignore[no-untyped-def]
    sink = AuditSink(tmp_path / "audit", "trail-empty", signer)
    sink.open()
    try:
        cpu = time.process_time()
        time.sleep(1.0)
        assert time.process_time() - cpu < 0.5
    finally:
        sink.close()


def test_a_repair_whose_record_was_never_written_is_found_and_recorded(make_trail) -> None:  # type: ignore[no-untyped-def]
    t = make_trail()
    t.add(2)
    t.close()
    seg = t.directory / "segment-00000001.jsonl"
    with seg.open("ab") as f:
        f.write(b'{"seq":3,"prev":"torn')
    broken = AuditSink(t.directory, t.trail_id, t.signer)

    def failing(repair):  # type: ignore[no-untyped-def]
        raise OSError("disk full while recording the repair")

    broken.repair_event = failing
    with pytest.raises(StartupRefused):
        broken.open()
    report = verify_trail(t.directory, public_keys=t.keys)
    assert [p.kind for p in report.problems] == ["unrecorded_repair"]
    t2 = make_trail()  # a healthy writer records what the other could not
    t2.close()
    after = verify_trail(t.directory, public_keys=t.keys)
    assert after.ok, after.problems
    assert any("torn tail was cut off segment 1" in n for n in after.notices)
    assert [p.name.endswith(".recorded") for p in (t.directory / "quarantine").iterdir()] == [True]
