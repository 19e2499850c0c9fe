"""Prometheus metrics: every ``jupyter_secure_*`` series, defined here and nowhere else.

jupyter_server serves ``prometheus_client.REGISTRY`` at ``/metrics``; the
route guard maps that route to ``secure:metrics:read`` (admin and auditor
roles), so these series are registered there.

Naming rule. Every name starts ``jupyter_secure_``, then what is measured;
counters end in ``_total``, durations in ``_seconds``, instants in
``_timestamp_seconds`` (Unix time), and a gauge names the current amount
(``_active``, ``_depth``, ``_firing``). A label value comes only from a closed
set written in this module (outcomes, methods, resources, kinds, severities)
or from a name an administrator declared (a protected dataset's name).
Never a user name, an IP address, a path or any other text from a request:
a hostile value there would create series without bound and could forge
lines of the exposition. Every value read from a record goes through a
closed mapping here, and anything unknown becomes ``other``.

Three ways in, all cheap:

* :class:`MetricsFeed` maps audit records to counter increments (a dict
  dispatch on ``eventName``); it is one of the :class:`AuditLogger`'s
  listeners, so it sees what *this process* records, not what the command
  line or a separate broker write to the same trail.
* Hooks in the route guard (:func:`authz_decided`), the witness
  (:func:`kernel_witnessed`) and the websocket connection
  (:func:`output_shown`), for what the trail does not hold.
* :class:`StateCollector` computes gauges from the database and the audit
  sink when Prometheus scrapes (a few indexed queries).

Pure core: prometheus_client and SQLAlchemy, no Jupyter; :func:`install`
does the wiring for one server and ``app.py`` calls it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from ..audit.logger import AuditLogger
from ..audit.sink import AuditSink
from ..policy.scopes import RESOURCES, resource_of
from ..privacy.amounts import NANO
from ..storage.database import Database
from ..storage.models import LoginSession, PrivateDataset, User
from .signals import CONFIG_EVENTS

__all__ = [
    "CONFIG_KINDS",
    "OUTPUT_OBSERVERS",
    "ROW_MSG_TYPES",
    "SEVERITIES",
    "Installed",
    "Metrics",
    "MetricsFeed",
    "StateCollector",
    "authz_decided",
    "default_metrics",
    "displayed_rows",
    "install",
    "kernel_witnessed",
    "marked_masked",
    "output_guarded",
    "output_shown",
]

log = logging.getLogger(__name__)

PREFIX = "jupyter_secure_"
OTHER = "other"

#: Sign-in and second-factor error codes (signin.py) → the ``outcome`` label.
OUTCOMES: dict[str, str] = {
    "InvalidCredentials": "failed",
    "InvalidCode": "failed",
    "InvalidRecoveryCode": "failed",
    "ReplayedCode": "replayed",
    "MalformedCode": "malformed",
    "Throttled": "throttled",
    "AccountLocked": "locked",
    "AccountDisabled": "disabled",
    "NotEnrolled": "not_enrolled",
    "UnknownUser": "unknown_user",
    "MissingScope": "missing_scope",
}
#: ``requestParameters.method`` of MfaVerify; every StepUp is ``step_up`` (a TOTP code).
MFA_METHODS = frozenset({"totp", "recovery"})
#: PrivateQuery error codes (the broker's exception class names) kept as they are.
DP_ERRORS = frozenset(
    {"BudgetExceeded", "NoGrant", "QueryError", "Busy", "SpecError", "AmountError"}
)
CONFIG_KINDS = ("policy", "role", "budget", "dataset", "key", "user", "token", "mfa")
#: Prefixes of Policy.diff lines about roles, groups and direct grants.
_ROLE_DIFF = ("role ", "group ", "direct grant to ", "terminals: ")
SEVERITIES = ("info", "warning", "critical")
#: The kernel messages that show a user data (and can hold a table).
ROW_MSG_TYPES = frozenset({"display_data", "execute_result", "update_display_data", "stream"})
#: Buckets of ``output_guard_seconds``: a small message takes well under a
#: millisecond, a 60 KB data frame a few, megabytes of output up to seconds.
GUARD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
#: Seconds from submit to durable: a group commit is one fdatasync (ms on an SSD).
APPEND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0)

#: Told (user, rows, masked, printed) for each output that showed rows (``printed``: print
#: output, counted in lines), in the server process
#: (the alarm monitor's per-user "bulk display" baseline). Must be quick; one that
#: raises is logged and skipped.
OUTPUT_OBSERVERS: list[Callable[[str, int, bool, bool], None]] = []


class Metrics:
    """The counters and the histogram, registered on one registry.

    One per registry (:func:`default_metrics` for the server's): prometheus_client
    refuses a name registered twice, and pytest starts many servers in one process.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(PREFIX + name, doc, labels, registry=registry)

        self.registry = registry
        self.signin_attempts = counter(
            "signin_attempts_total", "Password steps of sign-in, by outcome.", ["outcome"]
        )
        self.mfa_verifications = counter(
            "mfa_verifications_total",
            "Second-factor checks (sign-in and step-up), by method and outcome.",
            ["method", "outcome"],
        )
        self.lockouts = counter("lockouts_total", "Accounts locked by too many failed factors.")
        self.authz_decisions = counter(
            "authz_decisions_total",
            "Route guard decisions, by the scope's resource and outcome.",
            ["resource", "outcome"],
        )
        self.cells_executed = counter(
            "cells_executed_total",
            "Cells run in guarded kernels, as the server forwarded them and as kernels report.",
            ["seen_by"],
        )
        self.executions_unreconciled = counter(
            "executions_unreconciled_total",
            "Code a kernel ran that the server did not forward (guard bypass).",
        )
        self.output_rows = counter(
            "output_rows_total", "Rows of output shown to users, masked or not.", ["masked"]
        )
        self.dp_queries = counter(
            "dp_queries_total", "Private queries, by outcome (ok, cached or refusal).", ["outcome"]
        )
        self.config_changes = counter(
            "config_changes_total", "Changes to who may do what, by kind.", ["kind"]
        )
        self.audit_append_seconds = Histogram(
            PREFIX + "audit_append_seconds",
            "Seconds from submitting an audit record to its being durable.",
            buckets=APPEND_BUCKETS,
            registry=registry,
        )
        self.output_guard_seconds = Histogram(
            PREFIX + "output_guard_seconds",
            "Seconds from a kernel message reaching the server to its masked copy being "
            "written to the browser (decoding, masking, re-encoding; waiting for the "
            "worker processes and for earlier messages included). Status messages that "
            "pass unread are not counted.",
            buckets=GUARD_BUCKETS,
            registry=registry,
        )
        # Series that exist from the start (at 0): rate() and alarms see them at once.
        for outcome in ("ok", "failed"):
            self.signin_attempts.labels(outcome)
            for method in ("totp", "recovery", "step_up"):
                self.mfa_verifications.labels(method, outcome)
        for seen_by in ("server", "kernel"):
            self.cells_executed.labels(seen_by)
        for masked in ("true", "false"):
            self.output_rows.labels(masked)
        for outcome in ("ok", "cached", "BudgetExceeded"):
            self.dp_queries.labels(outcome)
        for kind in CONFIG_KINDS:
            self.config_changes.labels(kind)


_DEFAULT_LOCK = threading.Lock()
_ATTR = "_jupyter_secure_metrics"
_COLLECTOR = "_jupyter_secure_collector"


def default_metrics(registry: CollectorRegistry = REGISTRY) -> Metrics:
    """The one :class:`Metrics` of ``registry``, made on first use.

    Kept on the registry object rather than in this module, so that even a
    re-imported module finds the metrics already registered instead of failing.
    """
    with _DEFAULT_LOCK:
        found = getattr(registry, _ATTR, None)
        if not isinstance(found, Metrics):
            found = Metrics(registry)
            setattr(registry, _ATTR, found)
        return found


# -- audit records -> counters ----------------------------------------------------------------


def _section(event: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    part = event.get(name)
    return part if isinstance(part, Mapping) else {}


def _outcome(event: Mapping[str, Any]) -> str:
    code = event.get("errorCode")
    if code is None:
        return "ok"
    return OUTCOMES.get(code, OTHER) if isinstance(code, str) else OTHER


def _policy_kinds(event: Mapping[str, Any]) -> set[str]:
    """``role`` when the reload changed roles, groups or direct grants; ``policy`` for
    anything else (paths, kernel types); one reload may be both."""
    diff = _section(event, "responseElements").get("diff")
    lines = [line for line in diff if isinstance(line, str)] if isinstance(diff, list) else []
    kinds = set()
    for line in lines:
        bare = line[2:] if line.startswith(("+ ", "- ")) else line
        kinds.add("role" if bare.startswith(_ROLE_DIFF) else "policy")
    return kinds or {"policy"}


class MetricsFeed:
    """Counts audit records: append :meth:`observe` to ``AuditLogger.listeners``."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics
        self._dispatch: dict[str, Callable[[Mapping[str, Any]], None]] = {
            "Login": self._login,
            "MfaVerify": self._mfa,
            "StepUp": self._mfa,
            "UserLocked": self._locked,
            "CellExecuteRequested": self._cell,
            "ExecutionUnreconciled": self._unreconciled,
            "PrivateQuery": self._private,
            "PolicyChanged": self._policy,
            **dict.fromkeys(CONFIG_EVENTS, self._config),
        }

    def observe(self, event: Mapping[str, Any]) -> None:
        """Count one record (most records count nothing)."""
        handler = self._dispatch.get(str(event.get("eventName")))
        if handler is not None:
            handler(event)

    def _login(self, event: Mapping[str, Any]) -> None:
        self.m.signin_attempts.labels(_outcome(event)).inc()

    def _mfa(self, event: Mapping[str, Any]) -> None:
        if event.get("eventName") == "StepUp":
            method = "step_up"
        else:
            given = _section(event, "requestParameters").get("method")
            method = given if given in MFA_METHODS else OTHER
        self.m.mfa_verifications.labels(method, _outcome(event)).inc()

    def _locked(self, event: Mapping[str, Any]) -> None:
        self.m.lockouts.inc()

    def _cell(self, event: Mapping[str, Any]) -> None:
        self.m.cells_executed.labels("server").inc()

    def _unreconciled(self, event: Mapping[str, Any]) -> None:
        self.m.executions_unreconciled.inc()

    def _private(self, event: Mapping[str, Any]) -> None:
        code = event.get("errorCode")
        if code is not None:
            outcome = code if code in DP_ERRORS else OTHER
        elif _section(event, "responseElements").get("cached") is True:
            outcome = "cached"
        else:
            outcome = "ok"
        self.m.dp_queries.labels(outcome).inc()

    def _policy(self, event: Mapping[str, Any]) -> None:
        if event.get("errorCode") is None:
            for kind in _policy_kinds(event):
                self.m.config_changes.labels(kind).inc()

    def _config(self, event: Mapping[str, Any]) -> None:
        if event.get("errorCode") is None:  # a refused change changed nothing
            self.m.config_changes.labels(CONFIG_EVENTS[event["eventName"]]).inc()


# -- hooks for what the trail does not hold ---------------------------------------------------


def authz_decided(scope: str, allowed: bool, metrics: Metrics | None = None) -> None:
    """Count one route guard decision (``scope`` empty: the route needs none)."""
    if not scope:
        resource = "none"
    else:
        resource = resource_of(scope)
        resource = resource if resource in RESOURCES else OTHER
    m = metrics or default_metrics()
    m.authz_decisions.labels(resource, "allow" if allowed else "deny").inc()


def kernel_witnessed(events: Iterable[Mapping[str, Any]], metrics: Metrics | None = None) -> None:
    """Count the cells a kernel's witness batch says it started (phase ``pre``)."""
    started = sum(1 for e in events if e.get("phase") == "pre")
    if started:
        (metrics or default_metrics()).cells_executed.labels("kernel").inc(started)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # nbformat's multi-line form
        return "".join(v for v in value if isinstance(v, str))
    return ""


def _table_rows(html: str) -> int | None:
    """Rows of the HTML tables in ``html`` (header rows left out); None: no table.

    Any table counts, not only pandas' (a Styler, ``to_html`` with other classes, a
    hand-made table all show rows). ``str.count`` over the text, never a parse: the
    connection calls this on the event loop for outputs of any size and content.
    """
    if "<table" not in html:
        return None
    rows = html.count("<tr>") + html.count("<tr ")
    # A header row per <thead> (pandas and Styler write one or two; one is close enough).
    return max(0, rows - html.count("<thead"))


def _json_rows(value: Any) -> int:
    """Records in a JSON output: a list's length, or the longest list among a dict's values."""
    if isinstance(value, list):
        return len(value)
    if isinstance(value, Mapping):
        return max((len(v) for v in value.values() if isinstance(v, list)), default=0)
    return 0


def _lines(text: str) -> int:
    return text.count("\n") + (0 if text.endswith("\n") else 1) if text else 0


def displayed_rows(content: Mapping[str, Any], msg_type: str = "display_data") -> int:
    """How many rows one output shows: the measure of "bulk display".

    HTML tables (any, not only pandas') count their data rows, which is what the
    browser shows; otherwise JSON records or lines of text, whichever is more; and
    ``print`` output (``stream``) its lines, so ``print(df.to_string())`` counts too.

    >>> displayed_rows({"data": {"text/plain": "a\\nb\\n"}})
    2
    >>> displayed_rows({"name": "stdout", "text": "1\\n2\\n3\\n"}, "stream")
    3
    >>> displayed_rows({"data": {"application/json": [{"a": 1}, {"a": 2}]}})
    2
    >>> displayed_rows({"data": {"image/png": "..."}})
    0
    """
    if msg_type == "stream":
        return _lines(_text(content.get("text")))
    data = content.get("data")
    if not isinstance(data, Mapping):
        return 0
    html = _text(data.get("text/html"))
    table = _table_rows(html) if html else None
    if table is not None:
        return table  # what the browser shows (its text/plain repeats the header)
    return max(_lines(_text(data.get("text/plain"))), _json_rows(data.get("application/json")))


def marked_masked(content: Mapping[str, Any]) -> bool:
    """Whether an output's metadata says it was masked (by the kernel or the server).

    >>> marked_masked({"metadata": {"jupyter_secure": {"masked": True, "by": "kernel"}}})
    True
    """
    meta = content.get("metadata")
    mark = meta.get("jupyter_secure") if isinstance(meta, Mapping) else None
    return isinstance(mark, Mapping) and mark.get("masked") is True


def output_guarded(seconds: float, metrics: Metrics | None = None) -> None:
    """One kernel message guarded on its way to a browser, in ``seconds``."""
    (metrics or default_metrics()).output_guard_seconds.observe(seconds)


def output_shown(
    user: str,
    content: Mapping[str, Any],
    masked: bool,
    metrics: Metrics | None = None,
    msg_type: str = "display_data",
) -> int:
    """Count the rows of one output on its way to ``user`` and tell the observers.

    Call it only for :data:`ROW_MSG_TYPES`. The user goes to the observers, never
    into a label. Returns the rows counted.
    """
    rows = displayed_rows(content, msg_type)
    if rows <= 0:
        return 0
    (metrics or default_metrics()).output_rows.labels("true" if masked else "false").inc(rows)
    for observer in list(OUTPUT_OBSERVERS):
        try:
            observer(user, rows, masked, msg_type == "stream")
        except Exception:
            log.exception("output observer %r failed", observer)
    return rows


# -- gauges computed at scrape time -----------------------------------------------------------


class _Limits(Protocol):
    idle_timeout: float
    session_lifetime: float


class SessionRules(Protocol):
    """What decides a session is still valid: SignIn's policy and clock."""

    @property
    def policy(self) -> _Limits: ...

    def now(self) -> dt.datetime: ...


class _Sink(Protocol):
    stats: dict[str, int]

    @property
    def queue_depth(self) -> int: ...

    @property
    def last_checkpoint_time(self) -> float | None: ...


def _no_alarms() -> Mapping[str, int]:
    return {}


class StateCollector(Collector):
    """Gauges (and the sink's own counters) read when Prometheus scrapes.

    A failing database query leaves its series out of that scrape and logs
    why; the rest of ``/metrics`` is still served.
    """

    def __init__(
        self,
        db: Database,
        sink: _Sink,
        alarms_firing: Callable[[], Mapping[str, int]] = _no_alarms,
        *,
        sessions: SessionRules | None = None,
        monitor_health: Callable[[], Mapping[str, float]] = dict,
    ) -> None:
        self.db = db
        self.sink = sink
        self.alarms_firing = alarms_firing
        self.sessions = sessions
        self.monitor_health = monitor_health

    def describe(self) -> Iterable[Metric]:
        """The families without reading anything (lets the registry refuse duplicates)."""
        return [
            GaugeMetricFamily(PREFIX + "sessions_active", ""),
            GaugeMetricFamily(PREFIX + "dp_budget_spent", "", labels=["dataset"]),
            GaugeMetricFamily(PREFIX + "dp_budget_remaining", "", labels=["dataset"]),
            CounterMetricFamily(PREFIX + "audit_events", ""),
            CounterMetricFamily(PREFIX + "audit_write_errors", ""),
            GaugeMetricFamily(PREFIX + "audit_queue_depth", ""),
            GaugeMetricFamily(PREFIX + "audit_last_checkpoint_timestamp_seconds", ""),
            GaugeMetricFamily(PREFIX + "alarms_firing", "", labels=["severity"]),
            CounterMetricFamily(PREFIX + "monitor_errors", ""),
            CounterMetricFamily(PREFIX + "monitor_records_skipped", ""),
            GaugeMetricFamily(PREFIX + "monitor_last_evaluation_timestamp_seconds", ""),
            GaugeMetricFamily(PREFIX + "monitor_lag_records", ""),
        ]

    def collect(self) -> Iterator[Metric]:
        yield from self._database()
        yield from self._audit()
        yield self._alarms()
        yield from self._monitor()

    def _monitor(self) -> list[Metric]:
        """The alarm monitor's own health: a stalled or failing monitor must show."""
        try:
            health = dict(self.monitor_health())
        except Exception:
            log.exception("metrics: could not read the alarm monitor's health")
            return []
        if not health:
            return []
        return [
            CounterMetricFamily(
                PREFIX + "monitor_errors",
                "Alarm monitor failures: evaluations, records it could not write, actions.",
                value=health.get("errors", 0.0),
            ),
            CounterMetricFamily(
                PREFIX + "monitor_records_skipped",
                "Audit records the monitor skipped (never indexed, or failing their hash).",
                value=health.get("skipped", 0.0),
            ),
            GaugeMetricFamily(
                PREFIX + "monitor_last_evaluation_timestamp_seconds",
                "When the alarm monitor last evaluated the rules (Unix time).",
                value=health.get("last_evaluation", 0.0),
            ),
            GaugeMetricFamily(
                PREFIX + "monitor_lag_records",
                "Audit records indexed that the alarm monitor has not read yet.",
                value=health.get("lag", 0.0),
            ),
        ]

    def _database(self) -> list[Metric]:
        try:
            active = self._sessions_active()
            datasets = self._datasets()
        except SQLAlchemyError as exc:
            log.warning("metrics: the state database did not answer: %s", type(exc).__name__)
            return []
        sessions = GaugeMetricFamily(
            PREFIX + "sessions_active",
            "Signed-in (full, not ended, not idle or too old) sessions of enabled accounts.",
            value=active,
        )
        spent = GaugeMetricFamily(
            PREFIX + "dp_budget_spent",
            "Privacy loss spent on a dataset by everyone together (its measure, rho or epsilon).",
            labels=["dataset"],
        )
        remaining = GaugeMetricFamily(
            PREFIX + "dp_budget_remaining",
            "What the dataset-wide cap has left (its measure, rho or epsilon).",
            labels=["dataset"],
        )
        for name, cap, used in datasets:
            spent.add_metric([name], used / NANO)
            remaining.add_metric([name], max(cap - used, 0) / NANO)
        return [sessions, spent, remaining]

    def _sessions_active(self) -> int:
        query = (
            select(func.count())
            .select_from(LoginSession)
            .join(User, User.id == LoginSession.user_id)
            .where(
                LoginSession.stage == "full",
                LoginSession.ended_at.is_(None),
                User.disabled.is_(False),
            )
        )
        rules = self.sessions
        if rules is not None:
            now = rules.now()
            idle = dt.timedelta(seconds=rules.policy.idle_timeout)
            life = dt.timedelta(seconds=rules.policy.session_lifetime)
            query = query.where(
                LoginSession.last_seen_at >= now - idle, LoginSession.created_at >= now - life
            )
        with self.db.read() as s:
            return int(s.scalar(query) or 0)

    def _datasets(self) -> list[tuple[str, int, int]]:
        """(name, cap, spent) in nano-units. Floats only in the exposition: Prometheus has
        no other number."""
        query = select(PrivateDataset.name, PrivateDataset.cap_nanos, PrivateDataset.spent_nanos)
        with self.db.read() as s:
            return [(str(n), int(c), int(u or 0)) for n, c, u in s.execute(query)]

    def _audit(self) -> list[Metric]:
        stats = self.sink.stats
        out: list[Metric] = [
            CounterMetricFamily(
                PREFIX + "audit_events",
                "Audit records this server's sink made durable.",
                value=stats.get("events", 0),
            ),
            CounterMetricFamily(
                PREFIX + "audit_write_errors",
                "Batches this server's sink failed to write (their callers were refused).",
                value=stats.get("write_errors", 0),
            ),
            GaugeMetricFamily(
                PREFIX + "audit_queue_depth",
                "Audit records submitted and not yet written.",
                value=self.sink.queue_depth,
            ),
        ]
        last = self.sink.last_checkpoint_time
        if last is not None:
            out.append(
                GaugeMetricFamily(
                    PREFIX + "audit_last_checkpoint_timestamp_seconds",
                    "When this server's sink last signed a checkpoint (Unix time).",
                    value=last,
                )
            )
        return out

    def _alarms(self) -> Metric:
        firing = dict.fromkeys(SEVERITIES, 0)
        try:
            reported = dict(self.alarms_firing())
        except Exception:
            log.exception("metrics: could not read the firing alarms")
            reported = {}
        for severity, count in reported.items():
            key = severity if severity in firing else OTHER
            firing[key] = firing.get(key, 0) + int(count)
        family = GaugeMetricFamily(
            PREFIX + "alarms_firing", "Alarms in ALARM state, by severity.", labels=["severity"]
        )
        for severity, count in firing.items():
            family.add_metric([severity], count)
        return family


# -- wiring -----------------------------------------------------------------------------------


class _State(Protocol):
    """What :func:`install` uses of a SecureState."""

    @property
    def db(self) -> Database: ...

    @property
    def sink(self) -> AuditSink: ...

    @property
    def audit(self) -> AuditLogger: ...


class Installed:
    """One server's metrics wiring; :meth:`close` undoes it (the counters keep counting)."""

    def __init__(self, metrics: Metrics, state: _State, collector: StateCollector) -> None:
        self.metrics = metrics
        self.feed = MetricsFeed(metrics)
        self.collector = collector
        self._audit = state.audit
        self._sink = state.sink
        histogram = metrics.audit_append_seconds

        def timing(waits: Sequence[float]) -> None:
            for seconds in waits:
                histogram.observe(seconds)

        self._timing = timing
        self._closed = False

    def _open(self) -> None:
        self._audit.listeners.append(self.feed.observe)
        self._sink.on_durable = self._timing

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        registry = self.metrics.registry
        with _DEFAULT_LOCK:
            if getattr(registry, _COLLECTOR, None) is self.collector:
                registry.unregister(self.collector)
                setattr(registry, _COLLECTOR, None)
        if self.feed.observe in self._audit.listeners:
            self._audit.listeners.remove(self.feed.observe)
        if self._sink.on_durable == self._timing:
            self._sink.on_durable = None


def install(
    state: _State,
    *,
    alarms_firing: Callable[[], Mapping[str, int]] = _no_alarms,
    sessions: SessionRules | None = None,
    monitor_health: Callable[[], Mapping[str, float]] = dict,
    registry: CollectorRegistry = REGISTRY,
) -> Installed:
    """Feed this server's audit records, sink and database into ``registry``.

    A process serves one set of ``jupyter_secure_*`` gauges: a second server
    installed while the first still runs (two servers in one test process)
    replaces the first's collector instead of failing to start.
    """
    metrics = default_metrics(registry)
    collector = StateCollector(
        state.db, state.sink, alarms_firing, sessions=sessions, monitor_health=monitor_health
    )
    with _DEFAULT_LOCK:
        previous = getattr(registry, _COLLECTOR, None)
        if isinstance(previous, StateCollector):
            registry.unregister(previous)
            log.warning("metrics: a second server in this process replaces the first's gauges")
        registry.register(collector)
        setattr(registry, _COLLECTOR, collector)
    installed = Installed(metrics, state, collector)
    installed._open()
    return installed
