"""Masking long outputs on the other cores, off the server's event loop.

Masking is CPU work in Python (regular expressions, validators, HMACs): a
megabyte of printed output costs tens of milliseconds, during which a server
that masked on its event loop would answer nobody else. Texts of at least
``threshold`` characters are therefore split into ``workers`` pieces and masked
in a process pool, in parallel, while the loop goes on.

Pieces overlap by :data:`OVERLAP` characters on each side, so every piece is
scanned with the context a whole-text scan would have had (context words,
entities that cross the cut), and each entity is kept by exactly one piece: the
one in whose range it starts. Where two pieces found overlapping spans the
earlier one wins. The result equals :func:`~jupyter_secure.masking.mask_text`
on the whole text for entities shorter than the overlap (every built-in one;
a test holds the two together).

The pool uses ``spawn``: forking a server that runs threads (the audit writer,
database pools) is unsafe.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ..masking import RolePolicy, apply_spans, masked_spans

__all__ = ["OVERLAP", "MaskingPool", "mask_piece", "split_points"]

#: Characters of context each piece gets beyond its own range, on both sides.
OVERLAP = 1024


def split_points(text: str, parts: int) -> list[int]:
    """Boundaries ``[0, …, len(text)]`` cutting ``text`` into ``parts`` similar pieces,
    each cut moved to just after a newline when one is near (a sentence boundary)."""
    n = len(text)
    points = [0]
    for i in range(1, parts):
        ideal = n * i // parts
        newline = text.find("\n", ideal, ideal + 4096)
        cut = newline + 1 if newline != -1 else ideal
        if cut > points[-1]:
            points.append(cut)
    points.append(n)
    return points


def mask_piece(
    text: str, policy: RolePolicy, lo: int, hi: int
) -> tuple[list[tuple[int, int, str, str]], dict[str, int]]:
    """Run in a worker: the replacements for entities starting in ``[lo, hi)``."""
    return masked_spans(text, policy, lo=lo, hi=hi)


def _warm() -> None:
    from ..masking import MaskingPolicy, mask_text

    mask_text("warm up +1 202-555-0143 a@example.com", MaskingPolicy().for_role("viewer"))


class MaskingPool:
    """A lazily started process pool that masks long texts in parallel pieces."""

    def __init__(self, workers: int, threshold: int) -> None:
        self.workers = workers
        self.threshold = threshold
        self._executor: ProcessPoolExecutor | None = None

    @property
    def enabled(self) -> bool:
        return self.workers > 0

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_warm,
            )
        return self._executor

    async def mask_text(self, text: str, policy: RolePolicy) -> tuple[str, dict[str, int]]:
        """``text`` masked for ``policy``, computed in the pool."""
        loop = asyncio.get_running_loop()
        points = split_points(text, self.workers)
        jobs = []
        for lo, hi in itertools.pairwise(points):
            start, end = max(0, lo - OVERLAP), min(len(text), hi + OVERLAP)
            jobs.append(
                loop.run_in_executor(
                    self._pool(), mask_piece, text[start:end], policy, lo - start, hi - start
                )
            )
        try:
            results = await asyncio.gather(*jobs)
        except BrokenProcessPool:
            self._executor = None  # a worker died: the next call starts a fresh pool
            raise
        merged: list[tuple[int, int, str, str]] = []
        counts: dict[str, int] = {}
        for lo, (found, _counts) in zip(points, results, strict=False):
            offset = max(0, lo - OVERLAP)
            for start, end, replacement, entity in found:
                s, e = start + offset, end + offset
                if merged and s < merged[-1][1]:
                    continue  # the earlier piece already masked this stretch
                merged.append((s, e, replacement, entity))
                counts[entity] = counts.get(entity, 0) + 1
        return apply_spans(text, merged), counts

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
