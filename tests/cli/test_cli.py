"""`jupyter secure …` as a user runs it: real processes, real state directories."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import cli_env, run_cli

from jupyter_secure.cli.app import SecureCommand
from jupyter_secure.storage.keys import KeyRing

PASSWORD = "S3cret-horse-battery-staple"


def events(tmp_path: Path, state: Path, *filters: str) -> list[dict]:  # type: ignore[type-arg]
    r = run_cli(tmp_path, "audit", "query", "--json", "--state-dir", str(state), *filters)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_user_lifecycle_is_audited_as_the_os_user(tmp_path: Path, state: Path) -> None:
    sd = ("--state-dir", str(state))
    add = run_cli(
        tmp_path,
        "user", "add", "alice", "--role", "data_scientist", "--role", "student",
        "--group", "ward7", "--password-stdin", *sd,
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert add.returncode == 0, add.stderr
    for args in (
        ("user", "disable", "alice"),
        ("user", "enable", "alice"),
        ("user", "set-password", "alice", "--password-stdin"),
    ):
        r = run_cli(tmp_path, *args, *sd, input="another-long-password\n")
        assert r.returncode == 0, r.stderr
    listed = run_cli(tmp_path, "user", "list", "--json", *sd)
    [alice] = json.loads(listed.stdout)
    assert alice["roles"] == ["data_scientist", "student"]
    assert alice["groups"] == ["ward7"]
    assert alice["hasPassword"]
    assert not alice["disabled"]
    removed = run_cli(tmp_path, "user", "remove", "alice", "--yes", *sd)
    assert removed.returncode == 0
    assert json.loads(run_cli(tmp_path, "user", "list", "--json", *sd).stdout) == []
    names = [e["eventName"] for e in events(tmp_path, state)]
    assert names == [
        "StateInitialized",
        "UserAdded",
        "UserDisabled",
        "UserEnabled",
        "PasswordChanged",
        "UsersListed",
        "UserRemoved",
        "UsersListed",
    ]
    trail = events(tmp_path, state, "--resource", "user:alice")
    assert {e["userIdentity"]["type"] for e in trail} == {"OSUser"}
    assert trail[0]["requestParameters"] == {
        "name": "alice",
        "roles": ["data_scientist", "student"],
        "groups": ["ward7"],
        "passwordSet": True,
    }
    assert trail[0]["userAgent"].endswith("(jupyter secure user add)")


def test_passwords_never_reach_the_disk_in_clear(tmp_path: Path, state: Path) -> None:
    r = run_cli(
        tmp_path,
        "user", "add", "bob", "--role", "viewer", "--password-stdin", "--state-dir", str(state),
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    for path in state.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_refusals_exit_2_name_the_field_write_nothing_and_are_recorded(
    tmp_path: Path, state: Path
) -> None:
    r = run_cli(
        tmp_path,
        "user", "add", "bob", "--role", "admn", "--password-stdin", "--state-dir", str(state),
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "jupyter-secure: error: role: unknown role 'admn'; did you mean 'admin'? "
        "(known: admin, instructor, data_scientist, student, auditor, viewer)"
    )
    assert "Traceback" not in r.stderr
    listed = run_cli(tmp_path, "user", "list", "--json", "--state-dir", str(state))
    assert json.loads(listed.stdout) == []
    [failed] = events(tmp_path, state, "--event", "UserAdded")
    assert failed["errorCode"] == "InvalidInput"
    assert "unknown role" in failed["errorMessage"]
    short = run_cli(
        tmp_path, "user", "add", "bob", "--role", "admin", "--password-stdin",
        "--state-dir", str(state), input="short\n",
    )  # fmt: skip
    assert short.returncode == 2
    assert "password: must be at least 12 characters" in short.stderr
    missing = run_cli(tmp_path, "user", "disable", "--state-dir", str(state))
    assert missing.returncode == 2
    assert "name: missing (usage: jupyter secure user disable NAME)" in missing.stderr
    bad_time = run_cli(
        tmp_path, "audit", "query", "--since", "yesterday", "--state-dir", str(state)
    )
    assert bad_time.returncode == 2
    assert "--since:" in bad_time.stderr


def test_key_file_rotation(tmp_path: Path, state: Path) -> None:
    old = (state / "master.key").read_text()
    r = run_cli(tmp_path, "keys", "rotate", "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    assert "old keys dropped" in r.stdout
    new = (state / "master.key").read_text()
    assert new != old
    old_key = next(ln for ln in old.splitlines() if not ln.startswith("#"))
    refused = run_cli(
        tmp_path,
        "user",
        "list",
        "--state-dir",
        str(state),
        env=cli_env(tmp_path, JUPYTER_SECURE_KEY=old_key),
    )
    assert refused.returncode == 1
    assert "wrong key for this state store" in refused.stderr
    [rotated] = events(tmp_path, state, "--event", "KeysRotated")
    assert rotated["responseElements"]["oldKeysDropped"] is True
    assert rotated["responseElements"]["secrets"] >= 1


def test_environment_key_rotation(tmp_path: Path) -> None:
    k1, k2 = KeyRing.generate_key().decode(), KeyRing.generate_key().decode()
    sd = ("--state-dir", str(tmp_path / "s"))
    env1 = cli_env(tmp_path, JUPYTER_SECURE_KEY=k1)
    assert run_cli(tmp_path, "init", *sd, env=env1).returncode == 0
    assert not (tmp_path / "s" / "master.key").exists(), "an env key is not copied to disk"
    refused = run_cli(tmp_path, "keys", "rotate", *sd, env=env1)
    assert refused.returncode == 1
    assert "keys generate" in refused.stderr
    both = cli_env(tmp_path, JUPYTER_SECURE_KEY=f"{k2},{k1}")
    ok = run_cli(tmp_path, "keys", "rotate", *sd, env=both)
    assert ok.returncode == 0, ok.stderr
    assert (
        run_cli(
            tmp_path, "user", "list", *sd, env=cli_env(tmp_path, JUPYTER_SECURE_KEY=k2)
        ).returncode
        == 0
    )
    assert run_cli(tmp_path, "user", "list", *sd, env=env1).returncode == 1


def test_verify_names_the_first_bad_record(tmp_path: Path, state: Path) -> None:
    for name in ("u1", "u2"):
        run_cli(
            tmp_path,
            "user",
            "add",
            name,
            "--role",
            "viewer",
            "--no-password",
            "--state-dir",
            str(state),
        )
    ok = run_cli(tmp_path, "audit", "verify", "--state-dir", str(state), "--progress")
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    assert "verify:" in ok.stderr, "progress is shown when asked for"
    seg = state / "audit" / "segment-00000001.jsonl"
    seg.write_bytes(seg.read_bytes().replace(b'"name":"u1"', b'"name":"u9"'))
    bad = run_cli(tmp_path, "audit", "verify", "--state-dir", str(state), "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False
    assert report["problems"][0]["where"].startswith("segment-00000001.jsonl:2 ")
    assert report["problems"][0]["kind"] == "hash_mismatch"
    # The trail is broken: commands that would append refuse, naming the problem.
    refused = run_cli(
        tmp_path,
        "user",
        "add",
        "u3",
        "--role",
        "viewer",
        "--no-password",
        "--state-dir",
        str(state),
    )
    assert refused.returncode == 1
    assert "failed verification" in refused.stderr


def test_offline_verification_of_a_copied_trail(tmp_path: Path, state: Path) -> None:
    pem = run_cli(tmp_path, "audit", "public-key", "--state-dir", str(state))
    assert pem.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "signing.pem").write_text(pem.stdout)
    copy = tmp_path / "copy"
    shutil.copytree(state / "audit", copy)
    args = (
        "audit",
        "verify",
        "--audit-dir",
        str(copy),
        "--public-key",
        str(tmp_path / "signing.pem"),
    )
    assert run_cli(tmp_path, *args).returncode == 0
    (copy / "checkpoints.jsonl").write_text("")
    assert run_cli(tmp_path, *args).returncode == 1


def test_export_is_whole_or_nothing(tmp_path: Path, state: Path) -> None:
    out = tmp_path / "export.csv"
    r = run_cli(
        tmp_path,
        "audit",
        "export",
        "--format",
        "csv",
        "--output",
        str(out),
        "--state-dir",
        str(state),
    )
    assert r.returncode == 0, r.stderr
    assert out.read_text().startswith("seq,eventTime,eventID")
    nowhere = tmp_path / "missing-dir" / "x.csv"
    bad = run_cli(tmp_path, "audit", "export", "--output", str(nowhere), "--state-dir", str(state))
    assert bad.returncode == 2
    assert "--output:" in bad.stderr
    assert not nowhere.parent.exists()
    jsonl = run_cli(tmp_path, "audit", "export", "--state-dir", str(state))
    assert [json.loads(x)["eventName"] for x in jsonl.stdout.splitlines()][:2] == [
        "StateInitialized",
        "AuditQueried",
    ]


def test_state_dir_from_the_environment(tmp_path: Path) -> None:
    env = cli_env(tmp_path, JUPYTER_SECURE_STATE_DIR=str(tmp_path / "from-env"))
    assert run_cli(tmp_path, "init", env=env).returncode == 0
    assert (tmp_path / "from-env" / "state.db").exists()


def test_unknown_flags_and_missing_subcommands_fail(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "user").returncode == 2
    assert run_cli(tmp_path, "user", "add", "x", "--rol", "admin").returncode != 0


def _subcommands(cls):  # type: ignore[no-untyped-def]
    subs = getattr(cls, "subcommands", None)
    return subs if isinstance(subs, dict) else {}


def _all_commands(app=SecureCommand, path=()):  # type: ignore[no-untyped-def]
    for name, (cls, _) in _subcommands(app).items():
        yield (*path, name), cls
        yield from _all_commands(cls, (*path, name))


@pytest.mark.parametrize(
    ("path", "cls"),
    list(_all_commands()),
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
def test_every_command_explains_itself_with_an_example(path, cls, capsys) -> None:  # type: ignore[no-untyped-def]
    app = cls()
    app.print_description()
    app.print_examples()
    out = capsys.readouterr().out
    assert len(cls.description) > 20
    assert "jupyter secure " + " ".join(path[:1]) in out
    if not _subcommands(cls):
        assert "--state-dir" in " ".join(f"--{a}" for a in cls.aliases)


def test_help_runs(tmp_path: Path) -> None:
    r = run_cli(tmp_path, "user", "add", "--help")
    assert r.returncode == 0
    assert "--password-stdin" in r.stdout
    assert "Examples" in r.stdout


def test_a_mistyped_state_dir_is_not_a_new_store(tmp_path: Path, state: Path) -> None:
    typo = tmp_path / "stat"
    r = run_cli(
        tmp_path, "user", "add", "eve", "--role", "admin", "--no-password", "--state-dir", str(typo)
    )
    assert r.returncode == 1
    assert "no state store" in r.stderr
    assert not (typo / "state.db").exists()
    assert not (typo / "master.key").exists()


def test_the_recorded_admin_is_the_real_account(tmp_path: Path, state: Path) -> None:
    import pwd

    env = cli_env(tmp_path, LOGNAME="alice", USER="alice")
    r = run_cli(
        tmp_path,
        "user",
        "add",
        "zoe",
        "--role",
        "viewer",
        "--no-password",
        "--state-dir",
        str(state),
        env=env,
    )
    assert r.returncode == 0, r.stderr
    [added] = events(tmp_path, state, "--event", "UserAdded")
    assert added["userIdentity"]["name"].startswith(pwd.getpwuid(os.geteuid()).pw_name)
    assert "alice" not in added["userIdentity"]["name"]


def test_env_rotation_refuses_when_the_first_key_is_already_current(tmp_path: Path) -> None:
    k1, k2 = KeyRing.generate_key().decode(), KeyRing.generate_key().decode()
    sd = ("--state-dir", str(tmp_path / "s"))
    assert (
        run_cli(tmp_path, "init", *sd, env=cli_env(tmp_path, JUPYTER_SECURE_KEY=k1)).returncode == 0
    )
    wrong_order = run_cli(
        tmp_path, "keys", "rotate", *sd, env=cli_env(tmp_path, JUPYTER_SECURE_KEY=f"{k1},{k2}")
    )
    assert wrong_order.returncode == 1
    assert "new first" in wrong_order.stderr


def test_admin_assisted_enrolment_reset_and_unlock(tmp_path: Path, state: Path) -> None:
    import re
    import time

    import pyotp

    sd = ("--state-dir", str(state))
    assert (
        run_cli(
            tmp_path, "user", "add", "ann", "--role", "student", "--no-password", *sd
        ).returncode
        == 0
    )
    out = run_cli(tmp_path, "mfa", "enroll", "ann", *sd)  # no code: the secret stays pending
    assert out.returncode == 0, out.stderr
    assert "otpauth://totp/jupyter-secure:ann?secret=" in out.stdout
    assert "█" in out.stdout or "▀" in out.stdout, "a QR code drawn in the terminal"
    assert "confirms the secret at their next sign-in" in out.stdout
    secret = re.search(r"secret:\s+([A-Z2-7]{32})", out.stdout).group(1)  # type: ignore[union-attr]
    bad = run_cli(tmp_path, "mfa", "enroll", "ann", "--code-stdin", *sd, input="000000\n")
    assert bad.returncode == 2
    secret = re.search(r"secret:\s+([A-Z2-7]{32})", bad.stdout).group(1)  # type: ignore[union-attr]
    ok = run_cli(
        tmp_path, "mfa", "enroll", "ann", "--code-stdin", *sd,
        input=pyotp.TOTP(secret).at(time.time()) + "\n",
    )  # fmt: skip
    assert ok.returncode == 2, "a new secret was issued by this call: the old code is wrong"
    secret = re.search(r"secret:\s+([A-Z2-7]{32})", ok.stdout).group(1)  # type: ignore[union-attr]
    # Interleave: issue, then confirm with the code of *that* secret.
    with subprocess.Popen(
        [sys.executable, "-m", "jupyter_secure.cli", "mfa", "enroll", "ann", "--code-stdin", *sd],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli_env(tmp_path),
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdin is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("secret:"):
                break
        found = re.search(r"secret:\s+([A-Z2-7]{32})", "".join(lines))
        assert found
        proc.stdin.write(pyotp.TOTP(found.group(1)).at(time.time()) + "\n")
        proc.stdin.close()
        rest = proc.stdout.read()
        assert proc.wait(60) == 0
    codes = re.findall(r"^\s+([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})$", rest, re.M)
    assert len(codes) == 10
    again = run_cli(tmp_path, "mfa", "enroll", "ann", *sd)
    assert again.returncode == 2
    assert "mfa reset" in again.stderr
    reset = run_cli(tmp_path, "mfa", "reset", "ann", "--yes", *sd)
    assert reset.returncode == 0
    assert "enrol again" in reset.stdout
    unlock = run_cli(tmp_path, "user", "unlock", "ann", *sd)
    assert unlock.returncode == 0
    assert "was not locked" in unlock.stdout
    missing = run_cli(tmp_path, "mfa", "reset", "nobody", "--yes", *sd)
    assert missing.returncode == 2
    recorded = [e["eventName"] for e in events(tmp_path, state)]
    for name in ("MfaSecretIssued", "MfaEnrolled", "MfaReset", "UserUnlocked"):
        assert name in recorded
    failures = [e for e in events(tmp_path, state, "--event", "MfaReset") if e["errorCode"]]
    assert failures[0]["requestParameters"] == {"name": "nobody"}


def test_disabling_a_user_ends_their_sessions(tmp_path: Path, state: Path) -> None:
    from jupyter_secure.identity.sessions import STAGE_FULL, start_session
    from jupyter_secure.state import Store
    from jupyter_secure.storage.models import User, utcnow

    sd = ("--state-dir", str(state))
    run_cli(tmp_path, "user", "add", "sid", "--role", "student", "--no-password", *sd)
    store = Store.open(state, create=False)
    try:
        with store.db.write() as s:
            user = s.query(User).filter_by(name="sid").one()
            start_session(s, user, STAGE_FULL, now=utcnow(), ip=None, user_agent=None)
    finally:
        store.close()
    r = run_cli(tmp_path, "user", "disable", "sid", *sd)
    assert "ended 1 session(s)" in r.stdout
    [disabled] = events(tmp_path, state, "--event", "UserDisabled")
    assert disabled["responseElements"] == {"sessionsEnded": 1, "tokensRevoked": 0}


def test_service_account_tokens_from_the_cli(tmp_path: Path, state: Path) -> None:
    sd = ("--state-dir", str(state))
    r = run_cli(tmp_path, "user", "add", "ci-bot", "--role", "viewer", "--service", *sd)
    assert r.returncode == 0, r.stderr
    made = run_cli(tmp_path, "token", "create", "ci-bot", "--scope", "api:read", "--days", "3", *sd)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("jst_")
    listed = json.loads(run_cli(tmp_path, "token", "list", "ci-bot", "--json", *sd).stdout)
    assert [t["scopes"] for t in listed] == [["api:read"]]
    assert token not in (state / "state.db").read_bytes().decode("latin-1")
    bad = run_cli(tmp_path, "token", "create", "ci-bot", "--scope", "api:reed", *sd)
    assert bad.returncode == 2
    assert "did you mean 'api:read'" in bad.stderr
    revoked = run_cli(tmp_path, "token", "revoke", "ci-bot", listed[0]["id"], *sd)
    assert revoked.returncode == 0
    assert json.loads(run_cli(tmp_path, "token", "list", "ci-bot", "--json", *sd).stdout)[0][
        "revoked"
    ]
    person = run_cli(tmp_path, "token", "create", "nobody", "--scope", "api:read", *sd)
    assert person.returncode == 2
