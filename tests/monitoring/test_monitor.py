"""The alarm monitor on a real state store: it follows the trail, persists, and acts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from jupyter_secure.audit.logger import Identity, Resource
from jupyter_secure.identity.signin import AccountAdmin, SignIn, SignInPolicy
from jupyter_secure.identity.users import UserDirectory
from jupyter_secure.monitoring.actions import ActionRunner, AlarmActions
from jupyter_secure.monitoring.monitor import AlarmMonitor
from jupyter_secure.monitoring.signals import signals_from_event
from jupyter_secure.monitoring.store import AlarmStore, NoSuchAlarm
from jupyter_secure.state import SecureState

ROOT = Identity("OSUser", "root")
PASSWORD = "correct horse battery staple"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SecureState]:
    db_url = "" if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    st = SecureState.open(tmp_path / "state", db_url=db_url, source="cli", identity=ROOT)
    try:
        yield st
    finally:
        st.close()


def make_monitor(
    state: SecureState, tmp_path: Path, clock: Any = time.time, **actions: Any
) -> AlarmMonitor:
    signin = SignIn(
        state.db, state.secrets, state.audit, SignInPolicy(), user_scopes=lambda user: set()
    )
    accounts = AccountAdmin(signin)
    runner = ActionRunner(
        AlarmActions(**actions),
        state.audit,
        lock=lambda name, why: accounts.lock(name, reason=why, actor=Identity.system()),
        end_sessions=lambda name, why: accounts.end_sessions(name, reason=why),
        sleep=lambda s: None,
    )
    rules = tmp_path / "alarms.toml"
    if not rules.exists():
        rules.write_text(
            '[[rule]]\nname = "denial-burst"\nthreshold = 3\n'
            'actions = ["lock", "end_sessions", "webhook"]\n',
            encoding="utf-8",
        )
    return AlarmMonitor(
        db=state.db,
        index=state.index,
        audit=state.audit,
        sink=state.sink,
        runner=runner,
        state_dir=state.state_dir,
        rules_file=str(rules),
        clock=clock,
    )


def deny(state: SecureState, user: str, n: int) -> None:
    for _ in range(n):
        state.audit.record(
            "AccessDenied",
            identity=Identity("User", user),
            source_ip="192.0.2.9",
            request={"method": "GET", "path": "/metrics", "scope": "secure:metrics:read"},
            response={"status": 403, "rule": "default deny"},
            error_code="AccessDenied",
            resources=[Resource("route", "x")],
        )
    state.index.flush()


def names(state: SecureState, event: str) -> list[dict[str, Any]]:
    out = []
    for seg in sorted(state.audit_dir.glob("segment-*.jsonl")):
        for line in seg.read_bytes().splitlines():
            record = json.loads(line)
            if record["eventName"] == event:
                out.append(record)
    return out


def test_history_before_the_first_start_is_not_alarmed(state: SecureState, tmp_path: Path) -> None:
    deny(state, "mallory", 5)
    monitor = make_monitor(state, tmp_path)
    monitor.start()
    try:
        assert monitor.tick() == []
    finally:
        monitor.stop()


def test_a_burst_alarms_and_the_actions_lock_and_end_sessions(
    state: SecureState, tmp_path: Path
) -> None:
    with state.db.write() as s:
        UserDirectory().add(s, "mallory", roles=("student",), password=PASSWORD)
    monitor = make_monitor(state, tmp_path)
    monitor.start()
    try:
        deny(state, "mallory", 3)
        changes = monitor.tick()
        assert [(c.rule.name, c.key, c.state) for c in changes] == [
            ("denial-burst", "user:mallory", "ALARM")
        ]
        monitor.runner.drain()
    finally:
        monitor.stop()
    (raised,) = names(state, "AlarmRaised")
    assert raised["requestParameters"] == {
        "rule": "denial-burst",
        "key": "user:mallory",
        "severity": "warning",
    }
    outcomes = {
        e["requestParameters"]["action"]: (e["errorCode"], e["responseElements"])
        for e in names(state, "AlarmAction")
    }
    assert outcomes["lock"] == (None, {"outcome": "done", "detail": "mallory locked"})
    assert outcomes["end_sessions"][1]["outcome"] == "done"
    assert outcomes["webhook"] == (
        None,
        {"outcome": "skipped", "detail": "AlarmActions.webhook_url is not set"},
    )
    assert names(state, "UserLocked")[-1]["requestParameters"]["reason"] == "alarm:denial-burst"
    (row,) = AlarmStore(state.db).find(state="ALARM")
    assert row.id == raised["responseElements"]["alarmId"]


def test_a_restart_neither_repeats_nor_loses_alarms(state: SecureState, tmp_path: Path) -> None:
    monitor = make_monitor(state, tmp_path)
    monitor.start()
    deny(state, "a", 3)
    assert len(monitor.tick()) == 1
    monitor.stop()
    # While it is down: a burst from someone else.
    deny(state, "b", 3)
    again = make_monitor(state, tmp_path)
    again.start()
    try:
        changes = again.tick()
        assert [(c.key, c.state) for c in changes] == [("user:b", "ALARM")]
        assert {s.key for s in again.engine.states()} == {"user:a", "user:b"}
    finally:
        again.stop()
    assert len(names(state, "AlarmRaised")) == 2


def test_acknowledging(state: SecureState, tmp_path: Path) -> None:
    monitor = make_monitor(state, tmp_path)
    monitor.start()
    deny(state, "a", 3)
    monitor.tick()
    monitor.stop()
    store = AlarmStore(state.db)
    (row,) = store.find(state="unacked")
    acked = store.ack(row.id, by="root", note="seen", audit=state.audit, identity=ROOT)
    assert acked.acked_by == "root"
    assert acked.ack_note == "seen"
    second = store.ack(row.id, by="other", note="", audit=state.audit, identity=ROOT)
    assert second.acked_by == "root", "the first acknowledgement stands"
    assert store.find(state="unacked") == []
    assert len(names(state, "AlarmAcknowledged")) == 1
    with pytest.raises(NoSuchAlarm):
        store.ack("nope", by="root", note="", audit=state.audit, identity=ROOT)


class Flaky:
    """A webhook receiver that fails the first ``fail`` requests with 503."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.got: list[dict[str, Any]] = []
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if me.fail > 0:
                    me.fail -= 1
                    self.send_response(503)
                else:
                    me.got.append(json.loads(body))
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize(("fail", "outcome"), [(2, "done"), (5, "failed")])
def test_the_webhook_retries_and_a_failure_is_recorded(
    state: SecureState, tmp_path: Path, fail: int, outcome: str
) -> None:
    hook = Flaky(fail)
    try:
        monitor = make_monitor(state, tmp_path, webhook_url=hook.url, webhook_timeout=5.0)
        monitor.start()
        deny(state, "a", 3)
        monitor.tick()
        monitor.runner.drain()
        monitor.stop()
    finally:
        hook.close()
    (webhook,) = [
        e for e in names(state, "AlarmAction") if e["requestParameters"]["action"] == "webhook"
    ]
    if outcome == "done":
        assert webhook["responseElements"]["detail"] == "HTTP 204 after 3 attempt(s)"
        assert hook.got[0]["rule"] == "denial-burst"
        assert hook.got[0]["state"] == "ALARM"
    else:
        assert webhook["errorCode"] == "RuntimeError"
        assert "after 3 attempt(s): HTTP 503" in webhook["errorMessage"]
        assert hook.got == []


def test_an_unusable_rules_file_refuses_to_start_the_monitor(
    state: SecureState, tmp_path: Path
) -> None:
    (tmp_path / "alarms.toml").write_text('[[rule]]\nname = "x"\n', encoding="utf-8")
    with pytest.raises(Exception, match=r"rule\[0\] \(x\)\.signal: required"):
        make_monitor(state, tmp_path)


def test_signals_from_real_records(state: SecureState) -> None:
    """The records the product writes map to the signals rules count."""
    audit = state.audit
    built = [
        audit.build(
            "Login",
            identity=Identity("User", "(unknown)"),
            source_ip="192.0.2.1",
            request={"userName": "bob"},
            error_code="InvalidCredentials",
            resources=[Resource("user", "bob")],
        ),
        audit.build(
            "MfaVerify",
            identity=Identity("User", "bob"),
            source_ip="192.0.2.1",
            request={"method": "totp"},
            response={"session": "s1"},
        ),
        audit.build(
            "MfaEnrolled",
            identity=Identity("User", "carol"),
            source_ip="192.0.2.2",
            request={"name": "carol", "method": "totp"},
            response={"recoveryCodes": 10},
        ),
        audit.build(
            "MfaEnrolled",
            identity=Identity("OSUser", "root"),
            request={"name": "dave", "method": "totp", "assistedBy": "root"},
            response={"recoveryCodes": 10},
        ),
        audit.build(
            "UserLocked",
            identity=Identity.system(),
            request={"name": "bob", "reason": "alarm:denial-burst"},
            response={"lockedUntil": "2026-01-01T00:00:00+00:00"},
        ),
        audit.build(
            "UserLocked",
            identity=Identity.system(),
            request={"name": "bob", "failures": 5},
            response={"lockedUntil": "2026-01-01T00:00:00+00:00"},
        ),
        audit.build(
            "PrivateQuery",
            identity=Identity("User", "bob"),
            request={"dataset": "patients", "query": {}, "kernelId": None, "cellId": None},
            response={
                "cost": "0.2",
                "remaining": "0.1",
                "budget": "1",
                "releaseId": 1,
                "cached": False,
                "resultSha256": None,
            },
            resources=[Resource("dataset", "patients")],
        ),
    ]
    got = [(s.name, s.user, s.value, s.dataset) for e in built for s in signals_from_event(e)]
    assert got == [
        # A name that is no account counts with every other such name (no flood of keys).
        ("signin.failed", "(unknown)", 1.0, None),
        ("signin.ok", "bob", 1.0, None),
        ("signin.ok", "carol", 1.0, None),  # enrolment signs in: seen by new-ip too
        # (the lock an alarm asked for is not a lockout by failures: no signal)
        ("lockout", "bob", 1.0, None),
        ("dp.spend", "bob", 0.2, "patients"),
        ("dp.spend_share", "bob", pytest.approx(0.2), "patients"),  # of a budget of 1
        ("dp.budget_used", "bob", pytest.approx(0.9), "patients"),
    ]


def test_a_burst_while_the_monitor_was_down_alarms_late_and_only_notifies(
    state: SecureState, tmp_path: Path
) -> None:
    with state.db.write() as s:
        UserDirectory().add(s, "mallory", roles=("student",), password=PASSWORD)
    first = make_monitor(state, tmp_path)
    first.start()
    first.stop()
    deny(state, "mallory", 5)  # while nobody watches
    later = time.time() + 1200  # the server comes back twenty minutes on
    again = make_monitor(state, tmp_path, clock=lambda: later)
    again.start()
    try:
        changes = again.tick()
        again.runner.drain()
    finally:
        again.stop()
    assert [(c.key, c.state) for c in changes][:1] == [("user:mallory", "ALARM")]
    (raised,) = names(state, "AlarmRaised")
    assert raised["responseElements"]["reason"].startswith("late (evaluated after a restart")
    actions = {e["requestParameters"]["action"] for e in names(state, "AlarmAction")}
    assert actions == {"webhook"}, "no lock or session end for something twenty minutes old"
    assert names(state, "UserLocked") == []


def test_an_alarm_that_could_not_be_recorded_is_recorded_at_the_next_tick(
    state: SecureState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monitor = make_monitor(state, tmp_path)
    monitor.start()
    try:
        real = monitor.store.raised
        calls = {"n": 0}

        def flaky(*args: Any, **kwargs: Any) -> None:
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("database is locked")
            real(*args, **kwargs)

        monkeypatch.setattr(monitor.store, "raised", flaky)
        deny(state, "a", 3)
        assert monitor.tick() == []
        assert monitor.health()["errors"] == 1
        assert [(c.key, c.state) for c in monitor.tick()] == [("user:a", "ALARM")]
    finally:
        monitor.stop()
    assert len(names(state, "AlarmRaised")) == 1


def test_a_damaged_record_is_an_alarm_and_the_monitor_reads_on(
    state: SecureState, tmp_path: Path
) -> None:
    monitor = make_monitor(state, tmp_path)
    monitor.start()
    try:
        deny(state, "quentin", 1)
        deny(state, "mallory", 1)
        deny(state, "quentin", 1)
        # Someone edits the middle record in place (same length: the hash no longer holds).
        seg = sorted(state.audit_dir.glob("segment-*.jsonl"))[-1]
        data = seg.read_bytes()
        assert data.count(b'"name":"mallory"') == 1
        seg.write_bytes(data.replace(b'"name":"mallory"', b'"name":"mallorz"'))
        changes = []
        for _ in range(3):
            changes += monitor.tick()
        assert ("audit-pipeline", "site", "ALARM") in [
            (c.rule.name, c.key, c.state) for c in changes
        ]
        health = monitor.health()
        assert health["skipped"] == 1
        assert health["lag"] == 0, "it read on past the damaged record"
    finally:
        monitor.stop()


def test_a_webhook_that_redirects_is_a_failure_and_the_redirect_is_not_followed(
    state: SecureState, tmp_path: Path
) -> None:
    visited: list[str] = []

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/x")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            visited.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
        monitor = make_monitor(
            state, tmp_path, webhook_url=url, extra_headers={"Authorization": "t"}
        )
        monitor.start()
        deny(state, "a", 3)
        monitor.tick()
        monitor.runner.drain()
        monitor.stop()
    finally:
        httpd.shutdown()
        httpd.server_close()
    (webhook,) = [
        e for e in names(state, "AlarmAction") if e["requestParameters"]["action"] == "webhook"
    ]
    assert webhook["errorCode"] == "RuntimeError"
    assert "HTTP 302" in webhook["errorMessage"]
    assert visited == [], "the credentials never went where the redirect pointed"


def test_a_plain_http_webhook_elsewhere_is_refused(state: SecureState, tmp_path: Path) -> None:
    from jupyter_secure.errors import InvalidInput

    with pytest.raises(InvalidInput, match="use https"):
        make_monitor(state, tmp_path, webhook_url="http://hooks.example.org/x")
    make_monitor(state, tmp_path, webhook_url="http://hooks.example.org/x", webhook_allow_http=True)
    make_monitor(state, tmp_path, webhook_url="https://hooks.example.org/x")


def test_displayed_rows_counts_every_way_to_show_a_table() -> None:
    from jupyter_secure.monitoring.metrics import displayed_rows

    styler = (
        "<style>x</style><table id='T_1'><thead><tr><th>a</th></tr></thead><tbody>"
        + ("<tr><td>1</td></tr>" * 500)
        + "</tbody></table>"
    )
    assert displayed_rows({"data": {"text/html": styler, "text/plain": "<Styler>"}}) == 500
    records = [{"name": "x"}] * 700
    assert displayed_rows({"data": {"application/json": records, "text/plain": "{...}"}}) == 700
    assert displayed_rows({"name": "stdout", "text": "row\n" * 900}, "stream") == 900
