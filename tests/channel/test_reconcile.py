"""The ledger that reconciles forwarded requests with what the kernel says it ran."""

from __future__ import annotations

from jupyter_secure.channel.reconcile import ExecutionLedger


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_forwarded_then_witnessed_once() -> None:
    ledger = ExecutionLedger(clock=Clock())
    ledger.forwarded("k1", "m1", "alice")
    assert ledger.witnessed("k1", "m1") is None
    assert ledger.witnessed("k1", "m1") is None  # a nested run_cell reports the same id
    assert ledger.owner_of("m1") == "alice"


def test_unknown_other_kernel_and_missing_ids_do_not_reconcile() -> None:
    ledger = ExecutionLedger(clock=Clock())
    ledger.forwarded("k1", "m1", "alice")
    assert "no execute request" in (ledger.witnessed("k1", "zmq-direct") or "")
    assert "another kernel" in (ledger.witnessed("k2", "m1") or "")
    assert "without an execute request" in (ledger.witnessed("k1", "") or "")


def test_window_and_size_bound_memory() -> None:
    clock = Clock()
    ledger = ExecutionLedger(window=10, max_entries=3, clock=clock)
    for i in range(5):
        ledger.forwarded("k", f"m{i}", "a")
    assert len(ledger) == 3
    assert ledger.unwitnessed_expired == 2
    clock.now = 11
    ledger.forwarded("k", "late", "a")
    assert len(ledger) == 1
    assert ledger.witnessed("k", "m4") is not None  # expired: no longer vouched for


def test_a_reply_is_recorded_once_and_only_for_its_own_kernel() -> None:
    clock = Clock()
    ledger = ExecutionLedger(clock=clock)
    ledger.forwarded("k1", "m1", "alice")
    clock.now = 2.5
    assert ledger.replied("k2", "m1") is None  # another kernel cannot answer for it
    entry = ledger.replied("k1", "m1")
    assert entry is not None
    assert clock() - entry.at == 2.5
    assert ledger.replied("k1", "m1") is None  # answered already
    assert ledger.replied("k1", "unknown") is None
