"""``jupyter secure alarms …``: list, acknowledge and test alarms; see and export the rules.

The server raises alarms (its monitor follows the audit trail); these
commands read the same table from the state store, so they work from any
machine that can open it, whether or not the server runs.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from pathlib import Path

from traitlets import Bool, Int, Unicode

from ..audit.ids import uuid7
from ..audit.logger import Identity, Resource
from ..errors import InvalidInput
from ..monitoring.actions import ActionRunner, AlarmActions
from ..monitoring.engine import ALARM, OK, Transition
from ..monitoring.monitor import AlarmMonitor, record_transition
from ..monitoring.prometheus_rules import render
from ..monitoring.rules import Rule, load_rules
from ..monitoring.store import AlarmStore
from .base import GroupCommand, StateCommand, parse_time, state_aliases, state_flags
from .users import print_table

__all__ = ["AlarmsCommand"]


class _AlarmCommand(StateCommand):
    classes = [*StateCommand.classes, AlarmMonitor, AlarmActions]

    def rules_path(self) -> Path:
        configured = self.config.get("AlarmMonitor", {}).get("rules_file")
        if configured:
            return Path(str(configured))
        return self.state.state_dir / "alarms.toml"

    def rules(self) -> list[Rule]:
        return load_rules(self.rules_path())


class AlarmsList(_AlarmCommand):
    name = "jupyter-secure-alarms-list"
    description = """List alarms, newest first: those in ALARM by default, --all for every
    state, --unacked for those in ALARM that nobody has acknowledged."""
    examples = """
    jupyter secure alarms list
    jupyter secure alarms list --all --since 2026-11-01 --json
    """
    aliases = {**state_aliases, "since": "AlarmsList.since", "limit": "AlarmsList.limit"}
    flags = {
        **state_flags,
        "json": ({"AlarmsList": {"as_json": True}}, "Print JSON."),
        "all": ({"AlarmsList": {"every_state": True}}, "Every state, not only ALARM."),
        "unacked": ({"AlarmsList": {"unacked": True}}, "Only unacknowledged alarms."),
    }
    as_json = Bool(False, help="Print JSON.").tag(config=True)
    every_state = Bool(False, help="List alarms in every state.").tag(config=True)
    unacked = Bool(False, help="Only alarms in ALARM nobody has acknowledged.").tag(config=True)
    since = Unicode("", help="Only alarms raised at or after this time (ISO 8601).").tag(
        config=True
    )
    limit = Int(100, min=1, max=10000, help="At most this many alarms.").tag(config=True)

    def run(self) -> None:
        self.positional()
        import datetime as dt

        since = None
        if self.since:
            since = dt.datetime.fromtimestamp(parse_time(self.since, "--since") / 1e6, dt.UTC)
        state = "unacked" if self.unacked else (None if self.every_state else ALARM)
        rows = AlarmStore(self.state.db).find(state=state, since=since, limit=self.limit)
        if self.as_json:
            print(json.dumps([r.as_dict() for r in rows], indent=2))
            return
        if not rows:
            print("no alarms" if state is None else f"no alarms ({state})", file=sys.stderr)
            return
        table: list[tuple[str, ...]] = [("ID", "RAISED", "STATE", "SEVERITY", "RULE", "KEY",
                                         "ACKED BY")]  # fmt: skip
        for r in rows:
            table.append((r.id, f"{r.raised_at:%Y-%m-%d %H:%M:%S}", r.state, r.severity, r.rule,
                          r.key, r.acked_by or "-"))  # fmt: skip
        print_table(table)


class AlarmsAck(_AlarmCommand):
    name = "jupyter-secure-alarms-ack"
    description = """Acknowledge an alarm (by the id `alarms list` shows): you have it. The
    alarm keeps its state; the first acknowledgement stands."""
    examples = 'jupyter secure alarms ack 0192f3c4-… --note "locked account, called user"'
    aliases = {**state_aliases, "note": "AlarmsAck.note"}
    note = Unicode("", help="What you did or will do (at most 500 characters).").tag(config=True)

    def run(self) -> None:
        (alarm_id,) = self.positional("alarm")
        if len(self.note) > 500:
            raise InvalidInput("--note", "at most 500 characters")
        me = Identity.os_user()
        row = AlarmStore(self.state.db).ack(
            alarm_id,
            by=me.name,
            note=self.note,
            audit=self.state.audit,
            identity=me,
            resources=[Resource("alarm", alarm_id)],
        )
        if row.acked_by == me.name and row.ack_note == (self.note or None):
            print(f"alarm {row.id} ({row.rule}, {row.key}) acknowledged")
        else:
            print(f"alarm {row.id} was already acknowledged by {row.acked_by} "
                  f"at {row.acked_at:%Y-%m-%d %H:%M:%S}")  # fmt: skip


class AlarmsTest(_AlarmCommand):
    name = "jupyter-secure-alarms-test"
    description = """Raise a test alarm and resolve it at once, sending it through the
    webhook and mail (as configured in AlarmActions) so you can check they arrive. Never
    locks anyone or ends sessions. Both records are in the trail, keyed "test"."""
    examples = """
    jupyter secure alarms test
    jupyter secure alarms test lockout
    """

    def run(self) -> None:
        args = list(self.extra_args)
        if len(args) > 1:
            raise InvalidInput("arguments", f"unexpected {' '.join(args[1:])!r}")
        rules = {r.name: r for r in self.rules()}
        name = args[0] if args else "audit-pipeline"
        rule = rules.get(name)
        if rule is None:
            raise InvalidInput("rule", f"no rule {name!r} (see `jupyter secure alarms rules`)")
        import time

        now = time.time()
        me = Identity.os_user().name
        alarm_id = str(uuid7(int(now * 1e9)))
        reason = f"test alarm raised by {me} with `jupyter secure alarms test`"
        store = AlarmStore(self.state.db)
        actions = AlarmActions(parent=self)
        runner = ActionRunner(actions, self.state.audit)
        for state, previous in ((ALARM, OK), (OK, ALARM)):
            t = Transition(rule, "test", {}, state, previous, alarm_id, reason, None, None, now)
            record_transition(store, self.state.audit, t)
            runner.submit(t, ("webhook", "email"))
        hook = urllib.parse.urlsplit(actions.webhook_url).hostname if actions.webhook_url else None
        print(
            f"test alarm {alarm_id} ({rule.name}) raised and resolved; webhook: "
            f"{hook or 'not set'}; mail: {len(actions.email_to) or 'no'} recipient(s)"
        )
        failed = runner.failures
        if failed:
            raise InvalidInput(
                "actions",
                f"{failed} action(s) failed: see the AlarmAction records "
                "(`jupyter secure audit query --event AlarmAction`)",
            )


class AlarmsRules(_AlarmCommand):
    name = "jupyter-secure-alarms-rules"
    description = """Show the alarm rules in effect (built-in, overlaid with alarms.toml)
    and why each exists; refuses, naming each bad field, if alarms.toml cannot be used."""
    examples = "jupyter secure alarms rules --json"
    flags = {**state_flags, "json": ({"AlarmsRules": {"as_json": True}}, "Print JSON.")}
    as_json = Bool(False, help="Print JSON.").tag(config=True)

    def run(self) -> None:
        self.positional()
        rules = self.rules()
        if self.as_json:
            print(json.dumps([{"name": r.name, "rule": r.describe(), "severity": r.severity,
                               "actions": list(r.actions), "enabled": r.enabled,
                               "why": r.why} for r in rules], indent=2))  # fmt: skip
            return
        for r in rules:
            off = "" if r.enabled else "  [disabled]"
            acts = f"; actions: {', '.join(r.actions)}" if r.actions else ""
            print(f"{r.name} ({r.severity}){off}\n    {r.describe()}{acts}\n    why: {r.why}")


class AlarmsExportPrometheus(_AlarmCommand):
    name = "jupyter-secure-alarms-export-prometheus"
    description = """Write Prometheus alerting rules equivalent to the alarm rules (site-wide:
    metrics carry no user names), for teams that run Alertmanager; the rules that have no
    equivalent are listed as comments. To stdout, or --out FILE."""
    examples = "jupyter secure alarms export-prometheus --out /etc/prometheus/jupyter-secure.yml"
    aliases = {**state_aliases, "out": "AlarmsExportPrometheus.out"}
    out = Unicode("", help="File to write (default: stdout).").tag(config=True)

    def run(self) -> None:
        self.positional()
        text = render(self.rules())
        if not self.out:
            sys.stdout.write(text)
            return
        path = Path(self.out)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise InvalidInput("--out", f"cannot write {path}: {exc.strerror}") from None
        print(f"wrote {path}", file=sys.stderr)


class AlarmsCommand(GroupCommand):
    name = "jupyter-secure-alarms"
    description = "Alarms: list and acknowledge them, test the notifications, see the rules."
    examples = "jupyter secure alarms list --unacked"
    subcommands = {
        "list": (AlarmsList, "List alarms (in ALARM by default)."),
        "ack": (AlarmsAck, "Acknowledge an alarm."),
        "test": (AlarmsTest, "Raise and resolve a test alarm through webhook and mail."),
        "rules": (AlarmsRules, "Show the rules in effect and why each exists."),
        "export-prometheus": (AlarmsExportPrometheus, "Write equivalent Prometheus rules."),
    }
