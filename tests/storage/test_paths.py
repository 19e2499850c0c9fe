from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from jupyter_secure.errors import StartupRefused
from jupyter_secure.storage.paths import ensure_private_dir, resolve_state_dir


def test_creates_with_mode_0700(tmp_path: Path) -> None:
    made = ensure_private_dir(tmp_path / "a" / "state")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a directory")
    with pytest.raises(StartupRefused, match="not a directory"):
        ensure_private_dir(tmp_path / "state")


def test_refuses_a_path_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StartupRefused, match="cannot create"):
        ensure_private_dir(tmp_path / "file" / "state")


def test_refuses_group_readable_and_says_how_to_fix(tmp_path: Path) -> None:
    d = tmp_path / "state"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    with pytest.raises(StartupRefused, match=r"mode 0755.*chmod 700"):
        ensure_private_dir(d)


def test_refuses_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(StartupRefused, match="symbolic link"):
        ensure_private_dir(tmp_path / "link")


def test_state_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert resolve_state_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("JUPYTER_SECURE_STATE_DIR", str(tmp_path / "env"))
    assert resolve_state_dir(None) == tmp_path / "env"
    monkeypatch.delenv("JUPYTER_SECURE_STATE_DIR")
    assert resolve_state_dir(None) == tmp_path / "jupyter-data" / "secure"
