"""The alarm monitor on a real state store: it follows the trail, persists, and acts."""

from __future__ import annotations

import json
import threading
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


def make_monitor(state: SecureState, tmp_path: Path, **actions: Any) -> AlarmMonitor:
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
        ("signin.failed", "bob", 1.0, None),
        ("signin.ok", "bob", 1.0, None),
        ("lockout", "bob", 1.0, None),
        ("dp.spend", "bob", 0.2, "patients"),
        ("dp.budget_used", "bob", pytest.approx(0.9), "patients"),
    ]
