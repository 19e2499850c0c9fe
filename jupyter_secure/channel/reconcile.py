"""Reconciling what the server forwarded with what the kernel says it ran.

The channel guard notes every ``execute_request`` it forwards (by message id)
before the kernel can see it; the kernel's witness reports every execution it
starts. An execution the kernel reports that the guard never forwarded was
driven some other way — a client speaking ZMQ to the kernel directly with a
stolen connection file — and is unreconciled. (Reusing the id of a request the
guard did forward is not caught: a cell that calls ``run_cell`` reports twice
under one id, legitimately.) Pure: no I/O, a clock you pass.

Why the guard's side is recorded first and the kernel's is checked against it,
and not the other way round: the guard forwards only after noting, so a
legitimate witness report always finds its id; a missing witness report (the
user unregistered the hooks) is not proof of anything on its own and is
counted, not alarmed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ExecutionLedger", "Forwarded"]


@dataclass
class Forwarded:
    """One execute_request the guard forwarded."""

    kernel_id: str
    user: str
    at: float
    witnessed: bool = False
    replied: bool = False


class ExecutionLedger:
    """Forwarded execute requests per message id, kept for ``window`` seconds.

    ``max_entries`` bounds memory whatever the request rate; the oldest entries go
    first. An entry evicted before its witness report arrives makes that report
    look unreconciled, so the window is generous (10 minutes by default): a queued
    cell can wait behind a long-running one.
    """

    def __init__(
        self,
        *,
        window: float = 600.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.max_entries = max_entries
        self.clock = clock
        self._forwarded: OrderedDict[str, Forwarded] = OrderedDict()
        self.unwitnessed_expired = 0

    def forwarded(self, kernel_id: str, msg_id: str, user: str) -> None:
        """Note a request the guard is about to send to ``kernel_id``."""
        self._prune()
        self._forwarded[msg_id] = Forwarded(kernel_id, user, self.clock())
        while len(self._forwarded) > self.max_entries:
            self._drop_oldest()

    def witnessed(self, kernel_id: str, msg_id: str) -> str | None:
        """A kernel reports it started ``msg_id``; the reason it is unreconciled, or None."""
        if not msg_id:
            return "the kernel ran code without an execute request"
        entry = self._forwarded.get(msg_id)
        if entry is None:
            return "no execute request with this id went through the server"
        if entry.kernel_id != kernel_id:
            return "the execute request with this id was sent to another kernel"
        # A cell that calls run_cell() reports again under its own request's id: a
        # repeat of a forwarded id is not by itself a bypass.
        entry.witnessed = True
        return None

    def replied(self, kernel_id: str, msg_id: str) -> Forwarded | None:
        """The request ``kernel_id`` now answers, the first time only (None: not one the
        guard forwarded to that kernel, or already answered)."""
        entry = self._forwarded.get(msg_id)
        if entry is None or entry.kernel_id != kernel_id or entry.replied:
            return None
        entry.replied = True
        return entry

    def owner_of(self, msg_id: str) -> str | None:
        entry = self._forwarded.get(msg_id)
        return entry.user if entry else None

    def _drop_oldest(self) -> None:
        _, entry = self._forwarded.popitem(last=False)
        if not entry.witnessed:
            self.unwitnessed_expired += 1

    def _prune(self) -> None:
        limit = self.clock() - self.window
        while self._forwarded:
            first = next(iter(self._forwarded.values()))
            if first.at >= limit:
                break
            self._drop_oldest()

    def __len__(self) -> int:
        return len(self._forwarded)
