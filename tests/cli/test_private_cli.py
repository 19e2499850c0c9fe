"""``jupyter secure dataset …`` and ``budget …`` as real processes on real state directories.

Raising a budget and resetting spend need a fresh TOTP code of an enrolled
account holding ``secure:budgets:admin``; the codes here are made for the
time steps the server will accept (each newer than the last one used).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyotp
import pytest
from helpers import cli_env, run_cli

pytestmark = pytest.mark.timeout(300)

SPEC = """\
description = "Ward admissions"
measure = "rho"
per_user_budget = "0.5"
dataset_cap = "5"

[privacy_unit]
id_column = "patient_id"
max_rows_per_person = 3

[columns.age]
type = "numeric"
lower = 0
upper = 120

[columns.sex]
type = "category"
categories = ["F", "M"]
"""


def events(tmp_path: Path, state: Path, *filters: str) -> list[dict]:  # type: ignore[type-arg]
    r = run_cli(tmp_path, "audit", "query", "--json", "--state-dir", str(state), *filters)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def write_data(tmp_path: Path, people: int = 300) -> Path:
    n = people * 2
    path = tmp_path / "patients.csv"
    pl.DataFrame(
        {
            "patient_id": [i // 2 for i in range(n)],
            "age": [float(20 + i % 50) for i in range(n)],
            "sex": ["F" if i % 3 else "M" for i in range(n)],
        }
    ).write_csv(path)
    return path


def add_dataset(tmp_path: Path, state: Path) -> subprocess.CompletedProcess[str]:
    spec = tmp_path / "patients.toml"
    spec.write_text(SPEC)
    return run_cli(
        tmp_path, "dataset", "add", "patients", str(write_data(tmp_path)), "--spec", str(spec),
        "--state-dir", str(state),
    )  # fmt: skip


def private_files(state: Path) -> list[str]:
    d = state / "private"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def listed(tmp_path: Path, state: Path) -> list[dict]:  # type: ignore[type-arg]
    r = run_cli(tmp_path, "dataset", "list", "--json", "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


@dataclass
class Admin:
    """An enrolled account and the TOTP steps already used (each code is accepted once)."""

    name: str
    secret: str
    last: int = field(default=-1)

    def code(self) -> str:
        """A code the server accepts now: a step within ±1 of the clock, newer than the last.

        The previous step is used only with 10 s left in the current one, so the check
        (a process start away) still falls within the window.
        """
        while True:
            now = time.time()
            current, left = int(now // 30), 30 - now % 30
            step = max(self.last + 1, current - 1 if left > 10 else current)
            if step <= current + 1:
                break
            time.sleep(left + 0.2)
        self.last = step
        return str(pyotp.TOTP(self.secret).at(step * 30))


def enroll(tmp_path: Path, state: Path, name: str, role: str) -> Admin:
    """Create ``name`` and enrol their authenticator with ``mfa enroll`` (code on stdin)."""
    sd = ("--state-dir", str(state))
    added = run_cli(tmp_path, "user", "add", name, "--role", role, "--no-password", *sd)
    assert added.returncode == 0, added.stderr
    with subprocess.Popen(
        [sys.executable, "-m", "jupyter_secure.cli", "mfa", "enroll", name, "--code-stdin", *sd],
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
        assert found, "".join(lines)
        admin = Admin(name, found.group(1))
        proc.stdin.write(admin.code() + "\n")
        proc.stdin.close()
        proc.stdout.read()
        assert proc.wait(60) == 0
    return admin


@pytest.fixture
def carol(tmp_path: Path, state: Path) -> Admin:
    """An enrolled admin (the admin role holds secure:budgets:admin) and a dataset."""
    assert add_dataset(tmp_path, state).returncode == 0
    return enroll(tmp_path, state, "carol", "admin")


def test_add_list_show_remove(tmp_path: Path, state: Path) -> None:
    sd = ("--state-dir", str(state))
    added = add_dataset(tmp_path, state)
    assert added.returncode == 0, added.stderr
    out = added.stdout
    assert out.startswith("added dataset patients\n")
    assert re.search(r"measure:\s+rho", out)
    assert re.search(r"cap:\s+5 \(spent 0\)", out)
    assert re.search(r"per-user budget:\s+0\.5", out)
    assert re.search(r"version:\s+[0-9a-f]{16}\n", out)
    assert "age (numeric, 0 to 120)" in out
    assert "sex (category: F, M)" in out
    files = private_files(state)
    assert len(files) == 1
    assert re.fullmatch(r"patients-[0-9a-f]{16}\.parquet", files[0])

    table = run_cli(tmp_path, "dataset", "list", *sd)
    assert table.returncode == 0, table.stderr
    assert table.stdout.split("\n")[0].split() == ["NAME", "MEASURE", "CAP", "SPENT", "GRANTS"]
    assert table.stdout.split("\n")[1].split() == ["patients", "rho", "5", "0", "0"]
    [entry] = listed(tmp_path, state)
    assert entry["name"] == "patients"
    assert entry["spec"]["columns"]["age"] == {"type": "numeric", "lower": 0.0, "upper": 120.0}

    shown = run_cli(tmp_path, "dataset", "show", "patients", "--json", *sd)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["spec"]["per_user_budget"] == "0.5"
    assert data["grants"] == []
    assert data["spend"] == {}
    text = run_cli(tmp_path, "dataset", "show", "patients", *sd)
    assert "description:" in text.stdout
    assert "Ward admissions" in text.stdout
    assert "no grants" in text.stdout

    refused = run_cli(tmp_path, "dataset", "remove", "patients", *sd)
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert len(listed(tmp_path, state)) == 1
    # Removing forgets the spend (a re-added dataset starts afresh): it needs the step-up.
    refused = run_cli(tmp_path, "dataset", "remove", "patients", "--yes", *sd)
    assert refused.returncode == 2
    assert "--admin" in refused.stderr
    assert len(listed(tmp_path, state)) == 1
    carol = enroll(tmp_path, state, "carol", "admin")
    removed = run_cli(tmp_path, "dataset", "remove", "patients", "--yes", "--admin", "carol",
                      "--code-stdin", *sd, input=carol.code() + "\n")  # fmt: skip
    assert removed.returncode == 0, removed.stderr
    assert "removed dataset patients" in removed.stdout
    assert listed(tmp_path, state) == []
    assert private_files(state) == []
    missing = run_cli(tmp_path, "dataset", "show", "patients", *sd)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "jupyter-secure: error: name: no dataset 'patients'"

    changes = events(tmp_path, state, "--event", "DatasetChanged")
    assert [e["requestParameters"]["action"] for e in changes] == ["add", "remove"]
    assert {e["userIdentity"]["type"] for e in changes} == {"OSUser"}
    assert changes[0]["requestParameters"]["file"] == "patients.csv"
    assert changes[0]["responseElements"]["cap"] == "5"
    assert changes[0]["userAgent"].endswith("(jupyter secure dataset add)")


def test_refusals_name_every_field_and_leave_nothing_behind(tmp_path: Path, state: Path) -> None:
    sd = ("--state-dir", str(state))
    assert add_dataset(tmp_path, state).returncode == 0
    before_files, before_list = private_files(state), listed(tmp_path, state)
    data = tmp_path / "patients.csv"

    bad = tmp_path / "bad.toml"
    bad.write_text(SPEC.replace('"rho"', '"zeta"').replace("upper = 120", "upper = -1"))
    r = run_cli(tmp_path, "dataset", "add", "other", str(data), "--spec", str(bad), *sd)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines == [
        f"jupyter-secure: error: {bad}: measure: expected rho or epsilon, got 'zeta'",
        f"{bad}: columns.age.upper: must be greater than lower (0)",
    ]

    # A spec that does not fit the data: checked before anything is written.
    unfit = tmp_path / "unfit.json"
    spec = {
        "measure": "rho", "per_user_budget": "0.5", "dataset_cap": "5",
        "privacy_unit": {"rows_per_person": 1},
        "columns": {"height": {"type": "numeric", "lower": 0, "upper": 3},
                    "sex": {"type": "numeric", "lower": 0, "upper": 1}},
    }  # fmt: skip
    unfit.write_text(json.dumps(spec))
    r = run_cli(tmp_path, "dataset", "add", "other", str(data), "--spec", str(unfit), *sd)
    assert r.returncode == 2
    assert f"{unfit}: columns.height: no such column in the data" in r.stderr
    assert f"{unfit}: columns.sex: is numeric in the spec, string in the data" in r.stderr

    named = tmp_path / "named.json"
    named.write_text(json.dumps({**spec, "name": "elsewhere"}))
    r = run_cli(tmp_path, "dataset", "add", "other", str(data), "--spec", str(named), *sd)
    assert r.returncode == 2
    assert r.stderr.startswith("jupyter-secure: error: name: the spec names the dataset")

    (tmp_path / "patients.txt").write_text(data.read_text())
    good = tmp_path / "patients.toml"
    r = run_cli(
        tmp_path, "dataset", "add", "other", str(tmp_path / "patients.txt"), "--spec", str(good),
        *sd,
    )  # fmt: skip
    assert r.returncode == 2
    assert "file: expected a .csv or .parquet file, got 'patients.txt'" in r.stderr
    r = run_cli(tmp_path, "dataset", "add", "other", str(tmp_path / "gone.csv"), "--spec",
                str(good), *sd)  # fmt: skip
    assert r.returncode == 2
    assert "file: no such file" in r.stderr
    r = run_cli(tmp_path, "dataset", "add", "other", str(data), *sd)
    assert r.returncode == 2
    assert "--spec: missing" in r.stderr
    (tmp_path / "spec.yaml").write_text("name: other\n")
    r = run_cli(tmp_path, "dataset", "add", "other", str(data), "--spec",
                str(tmp_path / "spec.yaml"), *sd)  # fmt: skip
    assert r.returncode == 2
    assert "--spec: expected a .toml or .json file" in r.stderr
    (tmp_path / "broken.toml").write_text("measure = \n")
    r = run_cli(tmp_path, "dataset", "add", "other", str(data), "--spec",
                str(tmp_path / "broken.toml"), *sd)  # fmt: skip
    assert r.returncode == 2
    assert "is not valid TOML" in r.stderr
    r = run_cli(tmp_path, "dataset", "add", "patients", str(data), "--spec", str(good), *sd)
    assert r.returncode == 2
    assert "name: a dataset 'patients' exists" in r.stderr

    assert private_files(state) == before_files
    assert listed(tmp_path, state) == before_list
    assert len(events(tmp_path, state, "--event", "DatasetChanged")) == 1


def test_grant_and_revoke(tmp_path: Path, state: Path, carol: Admin) -> None:
    sd = ("--state-dir", str(state))
    for flags in ((), ("--group", "ward7", "--user", "alice")):
        for command in ("grant", "revoke"):
            r = run_cli(tmp_path, "dataset", command, "patients", *flags, *sd)
            assert r.returncode == 2
            assert "--group/--user: give exactly one of --group and --user" in r.stderr
    # A new grant gives a budget where there was none: it needs the step-up.
    r = run_cli(tmp_path, "dataset", "grant", "patients", "--group", "ward7", *sd)
    assert r.returncode == 2
    assert "--admin" in r.stderr
    r = run_cli(
        tmp_path, "dataset", "grant", "patients", "--group", "ward7", "--admin", "carol",
        "--code-stdin", *sd, input=carol.code() + "\n",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "group ward7 may spend 0.5 each on patients"
    # Lowering it does not.
    r = run_cli(
        tmp_path, "dataset", "grant", "patients", "--group", "ward7", "--budget", "0.25", *sd
    )
    assert r.returncode == 0, r.stderr
    assert "(was 0.5)" in r.stdout
    r = run_cli(tmp_path, "dataset", "grant", "nope", "--group", "ward7", *sd)
    assert r.returncode == 2
    assert "name: no dataset 'nope'" in r.stderr
    r = run_cli(tmp_path, "dataset", "grant", "patients", "--group", "ward7", "--budget", "x", *sd)
    assert r.returncode == 2
    assert "--budget: 'x' is not a number" in r.stderr
    shown = json.loads(run_cli(tmp_path, "dataset", "show", "patients", "--json", *sd).stdout)
    assert shown["grants"] == [{"kind": "group", "principal": "ward7", "budget": "0.25"}]
    table = run_cli(tmp_path, "dataset", "list", *sd).stdout
    assert table.split("\n")[1].split()[-1] == "1"

    r = run_cli(tmp_path, "dataset", "revoke", "patients", "--group", "ward7", *sd)
    assert r.returncode == 0, r.stderr
    r = run_cli(tmp_path, "dataset", "revoke", "patients", "--group", "ward7", *sd)
    assert r.returncode == 2
    assert "--group: 'ward7' holds no grant on 'patients'" in r.stderr
    changes = events(tmp_path, state, "--event", "BudgetChanged")
    assert [(e["requestParameters"]["action"], e["responseElements"]) for e in changes] == [
        ("grant", {"before": None, "after": "0.5"}),
        ("grant", {"before": "0.5", "after": "0.25"}),
        ("revoke", {"before": "0.25", "after": None}),
    ]
    assert {e["userIdentity"]["type"] for e in changes} == {"OSUser"}


def test_revoking_a_small_own_grant_under_a_larger_group_grant_is_a_raise(
    tmp_path: Path, state: Path, carol: Admin
) -> None:
    sd = ("--state-dir", str(state))
    added = run_cli(tmp_path, "user", "add", "alice", "--role", "data_scientist", "--group",
                    "ward7", "--no-password", *sd)  # fmt: skip
    assert added.returncode == 0, added.stderr
    for who, budget in ((("--group", "ward7"), "1"), (("--user", "alice"), "0.1")):
        r = run_cli(tmp_path, "dataset", "grant", "patients", *who, "--budget", budget,
                    "--admin", "carol", "--code-stdin", *sd, input=carol.code() + "\n")  # fmt: skip
        assert r.returncode == 0, r.stderr
    # alice's own 0.1 wins over ward7's 1: taking it away gives her 1.
    r = run_cli(tmp_path, "dataset", "revoke", "patients", "--user", "alice", *sd)
    assert r.returncode == 2
    assert "--admin" in r.stderr
    r = run_cli(tmp_path, "dataset", "revoke", "patients", "--user", "alice", "--admin", "carol",
                "--code-stdin", *sd, input=carol.code() + "\n")  # fmt: skip
    assert r.returncode == 0, r.stderr


def spend(state: Path, user: str, groups: tuple[str, ...], rho: str) -> None:
    """A real query through the broker, as the server would run it for ``user``."""
    from jupyter_secure.privacy.broker import Asker, Broker
    from jupyter_secure.state import SecureState

    with SecureState.open(state, source="cli", create=False) as st:
        broker = Broker(st.db, st.state_dir / "private", st.audit)
        broker.query(Asker(user, groups), "patients", {"kind": "count", "rho": rho})


def test_budgets_and_step_up(tmp_path: Path, state: Path, carol: Admin) -> None:
    sd = ("--state-dir", str(state))
    added = run_cli(
        tmp_path, "user", "add", "alice", "--role", "data_scientist", "--group", "ward7",
        "--no-password", *sd,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr

    def budget(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
        admin = ("--admin", "carol", "--code-stdin") if code is not None else ()
        return run_cli(tmp_path, "budget", *args, *admin, *sd, input=f"{code}\n" if code else None)

    def own_budget() -> str | None:
        shown = json.loads(run_cli(tmp_path, "dataset", "show", "patients", "--json", *sd).stdout)
        return next((g["budget"] for g in shown["grants"] if g["principal"] == "alice"), None)

    # Raising (from no budget at all) without the step-up: refused, nothing changed.
    r = budget("set", "alice", "patients", "1")
    assert r.returncode == 2
    assert r.stderr.startswith("jupyter-secure: error: --admin: raising a budget needs")
    assert own_budget() is None
    code = carol.code()
    r = budget("set", "alice", "patients", "1", code=code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "budget of alice on patients: 1 (was no budget of their own)"
    # The same code again: refused by the replay guard, nothing changed.
    r = budget("set", "alice", "patients", "2", code=code)
    assert r.returncode == 2
    assert "code: not accepted for carol" in r.stderr
    assert "nothing was changed" in r.stderr
    assert own_budget() == "1"
    # Lowering needs no step-up.
    r = budget("set", "alice", "patients", "0.4")
    assert r.returncode == 0, r.stderr
    assert own_budget() == "0.4"
    # An account without a second factor, or without the scope, cannot confirm.
    r = run_cli(tmp_path, "budget", "set", "alice", "patients", "3", "--admin", "alice",
                "--code-stdin", *sd, input="123456\n")  # fmt: skip
    assert r.returncode == 2
    assert "--admin: alice has no second factor" in r.stderr
    sam = enroll(tmp_path, state, "sam", "student")
    r = run_cli(tmp_path, "budget", "set", "alice", "patients", "3", "--admin", "sam",
                "--code-stdin", *sd, input=sam.code() + "\n")  # fmt: skip
    assert r.returncode == 2
    assert "--admin: sam does not hold secure:budgets:admin" in r.stderr
    assert own_budget() == "0.4"

    spend(state, "alice", ("ward7",), "0.1")
    r = budget("show", "--user", "alice")
    assert r.returncode == 0, r.stderr
    assert [ln.split() for ln in r.stdout.strip().splitlines()] == [
        ["DATASET", "MEASURE", "TOTAL", "SPENT", "REMAINING"],
        ["patients", "rho", "0.4", "0.1", "0.3"],
    ]
    mine = json.loads(budget("show", "--user", "alice", "--json").stdout)
    assert mine == [
        {"dataset": "patients", "measure": "rho", "total": "0.4", "spent": "0.1",
         "remaining": "0.3"}
    ]  # fmt: skip
    everyone = budget("show", "--dataset", "patients")
    assert [ln.split() for ln in everyone.stdout.strip().splitlines()][1] == [
        "patients", "alice", "0.1", "rho"
    ]  # fmt: skip
    r = budget("show", "--user", "nobody")
    assert r.returncode == 2
    assert r.stderr.strip() == "jupyter-secure: error: --user: no enabled user named 'nobody'"
    r = budget("show", "--dataset", "nope")
    assert r.returncode == 2
    assert "--dataset: no dataset 'nope'" in r.stderr

    # A reset always needs the step-up.
    r = budget("reset", "alice", "patients")
    assert r.returncode == 2
    assert "--admin: resetting what a user spent needs" in r.stderr
    r = budget("reset", "alice", "patients", code=carol.code())
    assert r.returncode == 0, r.stderr
    assert "reset: 0.1 -> 0" in r.stdout
    total = json.loads(budget("show", "--user", "alice", "--json").stdout)[0]
    assert (total["spent"], total["remaining"]) == ("0", "0.4")

    changes = events(tmp_path, state, "--event", "BudgetChanged")
    assert [
        (e["requestParameters"]["action"], e["requestParameters"].get("amount"),
         e["responseElements"]) for e in changes
    ] == [
        ("grant", "1", {"before": None, "after": "1"}),
        ("grant", "0.4", {"before": "1", "after": "0.4"}),
        ("reset", None, {"before": "0.1", "after": "0"}),
    ]  # fmt: skip
    step_ups = [
        (e["userIdentity"]["name"], e["errorCode"])
        for e in events(tmp_path, state, "--event", "StepUp")
    ]
    assert step_ups == [
        ("carol", None),
        ("carol", "ReplayedCode"),
        ("alice", "NotEnrolled"),
        ("sam", "MissingScope"),
        ("carol", None),
    ]
