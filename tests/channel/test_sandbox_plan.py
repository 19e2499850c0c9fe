"""Turning path rules into the directories a guarded kernel may read and write."""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_secure.channel.sandbox_plan import plan_workspace
from jupyter_secure.policy import Principal, default_policy


def make_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for d in ("home/alice/proj", "home/bob", "shared/course", "shared/raw", "admin-only"):
        (root / d).mkdir(parents=True)
    (root / "shared" / "README.md").write_text("hi")
    (root / "top.txt").write_text("x")
    return root


def test_student_gets_own_home_rw_and_shared_read_but_not_raw(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    plan = plan_workspace(str(root), default_policy(), Principal("alice", ["student"], []))
    real = os.path.realpath
    assert plan.write == [real(root / "home/alice")]
    assert real(root / "shared/course") in plan.read
    assert not any("raw" in p or "bob" in p or "admin-only" in p for p in plan.read + plan.write)
    assert real(root / "shared/README.md") in plan.read_files
    assert real(root / "top.txt") not in plan.read_files


def test_instructor_writes_shared_but_still_not_raw(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    plan = plan_workspace(str(root), default_policy(), Principal("ines", ["instructor"], []))
    assert os.path.realpath(root / "shared/course") in plan.write
    assert not any("raw" in p for p in plan.read + plan.write)


def test_forbidden_paths_are_never_inside_an_allowance(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    state = root / "home" / "alice" / "oops-state"
    state.mkdir()
    plan = plan_workspace(
        str(root), default_policy(), Principal("alice", ["student"], []), forbidden=(str(state),)
    )
    for allowed in plan.read + plan.write:
        assert not str(os.path.realpath(state)).startswith(allowed.rstrip("/") + "/")
    assert os.path.realpath(root / "home/alice/proj") in plan.write


def test_symlinks_are_not_followed_while_planning(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    secret = tmp_path / "secret"
    secret.mkdir()
    (root / "shared" / "link").symlink_to(secret)
    plan = plan_workspace(str(root), default_policy(), Principal("alice", ["student"], []))
    assert not any(str(secret) in p for p in plan.read + plan.write + plan.read_files)
