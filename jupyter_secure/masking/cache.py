"""A small LRU cache of per-frame decisions, keyed so that stale entries are not reused.

Displaying the same frame again (re-running a cell that ends in ``df``) must
not pay for classification and k-anonymity twice. The cache stores
*decisions* (column labels, k-anonymity levels and the rows that violate),
never masked values: values are masked fresh from the frame on every call.

What the key covers, and so what invalidates an entry:

* the frame object's identity (``id``), its shape, dtypes, column labels and
  index type;
* a fingerprint of up to 16 evenly spaced rows (values and index labels);
* the fingerprint of the detection config (and, for k-anonymity plans, of
  the role policy, including the key's digest).

What it does not see: an in-place edit of a cell outside the fingerprinted
rows that keeps shape, dtypes and labels. Such an edit can leave a stale
k-anonymity plan until the entry is evicted; callers that edit frames in
place and re-display them should call :meth:`DecisionCache.invalidate`. The
cache holds no reference to the frame itself.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import numpy as np
import pandas as pd

__all__ = ["DecisionCache", "frame_signature"]

T = TypeVar("T")

_FINGERPRINT_ROWS = 16


def _value_token(value: object) -> str:
    try:
        return f"{type(value).__name__}:{hash(value)}"
    except TypeError:
        return f"{type(value).__name__}:{repr(value)[:256]}"


def frame_signature(df: pd.DataFrame) -> tuple[Hashable, ...]:
    """A cheap key that changes when the frame (very probably) changed."""
    n = len(df)
    positions = np.unique(np.linspace(0, max(n - 1, 0), num=min(n, _FINGERPRINT_ROWS)).astype(int))
    digest = hashlib.blake2b(digest_size=16)
    if n:
        rows = df.iloc[positions]
        for i in range(rows.shape[1]):
            for value in rows.iloc[:, i].tolist():
                digest.update(_value_token(value).encode("utf-8", "surrogatepass"))
        for label in rows.index.tolist():
            digest.update(_value_token(label).encode("utf-8", "surrogatepass"))
    return (
        id(df),
        df.shape,
        tuple(str(t) for t in df.dtypes.tolist()),
        tuple(_value_token(c) for c in df.columns.tolist()),
        type(df.index).__name__,
        df.index.nlevels,
        digest.hexdigest(),
    )


class DecisionCache:
    """Bounded LRU mapping of (signature, purpose, config) keys to decisions.

    >>> cache = DecisionCache(maxsize=2)
    >>> cache.get_or_compute(("a",), lambda: 1), cache.get_or_compute(("a",), lambda: 2)
    ((1, False), (1, True))
    """

    def __init__(self, maxsize: int = 32) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._maxsize = maxsize
        self._entries: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> tuple[T, bool]:
        """Return (value, was_cached); compute and store it on a miss.

        The computation runs outside the lock: two threads missing the same key
        both compute, and the second result wins (decisions are deterministic).
        """
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key], True  # type: ignore[return-value]
        value = compute()
        with self._lock:
            self.misses += 1
            self._entries[key] = value
            if len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)
        return value, False

    def invalidate(self, df: pd.DataFrame) -> int:
        """Drop every entry for this frame object (after an in-place edit); return how many."""
        with self._lock:
            stale = [k for k in self._entries if isinstance(k, tuple) and _frame_id(k) == id(df)]
            for key in stale:
                del self._entries[key]
        return len(stale)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()


def _frame_id(key: tuple[Hashable, ...]) -> object:
    signature = key[0]
    return signature[0] if isinstance(signature, tuple) and signature else None
