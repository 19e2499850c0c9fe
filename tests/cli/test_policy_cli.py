"""``jupyter secure policy check|explain`` as real processes, and tokens bounded by roles."""

from __future__ import annotations

from pathlib import Path

from helpers import run_cli

PASSWORD = "S3cret-horse-battery-staple"


def test_init_writes_the_default_policy_and_check_accepts_it(tmp_path: Path, state: Path) -> None:
    policy = state / "policy.toml"
    assert policy.stat().st_mode & 0o777 == 0o600
    r = run_cli(tmp_path, "policy", "check", "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout
    assert "6 roles" in r.stdout


def test_check_lists_every_problem_with_line_and_suggestion(tmp_path: Path, state: Path) -> None:
    bad = tmp_path / "edit.toml"
    bad.write_text(
        "version = 1\n"
        "[roles.helper]\n"
        'description = "Helps."\n'
        'scopes = ["kernels:exeucte"]\n'
        "[groups.ta]\n"
        'members = ["carol"]\n'
        'roles = ["helpr"]\n'
        "[terminals]\n"
        'rolez = ["admin"]\n'
    )
    r = run_cli(tmp_path, "policy", "check", str(bad))
    assert r.returncode == 1
    assert f"{bad}:4" in r.stderr
    assert "did you mean 'kernels:execute'" in r.stderr
    assert "did you mean 'helper'" in r.stderr
    assert "rolez" in r.stderr
    # The file in the state directory is untouched by checking another one.
    assert run_cli(tmp_path, "policy", "check", "--state-dir", str(state)).returncode == 0


def test_check_warns_about_direct_grants(tmp_path: Path, state: Path) -> None:
    policy = state / "policy.toml"
    policy.write_text(policy.read_text() + '\n[users.dave]\nroles = ["auditor"]\n')
    r = run_cli(tmp_path, "policy", "check", "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    assert "warning:" in r.stderr
    assert "dave" in r.stderr


def test_explain_names_the_rule(tmp_path: Path, state: Path) -> None:
    sd = ("--state-dir", str(state))
    add = run_cli(
        tmp_path,
        "user",
        "add",
        "alice",
        "--role",
        "student",
        "--password-stdin",
        *sd,
        input=PASSWORD + "\n",
    )
    assert add.returncode == 0, add.stderr
    r = run_cli(
        tmp_path,
        "policy",
        "explain",
        "--user",
        "alice",
        "--action",
        "read",
        "--resource",
        "contents",
        "--path",
        "shared/raw/patients.csv",
        *sd,
    )
    assert r.returncode == 0, r.stderr
    assert "shared/raw/**" in r.stdout
    assert "DENY" in r.stdout.upper()
    r = run_cli(
        tmp_path,
        "policy",
        "explain",
        "--user",
        "alice",
        "--action",
        "execute",
        "--resource",
        "terminals",
        *sd,
    )
    assert r.returncode == 0, r.stderr
    assert "terminals:execute" in r.stdout
    bad = run_cli(
        tmp_path,
        "policy",
        "explain",
        "--user",
        "alice",
        "--action",
        "exec",
        "--resource",
        "kernels",
        *sd,
    )
    assert bad.returncode == 2
    assert "action" in bad.stderr
    nobody = run_cli(
        tmp_path,
        "policy",
        "explain",
        "--user",
        "zed",
        "--action",
        "read",
        "--resource",
        "contents",
        *sd,
    )
    assert nobody.returncode == 2
    assert "zed" in nobody.stderr


def test_a_service_token_is_bounded_by_the_accounts_roles(tmp_path: Path, state: Path) -> None:
    sd = ("--state-dir", str(state))
    assert (
        run_cli(tmp_path, "user", "add", "bot", "--role", "viewer", "--service", *sd).returncode
        == 0
    )
    r = run_cli(tmp_path, "token", "create", "bot", "--scope", "kernels:execute", *sd)
    assert r.returncode == 2
    assert "kernels:execute" in r.stderr
    r = run_cli(tmp_path, "token", "create", "bot", "--scope", "contents:read", *sd)
    assert r.returncode == 0, r.stderr


def test_access_review_table_csv_and_record(tmp_path: Path, state: Path) -> None:
    sd = ("--state-dir", str(state))
    for name, role in (("alice", "student"), ("root", "admin")):
        r = run_cli(
            tmp_path,
            "user",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
            *sd,
            input=PASSWORD + "\n",
        )
        assert r.returncode == 0, r.stderr
    table = run_cli(tmp_path, "access", "review", *sd)
    assert table.returncode == 0, table.stderr
    assert "LAST SIGN-IN" in table.stdout
    assert "1 admins" in table.stdout
    assert "2 with direct grants" in table.stdout
    csv_out = run_cli(tmp_path, "access", "review", "--csv", "--stale-days", "30", *sd)
    assert csv_out.returncode == 0, csv_out.stderr
    lines = csv_out.stdout.splitlines()
    assert lines[0].startswith("name,status,roles")
    assert any(line.startswith("alice,enabled,student") for line in lines)
    bad = run_cli(tmp_path, "access", "review", "--stale-days", "0", *sd)
    assert bad.returncode == 2
    assert "stale-days" in bad.stderr
    q = run_cli(tmp_path, "audit", "query", "--json", "--event", "AccessReviewed", *sd)
    assert q.returncode == 0, q.stderr
    assert len(q.stdout.splitlines()) == 2
