"""The files of one audit trail and how to read them.

Layout of the audit directory (mode 0700)::

    TRAIL                     the trail id (one line); binds segments to this trail
    segment-00000001.jsonl    records, one per line, hash-chained across segments
    segment-00000002.jsonl
    checkpoints.jsonl         signed heads
    quarantine/               torn tails cut off after a crash, kept for inspection
    .lock                     flock(2) held while appending
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "CHECKPOINTS_FILE",
    "LOCK_FILE",
    "QUARANTINE_DIR",
    "TRAIL_FILE",
    "iter_lines",
    "last_line",
    "list_segments",
    "read_trail_id",
    "segment_path",
]

TRAIL_FILE = "TRAIL"
CHECKPOINTS_FILE = "checkpoints.jsonl"
LOCK_FILE = ".lock"
QUARANTINE_DIR = "quarantine"
_SEGMENT_RE = re.compile(r"^segment-(\d{8})\.jsonl$")
_CHUNK = 1 << 16


def segment_path(directory: Path, number: int) -> Path:
    return directory / f"segment-{number:08d}.jsonl"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """Segment numbers and paths, in order."""
    found = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        m = _SEGMENT_RE.match(name)
        if m:
            found.append((int(m.group(1)), directory / name))
    found.sort()
    return found


def read_trail_id(directory: Path) -> str | None:
    try:
        return (directory / TRAIL_FILE).read_text("ascii").strip() or None
    except FileNotFoundError:
        return None


def last_line(fd: int, size: int) -> tuple[bytes | None, int]:
    """The last complete line of the file open at ``fd`` (``size`` bytes long).

    Returns ``(line or None, end)`` where ``end`` is the offset just past that
    line; bytes from ``end`` to ``size`` are a torn (unterminated) tail.
    """
    buf = b""
    pos = size
    end: int | None = None
    while pos > 0:
        start = max(0, pos - _CHUNK)
        buf = os.pread(fd, pos - start, start) + buf
        pos = start
        if end is None:
            cut = buf.rfind(b"\n")
            if cut < 0:
                continue
            end = pos + cut + 1
        rel_end = end - pos
        before = buf.rfind(b"\n", 0, rel_end - 1)
        if before >= 0:
            return buf[before + 1 : rel_end], end
    if end is None:
        return None, 0
    return buf[:end], end


def iter_lines(
    directory: Path, start_segment: int = 1, start_offset: int = 0
) -> Iterator[tuple[int, int, bytes]]:
    """Every complete record line from ``(start_segment, start_offset)`` on.

    Yields ``(segment, offset, line)``. An unterminated last line is skipped:
    readers see only what the writer finished.
    """
    for number, path in list_segments(directory):
        if number < start_segment:
            continue
        offset = start_offset if number == start_segment else 0
        with path.open("rb") as f:
            f.seek(offset)
            for line in f:
                if not line.endswith(b"\n"):
                    break
                yield number, offset, line
                offset += len(line)


def read_at(directory: Path, segment: int, offset: int, length: int) -> bytes:
    with segment_path(directory, segment).open("rb") as f:
        f.seek(offset)
        return f.read(length)
