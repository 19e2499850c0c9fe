"""UUIDv7 event ids (RFC 9562): time-ordered, so ids sort the way events happened.

Python 3.11 has no ``uuid.uuid7``. Within one millisecond the 12-bit
``rand_a`` field is used as a counter (RFC 9562 §6.2 method 1) so that ids
from one process are strictly increasing; across processes they are unique
by their 62 random bits and ordered to the millisecond.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

__all__ = ["UuidClock", "uuid7", "uuid7_time_ms"]


class UuidClock:
    """Last millisecond and counter, shared by every thread of the process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_ms = 0
        self.counter = 0

    def tick(self, ms: int) -> tuple[int, int]:
        with self.lock:
            if ms <= self.last_ms:
                self.counter += 1
                if self.counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                    self.last_ms += 1
                    self.counter = 0
            else:
                self.last_ms = ms
                self.counter = 0
            return self.last_ms, self.counter


_clock = UuidClock()


def uuid7(now_ns: int | None = None, clock: UuidClock | None = None) -> uuid.UUID:
    """A new UUIDv7; ``now_ns`` (nanoseconds since the epoch) and ``clock`` are for tests."""
    state = _clock if clock is None else clock
    ms, counter = state.tick((time.time_ns() if now_ns is None else now_ns) // 1_000_000)
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand_b
    return uuid.UUID(int=value)


def uuid7_time_ms(value: uuid.UUID) -> int:
    """The millisecond timestamp a UUIDv7 carries."""
    return value.int >> 80
