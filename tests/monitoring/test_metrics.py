"""Prometheus metrics: the record → counter mapping, the gauges, and /metrics on a real server.

The mapping is tested on a fresh registry: for each record, exactly the
expected series move and nothing else does. Label values never carry a user
name: a hostile one must not reach the exposition. The server tests read
``/metrics`` over HTTP as each role would, and compare before and after
(the process-wide registry keeps counting across tests).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from handlers.test_kernel_guard import FRAME, open_notebook
from helpers import PASSWORD, Trail
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from jupyter_secure.audit.logger import AuditLogger, Identity
from jupyter_secure.identity.signin import AccountAdmin
from jupyter_secure.identity.users import UserDirectory
from jupyter_secure.monitoring import metrics
from jupyter_secure.monitoring.metrics import (
    Metrics,
    MetricsFeed,
    StateCollector,
    default_metrics,
    displayed_rows,
    install,
)
from jupyter_secure.storage.database import Database, sqlite_url
from jupyter_secure.storage.models import LoginSession, PrivateDataset, User

pytestmark = pytest.mark.timeout(180)

HOSTILE = 'alice"} 1\nfoo 2'
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, keyed by (name, sorted labels)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def ours(registry: CollectorRegistry) -> Samples:
    text = generate_latest(registry).decode()
    return {
        k: v
        for k, v in samples(text).items()
        if k[0].startswith("jupyter_secure_") and not k[0].endswith("_created")
    }


def moved(before: Samples, after: Samples) -> dict[str, float]:
    """What changed, as ``name{k=v,…}`` → delta."""
    out = {}
    for key in after.keys() | before.keys():
        delta = after.get(key, 0.0) - before.get(key, 0.0)
        if delta:
            name, labels = key
            out[name + "{" + ",".join(f"{k}={v}" for k, v in labels) + "}"] = delta
    return out


# -- records -> counters ------------------------------------------------------------------------

# build() validates against the event schemas and never touches the sink.
LOGGER = AuditLogger(SimpleNamespace(), source="server")  # type: ignore[arg-type]


def record(
    name: str,
    *,
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    error: str | None = None,
    user: str = "alice",
) -> dict[str, Any]:
    return LOGGER.build(
        name, identity=Identity("User", user), request=request, response=response, error_code=error
    )


DIFF_ROLE = ["group staff: + member carol", "+ role analyst (scopes: api:read)"]
DIFF_PATHS = ["path rule #1: shared/** → shared/raw/**"]
PRIVATE = {"dataset": "visits", "query": {"kind": "count"}, "kernelId": "k", "cellId": "c"}
ANSWER = {"cost": "0.1", "remaining": "0.9", "releaseId": 1, "cached": False, "resultSha256": "x"}
POLICY = {"file": "/p.toml"}
DIGESTS = {"oldDigest": "a", "newDigest": "b"}

CASES: list[tuple[str, dict[str, Any], dict[str, float]]] = [
    ("login ok", record("Login", request={"userName": "alice"}, response={"next": "mfa"}),
     {"jupyter_secure_signin_attempts_total{outcome=ok}": 1}),
    ("login failed", record("Login", request={"userName": "bob"}, error="InvalidCredentials"),
     {"jupyter_secure_signin_attempts_total{outcome=failed}": 1}),
    ("login throttled", record("Login", request={"userName": "bob"}, error="Throttled"),
     {"jupyter_secure_signin_attempts_total{outcome=throttled}": 1}),
    ("login locked", record("Login", request={"userName": "bob"}, error="AccountLocked"),
     {"jupyter_secure_signin_attempts_total{outcome=locked}": 1}),
    ("login odd code", record("Login", request={"userName": "bob"}, error="Made-Up\n"),
     {"jupyter_secure_signin_attempts_total{outcome=other}": 1}),
    ("mfa totp ok", record("MfaVerify", request={"method": "totp"}, response={"session": "s"}),
     {"jupyter_secure_mfa_verifications_total{method=totp,outcome=ok}": 1}),
    ("mfa recovery bad",
     record("MfaVerify", request={"method": "recovery"}, error="InvalidRecoveryCode"),
     {"jupyter_secure_mfa_verifications_total{method=recovery,outcome=failed}": 1}),
    ("step-up replayed", record("StepUp", error="ReplayedCode"),
     {"jupyter_secure_mfa_verifications_total{method=step_up,outcome=replayed}": 1}),
    ("step-up ok", record("StepUp", response={"validSeconds": 300}),
     {"jupyter_secure_mfa_verifications_total{method=step_up,outcome=ok}": 1}),
    ("lockout", record("UserLocked", request={"name": "bob", "failures": 5},
                       response={"lockedUntil": "2027-01-01T00:00:00Z"}),
     {"jupyter_secure_lockouts_total{}": 1}),
    ("cell", record("CellExecuteRequested", request={
        "kernelId": "k", "owner": "alice", "msgId": "m", "silent": False,
        "codeSha256": "0" * 64, "codeBytes": 1}),
     {"jupyter_secure_cells_executed_total{seen_by=server}": 1}),
    ("unreconciled", record("ExecutionUnreconciled", error="ExecutionUnreconciled",
                            request={"kernelId": "k", "msgId": "m", "reason": "r"}),
     {"jupyter_secure_executions_unreconciled_total{}": 1}),
    ("dp ok", record("PrivateQuery", request=PRIVATE, response=ANSWER),
     {"jupyter_secure_dp_queries_total{outcome=ok}": 1}),
    ("dp cached", record("PrivateQuery", request=PRIVATE, response={**ANSWER, "cached": True}),
     {"jupyter_secure_dp_queries_total{outcome=cached}": 1}),
    ("dp refused", record("PrivateQuery", request=PRIVATE, error="BudgetExceeded"),
     {"jupyter_secure_dp_queries_total{outcome=BudgetExceeded}": 1}),
    ("dp crashed", record("PrivateQuery", request=PRIVATE, error="OperationalError"),
     {"jupyter_secure_dp_queries_total{outcome=other}": 1}),
    ("policy: roles", record("PolicyChanged", request=POLICY,
                             response={**DIGESTS, "diff": DIFF_ROLE}),
     {"jupyter_secure_config_changes_total{kind=role}": 1}),
    ("policy: paths", record("PolicyChanged", request=POLICY,
                             response={**DIGESTS, "diff": DIFF_PATHS}),
     {"jupyter_secure_config_changes_total{kind=policy}": 1}),
    ("policy: both", record("PolicyChanged", request=POLICY,
                            response={**DIGESTS, "diff": DIFF_ROLE + DIFF_PATHS}),
     {"jupyter_secure_config_changes_total{kind=role}": 1,
      "jupyter_secure_config_changes_total{kind=policy}": 1}),
    ("budget", record("BudgetChanged", request={
        "action": "grant", "dataset": "d", "principalType": "user", "principal": "bob"},
        response={"before": None, "after": "1"}),
     {"jupyter_secure_config_changes_total{kind=budget}": 1}),
    ("dataset", record("DatasetChanged", request={"action": "add", "dataset": "d"}, response={}),
     {"jupyter_secure_config_changes_total{kind=dataset}": 1}),
    ("keys", record("KeysRotated", request={"keySource": "file"}, response={
        "secrets": 3, "oldKeyIds": ["a"], "newKeyId": "b", "oldKeysDropped": False}),
     {"jupyter_secure_config_changes_total{kind=key}": 1}),
    ("user added", record("UserAdded", request={
        "name": "bob", "roles": ["student"], "groups": [], "passwordSet": True}),
     {"jupyter_secure_config_changes_total{kind=user}": 1}),
    ("user disabled", record("UserDisabled", request={"name": "bob"}),
     {"jupyter_secure_config_changes_total{kind=user}": 1}),
    ("token", record("ApiTokenRevoked", request={"id": "t"}),
     {"jupyter_secure_config_changes_total{kind=token}": 1}),
    ("mfa reset", record("MfaReset", request={"name": "bob"}),
     {"jupyter_secure_config_changes_total{kind=mfa}": 1}),
    # Refused changes changed nothing; most records count nothing at all.
    ("user add refused", record("UserAdded", error="InvalidInput", request={
        "name": "bob", "roles": [], "groups": [], "passwordSet": False}), {}),
    ("policy rejected", record("PolicyRejected", request=POLICY, error="PolicyInvalid"), {}),
    ("server started", record("ServerStarted", request={
        "version": "1", "ip": "", "port": 1, "baseUrl": "/", "rootDir": "/"}), {}),
    ("access denied", record("AccessDenied", error="AccessDenied", request={
        "method": "GET", "path": "/x", "scope": "secure:metrics:read"},
        response={"status": 403, "rule": "r"}), {}),
    ("cell executed", record("CellExecuted", request={"kernelId": "k", "msgId": "m"},
                             response={"status": "ok"}), {}),
]  # fmt: skip


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def fresh(registry: CollectorRegistry) -> Metrics:
    return default_metrics(registry)


@pytest.mark.parametrize(("what", "event", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_record_moves_exactly_its_series(
    fresh: Metrics, registry: CollectorRegistry, what: str, event: dict[str, Any], expected: Any
) -> None:
    feed = MetricsFeed(fresh)
    before = ours(registry)
    feed.observe(event)
    assert moved(before, ours(registry)) == expected, what


def test_every_documented_config_kind_and_closed_label_exists_at_zero(
    fresh: Metrics, registry: CollectorRegistry
) -> None:
    got = ours(registry)
    for kind in metrics.CONFIG_KINDS:
        assert got[("jupyter_secure_config_changes_total", (("kind", kind),))] == 0
    assert got[("jupyter_secure_cells_executed_total", (("seen_by", "kernel"),))] == 0
    assert got[("jupyter_secure_output_rows_total", (("masked", "true"),))] == 0


def test_default_metrics_are_made_once_per_registry(registry: CollectorRegistry) -> None:
    first = default_metrics(registry)
    assert default_metrics(registry) is first  # a second Counter() would raise "Duplicated"
    assert default_metrics() is default_metrics()
    assert default_metrics() is not first


def test_no_label_ever_carries_a_user_name(fresh: Metrics, registry: CollectorRegistry) -> None:
    feed = MetricsFeed(fresh)
    hostile = [
        record("Login", request={"userName": HOSTILE}, error=HOSTILE, user=HOSTILE),
        record("MfaVerify", request={"method": HOSTILE}, error="InvalidCode", user=HOSTILE),
        record("PrivateQuery", request={**PRIVATE, "dataset": HOSTILE}, error=HOSTILE,
               user=HOSTILE),
        record("PolicyChanged", request=POLICY, response={**DIGESTS, "diff": [HOSTILE]}),
        record("UserAdded", user=HOSTILE, request={
            "name": HOSTILE, "roles": [], "groups": [], "passwordSet": False}),
    ]  # fmt: skip
    for event in hostile:
        feed.observe(event)
    metrics.authz_decided(HOSTILE, False, fresh)
    metrics.authz_decided(f"{HOSTILE}:read", True, fresh)
    metrics.output_shown(HOSTILE, {"data": {"text/plain": "1\n2"}}, True, fresh)
    text = generate_latest(registry).decode()
    assert "alice" not in text
    assert "foo 2" not in text
    changes = moved({}, ours(registry))
    assert changes["jupyter_secure_authz_decisions_total{outcome=deny,resource=other}"] == 1
    assert changes["jupyter_secure_mfa_verifications_total{method=other,outcome=failed}"] == 1
    assert changes["jupyter_secure_dp_queries_total{outcome=other}"] == 1


def test_route_decisions_count_by_resource(fresh: Metrics, registry: CollectorRegistry) -> None:
    before = ours(registry)
    metrics.authz_decided("secure:metrics:read", False, fresh)
    metrics.authz_decided("secure:unmask", True, fresh)
    metrics.authz_decided("kernels:execute", True, fresh)
    metrics.authz_decided("", True, fresh)  # a page that needs no scope
    assert moved(before, ours(registry)) == {
        "jupyter_secure_authz_decisions_total{outcome=deny,resource=secure:metrics}": 1,
        "jupyter_secure_authz_decisions_total{outcome=allow,resource=secure:unmask}": 1,
        "jupyter_secure_authz_decisions_total{outcome=allow,resource=kernels}": 1,
        "jupyter_secure_authz_decisions_total{outcome=allow,resource=none}": 1,
    }


def test_kernel_witness_batches_count_started_cells(
    fresh: Metrics, registry: CollectorRegistry
) -> None:
    before = ours(registry)
    batch = [{"phase": "pre"}, {"phase": "post"}, {"phase": "pre"}, {"phase": "odd"}]
    metrics.kernel_witnessed(batch, fresh)
    metrics.kernel_witnessed([], fresh)
    changes = moved(before, ours(registry))
    assert changes == {"jupyter_secure_cells_executed_total{seen_by=kernel}": 2}


# -- rows shown -----------------------------------------------------------------------------------


def _frame_html(rows: int, extra_class: str = "") -> str:
    body = "".join(f"<tr>\n<th>{i}</th>\n<td>x</td>\n</tr>\n" for i in range(rows))
    cls = f"dataframe {extra_class}".strip()
    return (
        f'<div><table border="1" class="{cls}">\n<thead>\n<tr style="text-align: right;">\n'
        f"<th></th>\n<th>a</th>\n</tr>\n</thead>\n<tbody>\n{body}</tbody>\n</table>\n</div>"
    )


@pytest.mark.parametrize(
    ("content", "rows"),
    [
        ({"data": {"text/html": _frame_html(3), "text/plain": "header\n0\n1\n2"}}, 3),
        ({"data": {"text/html": _frame_html(2) + _frame_html(5, "wide")}}, 7),
        ({"data": {"text/html": _frame_html(0), "text/plain": "Empty DataFrame"}}, 0),
        ({"data": {"text/html": "<b>hi</b>", "text/plain": "a\nb\nc"}}, 3),
        ({"data": {"text/plain": "a\nb\n"}}, 2),
        ({"data": {"text/plain": ["a\n", "b"]}}, 2),
        ({"data": {"text/plain": ""}}, 0),
        ({"data": {"image/png": "iVBOR"}}, 0),
        ({"data": "not a bundle"}, 0),
        ({}, 0),
        # class="dataframe" outside a <table> tag is not a table
        ({"data": {"text/html": '<div class="dataframe">x</div>', "text/plain": "1"}}, 1),
    ],
)
def test_displayed_rows(content: dict[str, Any], rows: int) -> None:
    assert displayed_rows(content) == rows


def test_a_masked_pandas_frame_keeps_its_row_count() -> None:
    import pandas as pd

    frame = pd.DataFrame({"email": [f"u{i}@example.com" for i in range(12)], "n": range(12)})
    html = frame._repr_html_()
    assert displayed_rows({"data": {"text/html": html, "text/plain": repr(frame)}}) == 12


def test_output_rows_and_observers(
    fresh: Metrics, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, int, bool, bool]] = []

    def broken(user: str, rows: int, masked: bool, printed: bool) -> None:
        raise RuntimeError("an observer must not break delivery")

    monkeypatch.setattr(metrics, "OUTPUT_OBSERVERS", [broken, lambda *a: seen.append(a)])
    before = ours(registry)
    assert metrics.output_shown("alice", {"data": {"text/html": _frame_html(4)}}, True, fresh) == 4
    assert metrics.output_shown("bob", {"data": {"text/plain": "x"}}, False, fresh) == 1
    assert metrics.output_shown("bob", {"data": {"image/png": "x"}}, False, fresh) == 0
    assert moved(before, ours(registry)) == {
        "jupyter_secure_output_rows_total{masked=true}": 4,
        "jupyter_secure_output_rows_total{masked=false}": 1,
    }
    assert seen == [("alice", 4, True, False), ("bob", 1, False, False)]


# -- gauges from the database and the sink ---------------------------------------------------------


class Rules:
    """SignIn's session rules, with a fixed clock."""

    def __init__(self, now: dt.datetime) -> None:
        self._now = now
        self.policy = SimpleNamespace(idle_timeout=1800.0, session_lifetime=8 * 3600.0)

    def now(self) -> dt.datetime:
        return self._now


NOW = dt.datetime(2027, 1, 15, 12, 0, tzinfo=dt.UTC)


def _populate(db: Database) -> None:
    ago = lambda **kw: NOW - dt.timedelta(**kw)  # noqa: E731
    with db.write() as s:
        alice, bob = User(name="alice"), User(name="bob", disabled=True)
        s.add_all([alice, bob])
        s.flush()
        rows = [  # (user, stage, created, last seen, ended)
            (alice, "full", ago(minutes=5), ago(minutes=1), None),  # live
            (alice, "full", ago(hours=1), ago(minutes=20), None),  # live
            (alice, "full", ago(hours=1), ago(minutes=40), None),  # idle
            (alice, "full", ago(hours=9), ago(minutes=1), None),  # too old
            (alice, "full", ago(minutes=5), ago(minutes=1), NOW),  # ended
            (alice, "password", ago(minutes=1), ago(minutes=1), None),  # second factor due
            (bob, "full", ago(minutes=5), ago(minutes=1), None),  # disabled account
        ]
        for i, (user, stage, created, seen, ended) in enumerate(rows):
            s.add(LoginSession(id=f"s{i}", public_id=f"p{i}", user_id=user.id, stage=stage,
                               created_at=created, last_seen_at=seen, ended_at=ended))  # fmt: skip
        for name, cap, spent in (("visits", 2_000_000_000, 500_000_000), ("tiny", 10, 25)):
            s.add(PrivateDataset(name=name, spec="{}", measure="rho", cap_nanos=cap,
                                 spent_nanos=spent, version="v", added_by="root"))  # fmt: skip


def test_gauges_from_the_database(db: Database, registry: CollectorRegistry) -> None:
    _populate(db)
    sink = SimpleNamespace(
        stats={"events": 7, "write_errors": 1}, queue_depth=3, last_checkpoint_time=1.8e9
    )
    firing = {"warning": 2, "critical": 1, "bizarre": 4}
    collector = StateCollector(db, sink, lambda: firing, sessions=Rules(NOW))
    registry.register(collector)
    got = ours(registry)
    assert got[("jupyter_secure_sessions_active", ())] == 2
    assert got[("jupyter_secure_dp_budget_spent", (("dataset", "visits"),))] == 0.5
    assert got[("jupyter_secure_dp_budget_remaining", (("dataset", "visits"),))] == 1.5
    assert got[("jupyter_secure_dp_budget_remaining", (("dataset", "tiny"),))] == 0  # over cap
    assert got[("jupyter_secure_audit_events_total", ())] == 7
    assert got[("jupyter_secure_audit_write_errors_total", ())] == 1
    assert got[("jupyter_secure_audit_queue_depth", ())] == 3
    assert got[("jupyter_secure_audit_last_checkpoint_timestamp_seconds", ())] == 1.8e9
    alarms = {k[1][0][1]: v for k, v in got.items() if k[0] == "jupyter_secure_alarms_firing"}
    assert alarms == {"info": 0, "warning": 2, "critical": 1, "other": 4}
    # Without the rules (a store without SignIn): not ended, full, enabled account.
    assert StateCollector(db, sink)._sessions_active() == 4


def test_a_dead_database_leaves_its_gauges_out_not_the_page(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    db = Database(sqlite_url(tmp_path / "never-migrated.db"))
    sink = SimpleNamespace(stats={}, queue_depth=0, last_checkpoint_time=None)
    registry.register(StateCollector(db, sink, lambda: 1 / 0))  # type: ignore[arg-type]
    try:
        names = {k[0] for k in ours(registry)}
    finally:
        db.dispose()
    assert "jupyter_secure_sessions_active" not in names
    assert "jupyter_secure_audit_queue_depth" in names
    assert "jupyter_secure_alarms_firing" in names


@pytest.fixture
def wired(tmp_path: Path, trail: Trail, registry: CollectorRegistry) -> Iterator[Any]:
    db = Database(sqlite_url(tmp_path / "state.db"))
    db.migrate()
    yield SimpleNamespace(db=db, sink=trail.sink, audit=trail.logger)
    db.dispose()


def test_install_feeds_times_and_closes(wired: Any, registry: CollectorRegistry) -> None:
    handle = install(wired, alarms_firing=lambda: {"critical": 1}, registry=registry)
    assert handle.feed.observe in wired.audit.listeners
    wired.audit.record("UserRemoved", identity=Identity("OSUser", "root"), request={"name": "x"})
    wired.sink.checkpoint()
    got = ours(registry)
    assert got[("jupyter_secure_config_changes_total", (("kind", "user"),))] == 1
    assert got[("jupyter_secure_audit_append_seconds_count", ())] == 1
    assert got[("jupyter_secure_audit_events_total", ())] == 1
    assert got[("jupyter_secure_audit_last_checkpoint_timestamp_seconds", ())] > 1e9
    assert got[("jupyter_secure_alarms_firing", (("severity", "critical"),))] == 1

    # A second server in the process takes over the gauges; closing the first does not
    # take them away from it.
    second = install(wired, registry=registry)
    handle.close()
    handle.close()
    assert ("jupyter_secure_sessions_active", ()) in ours(registry)
    second.close()
    after = ours(registry)
    assert ("jupyter_secure_sessions_active", ()) not in after
    assert wired.audit.listeners == []
    assert wired.sink.on_durable is None
    wired.audit.record("UserRemoved", identity=Identity("OSUser", "root"), request={"name": "y"})
    assert ours(registry)[("jupyter_secure_config_changes_total", (("kind", "user"),))] == 1
    install(wired, registry=registry).close()  # and it can be installed again


def test_sink_reports_queue_depth_and_append_times(trail: Trail) -> None:
    waits: list[float] = []
    trail.sink.on_durable = waits.extend
    assert trail.sink.queue_depth == 0
    trail.add(5)
    assert len(waits) == 5
    assert all(w >= 0 for w in waits)
    trail.sink.on_durable = lambda _: 1 / 0  # type: ignore[func-returns-value]
    trail.add(1)  # a failing hook is logged, the append stands
    assert trail.sink.stats["events"] == 6


# -- /metrics on a real server -------------------------------------------------------------------


async def scrape(browser: Any) -> Samples:
    r = await browser.get("metrics")
    assert r.code == 200, r.code
    return samples(r.body.decode())


async def test_metrics_endpoint_is_for_admins_and_auditors(server: Any) -> None:
    server.add_user("root", roles=("admin",))
    server.add_user("audra", roles=("auditor",))
    server.add_user("stu", roles=("student",))
    browsers = {name: await server.sign_in(name) for name in ("root", "audra", "stu", "alice")}
    for name in ("root", "audra"):
        r = await browsers[name].get("metrics")
        assert r.code == 200, (name, r.code)
        text = r.body.decode()
        for metric in (
            "jupyter_secure_signin_attempts_total",
            "jupyter_secure_authz_decisions_total",
            "jupyter_secure_sessions_active",
            "jupyter_secure_audit_events_total",
            "jupyter_secure_audit_append_seconds_bucket",
            "jupyter_secure_audit_last_checkpoint_timestamp_seconds",
            "jupyter_secure_alarms_firing",
        ):
            assert metric in text, (name, metric)
    before = await scrape(browsers["root"])
    for name in ("stu", "alice"):
        assert (await browsers[name].get("metrics")).code == 403, name
    # What the admin guide says Prometheus should use: a service account's token.
    with server.state.db.write() as s:
        UserDirectory().add(s, "prometheus", roles=("auditor",), service=True)
    token, _ = AccountAdmin(server.signin).service_token(
        "prometheus", label="p", scopes=["secure:metrics:read"], days=90, actor=Identity.system()
    )
    auth = {"Authorization": f"token {token}"}
    assert (await server.browser().get("metrics", headers=auth)).code == 200
    anonymous = await server.browser().get("metrics")
    assert anonymous.code in (302, 403), anonymous.code
    if anonymous.code == 302:
        assert "login" in anonymous.headers["Location"]
    after = await scrape(browsers["root"])
    deny = ("jupyter_secure_authz_decisions_total",
            (("outcome", "deny"), ("resource", "secure:metrics")))  # fmt: skip
    assert after[deny] - before.get(deny, 0) == 2  # the anonymous request never reached the guard
    assert after[("jupyter_secure_sessions_active", ())] == 4
    assert after[("jupyter_secure_audit_events_total", ())] > 0
    assert after[("jupyter_secure_audit_append_seconds_count", ())] > 0


async def test_a_failed_signin_moves_the_counter(server: Any) -> None:
    server.add_user("root", roles=("admin",))
    admin = await server.sign_in("root")
    key = ("jupyter_secure_signin_attempts_total", (("outcome", "failed"),))
    before = await scrape(admin)
    for name in ("bob", HOSTILE):
        b = server.browser()
        await b.get("login")
        await b.post("login", form={"username": name, "password": PASSWORD + "x"})
    r = await admin.get("metrics")
    text = r.body.decode()
    assert samples(text)[key] - before[key] == 2
    assert "foo 2" not in text
    assert 'alice"' not in text


@pytest.fixture
def seen() -> Iterator[list[tuple[str, int, bool]]]:
    """What the output observers are told (next to any the server subscribed)."""
    got: list[tuple[str, int, bool]] = []

    def observer(user: str, rows: int, masked: bool, printed: bool) -> None:
        got.append((user, rows, masked))

    metrics.OUTPUT_OBSERVERS.append(observer)
    yield got
    metrics.OUTPUT_OBSERVERS.remove(observer)


async def test_cells_and_rows_from_a_real_guarded_kernel(
    server: Any, seen: list[tuple[str, int, bool]]
) -> None:
    server.add_user("root", roles=("admin",))
    admin = await server.sign_in("root")
    server_key = ("jupyter_secure_cells_executed_total", (("seen_by", "server"),))
    kernel_key = ("jupyter_secure_cells_executed_total", (("seen_by", "kernel"),))
    masked_key = ("jupyter_secure_output_rows_total", (("masked", "true"),))
    raw_key = ("jupyter_secure_output_rows_total", (("masked", "false"),))
    guarded_key = ("jupyter_secure_output_guard_seconds_count", ())
    guarded_sum = ("jupyter_secure_output_guard_seconds_sum", ())
    before = await scrape(admin)
    _, _, client = await open_notebook(server, "alice")
    made = await client.run(FRAME)
    assert not [m for m in made if m["msg_type"] == "error"]
    shown = await client.run("df")
    assert any(m["msg_type"] == "execute_result" for m in shown), json.dumps(shown)[:2000]
    after = await scrape(admin)
    assert after[server_key] - before[server_key] == 2
    # Every message the guard decoded on its way here was timed (plain status ones pass
    # unread and are not); the connection's own kernel_info exchange comes on top.
    decoded = [m for m in made + shown if m["msg_type"] != "status"]
    assert after[guarded_key] - before.get(guarded_key, 0) >= len(decoded) >= 3
    assert after[guarded_sum] > before.get(guarded_sum, 0)
    assert after[raw_key] == before[raw_key]
    # The kernel masked the frame (the server found nothing left to replace): masked.
    assert after[masked_key] - before[masked_key] == 3
    assert seen == [("alice", 3, True)]

    # An admin sees raw values: unmasked, even when the kernel's output claims otherwise.
    _, _, root = await open_notebook(server, "root")
    forged = (
        'display({"text/plain": "a\\nb"}, raw=True, metadata={"jupyter_secure": {"masked": True}})'
    )
    got = await root.run(FRAME + "\ndisplay(df)\n" + forged)
    assert not [m for m in got if m["msg_type"] == "error"], json.dumps(got)[:2000]
    raw = await scrape(admin)
    assert raw[raw_key] - after[raw_key] == 5
    assert raw[masked_key] == after[masked_key]
    assert seen[1:] == [("root", 3, False), ("root", 2, False)]

    # The kernels' witnesses report the same three cells when their batches arrive.
    deadline = time.monotonic() + 60
    while True:
        latest = await scrape(admin)
        if latest[kernel_key] - before[kernel_key] >= 3 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert latest[kernel_key] - before[kernel_key] == 3
