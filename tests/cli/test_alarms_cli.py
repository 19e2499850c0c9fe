"""`jupyter secure alarms list|ack|test|rules|export-prometheus` as real processes."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from helpers import cli_env, run_cli

from jupyter_secure.audit.logger import Identity, Resource
from jupyter_secure.monitoring.actions import ActionRunner, AlarmActions
from jupyter_secure.monitoring.monitor import AlarmMonitor
from jupyter_secure.state import SecureState


def raise_an_alarm(state_dir: Path) -> None:
    """What the server's monitor does when someone walks the API: one denial-burst alarm."""
    with SecureState.open(state_dir, source="cli", create=False) as st:
        monitor = AlarmMonitor(
            db=st.db,
            index=st.index,
            audit=st.audit,
            sink=st.sink,
            runner=ActionRunner(AlarmActions(), st.audit),
            state_dir=st.state_dir,
        )
        monitor.start()
        try:
            for _ in range(10):
                st.audit.record(
                    "AccessDenied",
                    identity=Identity("User", "mallory"),
                    request={"method": "GET", "path": "/x", "scope": "s"},
                    response={"status": 403, "rule": "default deny"},
                    error_code="AccessDenied",
                    resources=[Resource("route", "r")],
                )
            st.index.flush()
            assert monitor.tick()
        finally:
            monitor.stop()


def test_list_and_acknowledge(tmp_path: Path, state: Path) -> None:
    sd = ("--state-dir", str(state))
    assert "no alarms" in run_cli(tmp_path, "alarms", "list", *sd).stderr
    raise_an_alarm(state)
    listed = run_cli(tmp_path, "alarms", "list", "--json", *sd)
    assert listed.returncode == 0, listed.stderr
    (alarm,) = json.loads(listed.stdout)
    assert alarm["rule"] == "denial-burst"
    assert alarm["key"] == "user:mallory"
    table = run_cli(tmp_path, "alarms", "list", *sd).stdout
    assert alarm["id"] in table
    assert "denial-burst" in table
    ack = run_cli(tmp_path, "alarms", "ack", alarm["id"], "--note", "looking", *sd)
    assert ack.returncode == 0, ack.stderr
    assert "acknowledged" in ack.stdout
    again = run_cli(tmp_path, "alarms", "ack", alarm["id"], *sd)
    assert "already acknowledged" in again.stdout
    assert json.loads(run_cli(tmp_path, "alarms", "list", "--unacked", "--json", *sd).stdout) == []
    assert len(json.loads(run_cli(tmp_path, "alarms", "list", "--all", "--json", *sd).stdout)) == 1
    out = run_cli(tmp_path, "audit", "query", "--json", "--event", "AlarmAcknowledged", *sd)
    records = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert len(records) == 1
    assert records[0]["userIdentity"]["type"] == "OSUser"
    missing = run_cli(tmp_path, "alarms", "ack", "no-such-alarm", *sd)
    assert missing.returncode == 2
    assert "alarm:" in missing.stderr
    bad = run_cli(tmp_path, "alarms", "list", "--since", "yesterday-ish", *sd)
    assert bad.returncode == 2
    assert "--since" in bad.stderr


def test_rules_and_their_refusals(tmp_path: Path, state: Path) -> None:
    sd = ("--state-dir", str(state))
    shown = run_cli(tmp_path, "alarms", "rules", *sd)
    assert shown.returncode == 0
    assert "off-hours-activity" in shown.stdout
    assert "why:" in shown.stdout
    (state / "alarms.toml").write_text(
        '[[rule]]\nname = "lockout"\nseverity = "loud"\n', encoding="utf-8"
    )
    refused = run_cli(tmp_path, "alarms", "rules", *sd)
    assert refused.returncode == 2
    assert "rule[0] (lockout).severity: expected one of info, warning, critical" in refused.stderr


def test_export_prometheus(tmp_path: Path, state: Path) -> None:
    out = tmp_path / "rules.yml"
    r = run_cli(
        tmp_path, "alarms", "export-prometheus", "--out", str(out), "--state-dir", str(state)
    )
    assert r.returncode == 0, r.stderr
    text = out.read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    alerts = {a["alert"] for a in document["groups"][0]["rules"]}
    assert "JupyterSecureLockout" in alerts
    assert "# not exported: off-hours-activity" in text
    unwritable = run_cli(
        tmp_path,
        "alarms",
        "export-prometheus",
        "--out",
        str(tmp_path / "no" / "dir" / "x.yml"),
        "--state-dir",
        str(state),
    )
    assert unwritable.returncode == 2
    assert "--out" in unwritable.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_test_alarm_reaches_the_webhook(tmp_path: Path, state: Path) -> None:
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    config = tmp_path / "jupyter-config"
    config.mkdir(exist_ok=True)
    sd = ("--state-dir", str(state))

    def configure(url: str) -> None:
        settings = {
            "AlarmActions": {"webhook_url": url, "webhook_attempts": 1, "webhook_timeout": 2.0}
        }
        (config / "jupyter_server_config.json").write_text(json.dumps(settings))

    try:
        configure(f"http://127.0.0.1:{httpd.server_address[1]}/hook")
        r = run_cli(tmp_path, "alarms", "test", "lockout", *sd, env=cli_env(tmp_path))
        assert r.returncode == 0, r.stderr
        assert [(g["rule"], g["key"], g["state"]) for g in got] == [
            ("lockout", "test", "ALARM"),
            ("lockout", "test", "OK"),
        ]
    finally:
        httpd.shutdown()
        httpd.server_close()
    configure(f"http://127.0.0.1:{_free_port()}/hook")  # nobody listens
    r = run_cli(tmp_path, "alarms", "test", *sd, env=cli_env(tmp_path))
    assert r.returncode == 2
    assert "action(s) failed" in r.stderr
    unknown = run_cli(tmp_path, "alarms", "test", "no-such-rule", *sd)
    assert unknown.returncode == 2
    assert "rule:" in unknown.stderr
