"""CloudWatch export against moto's server on loopback: real boto3 requests, real responses."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from moto.server import ThreadedMotoServer
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from traitlets import TraitError

from jupyter_secure.errors import StartupRefused
from jupyter_secure.monitoring.cloudwatch import (
    MAX_EVENT_BYTES,
    CloudWatchExport,
    CloudWatchExporter,
    MetricConverter,
    Point,
    batched,
    datum_bytes,
    log_batches,
    log_event,
)
from jupyter_secure.monitoring.exporting import ExportFailed, FileCursor

REGION = "us-east-1"
T0 = (int(time.time()) // 60) * 60 - 600  # ten minutes ago, on a minute boundary


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials; nothing read from the machine's AWS files or instance metadata."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Cursor:
    def __init__(self) -> None:
        self.seq = 0
        self.history: list[int] = []

    def get(self) -> int:
        return self.seq

    def set(self, seq: int) -> None:
        self.seq = seq
        self.history.append(seq)


def _config(moto_url: str, **traits: Any) -> CloudWatchExport:
    unique = uuid.uuid4().hex[:8]
    defaults: dict[str, Any] = {
        "enabled": True,
        "region": REGION,
        "endpoint_url": moto_url,
        "namespace": f"Test{unique}",
        "log_group": f"/test/{unique}",
        "log_stream": "host-1",
    }
    return CloudWatchExport(**{**defaults, **traits})


def _exporter(
    config: CloudWatchExport,
    registry: CollectorRegistry | None = None,
    records: list[tuple[int, bytes]] | None = None,
    cursor: Cursor | None = None,
    **kwargs: Any,
) -> CloudWatchExporter:
    rows = records if records is not None else []
    cur = cursor or Cursor()

    def after(seq: int, limit: int) -> list[tuple[int, bytes]]:
        return [r for r in rows if r[0] > seq][:limit]

    return CloudWatchExporter(
        config, registry or CollectorRegistry(), after, cur.get, cur.set, **kwargs
    )


def _client(service: str, moto_url: str) -> Any:
    return boto3.client(service, endpoint_url=moto_url, region_name=REGION)


def _count_calls(exporter: CloudWatchExporter, service: str, op: str) -> list[int]:
    calls: list[int] = []
    client = exporter._cloudwatch if service == "cloudwatch" else exporter._logs
    client.meta.events.register(f"before-call.{service}.{op}", lambda **_: calls.append(1))
    return calls


def _all_events(moto_url: str, group: str, stream: str) -> list[dict[str, Any]]:
    logs = _client("logs", moto_url)
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
    while True:
        page = logs.get_log_events(**kwargs)
        events.extend(page["events"])
        if not page["events"] or page["nextForwardToken"] == kwargs.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextForwardToken"]


def _line(seq: int, t: float, pad: str = "") -> bytes:
    when = dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="microseconds")
    event = {"seq": seq, "eventTime": when.replace("+00:00", "Z"), "eventName": "Test", "p": pad}
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- configuration -----------------------------------------------------------------------------


def test_dimensions_are_checked_naming_the_field() -> None:
    CloudWatchExport(dimensions={f"D{i}": "x" for i in range(29)})
    with pytest.raises(TraitError, match=r"CloudWatchExport\.dimensions: at most 29"):
        CloudWatchExport(dimensions={f"D{i}": "x" for i in range(30)})
    with pytest.raises(TraitError, match=r"CloudWatchExport\.dimensions: name"):
        CloudWatchExport(dimensions={"": "x"})
    with pytest.raises(TraitError, match=r"CloudWatchExport\.dimensions: name"):
        CloudWatchExport(dimensions={"n" * 256: "x"})
    with pytest.raises(TraitError, match=r"CloudWatchExport\.dimensions\['Site'\]: value"):
        CloudWatchExport(dimensions={"Site": ""})
    with pytest.raises(TraitError, match=r"CloudWatchExport\.dimensions\['Site'\]: value"):
        CloudWatchExport(dimensions={"Site": "v" * 1025})
    with pytest.raises(TraitError, match=r"CloudWatchExport\.endpoint_url"):
        CloudWatchExport(endpoint_url="ftp://example.org")
    with pytest.raises(TraitError, match=r"CloudWatchExport\.namespace"):
        CloudWatchExport(namespace="AWS/EC2")
    with pytest.raises(TraitError, match=r"CloudWatchExport\.log_group"):
        CloudWatchExport(log_group="bad group")
    with pytest.raises(TraitError, match=r"CloudWatchExport\.log_stream"):
        CloudWatchExport(log_stream="a:b")
    with pytest.raises(TraitError, match="interval"):
        CloudWatchExport(interval=1)
    assert CloudWatchExport().enabled is False
    assert CloudWatchExport().stream_name() == socket.gethostname()


def test_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(StartupRefused, match=r"pip install 'jupyter-secure\[cloudwatch\]'"):
        _exporter(CloudWatchExport(enabled=True, region=REGION))


def test_the_modules_import_without_the_extras() -> None:
    code = (
        "import sys\n"
        "for name in ('boto3', 'botocore', 'opentelemetry', 'moto'):\n"
        "    sys.modules[name] = None\n"
        "import jupyter_secure.monitoring.cloudwatch as cw, jupyter_secure.monitoring.otel as ot\n"
        "cw.CloudWatchExport(dimensions={'Site': 'x'}); ot.OtelExport(endpoint='http://c:4318')\n"
        "assert 'prometheus_client' not in sys.modules\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr


def test_file_cursor_survives_and_starts_at_zero(tmp_path: Path) -> None:
    cursor = FileCursor(tmp_path / "cloudwatch.cursor")
    assert cursor.get() == 0
    cursor.set(42)
    assert FileCursor(tmp_path / "cloudwatch.cursor").get() == 42
    assert (tmp_path / "cloudwatch.cursor").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "cloudwatch.cursor.tmp").exists()
    (tmp_path / "cloudwatch.cursor").write_text("garbage")
    assert cursor.get() == 0, "unreadable: send again rather than skip"


def test_no_region_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(StartupRefused, match=r"CloudWatchExport\.region"):
        _exporter(CloudWatchExport(enabled=True))


# -- metrics ------------------------------------------------------------------------------------


def test_counters_wait_for_a_baseline_then_send_increases() -> None:
    registry = CollectorRegistry()
    c = Counter("jupyter_secure_signin_attempts", "s", ["outcome"], registry=registry)
    c.labels("ok").inc(10)
    conv = MetricConverter({"Site": "lab-1"})
    now = dt.datetime.now(dt.UTC)

    first = conv.convert(registry.collect(), now)
    assert [p.datum for p in first if p.datum] == [], "no counter on the first export"
    conv.commit(first)

    c.labels("ok").inc(3)
    c.labels("failed").inc(2)  # a series born since the previous export
    second = conv.convert(registry.collect(), now)
    values = {p.datum["Dimensions"][1]["Value"]: p.datum["Value"] for p in second if p.datum}
    assert values == {"ok": 3.0, "failed": 2.0}
    assert all(p.datum["Unit"] == "Count" for p in second if p.datum)
    assert second[0].datum is not None
    assert second[0].datum["MetricName"] == "signin_attempts_total"
    assert second[0].datum["Dimensions"][0] == {"Name": "Site", "Value": "lab-1"}

    # Not delivered (not committed): the next increase covers both periods.
    c.labels("ok").inc(1)
    third = conv.convert(registry.collect(), now)
    assert {p.datum["Value"] for p in third if p.datum and p.key and "ok" in str(p.key)} == {4.0}
    conv.commit(third)

    # A reading below the last one is a restarted process: the new value is the increase.
    conv.readings = {k: v + 100 for k, v in conv.readings.items()}
    fourth = conv.convert(registry.collect(), now)
    assert {p.datum["Value"] for p in fourth if p.datum} == {14.0, 2.0}


def test_labels_become_dimensions_within_thirty() -> None:
    registry = CollectorRegistry()
    labels = [f"l{i:02d}" for i in range(10)]
    g = Gauge("jupyter_secure_wide", "w", [*labels, "Site", "empty"], registry=registry)
    g.labels(*(f"v{i}" for i in range(10)), "label-site", "").set(1)
    conv = MetricConverter({f"D{i:02d}": "x" for i in range(25)} | {"Site": "lab-1"})
    [point] = conv.convert(registry.collect(), dt.datetime.now(dt.UTC))
    assert point.datum is not None
    dims = point.datum["Dimensions"]
    assert len(dims) == 30
    assert {"Name": "Site", "Value": "lab-1"} in dims, "a configured dimension wins a clash"
    assert all(d["Value"] for d in dims), "empty label values are left out"
    assert [d["Name"] for d in dims[26:]] == ["l00", "l01", "l02", "l03"]


def test_batches_respect_count_and_size() -> None:
    datums = [{"MetricName": f"m{i}", "Dimensions": [], "Value": 1.0} for i in range(2500)]
    sizes = [len(b) for b in batched(datums, datum_bytes, 1000, 1_000_000)]
    assert sizes == [1000, 1000, 500]
    wide = {
        "MetricName": "m",
        "Value": 1.0,
        "Dimensions": [{"Name": f"n{i}" * 50, "Value": "é" * 1024} for i in range(30)],
    }
    assert datum_bytes(wide) > 30 * 1024 * 6, "percent-encoded, as the query protocol sends it"
    batches = list(batched([wide] * 20, datum_bytes, 1000, 1_000_000))
    assert all(sum(datum_bytes(d) for d in b) <= 1_000_000 for b in batches)
    assert sum(len(b) for b in batches) == 20


def test_metrics_arrive_with_dimensions_and_right_deltas(moto_url: str) -> None:
    registry = CollectorRegistry()
    signins = Counter("jupyter_secure_signin_attempts", "s", ["outcome"], registry=registry)
    budget = Gauge("jupyter_secure_dp_budget_remaining", "b", ["dataset"], registry=registry)
    append = Histogram(
        "jupyter_secure_audit_append_seconds", "a", registry=registry, buckets=(0.1, 1.0)
    )
    Gauge("process_open_fds", "Not the product's", registry=registry).set(9)
    signins.labels("ok").inc(5)
    budget.labels("census").set(0.75)
    clock = Clock(T0 + 5)
    config = _config(moto_url, dimensions={"Site": "lab-1"})
    exporter = _exporter(config, registry, clock=clock)

    exporter.tick()  # baseline: gauges only
    signins.labels("ok").inc(3)
    signins.labels("failed").inc(1)
    append.observe(0.25)
    append.observe(0.5)
    clock.t = T0 + 65
    exporter.tick()
    signins.labels("ok").inc(2)
    clock.t = T0 + 125
    exporter.tick()
    assert exporter.failures == 0, exporter.last_error

    cw = _client("cloudwatch", moto_url)
    listed = cw.list_metrics(Namespace=config.namespace)["Metrics"]
    seen = {
        (m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in listed
    }
    assert ("dp_budget_remaining", (("Site", "lab-1"), ("dataset", "census"))) in seen
    assert ("signin_attempts_total", (("Site", "lab-1"), ("outcome", "ok"))) in seen
    assert ("audit_append_seconds_sum", (("Site", "lab-1"),)) in seen
    assert not any(name.startswith(("jupyter_secure_", "process_")) for name, _ in seen)

    def sums(name: str, **dims: str) -> dict[int, float]:
        points = cw.get_metric_statistics(
            Namespace=config.namespace,
            MetricName=name,
            Dimensions=[{"Name": "Site", "Value": "lab-1"}]
            + [{"Name": k, "Value": v} for k, v in dims.items()],
            StartTime=dt.datetime.fromtimestamp(T0 - 60, dt.UTC),
            EndTime=dt.datetime.fromtimestamp(T0 + 300, dt.UTC),
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        return {(int(p["Timestamp"].timestamp()) - T0) // 60 * 60: p["Sum"] for p in points}

    assert sums("signin_attempts_total", outcome="ok") == {60: 3.0, 120: 2.0}
    assert sums("signin_attempts_total", outcome="failed") == {60: 1.0, 120: 0.0}
    assert sums("audit_append_seconds_count") == {60: 2.0, 120: 0.0}
    assert sums("audit_append_seconds_sum") == {60: 0.75, 120: 0.0}
    assert sums("dp_budget_remaining", dataset="census") == {0: 0.75, 60: 0.75, 120: 0.75}


def test_many_series_go_in_batches_of_1000(moto_url: str) -> None:
    registry = CollectorRegistry()
    g = Gauge("jupyter_secure_per_user", "u", ["user"], registry=registry)
    for i in range(1500):
        g.labels(f"user{i}").set(i)
    exporter = _exporter(_config(moto_url), registry)
    calls = _count_calls(exporter, "cloudwatch", "PutMetricData")
    assert exporter.export_metrics() == 1500
    assert len(calls) == 2


# -- audit records ------------------------------------------------------------------------------


def test_records_from_the_real_audit_logger_arrive_in_order(moto_url: str, trail: Any) -> None:
    segment = trail.directory / "segment-00000001.jsonl"

    def after(seq: int, limit: int) -> list[tuple[int, bytes]]:
        lines = segment.read_bytes().splitlines(keepends=True)
        rows = [(int(json.loads(line)["seq"]), line) for line in lines]
        return [r for r in rows if r[0] > seq][:limit]

    config = _config(moto_url)
    _client("logs", moto_url).create_log_group(logGroupName=config.log_group)  # exists already
    cursor = Cursor()
    exporter = CloudWatchExporter(config, CollectorRegistry(), after, cursor.get, cursor.set)

    trail.add(5)
    exporter.tick()
    assert exporter.failures == 0, exporter.last_error
    assert cursor.seq == 5
    trail.add(3)
    exporter.tick()
    exporter.tick()  # nothing new: no call, the cursor stays
    assert cursor.history == [5, 8]

    events = _all_events(moto_url, config.log_group, "host-1")
    lines = segment.read_bytes().splitlines()
    assert [e["message"].encode() for e in events] == lines
    assert [json.loads(e["message"])["seq"] for e in events] == list(range(1, 9))
    for event, line in zip(events, lines, strict=True):
        when = dt.datetime.fromisoformat(json.loads(line)["eventTime"])
        assert event["timestamp"] == int(when.timestamp() * 1000)


def test_the_wiring_recipe_on_a_real_state_store(moto_url: str, tmp_path: Path) -> None:
    """What app.py does: records from the audit index, the cursor in a file."""
    from jupyter_secure.audit.index import QueryFilter
    from jupyter_secure.audit.logger import Identity, Resource
    from jupyter_secure.state import SecureState

    state = SecureState.open(tmp_path / "state", source="cli", identity=Identity.system())
    try:

        def records_after(after: int, limit: int) -> list[tuple[int, bytes]]:
            found = state.index.query(QueryFilter(after_seq=after, limit=limit))
            return [(int(event["seq"]), line) for line, event in found]

        config = _config(moto_url)
        cursor = FileCursor(state.state_dir / "cloudwatch-audit.cursor")
        exporter = CloudWatchExporter(
            config, CollectorRegistry(), records_after, cursor.get, cursor.set
        )
        for i in range(3):
            state.audit.record(
                "UserDisabled",
                identity=Identity("OSUser", "root"),
                request={"name": f"u{i}"},
                resources=[Resource("user", f"u{i}")],
            )
        state.index.flush()
        exporter.tick()
        assert exporter.failures == 0, exporter.last_error
        head = state.index.count()
        assert cursor.get() == head
        seqs = [
            json.loads(e["message"])["seq"]
            for e in _all_events(moto_url, config.log_group, "host-1")
        ]
        assert seqs == list(range(1, head + 1)), "from the trail's first record on"
    finally:
        state.close()


def test_an_oversized_record_arrives_truncated_with_its_seq(moto_url: str) -> None:
    now = time.time()
    big = _line(2, now, pad="x" * 300_000)
    records = [(1, _line(1, now)), (2, big), (3, _line(3, now))]
    config = _config(moto_url)
    cursor = Cursor()
    exporter = _exporter(config, records=records, cursor=cursor, clock=Clock(now))
    exporter.tick()
    assert exporter.failures == 0, exporter.last_error
    assert cursor.seq == 3

    events = _all_events(moto_url, config.log_group, "host-1")
    assert len(events) == 3
    stub = json.loads(events[1]["message"])
    assert stub["seq"] == 2
    assert stub["truncated"] is True
    assert stub["originalBytes"] == len(big) - 1
    assert stub["sha256"] == hashlib.sha256(big[:-1]).hexdigest()
    assert big.decode().startswith(stub["head"])
    assert len(stub["head"]) > 200_000
    assert len(events[1]["message"].encode()) <= MAX_EVENT_BYTES


def test_ten_thousand_and_one_records_take_two_calls(moto_url: str) -> None:
    now = time.time()
    records = [(i, _line(i, now - 1 + i / 20_000)) for i in range(1, 10_002)]
    config = _config(moto_url)
    exporter = _exporter(config, clock=Clock(now))
    calls = _count_calls(exporter, "logs", "PutLogEvents")
    assert exporter.export_records(records) == 10_001
    assert len(calls) == 2
    events = _all_events(moto_url, config.log_group, "host-1")
    assert [json.loads(e["message"])["seq"] for e in events] == list(range(1, 10_002))


def test_log_batches_cut_by_bytes_and_by_day() -> None:
    now_ms = int(time.time() * 1000)
    big = [log_event(i, _line(i, now_ms / 1000, "y" * 200_000), now_ms) for i in range(1, 8)]
    sizes = [len(b) for b in log_batches(big)]
    assert sizes == [5, 2], "at most 1,048,576 bytes counting 26 per event"

    day = 24 * 3600
    spread = [(1, 0), (2, day - 10), (3, day + 10), (4, day + 20)]
    events = [log_event(s, _line(s, now_ms / 1000 - 3 * day + t), now_ms) for s, t in spread]
    assert [[e.seq for e in b] for b in log_batches(events)] == [[1, 2], [3, 4]]

    # Out of time order in the trail (two writers): sorted by time within a batch.
    skewed = [log_event(1, _line(1, 100.5), 100_000), log_event(2, _line(2, 100.1), 100_000)]
    [batch] = log_batches(skewed)
    assert [e.seq for e in batch] == [2, 1]


def test_stamps_stay_inside_the_accepted_window() -> None:
    now = time.time()
    now_ms = int(now * 1000)
    old = log_event(1, _line(1, now - 30 * 86400), now_ms)
    ahead = log_event(2, _line(2, now + 86400), now_ms)
    unreadable = log_event(3, b"not json\n", now_ms)
    assert now_ms - 14 * 86400 * 1000 < old.timestamp < now_ms
    assert now_ms < ahead.timestamp <= now_ms + 2 * 3600 * 1000
    assert unreadable.timestamp == now_ms
    assert json.loads(old.message)["seq"] == 1, "the line itself keeps its eventTime"


def test_a_failed_batch_leaves_the_cursor_on_the_last_delivered(moto_url: str) -> None:
    now = time.time()
    records = [(i, _line(i, now)) for i in range(1, 10_006)]
    first_batch = log_batches([log_event(s, line, int(now * 1000)) for s, line in records])[0]
    first_max = max(e.seq for e in first_batch)

    def failing_second_call(exporter: CloudWatchExporter) -> None:
        calls: list[int] = []

        def hook(**_: Any) -> None:
            calls.append(1)
            if len(calls) == 2:
                raise EndpointConnectionError(endpoint_url=moto_url)

        exporter._logs.meta.events.register("before-call.logs.PutLogEvents", hook)

    direct = _exporter(_config(moto_url), clock=Clock(now))
    failing_second_call(direct)
    with pytest.raises(ExportFailed, match="PutLogEvents") as info:
        direct.export_records(records)
    assert info.value.delivered == first_max

    cursor = Cursor()
    config = _config(moto_url)
    exporter = _exporter(config, records=records, cursor=cursor, clock=Clock(now))
    failing_second_call(exporter)
    exporter.tick()
    assert exporter.failures == 1
    assert "PutLogEvents" in str(exporter.last_error)
    assert cursor.seq == first_max, "the round's first batch was delivered"
    exporter.tick()
    assert cursor.seq == 10_005
    seqs = [
        json.loads(e["message"])["seq"] for e in _all_events(moto_url, config.log_group, "host-1")
    ]
    assert seqs == list(range(1, 10_006)), "nothing lost, nothing sent twice"


def test_a_hole_in_the_index_is_waited_for_then_skipped(moto_url: str) -> None:
    now = time.time()
    records = [(2, _line(2, now)), (3, _line(3, now)), (5, _line(5, now))]
    cursor = Cursor()
    clock = Clock(now)
    exporter = _exporter(
        _config(moto_url), records=records, cursor=cursor, clock=clock, gap_grace=60
    )
    exporter.tick()
    assert cursor.seq == 0, "seq 1 may still be on its way to the index"
    records.insert(0, (1, _line(1, now)))
    exporter.tick()
    assert cursor.seq == 3, "an unbroken run only: 4 is missing"
    exporter.tick()  # the hole after 3 is noticed
    clock.t += 59
    exporter.tick()
    assert cursor.seq == 3
    clock.t += 2
    exporter.tick()
    assert cursor.seq == 5, "given up on after gap_grace, with a warning"
    assert exporter.failures == 0


def test_endpoint_down_fails_fast_and_is_counted() -> None:
    registry = CollectorRegistry()
    Gauge("jupyter_secure_up", "u", registry=registry).set(1)
    records = [(1, _line(1, time.time()))]
    cursor = Cursor()
    config = _config(f"http://127.0.0.1:{_closed_port()}")
    exporter = _exporter(config, registry, records=records, cursor=cursor)
    started = time.monotonic()
    with pytest.raises(ExportFailed, match="CreateLogGroup") as info:
        exporter.export_records(records)
    assert info.value.delivered is None
    exporter.tick()
    assert exporter.failures == 2, "metrics and records, each one line"
    assert cursor.seq == 0
    assert time.monotonic() - started < 30


def test_the_thread_exports_and_stops(moto_url: str) -> None:
    now = time.time()
    records = [(1, _line(1, now))]
    cursor = Cursor()
    exporter = _exporter(_config(moto_url, interval=5), records=records, cursor=cursor)
    exporter.start()
    deadline = time.monotonic() + 20
    while cursor.seq != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cursor.seq == 1, "the first round runs at start"
    started = time.monotonic()
    assert exporter.stop(timeout=10)
    assert time.monotonic() - started < 5, "stop does not wait out the interval"


def test_points_without_datum_are_baseline_only() -> None:
    conv = MetricConverter()
    conv.commit([Point(None, ("x_total", ()), 3.0)])
    assert conv.readings == {("x_total", ()): 3.0}
