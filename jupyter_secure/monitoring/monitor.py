"""The alarm monitor: follows the audit trail, evaluates the rules, acts.

It runs as one thread in the server. Every ``interval`` seconds it reads the
records indexed since its cursor (from every process that writes the trail:
server, command line, broker), turns them into signals, adds what the
server saw directly (rows displayed, audit write errors), evaluates, and for
each alarm that changes state writes the row, the ``AlarmRaised`` /
``AlarmResolved`` record and hands the actions to the action runner.

The cursor only moves over a contiguous run of sequence numbers: two
processes index their records independently, so seq 10 can be indexed
before seq 9; the monitor waits for 9 (up to ``gap_wait`` seconds, after
which a record that was never indexed is skipped and logged). When catching
up after a restart it evaluates at the records' own times, so a burst that
happened while it was down still alarms.

Nothing here imports Jupyter; the server (``app.py``) and the command line
construct it.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from traitlets import Bool, Float, Int, Unicode
from traitlets.config import LoggingConfigurable

from ..audit.index import AuditIndex, AuditIntegrityError, QueryFilter
from ..audit.logger import AuditLogger, Identity, Resource
from ..audit.sink import AuditSink
from .actions import ActionRunner
from .engine import ALARM, AlarmEngine, Transition
from .rules import Rule, load_rules
from .signals import Signal, signals_from_event
from .store import AlarmStore

__all__ = ["AlarmMonitor", "record_transition"]

_BATCH = 5000
#: Seconds of record time between evaluations while catching up after a restart.
_CATCH_UP_STEP = 10.0
#: The most record time caught up evaluation by evaluation (older: evaluated once).
_CATCH_UP_LIMIT = 86400.0
#: An evaluation this far behind the clock is late (its alarms only notify).
_LATE = 60.0


class AlarmMonitor(LoggingConfigurable):
    """Follows the audit trail and raises alarms (see the module docstring)."""

    enabled = Bool(
        True,
        help="""Run the alarm monitor in the server. Off: no alarms are raised
        (metrics and the trail are unaffected).""",
    ).tag(config=True)

    interval = Float(
        5.0,
        min=0.2,
        max=60.0,
        help="""Seconds between evaluations. An alarm is raised at most this long
        (plus the index's lag, well under a second) after the record that breached.""",
    ).tag(config=True)

    rules_file = Unicode(
        "",
        help="""TOML file of alarm rules overlaid on the built-in ones ([[rule]]
        tables; see docs/admin-guide.md). Empty: alarms.toml in the state
        directory. A file that cannot be used stops the server with the fields
        at fault.""",
    ).tag(config=True)

    baseline_weeks = Int(
        4, min=1, max=8, help="Weeks of history a seasonal baseline looks back over."
    ).tag(config=True)

    gap_wait = Float(
        30.0,
        min=1.0,
        help="""Seconds to wait for a sequence number missing from the index
        (another process still indexing it) before skipping it.""",
    ).tag(config=True)

    def __init__(
        self,
        *,
        db: Any,
        index: AuditIndex,
        audit: AuditLogger,
        sink: AuditSink | None,
        runner: ActionRunner,
        state_dir: Path,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.store = AlarmStore(db)
        self.index = index
        self.audit = audit
        self.sink = sink
        self.runner = runner
        self.clock = clock
        path = Path(self.rules_file) if self.rules_file else state_dir / "alarms.toml"
        self.rules_path = path
        self.rules: list[Rule] = load_rules(path)  # raises RulesError naming the fields
        self.engine = AlarmEngine(self.rules, baseline_weeks=self.baseline_weeks)
        self._pending_lock = threading.Lock()
        self._pending: list[Signal] = []
        self._firing: dict[str, int] = {}
        self._unrecorded: list[tuple[Transition, bool]] = []
        self.skipped = 0
        self.last_tick = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cursor = 0
        self._gap_since: float | None = None
        self._last_eval = 0.0
        self._saved_minute = -1
        self._write_errors = 0
        self.errors = 0

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Load history and open alarms, then run the evaluation thread."""
        now = self.clock()
        cursor, evaluated = self.store.cursor()
        # First start: begin at the end of the trail (history is not re-alarmed).
        self._cursor = self.index.last_seq() if cursor is None else cursor
        self._last_eval = now if evaluated is None else min(evaluated, now)
        if cursor is None:
            self.store.set_cursor(self._cursor, evaluated=now)
        self._load_history(now, replay=cursor is not None)
        self.last_tick = now
        if self.sink is not None:
            self._write_errors = int(self.sink.stats.get("write_errors", 0))
        self.runner.start()
        self._thread = threading.Thread(target=self._run, name="alarm-monitor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.runner.stop(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                self.errors += 1
                self.log.exception("alarm monitor: evaluation failed (trying again)")

    def _load_history(self, now: float, *, replay: bool) -> None:
        weeks = self.baseline_weeks
        since = int(now // 3600) - weeks * 168 - 2
        for signal, baseline in self.engine.baselines.items():
            for user, hour, value in self.store.load_hours(signal, since):
                baseline.load(user, hour, value)
        for user, network, last in self.store.load_networks():
            self.engine.networks.load(user, network, last)
        if replay:
            self._replay_open_periods(now)
        known = {r.name for r in self.rules if r.enabled}
        for row in self.store.open_alarms():
            if row.rule in known:
                self.engine.restore(row.rule, row.key, row.id, row.raised_at.timestamp(),
                                    row.reason)  # fmt: skip
            else:
                gone = f"{row.rule}: the rule no longer exists (alarms.toml)"
                self.store.left(row.id, state="OK", t=now, reason=gone)
                self.audit.record(
                    "AlarmResolved",
                    identity=Identity.system(),
                    request={"rule": row.rule, "key": row.key, "severity": row.severity},
                    response={"alarmId": row.id, "state": "OK", "previousState": "ALARM",
                              "reason": gone, "value": None, "threshold": None},
                    resources=[Resource("alarm", row.id)],
                )  # fmt: skip

    def _replay_open_periods(self, now: float) -> None:
        """Count again what the rules' windows still cover, up to the cursor.

        Without this a restart would forget the periods in progress: an alarm
        raised before it would resolve at once, and a burst split by it would be
        missed. Signals not in the trail (rows displayed) come back from the
        persisted hourly totals for the hour in progress.
        """
        lookback = max((r.period * (r.periods + 1) for r in self.engine.rules), default=0)
        lookback = min(lookback, 86400)
        flt = QueryFilter(since_us=int((now - lookback) * 1e6))
        for _, event in self.index.query(flt):
            if int(event["seq"]) > self._cursor:
                break
            for signal in signals_from_event(event):
                self.engine.feed(signal, replay=True)
        hour = int(now // 3600)
        for signal_name in ("rows.displayed", "lines.printed"):
            baseline = self.engine.baselines.get(signal_name)
            if baseline is None:
                continue
            for user, h, value in baseline.hours(hour):
                if h == hour:
                    self.engine.feed(Signal(signal_name, h * 3600.0, value, user=user),
                                     replay=True)  # fmt: skip

    # -- input from the server --------------------------------------------------------------
    def add_signal(self, signal: Signal) -> None:
        """A signal the trail does not carry (rows displayed); thread-safe, cheap."""
        with self._pending_lock:
            self._pending.append(signal)

    def rows_displayed(self, user: str, rows: int, masked: bool, printed: bool = False) -> None:
        """Told by the channel guard for each output shown (print output: ``printed``)."""
        if rows > 0 and user:
            name = "lines.printed" if printed else "rows.displayed"
            self.add_signal(Signal(name, self.clock(), float(rows), user=user))

    # -- one evaluation ---------------------------------------------------------------------
    def tick(self) -> list[Transition]:
        """Read, feed, evaluate, act; returns the state changes (for tests and tools).

        Evaluation runs at the records' own times while catching up (every
        ``_CATCH_UP_STEP`` seconds of record time, up to now), so a burst that
        happened while the monitor was down is judged as if it had been running.
        Transitions raised that way are *late*: they are recorded and notified,
        but do not lock anyone or end sessions for something hours old.
        """
        changes = self._retry_unrecorded()
        while True:
            events = self._read()
            for event in events:
                for signal in signals_from_event(event):
                    changes += self._catch_up(signal.t)
                    self.engine.feed(signal)
                self._cursor = int(event["seq"])  # fed: never read again
            if events:
                self.store.set_cursor(self._cursor, evaluated=self._last_eval)
            if len(events) < _BATCH:
                break
        with self._pending_lock:
            pending, self._pending = self._pending, []
        now = self.clock()
        changes += self._catch_up(now)
        for signal in pending:
            self.engine.feed(signal)
        if self.sink is not None:
            errors = int(self.sink.stats.get("write_errors", 0))
            if errors > self._write_errors:
                self.engine.feed(Signal("audit.problem", now, float(errors - self._write_errors)))
            self._write_errors = errors
        changes += self._evaluate(max(now, self._last_eval), now)
        self.store.set_cursor(self._cursor, evaluated=self._last_eval)
        self._persist(now)
        self.last_tick = now
        return changes

    def _catch_up(self, until: float) -> list[Transition]:
        """Evaluate at each step of record time between the last evaluation and ``until``."""
        changes: list[Transition] = []
        now = self.clock()
        if until - self._last_eval > _CATCH_UP_LIMIT:
            self._last_eval = until - _CATCH_UP_LIMIT  # longer outages: the last day only
        while until - self._last_eval >= _CATCH_UP_STEP:
            changes += self._evaluate(self._last_eval + _CATCH_UP_STEP, now)
        return changes

    def _read(self) -> list[Mapping[str, Any]]:
        """The next contiguous run of records after the cursor (the cursor is not moved)."""
        try:
            found = list(self.index.query(QueryFilter(after_seq=self._cursor, limit=_BATCH)))
        except AuditIntegrityError as exc:
            return self._skip_damaged(exc)
        events: list[Mapping[str, Any]] = []
        expected = self._cursor + 1
        for _, event in found:
            seq = int(event["seq"])
            if seq != expected:
                now = self.clock()
                if self._gap_since is None:
                    self._gap_since = now
                if now - self._gap_since < self.gap_wait:
                    break
                self.skipped += seq - expected
                self.log.warning("alarm monitor: audit records %d..%d were never indexed; "
                                 "skipped", expected, seq - 1)  # fmt: skip
            self._gap_since = None
            expected = seq + 1
            events.append(event)
        return events

    def _skip_damaged(self, exc: AuditIntegrityError) -> list[Mapping[str, Any]]:
        """A record that fails its hash: read up to it, then count it as an audit problem
        (the audit-pipeline rule alarms) and read on past it.

        Stopping there would silence every alarm, the audit-pipeline one included.
        """
        seq = exc.seq if exc.seq is not None else self._cursor + 1
        if seq > self._cursor + 1:
            try:
                before = QueryFilter(after_seq=self._cursor, limit=seq - self._cursor - 1)
                return [event for _, event in self.index.query(before)]
            except AuditIntegrityError as earlier:
                return self._skip_damaged(earlier) if earlier.seq != seq else []
        self.log.error("alarm monitor: audit record %d fails its hash; skipped (run "
                       "`jupyter secure audit verify`)", seq)  # fmt: skip
        self.skipped += 1
        self.engine.feed(Signal("audit.problem", self.clock()))
        self._cursor = seq
        self.store.set_cursor(self._cursor, evaluated=self._last_eval)
        return []

    def _evaluate(self, at: float, now: float) -> list[Transition]:
        changes = self.engine.evaluate(at)
        self._last_eval = max(self._last_eval, at)
        self._firing = self.engine.firing()
        late = now - at > _LATE
        return self._record_all(changes, late=late)

    def _record_all(self, changes: list[Transition], *, late: bool) -> list[Transition]:
        """Record each change, then act; what cannot be recorded now is retried next tick."""
        done: list[Transition] = []
        for i, change in enumerate(changes):
            try:
                record_transition(self.store, self.audit, change, late=late)
            except Exception:
                self.errors += 1
                self._unrecorded.extend((c, late) for c in changes[i:])
                self.log.exception("alarm monitor: could not record %s for %s; will retry",
                                   change.rule.name, change.key)  # fmt: skip
                break
            done.append(change)
            if ALARM in (change.state, change.previous):
                actions = None
                if late:
                    actions = tuple(a for a in change.rule.actions if a in ("webhook", "email"))
                self.runner.submit(change, actions)
        return done

    def _retry_unrecorded(self) -> list[Transition]:
        retry, self._unrecorded = self._unrecorded, []
        changes: list[Transition] = []
        for change, late in retry:
            changes += self._record_all([change], late=late)
        return changes

    def _persist(self, now: float) -> None:
        minute = int(now // 60)
        if minute == self._saved_minute:
            return
        self._saved_minute = minute
        hour = int(now // 3600)
        for signal, baseline in self.engine.baselines.items():
            self.store.save_hours(signal, baseline.changed())
        self.store.save_networks(self.engine.networks.changed())
        if minute % 60 == 0:
            self.store.prune_hours(hour - self.baseline_weeks * 168 - 2)

    # -- reading --------------------------------------------------------------------------
    def firing(self) -> dict[str, int]:
        """Alarms in ALARM by severity, as of the last evaluation (for the metrics gauge)."""
        return dict(self._firing)

    def health(self) -> dict[str, float]:
        """How the monitor itself is doing (exported as metrics: a stalled monitor shows)."""
        return {
            "errors": float(self.errors + self.runner.failures),
            "skipped": float(self.skipped),
            "last_evaluation": self.last_tick,
            "lag": float(max(0, self.index.last_seq() - self._cursor)),
        }


def record_transition(
    store: AlarmStore, audit: AuditLogger, t: Transition, *, late: bool = False
) -> None:
    """Keep the alarm's row and write its record (raised or resolved; nothing otherwise).

    ``late``: evaluated at a record's time while catching up after a restart; said so
    in the reason (and the caller runs only its notifications).
    """
    request = {"rule": t.rule.name, "key": t.key[:300], "severity": t.rule.severity}
    response: dict[str, Any] = {
        "alarmId": t.alarm_id,
        "state": t.state,
        "previousState": t.previous,
        "reason": (f"late (evaluated after a restart, at {_iso(t.t)}): " if late else "")
        + t.reason[:1000],
        "value": t.value,
        "threshold": t.threshold,
    }
    resources = [Resource("alarm", t.alarm_id)]
    if t.user:
        resources.append(Resource("user", t.user))
    if t.state == ALARM:
        store.raised(t.alarm_id, rule=t.rule.name, key=t.key, severity=t.rule.severity,
                     reason=t.reason, value=t.value, threshold=t.threshold, t=t.t)  # fmt: skip
        audit.record("AlarmRaised", identity=Identity.system(), request=request,
                     response={**response, "actions": list(t.rule.actions)},
                     resources=resources)  # fmt: skip
    elif t.previous == ALARM:
        store.left(t.alarm_id, state=t.state, reason=t.reason, t=t.t)
        audit.record("AlarmResolved", identity=Identity.system(), request=request,
                     response=response, resources=resources)  # fmt: skip


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
