"""A fresh state store made by `jupyter secure init`, shared by the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import run_cli


@pytest.fixture
def state(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    r = run_cli(tmp_path, "init", "--state-dir", str(d))
    assert r.returncode == 0, r.stderr
    assert "initialised" in r.stdout
    assert "policy.toml" in r.stdout
    return d
