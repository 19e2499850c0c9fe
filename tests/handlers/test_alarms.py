"""Alarms on a real server: the monitor follows the trail, raises, acts, and the API reads it."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from helpers import start_password, wait_for

SECRET = "webhook-key"


class Receiver:
    """A local webhook receiver: answers with the statuses queued, then 200."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.signatures: list[str] = []
        self.raw: list[bytes] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200:
                    receiver.raw.append(body)
                    receiver.bodies.append(json.loads(body))
                    receiver.signatures.append(self.headers.get("X-Jupyter-Secure-Signature", ""))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def jp_server_config(state_dir: Path, tmp_path: Path, receiver: Receiver):  # type: ignore[no-untyped-def]
    rules = tmp_path / "alarms.toml"
    rules.write_text(
        """
[[rule]]
name = "lockout"
actions = ["webhook"]

[[rule]]
name = "probing-lock"
signal = "denied"
description = "A student walking the admin API"
key = "user"
period = 60
threshold = 3
actions = ["lock", "end_sessions", "webhook"]
severity = "critical"
""",
        encoding="utf-8",
    )
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_secure": True, "jupyterlab": True}},
        "SecureApp": {"state_dir": str(state_dir)},
        "AlarmMonitor": {"interval": 0.2, "rules_file": str(rules)},
        "AlarmActions": {"webhook_url": receiver.url, "webhook_secret": SECRET},
    }


def raised(server: Any, rule: str, key: str) -> list[dict[str, Any]]:
    return [
        e
        for e in server.events("AlarmRaised")
        if e["requestParameters"]["rule"] == rule and e["requestParameters"]["key"] == key
    ]


async def test_six_wrong_codes_lock_the_account_and_raise_the_lockout_alarm(
    server, receiver: Receiver
) -> None:  # type: ignore[no-untyped-def]
    await server.sign_in("alice")
    b = await start_password(server)
    for _ in range(6):
        server.clock.advance(61)
        await b.post("login/mfa", form={"otp": "000000"})
    assert len(server.events("UserLocked")) == 1
    events = await wait_for(lambda: raised(server, "lockout", "user:alice"))
    alarm = events[0]["responseElements"]
    assert alarm["state"] == "ALARM"
    assert alarm["actions"] == ["webhook"]
    # The webhook got it, signed with the shared key.
    await wait_for(lambda: any(b["rule"] == "lockout" for b in receiver.bodies))
    i = next(i for i, b in enumerate(receiver.bodies) if b["rule"] == "lockout")
    assert receiver.bodies[i]["key"] == "user:alice"
    assert receiver.bodies[i]["alarmId"] == alarm["alarmId"]
    mac = hmac.new(SECRET.encode(), receiver.raw[i], hashlib.sha256).hexdigest()
    assert receiver.signatures[i] == f"sha256={mac}"
    done = await wait_for(lambda: server.events("AlarmAction"))
    assert done[0]["responseElements"]["outcome"] == "done"
    # The mfa-failures rule saw the wrong codes too.
    assert raised(server, "mfa-failures", "user:alice")


async def test_the_alarm_api_is_for_admins_and_auditors(server) -> None:  # type: ignore[no-untyped-def]
    server.add_user("root", roles=("admin",))
    server.add_user("audrey", roles=("auditor",))
    server.add_user("sam", roles=("student",))
    # Something to list: a burst of failed passwords for one account.
    b = server.browser()
    await b.get("login")
    for _ in range(5):
        server.clock.advance(61)
        await b.post("login", form={"username": "bob", "password": "wrong"})
    await wait_for(lambda: raised(server, "signin-failures-user", "user:bob"))

    student = await server.sign_in("sam")
    assert (await student.get("secure/api/alarms")).code == 403
    assert (await student.get("secure/api/alarms/rules")).code == 403

    auditor = await server.sign_in("audrey")
    r = await auditor.get("secure/api/alarms")
    assert r.code == 200
    alarms = json.loads(r.body)["alarms"]
    mine = next(a for a in alarms if a["rule"] == "signin-failures-user")
    assert mine["key"] == "user:bob"
    assert mine["state"] == "ALARM"
    ack = await auditor.post(f"secure/api/alarms/{mine['id']}/ack", json_body={"note": "x"})
    assert ack.code == 403, "auditors read alarms; only admins acknowledge them"

    admin = await server.sign_in("root")
    rules = json.loads((await admin.get("secure/api/alarms/rules")).body)["rules"]
    assert {"lockout", "probing-lock", "off-hours-activity"} <= {r["name"] for r in rules}
    bad = await admin.get("secure/api/alarms?state=everything")
    assert bad.code == 400
    assert json.loads(bad.body)["field"] == "state"
    r = await admin.post(f"secure/api/alarms/{mine['id']}/ack", json_body={"note": "called bob"})
    assert r.code == 200
    assert json.loads(r.body)["ackedBy"] == "root"
    acked = server.events("AlarmAcknowledged")[-1]
    assert acked["userIdentity"]["name"] == "root"
    assert acked["requestParameters"] == {"alarmId": mine["id"], "note": "called bob"}
    unacked = json.loads((await admin.get("secure/api/alarms?state=unacked")).body)["alarms"]
    assert mine["id"] not in {a["id"] for a in unacked}
    missing = "00000000-0000-7000-8000-000000000000"
    assert (await admin.post(f"secure/api/alarms/{missing}/ack", json_body={})).code == 404
    too_long = await admin.post(
        f"secure/api/alarms/{mine['id']}/ack", json_body={"note": "x" * 501}
    )
    assert too_long.code == 400


async def test_a_lock_rule_locks_the_prober_and_ends_their_sessions(
    server, receiver: Receiver
) -> None:  # type: ignore[no-untyped-def]
    server.add_user("sam", roles=("student",))
    student = await server.sign_in("sam")
    for path in ("metrics", "secure/api/alarms", "secure/api/alarms/rules"):
        assert (await student.get(path)).code == 403
    events = await wait_for(lambda: raised(server, "probing-lock", "user:sam"))

    # Refusals by the route guard itself are recorded with who was refused (they were
    # not, before: the audit hook read current_user before jupyter_server had set it).
    # The alarm sees each denial as it is submitted, before the sink has written it.
    def sams() -> list[dict[str, Any]]:
        return [e for e in server.events("AccessDenied") if e["userIdentity"]["name"] == "sam"]

    denied = await wait_for(lambda: len(sams()) >= 3 and sams())
    assert len(denied) == 3
    assert {e["requestParameters"]["path"].rsplit("/", 1)[-1] for e in denied} >= {"metrics"}
    assert events[0]["requestParameters"]["severity"] == "critical"
    actions = await wait_for(
        lambda: (
            {
                e["requestParameters"]["action"]: e
                for e in server.events("AlarmAction")
                if e["requestParameters"]["rule"] == "probing-lock"
            }.keys()
            >= {"lock", "end_sessions", "webhook"}
            and {
                e["requestParameters"]["action"]: e
                for e in server.events("AlarmAction")
                if e["requestParameters"]["rule"] == "probing-lock"
            }
        )
    )
    assert actions["lock"]["responseElements"]["outcome"] == "done"
    assert "1 session(s)" in actions["end_sessions"]["responseElements"]["detail"]
    locked = server.events("UserLocked")[-1]
    assert locked["requestParameters"] == {"name": "sam", "reason": "alarm:probing-lock"}
    # The session is gone, and the right password no longer gets in.
    assert (await student.get("api/status")).code in (302, 403)
    fresh = server.browser()
    await fresh.get("login")
    server.clock.advance(61)
    r = await fresh.post("login", form={"username": "sam", "password": "correct horse battery"})
    assert r.code != 302


async def test_an_incident_freeze_stops_a_running_users_kernel_session_and_token(
    server, jp_serverapp
) -> None:  # type: ignore[no-untyped-def]
    """What `jupyter secure incident freeze` does from another process, on a live server."""
    from jupyter_secure.audit.logger import Identity
    from jupyter_secure.monitoring.incident import freeze

    b = await server.sign_in("alice")
    r = await b.post("secure/api/tokens", json_body={"name": "t", "scopes": ["api:read"]})
    token = json.loads(r.body)["token"]
    r = await b.post("api/kernels", json_body={"name": "jupyter-secure"})
    kernel_id = json.loads(r.body)["id"]
    km = jp_serverapp.kernel_manager
    assert kernel_id in km.list_kernel_ids()
    result = freeze(
        server.state.db, server.state.audit, "alice", "laptop stolen", Identity("OSUser", "root")
    )
    assert len(result.sessions_ended) == 1
    assert len(result.tokens_revoked) == 1
    await wait_for(lambda: kernel_id not in km.list_kernel_ids())
    assert (await b.get("api/status")).code in (302, 403)
    program = server.browser()
    denied = await program.get("api/status", headers={"Authorization": f"token {token}"})
    assert denied.code in (302, 403)
    (record,) = server.events("IncidentFrozen")
    assert record["requestParameters"] == {"user": "alice", "reason": "laptop stolen"}
