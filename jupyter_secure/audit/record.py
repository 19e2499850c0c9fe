"""The byte format of one audit record and of the hash chain that links them.

A record is one line of JSON::

    {"seq":42,"prev":"<64 hex>",<event fields...>,"hash":"<64 hex>"}\\n

``hash`` is SHA-256 over the exact bytes before ``,"hash":"``, so the chain
is checked without re-serialising JSON: a verifier slices, hashes and
compares, which is what lets it run at hundreds of thousands of records a
second. ``prev`` of the first record is the *genesis hash* of the trail,
derived from the trail id, so a segment spliced in from another trail does
not chain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = [
    "HASH_HEX_LEN",
    "ParsedRecord",
    "RecordFormatError",
    "encode_record",
    "genesis_hash",
    "parse_body",
    "parse_record",
]

HASH_HEX_LEN = 64
_HEAD = b'{"seq":'
_PREV = b',"prev":"'
_HASH_KEY = b',"hash":"'
_TAIL = b'"}\n'
_SUFFIX_LEN = len(_HASH_KEY) + HASH_HEX_LEN + len(_TAIL)
RESERVED_FIELDS = frozenset({"seq", "prev", "hash"})


class RecordFormatError(ValueError):
    """A line that is not a record in this format at all."""


@dataclass(frozen=True, slots=True)
class ParsedRecord:
    seq: int
    prev: str
    hash: str
    hash_ok: bool


def genesis_hash(trail_id: str) -> str:
    """The ``prev`` of a trail's first record."""
    return hashlib.sha256(b"jupyter-secure audit trail\0" + trail_id.encode()).hexdigest()


def encode_record(seq: int, prev: str, payload: bytes) -> tuple[bytes, str]:
    """The line for ``payload`` (a compact JSON object) at ``seq`` after ``prev``.

    Returns the line (with its newline) and its hash.
    """
    if len(payload) < 3 or payload[:1] != b"{" or payload[-1:] != b"}":
        raise ValueError("payload must be a non-empty JSON object")
    body = b'%s%d%s%s",%s' % (_HEAD, seq, _PREV, prev.encode("ascii"), payload[1:-1])
    digest = hashlib.sha256(body).hexdigest()
    return body + _HASH_KEY + digest.encode("ascii") + _TAIL, digest


def parse_record(line: bytes) -> ParsedRecord:
    """Split a line (with its newline) into seq, prev and hash, and check the hash."""
    if not line.endswith(b"\n"):
        raise RecordFormatError("not a complete line")
    return parse_body(line[:-1])


def parse_body(raw: bytes) -> ParsedRecord:
    """As :func:`parse_record` for a line without its newline (the verifier's hot path).

    Only the shape is checked here; whether ``hash`` is the line's hash is
    ``hash_ok``, and whether ``prev`` is the previous record's hash is the
    caller's comparison, so neither needs its own hex check.
    """
    n = len(raw)
    body_end = n - _SUFFIX_LEN + 1
    if (
        n < 150
        or raw[: len(_HEAD)] != _HEAD
        or raw[n - 2 :] != b'"}'
        or raw[body_end : body_end + len(_HASH_KEY)] != _HASH_KEY
    ):
        raise RecordFormatError("not a record line")
    prev_at = raw.find(_PREV, len(_HEAD), len(_HEAD) + 24)
    if prev_at < 0:
        raise RecordFormatError("no prev field after seq")
    seq_bytes = raw[len(_HEAD) : prev_at]
    if not seq_bytes.isdigit():
        raise RecordFormatError("seq is not a number")
    prev_start = prev_at + len(_PREV)
    if raw[prev_start + HASH_HEX_LEN : prev_start + HASH_HEX_LEN + 2] != b'",':
        raise RecordFormatError("prev is not a 64-digit hash")
    claimed = raw[n - 2 - HASH_HEX_LEN : n - 2]
    actual = hashlib.sha256(memoryview(raw)[:body_end]).hexdigest().encode("ascii")
    return ParsedRecord(
        int(seq_bytes),
        raw[prev_start : prev_start + HASH_HEX_LEN].decode("ascii", "replace"),
        claimed.decode("ascii", "replace"),
        actual == claimed,
    )
