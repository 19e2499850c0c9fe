"""Each way of tampering with the trail, separately: `verify` must find it and say where.

The trail is built by the real sink (small segments so that there are
several), closed with a final signed checkpoint, then edited on disk the way
an attacker with write access to the audit directory would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import Trail

from jupyter_secure.audit.checkpoints import CheckpointSigner, parse_checkpoint
from jupyter_secure.audit.mirror import read_mirror
from jupyter_secure.audit.record import encode_record, genesis_hash, parse_record
from jupyter_secure.audit.segments import list_segments
from jupyter_secure.audit.verify import VerifyReport, verify_trail


def seg(directory: Path, n: int) -> Path:
    return directory / f"segment-{n:08d}.jsonl"


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


@pytest.fixture
def built(make_trail):  # type: ignore[no-untyped-def]
    t = make_trail(segment_max_bytes=2500)
    for i in range(40):  # one by one: a segment rolls after the batch that fills it
        t.add(1, user=f"alice{i}-")
    t.close()
    report = verify_trail(t.directory, public_keys=t.keys, expected_trail=t.trail_id)
    assert report.ok, report.problems
    assert report.records == 40
    assert len(list_segments(t.directory)) >= 4
    return t


def verify(t) -> VerifyReport:  # type: ignore[no-untyped-def]
    return verify_trail(t.directory, public_keys=t.keys, expected_trail=t.trail_id)


def first(report: VerifyReport):  # type: ignore[no-untyped-def]
    assert not report.ok
    return report.problems[0]


def test_flipped_byte(built) -> None:  # type: ignore[no-untyped-def]
    path = seg(built.directory, 2)
    data = bytearray(path.read_bytes())
    second = data.index(b"\n") + 1
    data[second + 120] ^= 0x04
    path.write_bytes(bytes(data))
    p = first(verify(built))
    assert p.kind == "hash_mismatch"
    assert p.where.startswith(f"{path.name}:2 ")


def test_edited_field(built) -> None:  # type: ignore[no-untyped-def]
    path = seg(built.directory, 1)
    lines = lines_of(path)
    assert b'"name":"alice1-0"' in lines[1]
    lines[1] = lines[1].replace(b'"name":"alice1-0"', b'"name":"mallory"')
    path.write_bytes(b"".join(lines))
    p = first(verify(built))
    assert (p.kind, p.seq) == ("hash_mismatch", 2)


def test_edited_field_with_its_own_hash_recomputed(built) -> None:  # type: ignore[no-untyped-def]
    path = seg(built.directory, 1)
    lines = lines_of(path)
    rec = parse_record(lines[1])
    body = json.loads(lines[1])
    payload = lines[1][lines[1].index(b'"eventVersion"') - 1 : lines[1].rindex(b',"hash"')] + b"}"
    assert b'"name":"alice1-0"' in payload
    payload = payload.replace(b'"name":"alice1-0"', b'"name":"mallory"')
    forged, _ = encode_record(body["seq"], rec.prev, b"{" + payload[1:])
    lines[1] = forged
    path.write_bytes(b"".join(lines))
    p = first(verify(built))
    assert (p.kind, p.seq) == ("chain_break", 3)


def test_deleted_record(built) -> None:  # type: ignore[no-untyped-def]
    path = seg(built.directory, 2)
    lines = lines_of(path)
    gone = parse_record(lines[1]).seq
    del lines[1]
    path.write_bytes(b"".join(lines))
    p = first(verify(built))
    assert p.kind == "seq_gap"
    assert p.seq == gone + 1
    assert f"expected seq {gone}" in p.message


def test_inserted_record(built) -> None:  # type: ignore[no-untyped-def]
    path = seg(built.directory, 2)
    lines = lines_of(path)
    before = parse_record(lines[0])
    forged, _ = encode_record(before.seq + 1, before.hash, b'{"eventName":"UserAdded","x":1}')
    lines.insert(1, forged)
    path.write_bytes(b"".join(lines))
    report = verify(built)
    p = first(report)
    assert p.kind in {"seq_repeat", "chain_break"}
    assert p.where.startswith(f"{path.name}:3 ")  # the record after the forged one


def test_duplicated_record(built) -> None:  # type: ignore[no-untyped-def]
    path = seg(built.directory, 3)
    lines = lines_of(path)
    lines.insert(2, lines[1])
    path.write_bytes(b"".join(lines))
    p = first(verify(built))
    assert p.kind == "seq_repeat"
    assert p.seq == parse_record(lines[1]).seq


def test_reordered_records(built) -> None:  # type: ignore[no-untyped-def]
    path = seg(built.directory, 1)
    lines = lines_of(path)
    lines[1], lines[2] = lines[2], lines[1]
    path.write_bytes(b"".join(lines))
    report = verify(built)
    assert first(report).kind == "seq_gap"
    assert first(report).where.startswith(f"{path.name}:2 ")
    assert {p.kind for p in report.problems} >= {"seq_gap", "seq_order"}


def last_nonempty(directory: Path) -> Path:
    return [p for _, p in list_segments(directory) if p.stat().st_size][-1]


def test_truncated_tail(built) -> None:  # type: ignore[no-untyped-def]
    last = last_nonempty(built.directory)
    lines = lines_of(last)
    last.write_bytes(b"".join(lines[:-2]))
    p = first(verify(built))
    assert p.kind == "truncated"
    assert "records were cut off" in p.message


def test_missing_segment(built) -> None:  # type: ignore[no-untyped-def]
    seg(built.directory, 2).unlink()
    report = verify(built)
    p = first(report)
    assert p.kind == "segment_missing"
    assert p.where == seg(built.directory, 3).name
    assert "segment 2 missing" in p.message


def test_spliced_segment_from_another_trail(built, tmp_path, signer) -> None:  # type: ignore[no-untyped-def]
    other = Trail(tmp_path / "other", signer, segment_max_bytes=2500)
    other.trail_id = built.trail_id  # even with the same trail id the chain does not join
    for i in range(40):
        other.add(1, user=f"alice{i}-")
    other.close()
    target = seg(built.directory, 3)
    target.write_bytes(seg(other.directory, 3).read_bytes())
    p = first(verify(built))
    assert p.where.startswith(f"{target.name}:1 ")
    assert p.kind == "chain_break"


def test_rewritten_chain_without_the_signing_key(built) -> None:  # type: ignore[no-untyped-def]
    """Edit one record and recompute every later hash: only the signatures can tell."""
    segments = list_segments(built.directory)
    prev = genesis_hash(built.trail_id)
    for _, path in segments:
        out = []
        for line in lines_of(path):
            rec = parse_record(line)
            body_start = line.index(b'",', line.index(b'"prev":"')) + 2
            payload = b"{" + line[body_start : line.rindex(b',"hash"')] + b"}"
            payload = payload.replace(b'"name":"alice7-0"', b'"name":"mallory"')
            new, prev = encode_record(rec.seq, prev, payload)
            out.append(new)
        path.write_bytes(b"".join(out))
    report = verify(built)
    assert [p.kind for p in report.problems if p.kind.startswith("checkpoint")]
    assert first(report).kind == "checkpoint_mismatch"
    assert not [p for p in report.problems if p.kind in {"hash_mismatch", "chain_break"}]


def test_forged_checkpoints_with_another_key(built) -> None:  # type: ignore[no-untyped-def]
    mallory = CheckpointSigner(CheckpointSigner.generate_raw())
    path = built.directory / "checkpoints.jsonl"
    out = []
    for line in lines_of(path):
        cp = parse_checkpoint(line)
        out.append(
            mallory.sign(
                n=cp.n, trail=cp.trail, seq=cp.seq, hash=cp.hash, time=cp.time, prev=cp.prev
            ).line()
        )
    path.write_bytes(b"".join(out))
    p = first(verify(built))
    assert p.kind == "checkpoint_signature"


def test_deleted_checkpoint_file(built) -> None:  # type: ignore[no-untyped-def]
    (built.directory / "checkpoints.jsonl").unlink()
    assert first(verify(built)).kind == "no_checkpoint"


def test_torn_last_line_is_reported_precisely(built) -> None:  # type: ignore[no-untyped-def]
    last = list_segments(built.directory)[-1][1]
    size = last.stat().st_size
    n_lines = len(lines_of(last))
    with last.open("ab") as f:
        f.write(b'{"seq":41,"prev":"abc')
    report = verify(built)
    p = first(report)
    assert p.kind == "torn_tail"
    assert (p.segment, p.offset) == (int(last.stem.split("-")[1]), size)
    assert p.where == f"{last.name}:{n_lines + 1} (offset {size})"
    assert "21 bytes" in p.message
    assert len(report.problems) == 1


def test_truncation_past_the_mirror(make_trail, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror = tmp_path / "offsite"
    mirror.mkdir()
    t = make_trail(segment_max_bytes=2500, checkpoint_mirror=str(mirror), checkpoint_interval=0.0)
    for _ in range(5):
        t.add(4)
    t.close()
    mirrored = read_mirror(mirror, t.trail_id)
    assert len(mirrored) >= 2
    ok = verify_trail(t.directory, public_keys=t.keys, mirror_lines=mirrored)
    assert ok.ok, ok.problems
    # Cut the last records AND the checkpoints that signed them: consistent inside.
    keep_seq = parse_checkpoint(mirrored[0]).seq
    cps = [
        c
        for c in lines_of(t.directory / "checkpoints.jsonl")
        if parse_checkpoint(c).seq <= keep_seq
    ]
    (t.directory / "checkpoints.jsonl").write_bytes(b"".join(cps))
    for _, path in list_segments(t.directory):
        kept = [ln for ln in lines_of(path) if parse_record(ln).seq <= keep_seq]
        if kept:
            path.write_bytes(b"".join(kept))
        else:
            path.unlink()
    inside = verify_trail(t.directory, public_keys=t.keys)
    assert inside.ok, "without the mirror the cut is invisible (documented limitation)"
    p = first(verify_trail(t.directory, public_keys=t.keys, mirror_lines=mirrored))
    assert p.kind == "mirror_ahead"


def test_wrong_trail_id(built) -> None:  # type: ignore[no-untyped-def]
    report = verify_trail(built.directory, public_keys=built.keys, expected_trail="trail-other")
    assert first(report).kind == "trail_mismatch"
