"""The extension inside a real jupyter_server.

In-process through pytest-jupyter for what a running server records, and as
real `jupyter server` processes for the start-up refusals: a refusal must be a
non-zero exit with one clear line, never a traceback and never a server that
runs without its audit trail.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import cli_env, run_cli

from jupyter_secure.app import EXIT_REFUSED, SecureApp
from jupyter_secure.audit.verify import verify_trail
from jupyter_secure.state import Store


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "secure-state"


@pytest.fixture
def jp_server_config(state_dir: Path):  # type: ignore[no-untyped-def]
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_secure": True}},
        "SecureApp": {"state_dir": str(state_dir)},
    }


def trail_events(state_dir: Path) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for seg in sorted((state_dir / "audit").glob("segment-*.jsonl")):
        out.extend(json.loads(x) for x in seg.read_bytes().splitlines())
    return out


async def test_the_server_records_its_start_and_stop(jp_serverapp, state_dir: Path) -> None:  # type: ignore[no-untyped-def]
    ext = jp_serverapp.extension_manager.extension_points["jupyter_secure"].app
    assert isinstance(ext, SecureApp)
    assert ext.state.state_dir == state_dir
    names = [e["eventName"] for e in trail_events(state_dir)]
    assert names == ["StateInitialized", "ServerStarted"]
    started = trail_events(state_dir)[1]
    assert started["userIdentity"]["type"] == "System"
    assert started["responseElements"]["pid"] == os.getpid()
    await jp_serverapp._cleanup()
    events = trail_events(state_dir)
    assert events[-1]["eventName"] == "ServerStopped"
    store = Store.open(state_dir, create=False)
    try:
        report = verify_trail(state_dir / "audit", public_keys=store.public_keys)
    finally:
        store.close()
    assert report.ok, report.problems
    assert report.signed_seq == report.last_seq, "the stop signs a final checkpoint"


async def test_state_is_shared_with_handlers_through_settings(jp_serverapp) -> None:  # type: ignore[no-untyped-def]
    state = jp_serverapp.web_app.settings["jupyter_secure_state"]
    assert state.sink.broken is None


# -- start-up refusals, as real processes ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(tmp_path: Path, state_dir: Path, *extra: str, env=None, wait: bool = False):  # type: ignore[no-untyped-def]
    root = tmp_path / "notebooks"
    root.mkdir(exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--no-browser",
        "--allow-root",
        f"--port={free_port()}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--SecureApp.state_dir={state_dir}",
        "--ServerApp.jpserver_extensions={'jupyter_secure': True}",
        "--ServerApp.reraise_server_extension_failures=False",
        *extra,
    ]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or cli_env(tmp_path),
    )
    if wait:
        return proc
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
        pytest.fail(f"the server did not refuse to start: {err[-2000:]}")
    return proc.returncode, err


def assert_refused(code: int, err: str, reason: str) -> None:
    assert code == EXIT_REFUSED, err[-3000:]
    lines = [ln for ln in err.splitlines() if "refused to start" in ln]
    assert len(lines) == 1, err[-3000:]
    assert reason in lines[0], lines[0]
    assert "Traceback" not in err


def test_refuses_an_unusable_state_dir(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    code, err = start_server(tmp_path, tmp_path / "a-file")
    assert_refused(code, err, "is not a directory")


def test_refuses_a_wrong_master_key(tmp_path: Path, state_dir: Path) -> None:
    assert run_cli(tmp_path, "init", "--state-dir", str(state_dir)).returncode == 0
    from jupyter_secure.storage.keys import KeyRing

    env = cli_env(tmp_path, JUPYTER_SECURE_KEY=KeyRing.generate_key().decode())
    code, err = start_server(tmp_path, state_dir, env=env)
    assert_refused(code, err, "wrong key for this state store")


def test_refuses_a_missing_master_key(tmp_path: Path, state_dir: Path) -> None:
    assert run_cli(tmp_path, "init", "--state-dir", str(state_dir)).returncode == 0
    (state_dir / "master.key").unlink()
    code, err = start_server(tmp_path, state_dir)
    assert_refused(code, err, "no source provides")
    assert not (state_dir / "master.key").exists(), "a lost key is never silently replaced"


def test_refuses_an_unwritable_audit_sink(tmp_path: Path, state_dir: Path) -> None:
    assert run_cli(tmp_path, "init", "--state-dir", str(state_dir)).returncode == 0
    audit = state_dir / "audit"
    for p in audit.iterdir():
        if p.is_file():
            p.unlink()
    audit.rmdir()
    audit.write_text("a file where the audit directory should be")
    code, err = start_server(tmp_path, state_dir)
    assert_refused(code, err, "audit")


def test_refuses_an_unwritable_checkpoint_mirror(tmp_path: Path, state_dir: Path) -> None:
    (tmp_path / "blocker").write_text("x")
    code, err = start_server(
        tmp_path, state_dir, f"--AuditSink.checkpoint_mirror={tmp_path / 'blocker' / 'copies'}"
    )
    assert_refused(code, err, "checkpoint mirror")


def test_refuses_a_missing_audit_trail(tmp_path: Path, state_dir: Path) -> None:
    assert run_cli(tmp_path, "init", "--state-dir", str(state_dir)).returncode == 0
    for p in (state_dir / "audit").iterdir():
        p.unlink()
    code, err = start_server(tmp_path, state_dir)
    assert_refused(code, err, "audit trail")
    assert "missing" in err


def test_refuses_a_broken_chain(tmp_path: Path, state_dir: Path) -> None:
    sd = ("--state-dir", str(state_dir))
    assert run_cli(tmp_path, "init", *sd).returncode == 0
    run_cli(tmp_path, "user", "add", "amy", "--role", "viewer", "--no-password", *sd)
    seg = state_dir / "audit" / "segment-00000001.jsonl"
    seg.write_bytes(seg.read_bytes().replace(b'"name":"amy"', b'"name":"eve"'))
    code, err = start_server(tmp_path, state_dir)
    assert_refused(code, err, "failed verification")
    assert "segment-00000001.jsonl:2" in err


def test_refuses_a_state_dir_inside_the_notebook_root(tmp_path: Path) -> None:
    code, err = start_server(tmp_path, tmp_path / "notebooks" / ".secure")
    assert_refused(code, err, "inside the notebook root")


def test_a_clean_start_serves_and_records(tmp_path: Path, state_dir: Path) -> None:
    proc = start_server(tmp_path, state_dir, "--IdentityProvider.token=test-token", wait=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            names = (
                [e["eventName"] for e in trail_events(state_dir)]
                if (state_dir / "audit").exists()
                else []
            )
            if "ServerStarted" in names:
                break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        else:
            pytest.fail("no ServerStarted event")
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    names = [e["eventName"] for e in trail_events(state_dir)]
    assert names[-1] == "ServerStopped"


def test_refuses_a_trail_cut_short_consistently(tmp_path: Path, state_dir: Path) -> None:
    """Records and their checkpoints cut off together: the database index still remembers."""
    sd = ("--state-dir", str(state_dir))
    assert run_cli(tmp_path, "init", *sd).returncode == 0
    for name in ("a1", "a2", "a3"):
        run_cli(tmp_path, "user", "add", name, "--role", "viewer", "--no-password", *sd)
    audit = state_dir / "audit"
    seg = audit / "segment-00000001.jsonl"
    kept = seg.read_bytes().splitlines(keepends=True)[:2]
    seg.write_bytes(b"".join(kept))
    cps = [
        line
        for line in (audit / "checkpoints.jsonl").read_bytes().splitlines(keepends=True)
        if json.loads(line)["seq"] <= 2
    ]
    (audit / "checkpoints.jsonl").write_bytes(b"".join(cps))
    code, err = start_server(tmp_path, state_dir)
    assert_refused(code, err, "were cut off")


async def test_the_masking_key_is_stable_and_encrypted(jp_serverapp, state_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from jupyter_secure.masking import MaskingPolicy

    state = jp_serverapp.web_app.settings["jupyter_secure_state"]
    key = state.masking_key()
    assert len(key) == 32
    assert state.masking_key() == key
    assert key not in (state_dir / "state.db").read_bytes()
    role = MaskingPolicy().for_role("data_scientist", key=key)
    assert role is not None


def test_any_start_up_failure_exits_even_with_reraise_off(tmp_path: Path, state_dir: Path) -> None:
    """A malformed key is an InvalidInput, not a StartupRefused: it must still stop the server."""
    env = cli_env(tmp_path, JUPYTER_SECURE_KEY="not-a-fernet-key")
    code, err = start_server(tmp_path, state_dir, env=env)
    assert_refused(code, err, "JUPYTER_SECURE_KEY")


def test_a_state_dir_in_the_root_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    inside = tmp_path / "notebooks" / ".secure"
    code, err = start_server(tmp_path, inside)
    assert_refused(code, err, "inside the notebook root")
    assert not inside.exists()


def test_refuses_a_replaced_identity_provider(tmp_path: Path, state_dir: Path) -> None:
    """Sign-in is ours or the server does not start: a flag cannot swap in token auth."""
    code, err = start_server(
        tmp_path,
        state_dir,
        "--ServerApp.identity_provider_class=jupyter_server.auth.identity.PasswordIdentityProvider",
    )
    assert_refused(code, err, "ServerApp.identity_provider_class is set to")


def test_refuses_a_kernel_manager_from_a_config_file(tmp_path: Path, state_dir: Path) -> None:
    """The same holds for a setting hidden in a config file the admin may not have read."""
    config_dir = tmp_path / "jupyter-config"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "jupyter_server_config.py").write_text(
        "c.ServerApp.kernel_manager_class = "
        "'jupyter_server.services.kernels.kernelmanager.MappingKernelManager'\n"
    )
    code, err = start_server(tmp_path, state_dir)
    assert_refused(code, err, "ServerApp.kernel_manager_class is set to")


def test_refuses_a_kernel_gateway(tmp_path: Path, state_dir: Path) -> None:
    """Kernels on a gateway would run outside every guard this server applies."""
    code, err = start_server(tmp_path, state_dir, "--GatewayClient.url=http://127.0.0.1:9")
    assert_refused(code, err, "kernel gateways are not supported")


def test_refuses_an_invalid_policy_file(tmp_path: Path, state_dir: Path) -> None:
    """Fail closed: a policy that does not parse is not replaced by anything more lenient."""
    assert run_cli(tmp_path, "init", "--state-dir", str(state_dir)).returncode == 0
    policy = state_dir / "policy.toml"
    policy.write_text(policy.read_text() + '\n[roles.x]\ndescription = "x"\nscopes = ["nope"]\n')
    code, err = start_server(tmp_path, state_dir)
    assert_refused(code, err, "the policy file is invalid")


def test_refuses_an_extension_that_bypasses_the_channel_guard(
    tmp_path: Path, state_dir: Path
) -> None:
    # A real (tiny) server extension under the name of one that executes notebooks on
    # the server: its outputs would never pass the channel guard.
    pkg = tmp_path / "ext" / "jupyter_server_nbmodel"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "def _jupyter_server_extension_points():\n"
        "    return [{'module': 'jupyter_server_nbmodel'}]\n"
        "def _load_jupyter_server_extension(serverapp):\n"
        "    pass\n"
    )
    enabled = tmp_path / "jupyter-config" / "jupyter_server_config.d"
    enabled.mkdir(parents=True)
    (enabled / "nbmodel.json").write_text(
        '{"ServerApp": {"jpserver_extensions": {"jupyter_server_nbmodel": true}}}'
    )
    env = cli_env(tmp_path, PYTHONPATH=str(tmp_path / "ext"))
    code, err = start_server(tmp_path, state_dir, env=env)
    assert_refused(code, err, "jupyter_server_nbmodel is enabled")


def test_refuses_to_serve_metrics_without_sign_in(tmp_path: Path, state_dir: Path) -> None:
    code, err = start_server(tmp_path, state_dir, "--ServerApp.authenticate_prometheus=False")
    assert_refused(code, err, "ServerApp.authenticate_prometheus must be True")


def test_refuses_an_unusable_alarm_rules_file(tmp_path: Path, state_dir: Path) -> None:
    rules = tmp_path / "alarms.toml"
    rules.write_text('[[rule]]\nname = "lockout"\nseverity = "loud"\n', encoding="utf-8")
    code, err = start_server(tmp_path, state_dir, f"--AlarmMonitor.rules_file={rules}")
    assert_refused(code, err, "rule[0] (lockout).severity: expected one of")
