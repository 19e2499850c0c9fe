"""KernelGuard: launch preparation, message rules, witness checks (no server needed)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Trail

from jupyter_secure.channel.guard import GUARD_CONFIG_ENV, KernelGuard, Person
from jupyter_secure.masking import MaskingPolicy
from jupyter_secure.policy import LivePolicy, default_policy_text

ALICE = Person("alice", ("student",), ())


@pytest.fixture
def guard(tmp_path: Path, trail: Trail) -> Iterator[KernelGuard]:
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(default_policy_text())
    root = tmp_path / "root"
    (root / "home" / "alice").mkdir(parents=True)
    (root / "home" / "bob").mkdir(parents=True)
    g = KernelGuard(
        policy=LivePolicy(policy_file),
        masking=MaskingPolicy(),
        masking_key=b"s" * 32,
        audit=trail.logger,
        root_dir=str(root),
        forbidden=(str(tmp_path / "state"),),
        require_sandbox=False,
        private_root=str(tmp_path / "private"),
    )
    (tmp_path / "private").mkdir()
    g.witness_base = lambda: "http://127.0.0.1:1/secure/api/kernels"
    yield g
    g.close()


def launch(guard: KernelGuard, tmp_path: Path, kernel_id: str = "k" * 36) -> dict[str, str]:
    conn = tmp_path / "runtime" / "kernel-1.json"
    conn.parent.mkdir(exist_ok=True)
    conn.write_text("{}")
    env = {"PATH": "/usr/bin", "JUPYTER_SECURE_KEY": "x", "AWS_SECRET_ACCESS_KEY": "y",
           "LC_ALL": "C", "DATABASE_URL": "postgres://u:p@h/db", "HOME": "/root"}  # fmt: skip
    return guard.prepare_launch(
        kernel_id=kernel_id, kernelspec="jupyter-secure", person=ALICE,
        connection_file=str(conn), env=env,
    )  # fmt: skip


def test_the_environment_keeps_only_the_allow_list(guard: KernelGuard, tmp_path: Path) -> None:
    env = launch(guard, tmp_path)
    assert env["PATH"] == "/usr/bin"
    assert env["LC_ALL"] == "C"
    assert env["HOME"].endswith(os.path.join("home", "alice"))
    assert not {"JUPYTER_SECURE_KEY", "AWS_SECRET_ACCESS_KEY", "DATABASE_URL"} & set(env)


def test_the_guard_file_is_private_and_says_what_the_kernel_may_do(
    guard: KernelGuard, tmp_path: Path
) -> None:
    env = launch(guard, tmp_path)
    path = Path(env[GUARD_CONFIG_ENV])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    cfg = json.loads(path.read_text())
    assert cfg["user"] == "alice"
    assert cfg["role"] == "student"
    assert cfg["sandbox"]["write"] == [str((tmp_path / "root" / "home" / "alice").resolve())]
    assert not any("bob" in p for p in cfg["sandbox"]["read"] + cfg["sandbox"]["write"])
    assert cfg["sandbox"]["read_files"][-1].endswith("kernel-1.json")
    assert cfg["witness"]["url"].endswith(f"/{'k' * 36}/witness")
    # The token works for this kernel only, and stops working when the kernel goes.
    token = cfg["witness"]["token"]
    assert guard.kernel_for_token(token) == "k" * 36
    assert guard.kernel_for_token(token + "x") is None
    guard.forget("k" * 36)
    assert guard.kernel_for_token(token) is None
    assert not path.parent.exists()


def test_a_restart_issues_a_new_token(guard: KernelGuard, tmp_path: Path) -> None:
    first = json.loads(Path(launch(guard, tmp_path)[GUARD_CONFIG_ENV]).read_text())
    second = json.loads(Path(launch(guard, tmp_path)[GUARD_CONFIG_ENV]).read_text())
    assert first["witness"]["token"] != second["witness"]["token"]
    assert guard.kernel_for_token(first["witness"]["token"]) is None


def test_require_sandbox_without_landlock_refuses_the_launch(
    guard: KernelGuard, tmp_path: Path
) -> None:
    guard.require_sandbox = True
    guard.abi = 0  # what landlock_abi() reports on a system without Landlock
    with pytest.raises(RuntimeError, match="need Landlock"):
        launch(guard, tmp_path)


def test_message_rules(guard: KernelGuard) -> None:
    assert guard.check_message(ALICE, "shell", "execute_request", "alice")
    assert not guard.check_message(ALICE, "shell", "execute_request", "bob")  # bob's kernel
    assert not guard.check_message(ALICE, "control", "debug_request", "alice")
    assert guard.check_message(ALICE, "shell", "comm_open", "alice")
    assert not guard.check_message(ALICE, "iopub", "execute_request", "alice")
    assert not guard.check_message(ALICE, "shell", "made_up_request", "alice")
    token = Person("alice", ("student",), (), frozenset({"kernels:read"}))
    assert not guard.check_message(token, "shell", "execute_request", "alice")


def test_witness_reports_reconcile_or_raise_an_event(
    guard: KernelGuard, tmp_path: Path, trail: Trail
) -> None:
    launch(guard, tmp_path)
    kid = "k" * 36
    guard.execute_requested(ALICE, kernel_id=kid, owner="alice", msg_id="m1", code="x = 1",
                            cell_id="c", notebook="n.ipynb", silent=False)  # fmt: skip
    assert guard.witnessed(kid, [{"phase": "pre", "msgId": "m1"}]) == 0
    assert guard.witnessed(kid, [{"phase": "pre", "msgId": "zmq"}, {"phase": "post"}]) == 1
    assert guard.witnessed("unknown-kernel", [{"phase": "pre", "msgId": "zmq"}]) == 0
