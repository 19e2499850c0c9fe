from __future__ import annotations

import uuid

from jupyter_secure.audit.ids import UuidClock, uuid7, uuid7_time_ms


def test_version_variant_and_time() -> None:
    value = uuid7(1_764_000_000_123_000_000, UuidClock())
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert uuid7_time_ms(value) == 1_764_000_000_123


def test_strictly_increasing_within_a_millisecond() -> None:
    clock = UuidClock()
    ids = [uuid7(1_764_000_000_000_000_000, clock) for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_clock_going_backwards_does_not_reorder() -> None:
    clock = UuidClock()
    a = uuid7(1_800_000_000_000_000_000, clock)
    b = uuid7(1_700_000_000_000_000_000, clock)
    assert b > a
