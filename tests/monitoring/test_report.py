"""Periodic reviews: a real state store, real sign-ins and queries, then the page and CSVs.

The activity is made by the code that makes it in production: sign-ins go
through ``SignIn`` (wrong passwords, wrong codes, a lockout, a recovery
code), private queries through the ``Broker``. Records only the server or
the alarm monitor write (denials, cells, alarms) are recorded through the
real ``AuditLogger``, so they fit their schemas exactly. The audit clock is
moved to place records on chosen days; the ledger stamps charges with the
real time, so the period runs up to tomorrow.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyotp
import pytest
from helpers import PASSWORD, run_cli
from privacy_specs import GOOD
from sqlalchemy import select

from jupyter_secure.audit.logger import Identity, Resource
from jupyter_secure.audit.verify import verify_trail
from jupyter_secure.errors import InvalidInput
from jupyter_secure.identity import recovery
from jupyter_secure.identity.signin import SignIn, SignInPolicy
from jupyter_secure.identity.users import UserDirectory
from jupyter_secure.monitoring import report as report_mod
from jupyter_secure.monitoring.report import (
    CSV_FILES,
    HTML_FILE,
    REPORT_FILES,
    Review,
    Verification,
    gather,
    render_html,
    write_report,
)
from jupyter_secure.policy import load_policy
from jupyter_secure.policy.scopes import scopes_held
from jupyter_secure.privacy.broker import Broker
from jupyter_secure.privacy.queries import QueryError
from jupyter_secure.state import SecureState
from jupyter_secure.storage.models import PrivateRelease, RecoveryCode, User, utcnow

pytestmark = pytest.mark.timeout(300)

ROOT = Identity("OSUser", "root")
HOSTILE = "<script>alert(1)</script>"
FORMULAS = ("=1+2", "@SUM(A1)", "-3+4", "+5", "\tTAB", "\rCR")
CSP = (
    '<meta http-equiv="Content-Security-Policy" '
    "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
)


def run_secure(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(tmp_path, *args, timeout=120)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def midnight(t: dt.datetime) -> dt.datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class Site:
    """A state store with a week of activity, and the period that covers it."""

    state: SecureState
    since: dt.datetime
    until: dt.datetime
    directory: Path
    db_url: str


def _enrol(state: SecureState, name: str) -> str:
    secret = pyotp.random_base32(32)
    with state.db.write() as s:
        user = s.scalars(select(User).where(User.name == name)).one()
        state.secrets.put(s, f"totp/{user.id}", secret.encode())
        user.mfa_enrolled_at = user.created_at
    return secret


class Week:
    """Moves one clock shared by the sign-in service and the audit logger."""

    def __init__(self, state: SecureState, start: dt.datetime) -> None:
        self.start = start
        self.now = start.timestamp()
        state.audit.clock = lambda: self.now
        self.signin = SignIn(
            state.db,
            state.secrets,
            state.audit,
            SignInPolicy(),
            user_scopes=scopes_held,
            clock=lambda: self.now,
        )

    def at(self, day: int, hour: float) -> None:
        self.now = self.start.timestamp() + day * 86400 + hour * 3600

    def later(self, seconds: float) -> None:
        self.now += seconds


def sign_in(week: Week, name: str, secret: str, ip: str) -> None:
    out = week.signin.password(name, PASSWORD, ip=ip, user_agent="test")
    assert out.ok, out
    code = pyotp.TOTP(secret).at(week.now)
    done = week.signin.second_factor(out.token or "", otp=code, ip=ip, user_agent="test")
    assert done.ok, done


def make_activity(state: SecureState, since: dt.datetime, tmp_path: Path) -> None:
    directory = UserDirectory()
    with state.db.write() as s:
        for name, role in [("alice", "data_scientist"), ("bob", "student"), ("frank", "student")]:
            directory.add(s, name, roles=[role], password=PASSWORD)
        for name in ("carol", "dave", "erin"):  # never sign in: no password to hash
            directory.add(s, name, roles=["viewer"])
        directory.add(s, "svc", roles=["viewer"], service=True)
    week = Week(state, since)
    secrets = {n: _enrol(state, n) for n in ("alice", "bob", "frank")}
    audit = state.audit

    # Outside the period: an hour before it (excluded).
    week.later(-3600)
    assert not week.signin.password("bob", "wrong password!", ip="10.9.9.9", user_agent=None).ok

    # Day 0: alice signs in.
    week.at(0, 9)
    sign_in(week, "alice", secrets["alice"], "10.0.0.1")
    # Day 1: bob mistypes twice, then signs in; the policy refuses him terminals twice.
    week.at(1, 10)
    for _ in range(2):
        assert not week.signin.password("bob", "not my password", ip="10.0.0.2", user_agent=None).ok
        week.later(120)
    sign_in(week, "bob", secrets["bob"], "10.0.0.2")
    for _ in range(2):
        audit.record(
            "AccessDenied",
            identity=Identity("User", "bob", ("student",)),
            request={
                "method": "GET",
                "path": "/terminals/websocket/1",
                "scope": "terminals:execute",
            },
            response={"status": 403, "rule": "default deny: no role grants terminals:execute"},
            source_ip="10.0.0.2",
        )
    # Day 2: a spray from a hostile "address" (a forwarded header is attacker-chosen).
    week.at(2, 3)
    assert not week.signin.password("mallory", "guess", ip=HOSTILE, user_agent=None).ok
    audit.record(
        "AccessDenied",
        identity=Identity("User", "bob", ("student",)),
        request={"method": "GET", "path": "/terminals/websocket/2", "scope": "terminals:execute"},
        response={"status": 403, "rule": "default deny: no role grants terminals:execute"},
    )
    # Day 3: alice's phone is in the wrong hands: five wrong codes lock her out.
    week.at(3, 14)
    pending = week.signin.password("alice", PASSWORD, ip="10.0.0.1", user_agent=None)
    assert pending.ok
    for _ in range(5):
        week.later(61)
        refused = week.signin.second_factor(
            pending.token or "", otp="000000", ip="10.0.0.1", user_agent=None
        )
        assert not refused.ok
    audit.record(
        "AlarmRaised",
        identity=Identity.system(),
        request={"rule": "signin-failures", "key": "user:alice", "severity": "warning"},
        response={
            "alarmId": "alarm-1",
            "state": "ALARM",
            "previousState": "OK",
            "reason": "5 failed factors in 15 minutes",
            "value": 5,
            "threshold": 3,
            "actions": ["lock"],
        },
    )
    week.later(600)
    audit.record(
        "AlarmAcknowledged",
        identity=ROOT,
        request={"alarmId": "alarm-1", "note": "=HYPERLINK(1)"},
        response={"rule": "signin-failures", "key": "user:alice", "state": "ALARM"},
    )
    audit.record(
        "AlarmRaised",
        identity=Identity.system(),
        request={"rule": "ip-spray", "key": f"ip:{HOSTILE}", "severity": "critical"},
        response={
            "alarmId": "alarm-2",
            "state": "ALARM",
            "previousState": "OK",
            "reason": HOSTILE,
            "value": 1,
            "threshold": 0,
        },
    )
    # Hostile names, and names a spreadsheet would run, reach the page and the CSVs.
    audit.record(
        "AccessDenied",
        identity=Identity("User", HOSTILE),
        request={
            "method": "GET",
            "path": "/api/contents/shared/raw/x.csv",
            "scope": "contents:read",
        },
        response={"status": 403, "rule": f"path rule shared/raw/** {HOSTILE}"},
        source_ip=HOSTILE,
    )
    for name in FORMULAS:
        audit.record(
            "KernelMessageRefused",
            identity=Identity("User", name),
            request={
                "kernelId": "k1",
                "channel": "shell",
                "msgType": "debug_request",
                "scope": "debugger:execute",
                "bytes": 100,
            },
            response={"rule": "no role grants debugger:execute"},
        )
    # Day 4: the alarm resolves; frank signs in with a recovery code.
    week.at(4, 8)
    audit.record(
        "AlarmResolved",
        identity=Identity.system(),
        request={"rule": "signin-failures", "key": "user:alice", "severity": "warning"},
        response={
            "alarmId": "alarm-1",
            "state": "OK",
            "previousState": "ALARM",
            "reason": "no failures for 30 minutes",
        },
    )
    code = recovery.new_codes(1)[0]
    with state.db.write() as s:
        frank = s.scalars(select(User).where(User.name == "frank")).one()
        s.add(
            RecoveryCode(
                user_id=frank.id,
                code_hash=recovery.hash_code(week.signin.recovery_key, code),
                created_at=frank.created_at,
            )
        )
    out = week.signin.password("frank", PASSWORD, ip="10.0.0.3", user_agent=None)
    assert week.signin.second_factor(
        out.token or "", recovery_code=code, ip="10.0.0.3", user_agent=None
    ).ok
    # Day 5: cells, code that did not come through the server, and private queries.
    week.at(5, 11)
    for i in range(3):
        audit.record(
            "CellExecuteRequested",
            identity=Identity("User", "alice", ("data_scientist",)),
            request={
                "kernelId": "k2",
                "owner": "alice",
                "msgId": f"m{i}",
                "notebook": "home/alice/a.ipynb",
                "silent": False,
                "codeSha256": "0" * 64,
                "codeBytes": 1,
                "code": "1",
            },
        )
    audit.record(
        "CellExecuteRequested",
        identity=Identity("User", "bob", ("student",)),
        request={
            "kernelId": "k3",
            "owner": "bob",
            "msgId": "m9",
            "silent": False,
            "codeSha256": "0" * 64,
            "codeBytes": 1,
        },
    )
    audit.record(
        "ExecutionUnreconciled",
        identity=Identity("User", "bob", ("student",)),
        request={"kernelId": "k3", "msgId": "zz", "reason": "no execute request forwarded"},
        resources=[Resource("kernel", "k3")],
    )
    data = tmp_path / "patients.csv"
    pl.DataFrame(
        {
            "patient_id": [i // 2 for i in range(400)],
            "age": [float(20 + i % 50) for i in range(400)],
            "charges": [100.0 * (i % 7) for i in range(400)],
            "sex": ["F" if i % 3 else "M" for i in range(400)],
        }
    ).write_csv(data)
    broker = Broker(state.db, state.state_dir / "private", state.audit)
    broker.add_dataset(GOOD, data, ROOT)
    broker.grant("patients", "user", "alice", "1", ROOT)
    broker.grant("patients", "user", "bob", None, ROOT)
    alice, bob = broker.asker("alice"), broker.asker("bob")
    broker.query(alice, "patients", {"kind": "count", "rho": "0.1"})
    broker.query(alice, "patients", {"kind": "count", "rho": "0.1"})  # a repeat: free
    broker.query(alice, "patients", {"kind": "mean", "column": "age", "rho": "0.2"})
    with pytest.raises(QueryError):
        broker.query(alice, "patients", {"kind": "drop_table"})
    broker.query(bob, "patients", {"kind": "sum", "column": "charges", "rho": "0.05"})

    # Accounts nobody uses: carol never signed in, dave not for 100 days; the service
    # account and the disabled account are not "stale" however old.
    old = utcnow() - dt.timedelta(days=200)
    with state.db.write() as s:
        for user in s.scalars(select(User)):
            if user.name in {"carol", "dave", "svc", "erin"}:
                user.created_at = old
            if user.name == "dave":
                user.last_login_at = utcnow() - dt.timedelta(days=100)
            if user.name == "erin":
                user.disabled = True

    # At the end of the period (excluded).
    week.now = (midnight(utcnow()) + dt.timedelta(days=2)).timestamp()
    assert not week.signin.password("bob", "wrong again!", ip="10.9.9.9", user_agent=None).ok
    state.audit.clock = time.time


@contextmanager
def make_site(tmp_path: Path, db_url: str) -> Iterator[Site]:
    directory = tmp_path / "state"
    state = SecureState.open(directory, db_url=db_url, source="cli", identity=ROOT)
    since = midnight(utcnow()) - dt.timedelta(days=6)
    until = midnight(utcnow()) + dt.timedelta(days=2)
    try:
        make_activity(state, since, tmp_path)
        state.index.flush()
        yield Site(state, since, until, directory, db_url)
    finally:
        state.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """The week on each backend."""
    db_url = "" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    with make_site(tmp_path, db_url) as made:
        yield made


@pytest.fixture
def local_site(tmp_path: Path) -> Iterator[Site]:
    """The week on SQLite only, for what does not depend on the database."""
    with make_site(tmp_path, "") as made:
        yield made


def verified(state: SecureState) -> Verification:
    report = verify_trail(
        state.audit_dir, public_keys=state.public_keys, expected_trail=state.trail_id
    )
    return Verification.of(report, "full")


def review_of(site: Site) -> Review:
    return gather(
        site.state.db,
        site.state.index,
        load_policy(site.state.policy_path),
        since=site.since,
        until=site.until,
        verification=verified(site.state),
    )


def rows(review: Review, table: str) -> list[dict[str, Any]]:
    t = review.tables[table]
    return [dict(zip(t.columns, row, strict=True)) for row in t.rows]


def test_the_review_counts_what_happened(site: Site) -> None:
    review = review_of(site)
    signins = {r["user"]: r for r in rows(review, "signins")}
    assert (
        signins["alice"]["sign-ins"],
        signins["alice"]["failed"],
        signins["alice"]["lockouts"],
    ) == (1, 5, 1)
    assert (signins["bob"]["sign-ins"], signins["bob"]["failed"]) == (1, 2)  # not the two outside
    assert signins["bob"]["addresses"] == "10.0.0.2"
    assert (signins["frank"]["sign-ins"], signins["frank"]["recovery codes used"]) == (1, 1)
    assert (signins["mallory"]["sign-ins"], signins["mallory"]["failed"]) == (0, 1)
    assert review.totals["sign-ins"] == 3
    assert review.totals["failed sign-ins"] == 8
    assert review.totals["lockouts"] == 1
    assert review.totals["users signed in"] == 3

    failures = {(r["by"], r["value"]): r for r in rows(review, "failures")}
    assert failures[("user", "alice")]["failures"] == 5
    assert failures[("user", "alice")]["reasons"] == "InvalidCode 5"
    assert failures[("address", "10.0.0.2")]["reasons"] == "InvalidCredentials 2"
    assert failures[("address", HOSTILE)]["failures"] == 1
    assert ("address", "10.9.9.9") not in failures

    denials = {(r["event"], r["user"]): r for r in rows(review, "denials")}
    bob = denials[("AccessDenied", "bob")]
    assert (bob["count"], bob["scope"]) == (3, "terminals:execute")
    assert bob["rule"] == "default deny: no role grants terminals:execute"
    for name in FORMULAS:
        assert denials[("KernelMessageRefused", name)]["scope"] == "debugger:execute"
    assert review.totals["denials"] == 3 + 1 + len(FORMULAS)

    alarms = {r["alarm"]: r for r in rows(review, "alarms")}
    one = alarms["alarm-1"]
    assert (one["rule"], one["key"], one["state"], one["value"], one["threshold"]) == (
        "signin-failures",
        "user:alice",
        "OK",
        "5",
        "3",
    )
    assert one["raised"] < one["acknowledged"] < one["resolved"]
    assert one["acknowledged by"] == "root"
    assert alarms["alarm-2"]["state"] == "ALARM"
    assert alarms["alarm-2"]["resolved"] == ""

    access = {(r["user"], r["activity"], r["object"]): r for r in rows(review, "data_access")}
    queries = access[("alice", "private queries", "patients")]
    assert (queries["requests"], queries["refused"], queries["repeats"]) == (4, 1, 1)
    assert access[("bob", "private queries", "patients")]["requests"] == 1
    assert access[("alice", "cells executed", "home/alice/a.ipynb")]["requests"] == 3
    assert access[("bob", "cells executed", "(no notebook)")]["requests"] == 1
    assert access[("bob", "code run outside the server", "kernel k3")]["requests"] == 1
    assert rows(review, "data_access")[0]["user"] == "alice"  # the most first

    with site.state.db.read() as s:
        charged = {(r.user_name, r.cost_nanos) for r in s.scalars(select(PrivateRelease))}
    assert charged == {("alice", 100_000_000), ("alice", 200_000_000), ("bob", 50_000_000)}
    spend = {r["user"]: r for r in rows(review, "budget_spend")}
    assert (spend["alice"]["charges"], spend["alice"]["spent in period"]) == (2, "0.3")
    assert spend["alice"]["spent to date"] == "0.3"
    assert (spend["bob"]["charges"], spend["bob"]["spent in period"], spend["bob"]["measure"]) == (
        1,
        "0.05",
        "rho",
    )
    assert review.spend_by_dataset.rows == (("patients", "rho", 3, "0.35"),)
    assert sum(review.series.spend["rho"]) == 350_000_000

    stale = {r["user"]: r for r in rows(review, "stale_accounts")}
    assert set(stale) == {"carol", "dave"}
    assert stale["carol"]["last sign-in"] == "never"
    assert stale["carol"]["days idle"] >= 199
    assert stale["dave"]["days idle"] in (99, 100)

    verification = {r["item"]: r["value"] for r in rows(review, "verification")}
    assert verification["status"] == "ok"
    assert "OK" in str(verification["summary"])

    s = review.series
    assert len(s.starts) == 8
    assert s.bucket_days == 1
    assert s.starts[0] == site.since.date()
    assert sum(s.signins_ok) == 3
    assert sum(s.signins_failed) == 8
    assert s.signins_ok[0] == 1  # alice on day 0
    assert s.signins_failed[3] == 5  # alice's wrong codes on day 3
    assert sum(s.denials) == review.totals["denials"]


def test_the_files_are_safe_to_open(local_site: Site, tmp_path: Path) -> None:
    site = local_site
    review = review_of(site)
    out = tmp_path / "review"
    paths = write_report(review, out)
    assert sorted(p.name for p in paths) == sorted(REPORT_FILES)
    assert sorted(os.listdir(out)) == sorted(REPORT_FILES)
    assert out.stat().st_mode & 0o077 == 0
    assert all((out / name).stat().st_mode & 0o077 == 0 for name in REPORT_FILES)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".review")]

    page = (out / HTML_FILE).read_text(encoding="utf-8")
    for section in (
        "signins",
        "denials",
        "alarms",
        "data-access",
        "budget",
        "stale",
        "verification",
    ):
        assert f'<h2 id="{section}">' in page
    assert page.count("<svg ") >= 3
    assert CSP in page
    # Hostile values appear, escaped; nothing on the page runs or fetches anything.
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    lowered = page.lower()
    for bad in (
        "<script",
        "javascript:",
        "http://",
        "https://",
        " src=",
        " href=",
        "@import",
        "url(",
        "<iframe",
        "<object",
        "<embed",
        "<img",
        "<link",
    ):
        assert bad not in lowered, bad
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", lowered)  # no event handler attributes
    assert 'xmlns="' not in page

    # Every cell a spreadsheet could evaluate carries a leading apostrophe.
    for name in CSV_FILES:
        with (out / name).open(newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                for cell in row:
                    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (name, cell)
    denied = {r["user"] for r in read_csv(out / "denials.csv")}
    assert {"'" + f for f in FORMULAS} <= denied
    assert HOSTILE in denied  # CSV keeps the text; only HTML needs escaping
    [alarm] = [r for r in read_csv(out / "alarms.csv") if r["alarm"] == "alarm-1"]
    assert alarm["note"] == "'=HYPERLINK(1)"

    # The CSVs hold the same numbers as the review.
    signins = {r["user"]: r for r in read_csv(out / "signins.csv")}
    assert signins["alice"]["failed"] == "5"
    daily = read_csv(out / "daily.csv")
    assert daily[0]["day"] == site.since.date().isoformat()
    assert sum(int(r["failed sign-ins"]) for r in daily) == 8
    assert sum(float(r["rho spent"]) for r in daily) == pytest.approx(0.35)
    verification = {r["item"]: r["value"] for r in read_csv(out / "verification.csv")}
    assert verification["status"] == "ok"


def test_a_failed_write_leaves_no_half_report(
    local_site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    review = review_of(local_site)
    out = tmp_path / "review"
    real = report_mod._write_csv
    calls = []

    def failing(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(*args, **kwargs)

    monkeypatch.setattr(report_mod, "_write_csv", failing)
    with pytest.raises(OSError, match="No space"):
        write_report(review, out)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    # An earlier report replaced with force survives a failed replacement whole.
    monkeypatch.setattr(report_mod, "_write_csv", real)
    write_report(review, out)
    before = {n: (out / n).read_bytes() for n in REPORT_FILES}
    calls.clear()
    monkeypatch.setattr(report_mod, "_write_csv", failing)
    with pytest.raises(OSError, match="No space"):
        write_report(review, out, force=True)
    assert {n: (out / n).read_bytes() for n in REPORT_FILES} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_output_directory_is_checked(local_site: Site, tmp_path: Path) -> None:
    review = review_of(local_site)
    empty = tmp_path / "empty"
    empty.mkdir()
    write_report(review, empty)  # an empty directory is fine
    assert (empty / HTML_FILE).exists()
    with pytest.raises(InvalidInput, match="not empty"):
        write_report(review, empty)
    write_report(review, empty, force=True)  # replaces an earlier report
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(InvalidInput, match=r"not part of a report \(thesis\.tex\)"):
        write_report(review, mine, force=True)
    assert (mine / "thesis.tex").read_text() == "years of work"
    link = tmp_path / "link"
    link.symlink_to(empty)
    with pytest.raises(InvalidInput, match="symbolic link"):
        write_report(review, link, force=True)
    with pytest.raises(InvalidInput, match="does not exist"):
        write_report(review, tmp_path / "no" / "such")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="not a directory"):
        write_report(review, tmp_path / "file")


def test_periods(local_site: Site) -> None:
    """A backwards period is refused; a long one is charted in buckets of several days."""
    site = local_site
    policy = load_policy(site.state.policy_path)
    with pytest.raises(InvalidInput, match="since: must be before until"):
        gather(
            site.state.db,
            site.state.index,
            policy,
            since=site.until,
            until=site.since,
            verification=verified(site.state),
        )
    review = gather(
        site.state.db,
        site.state.index,
        policy,
        since=site.until - dt.timedelta(days=3 * 366),
        until=site.until,
        verification=verified(site.state),
    )
    assert review.series.bucket_days == 3
    assert len(review.series.starts) <= report_mod.MAX_BUCKETS
    assert sum(review.series.signins_ok) == 3
    assert "per 3 days" in render_html(review)


def test_report_command_end_to_end(site: Site, tmp_path: Path) -> None:
    site.state.close()  # the command is another process on the same store
    sd = ["--state-dir", str(site.directory)]
    if site.db_url:
        sd += ["--db-url", site.db_url]
    span = ["--since", site.since.isoformat(), "--until", site.until.isoformat()]
    out = tmp_path / "nov"
    r = run_secure(tmp_path, "report", *span, "--out", str(out), *sd)
    assert r.returncode == 0, r.stderr
    for name in REPORT_FILES:
        assert str(out / name) in r.stdout
    assert "audit verification: ok" in r.stdout
    signins = {row["user"]: row for row in read_csv(out / "signins.csv")}
    assert (signins["alice"]["sign-ins"], signins["alice"]["failed"]) == ("1", "5")

    # The read is recorded (a review reads personal data from the trail).
    q = run_secure(tmp_path, "audit", "query", "--event", "AuditQueried", "--json", *sd)
    [queried] = [json.loads(line) for line in q.stdout.splitlines()]
    assert queried["requestParameters"]["format"] == "report"
    assert queried["requestParameters"]["since"].startswith(site.since.strftime("%Y-%m-%dT%H:%M"))
    assert queried["responseElements"]["records"] > 30

    again = run_secure(tmp_path, "report", "--out", str(out), *sd)
    assert again.returncode == 2
    assert "--out:" in again.stderr
    assert "not empty" in again.stderr

    # --force replaces the earlier report; the default period is the last 7 days.
    forced = run_secure(tmp_path, "report", "--out", str(out), "--force", "--verify", "newest", *sd)
    assert forced.returncode == 0, forced.stderr
    assert "(newest)" in forced.stdout
    verification = {row["item"]: row["value"] for row in read_csv(out / "verification.csv")}
    assert verification["mode"] == "newest"
    daily = read_csv(out / "daily.csv")
    assert len(daily) in (7, 8)  # seven days back from now (eight dates unless at midnight)


def test_report_flags_are_checked_before_anything_is_read(tmp_path: Path) -> None:
    """Refusals name the flag, exit 2 and write nothing (no store is even opened)."""
    sd = ("--state-dir", str(tmp_path / "state"))
    for args, flag in [
        (["--since", "2026-12-01", "--until", "2026-11-01"], "--since: must be before --until"),
        (["--since", "yesterday"], "--since: 'yesterday' is not a time"),
        (["--until", "soon"], "--until: 'soon' is not a time"),
        (["--stale-days", "0"], "--stale-days: must be at least 1"),
        (["--stale-days", "ninety"], "--stale-days: 'ninety' is not a whole number"),
        (["--verify", "some"], "--verify: full or newest"),
    ]:
        bad = run_secure(tmp_path, "report", *args, "--out", str(tmp_path / "x"), *sd)
        assert bad.returncode == 2, (args, bad.stderr)
        assert flag in bad.stderr, bad.stderr
        assert not (tmp_path / "x").exists()
    missing = run_secure(tmp_path, "report", *sd)
    assert missing.returncode == 2
    assert "--out: give the directory" in missing.stderr
    assert not (tmp_path / "state").exists()


def test_a_trail_that_fails_verification_is_reported_not_appended_to(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    with SecureState.open(directory, source="cli", identity=ROOT) as state:
        signin = SignIn(
            state.db, state.secrets, state.audit, SignInPolicy(), user_scopes=scopes_held
        )
        with state.db.write() as s:
            UserDirectory().add(s, "alice", roles=["student"], password=PASSWORD)
        assert not signin.password("alice", "wrong password", ip="10.1.1.1", user_agent=None).ok
        state.index.flush()
    segment = sorted((directory / "audit").glob("segment-*.jsonl"))[0]
    data = segment.read_bytes()
    segment.write_bytes(data.replace(b'"10.1.1.1"', b'"10.1.1.2"'))  # edit a Login record
    size = segment.stat().st_size

    out = tmp_path / "review"
    r = run_secure(tmp_path, "report", "--out", str(out), "--state-dir", str(directory))
    assert r.returncode == 1, r.stderr
    assert "audit verification: FAILED" in r.stdout
    assert "does not match its hash" in r.stdout
    page = (out / HTML_FILE).read_text()
    assert '<p class="banner failed">Audit trail verification: FAILED' in page
    assert "could not be read" in page  # the altered record is not counted
    verification = {row["item"]: row["value"] for row in read_csv(out / "verification.csv")}
    assert verification["status"] == "FAILED"
    assert "does not match its hash" in verification["problem"]
    assert segment.stat().st_size == size  # nothing appended to a damaged trail


def test_a_sign_in_without_a_second_factor_counts(tmp_path: Path) -> None:
    """Where a role needs no second factor, the accepted password is the sign-in."""
    with SecureState.open(tmp_path / "state", source="cli", identity=ROOT) as state:
        with state.db.write() as s:
            UserDirectory().add(s, "vic", roles=["viewer"], password=PASSWORD)
        policy = SignInPolicy(mfa_required_roles=["admin"])
        signin = SignIn(state.db, state.secrets, state.audit, policy, user_scopes=scopes_held)
        assert signin.password("vic", PASSWORD, ip="10.2.2.2", user_agent=None).next == "done"
        state.index.flush()
        now = utcnow()
        review = gather(
            state.db,
            state.index,
            load_policy(state.policy_path),
            since=now - dt.timedelta(hours=1),
            until=now + dt.timedelta(hours=1),
            verification=verified(state),
        )
    [vic] = rows(review, "signins")
    assert (vic["user"], vic["sign-ins"], vic["addresses"]) == ("vic", 1, "10.2.2.2")
    assert review.totals["users signed in"] == 1


def test_the_commands_explain_themselves(capsys: pytest.CaptureFixture[str]) -> None:
    """What tests/cli/test_cli.py checks of every wired command, until app.py lists these."""
    from jupyter_secure.cli.incident import IncidentCommand, IncidentFreeze
    from jupyter_secure.cli.report import ReportCommand

    for cls, words in [
        (ReportCommand, "report"),
        (IncidentCommand, "incident"),
        (IncidentFreeze, "incident freeze"),
    ]:
        app = cls()
        app.print_description()
        app.print_examples()
        out = capsys.readouterr().out
        assert len(cls.description) > 20
        assert f"jupyter secure {words}" in out
        if not getattr(cls, "subcommands", None):
            assert "--state-dir" in " ".join(f"--{a}" for a in cls.aliases)
