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

import errno
import os
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = [
    "CHECKPOINTS_FILE",
    "LOCK_FILE",
    "QUARANTINE_DIR",
    "TRAIL_FILE",
    "Unreadable",
    "iter_lines",
    "last_line",
    "list_segments",
    "read_regular",
    "read_trail_id",
    "segment_path",
    "segment_sizes",
]

TRAIL_FILE = "TRAIL"
CHECKPOINTS_FILE = "checkpoints.jsonl"
LOCK_FILE = ".lock"
QUARANTINE_DIR = "quarantine"
_SEGMENT_RE = re.compile(r"^segment-([0-9]{8})\.jsonl$")
_CHUNK = 1 << 16


class Unreadable(OSError):
    """A trail file that is not a plain, readable file (a directory, a link, a FIFO …)."""


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file, refusing links, FIFOs and devices instead of hanging."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        reason = "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        raise Unreadable(f"{path.name} cannot be read: {reason}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Unreadable(f"{path.name} is not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 22):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def segment_path(directory: Path, number: int) -> Path:
    return directory / f"segment-{number:08d}.jsonl"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """Segment numbers and paths, in order."""
    found = []
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    for name in names:
        m = _SEGMENT_RE.match(name)
        if m:
            found.append((int(m.group(1)), directory / name))
    found.sort()
    return found


def read_trail_id(directory: Path) -> str | None:
    """The trail id, or None when there is no TRAIL file; Unreadable when it is not one."""
    path = directory / TRAIL_FILE
    if not path.exists() and not path.is_symlink():
        return None
    data = read_regular(path)
    try:
        return data.decode("ascii").strip() or None
    except UnicodeDecodeError:
        raise Unreadable(f"{TRAIL_FILE} is not an ASCII trail id") from None


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


def segment_sizes(directory: Path) -> dict[int, int]:
    """Each segment's size now: a reader that stops there does not chase a live writer."""
    return {number: path.stat().st_size for number, path in list_segments(directory)}


def iter_lines(
    directory: Path,
    start_segment: int = 1,
    start_offset: int = 0,
    limits: Mapping[int, int] | None = None,
) -> Iterator[tuple[int, int, bytes]]:
    """Every complete record line from ``(start_segment, start_offset)`` on.

    Yields ``(segment, offset, line)``. An unterminated last line is skipped:
    readers see only what the writer finished. With ``limits`` (from
    :func:`segment_sizes`) reading stops where the files ended at that moment.
    """
    for number, path in list_segments(directory):
        if number < start_segment or (limits is not None and number not in limits):
            continue
        end = limits[number] if limits is not None else None
        offset = start_offset if number == start_segment else 0
        with path.open("rb") as f:
            f.seek(offset)
            for line in f:
                if not line.endswith(b"\n") or (end is not None and offset + len(line) > end):
                    break
                yield number, offset, line
                offset += len(line)


def read_at(directory: Path, segment: int, offset: int, length: int) -> bytes:
    with segment_path(directory, segment).open("rb") as f:
        f.seek(offset)
        return f.read(length)
