from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_secure.audit.record import (
    RecordFormatError,
    encode_record,
    genesis_hash,
    parse_record,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1).filter(lambda k: k not in {"seq", "prev", "hash"}),
        json_values,
        min_size=1,
    )
)
def test_encode_parse_round_trip(fields: dict[str, object]) -> None:
    payload = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    line, digest = encode_record(7, genesis_hash("t"), payload)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    parsed = parse_record(line)
    assert (parsed.seq, parsed.prev, parsed.hash, parsed.hash_ok) == (
        7,
        genesis_hash("t"),
        digest,
        True,
    )
    decoded = json.loads(line)
    assert decoded["seq"] == 7
    assert decoded["hash"] == digest
    for key, value in fields.items():
        assert decoded[key] == value


def test_every_single_byte_flip_is_caught() -> None:
    line, _ = encode_record(1, "0" * 64, b'{"eventName":"X","n":1}')
    for i in range(len(line) - 1):
        flipped = bytearray(line)
        flipped[i] ^= 0x01
        try:
            parsed = parse_record(bytes(flipped))
        except RecordFormatError:
            continue
        assert not parsed.hash_ok or parsed.seq != 1 or parsed.prev != "0" * 64, i


@pytest.mark.parametrize(
    "line",
    [b"", b"{}\n", b"garbage\n", b'{"seq":x,"prev":"' + b"0" * 64 + b'",' + b"a" * 200 + b"\n"],
)
def test_non_records_are_rejected(line: bytes) -> None:
    with pytest.raises(RecordFormatError):
        parse_record(line)


def test_empty_payload_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        encode_record(1, "0" * 64, b"{}")


def test_genesis_depends_on_the_trail() -> None:
    assert genesis_hash("a") != genesis_hash("b")
