"""Fixtures for the guarded-kernel tests (the harness itself is ``kernel_harness.py``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kernel_harness import Receiver, witness_receiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A witness endpoint on 127.0.0.1 for the module's kernels."""
    with witness_receiver() as r:
        yield r
