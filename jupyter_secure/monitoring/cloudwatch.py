"""Optional export to Amazon CloudWatch: metrics with PutMetricData, audit records to Logs.

Off unless ``CloudWatchExport.enabled``; needs ``pip install 'jupyter-secure[cloudwatch]'``
(boto3, imported only when an exporter is built).

Metrics are read from a ``prometheus_client`` registry through ``collect()``,
never from the metrics module's internals, so whatever is on ``/metrics`` is
what goes to CloudWatch:

* counters (``*_total``) become the increase since the previous export
  (unit ``Count``). CloudWatch sums data points, it does not difference
  them, so sending the running total would make every graph and alarm
  climb forever;
* gauges (and untyped samples) are sent as they are;
* histograms and summaries become two delta counters, ``<name>_count``
  and ``<name>_sum``: exact, and their ratio (metric math ``sum / count``)
  is the mean. A ``StatisticSet`` would need a minimum and a maximum that
  a Prometheus histogram does not keep, and bucket bounds would only
  approximate them; the buckets stay on ``/metrics`` for percentiles;
* info, state sets and gauge histograms are not sent, nor are NaN and
  infinite values (CloudWatch refuses them).

Only the product's own ``jupyter_secure_*`` families are sent, without
that prefix (the namespace says it): CloudWatch bills every series, and the
``process_*`` and ``python_*`` ones ``prometheus_client`` adds are better
reported by the host's own agent. Labels become dimensions after the
configured ones, within CloudWatch's 30.

Audit records go to one log stream, each trail line as one log event stamped
with the record's ``eventTime``. Delivery is at least once: the caller keeps
a cursor (the highest sequence number delivered) and asks again from there,
so a crash between a delivery and the cursor write sends a few records twice
— never none. Records are not rewritten; one too large for an event is sent
as a marked stub carrying its sequence number and hash rather than dropped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlencode

from traitlets import Bool, Dict, Float, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

from .._version import __version__
from ..errors import StartupRefused
from ..kernel.config import is_http_url
from .exporting import ExportFailed, PeriodicRunner, require_extra

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = [
    "CloudWatchExport",
    "CloudWatchExporter",
    "ExportFailed",
    "LogEvent",
    "MetricConverter",
    "Point",
    "batched",
    "datum_bytes",
    "log_batches",
    "log_event",
]

log = logging.getLogger(__name__)

PREFIX = "jupyter_secure_"

# PutMetricData (CloudWatch API reference): at most 1000 metrics and 1 MB per request,
# 30 dimensions per metric; dimension names 1-255 characters, values 1-1024.
MAX_DATUMS = 1000
MAX_METRIC_REQUEST_BYTES = 1_000_000  # 1 MB less room for Action, Version and Namespace
MAX_DIMENSIONS = 30
MAX_DIMENSION_NAME = 255
MAX_DIMENSION_VALUE = 1024
MAX_METRIC_NAME = 255

# PutLogEvents: at most 10,000 events and 1,048,576 bytes (each message's UTF-8 length
# plus 26) per batch, in chronological order, spanning at most 24 hours.
MAX_LOG_EVENTS = 10_000
MAX_LOG_BATCH_BYTES = 1_048_576
LOG_EVENT_OVERHEAD = 26
MAX_BATCH_SPAN_MS = 24 * 3600 * 1000
# The event size limit was 256 KB for most of CloudWatch Logs' life; the current API
# reference says 1 MB. 256 KB is what every endpoint (older regions' and partitions'
# documentation, VPC endpoint proxies, emulators) is known to accept.
MAX_EVENT_BYTES = 256 * 1024 - LOG_EVENT_OVERHEAD
# CloudWatch Logs drops events older than 14 days or more than 2 hours ahead (reported
# only in rejectedLogEventsInfo). Stamps are kept inside that window with a margin, so
# a backfill of an old trail or a skewed clock still arrives; the line keeps eventTime.
_OLDEST_MS = (14 * 24 - 1) * 3600 * 1000
_NEWEST_MS = 3600 * 1000

# botocore: every request gives up within ~35 s (two attempts of connect 5 s + read 10 s).
_CONNECT_TIMEOUT = 5
_READ_TIMEOUT = 10
_MAX_ATTEMPTS = 2

_UNITS = (("_seconds", "Seconds"), ("_bytes", "Bytes"))

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
T = TypeVar("T")


class Registry(Protocol):
    """What the exporter reads: any ``prometheus_client`` registry (or collector)."""

    def collect(self) -> Iterable[Metric]: ...


class CloudWatchExport(LoggingConfigurable):
    """Where and how to export to Amazon CloudWatch (off by default)."""

    enabled = Bool(
        False,
        help="""Export metrics to CloudWatch (PutMetricData) and the audit trail to
        CloudWatch Logs. Needs `pip install 'jupyter-secure[cloudwatch]'` and AWS
        credentials from boto3's usual chain (environment, shared files, instance or
        task role). The server refuses to start when enabled without boto3.""",
    ).tag(config=True)

    region = Unicode(
        "",
        help="""AWS region, e.g. eu-west-1. Empty: boto3's default chain
        ($AWS_REGION, $AWS_DEFAULT_REGION, the shared config file).""",
    ).tag(config=True)

    endpoint_url = Unicode(
        "",
        help="""Send to this http(s) URL instead of the region's public endpoint
        (an interface VPC endpoint, or a local emulator in tests). The same URL is
        used for CloudWatch and CloudWatch Logs. Empty: the public endpoints.""",
    ).tag(config=True)

    namespace = Unicode(
        "JupyterSecure",
        help="""CloudWatch namespace of the metrics (1-255 characters; the AWS/
        prefix is reserved for AWS).""",
    ).tag(config=True)

    log_group = Unicode(
        "/jupyter-secure/audit",
        help="""CloudWatch Logs group that receives the audit records; created when
        missing (set its retention and KMS key in AWS).""",
    ).tag(config=True)

    log_stream = Unicode(
        "",
        help="""Log stream within log_group; created when missing. Empty: this
        machine's host name, so servers sharing a group keep apart.""",
    ).tag(config=True)

    interval = Float(
        60.0,
        min=5.0,
        help="""Seconds between exports. Each export sends the counters' increase
        since the previous one and the audit records written since.""",
    ).tag(config=True)

    dimensions = Dict(
        value_trait=Unicode(),
        key_trait=Unicode(),
        default_value={},
        help="""Dimensions added to every metric (none by default), e.g.
        {"Site": "lab-1"}, to tell servers apart in one namespace. At most 29
        (CloudWatch allows 30 per metric, and a metric's labels need room); names
        of 1-255 characters, values of 1-1024.""",
    ).tag(config=True)

    @validate("endpoint_url")
    def _valid_endpoint(self, proposal: Any) -> str:
        url = str(proposal["value"]).rstrip("/")
        if url and not is_http_url(url):
            raise TraitError(f"CloudWatchExport.endpoint_url: expected an http(s) URL, got {url!r}")
        return url

    @validate("namespace")
    def _valid_namespace(self, proposal: Any) -> str:
        value = str(proposal["value"])
        if not 1 <= len(value) <= 255 or value.startswith((":", "AWS/")):
            raise TraitError(
                "CloudWatchExport.namespace: expected 1-255 characters, not starting "
                f"with ':' or 'AWS/', got {value!r}"
            )
        return value

    @validate("log_group")
    def _valid_log_group(self, proposal: Any) -> str:
        value = str(proposal["value"])
        allowed = set("._-/#") | {c for c in value if c.isascii() and c.isalnum()}
        if not 1 <= len(value) <= 512 or any(c not in allowed for c in value):
            raise TraitError(
                "CloudWatchExport.log_group: expected 1-512 of A-Z a-z 0-9 . - _ / #, "
                f"got {value!r}"
            )
        return value

    @validate("log_stream")
    def _valid_log_stream(self, proposal: Any) -> str:
        value = str(proposal["value"])
        if len(value) > 512 or ":" in value or "*" in value:
            raise TraitError(
                f"CloudWatchExport.log_stream: at most 512 characters, no ':' or '*', got {value!r}"
            )
        return value

    @validate("dimensions")
    def _valid_dimensions(self, proposal: Any) -> dict[str, str]:
        value: dict[str, str] = dict(proposal["value"])
        if len(value) > MAX_DIMENSIONS - 1:
            raise TraitError(
                f"CloudWatchExport.dimensions: at most {MAX_DIMENSIONS - 1} entries, "
                f"got {len(value)}"
            )
        for name, text in value.items():
            if not name.strip() or len(name) > MAX_DIMENSION_NAME:
                raise TraitError(
                    f"CloudWatchExport.dimensions: name {name[:40]!r} must be 1-"
                    f"{MAX_DIMENSION_NAME} characters"
                )
            if not text.strip() or len(text) > MAX_DIMENSION_VALUE:
                raise TraitError(
                    f"CloudWatchExport.dimensions[{name!r}]: value must be 1-"
                    f"{MAX_DIMENSION_VALUE} characters"
                )
        return value

    def stream_name(self) -> str:
        """``log_stream``, or the host name with the characters Logs refuses replaced."""
        if self.log_stream:
            return str(self.log_stream)
        host = socket.gethostname() or "jupyter-secure"
        return host.replace(":", "-").replace("*", "-")[:512]


# -- metrics: the pure part ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Point:
    """One datum to send, or none; for a counter, the reading to remember once delivered."""

    datum: dict[str, Any] | None
    key: SeriesKey | None = None
    reading: float | None = None


def metric_name(sample_name: str) -> str:
    """The CloudWatch name of a Prometheus sample: without the product prefix.

    >>> metric_name("jupyter_secure_signin_attempts_total")
    'signin_attempts_total'
    """
    return sample_name.removeprefix(PREFIX)


def _unit(family: str, part: str) -> str:
    if part == "_count":
        return "Count"
    for suffix, unit in _UNITS:
        if family.endswith(suffix):
            return unit
    return "Count" if part == "_total" else "None"


class MetricConverter:
    """Turns registry samples into MetricDatum dicts, remembering counter readings.

    The first conversion sends no counter at all, only remembers the
    readings: a counter's value then covers everything since the process
    started, an unknown span, and sending it as one period's increase would
    put a spike on every graph (and trip rate alarms) at each server start.
    After that, a series seen for the first time sends its whole value (it
    was created, at zero, since the previous export), and a reading below
    the remembered one means the counter restarted (a new process), so the
    new value is the increase (for a histogram's ``_sum`` this assumes
    non-negative observations, as durations and sizes are).

    Readings are remembered only for data points that were delivered
    (:meth:`commit`): after a failed request the next export's increase
    covers both periods, so nothing is lost or counted twice.
    """

    def __init__(self, dimensions: dict[str, str] | None = None) -> None:
        self.dimensions = [{"Name": k, "Value": v} for k, v in (dimensions or {}).items()]
        self._names = set((dimensions or {}).keys())
        self.readings: dict[SeriesKey, float] = {}
        self._baseline_taken = False
        self._warned: set[str] = set()

    def convert(self, families: Iterable[Metric], timestamp: dt.datetime) -> list[Point]:
        points: list[Point] = []
        baseline = not self._baseline_taken
        self._baseline_taken = True
        for family in families:
            if not family.name.startswith(PREFIX):
                continue
            if family.type == "counter":
                parts: tuple[str, ...] = ("_total",)
            elif family.type in ("histogram", "summary"):
                parts = ("_count", "_sum")
            elif family.type in ("gauge", "unknown"):
                parts = ("",)
            else:
                continue
            wanted = {family.name + part: part for part in parts}
            for sample in family.samples:
                part = wanted.get(sample.name)
                if part is None or not math.isfinite(sample.value):
                    continue
                name = metric_name(sample.name)
                if len(name) > MAX_METRIC_NAME:
                    self._warn_once(name, "metric name longer than 255 characters: not sent")
                    continue
                datum: dict[str, Any] = {
                    "MetricName": name,
                    "Dimensions": self._dimensions(name, sample.labels),
                    "Timestamp": timestamp,
                    "Unit": _unit(family.name, part),
                }
                if part == "":
                    datum["Value"] = float(sample.value)
                    points.append(Point(datum))
                    continue
                key: SeriesKey = (sample.name, tuple(sorted(sample.labels.items())))
                value = float(sample.value)
                last = self.readings.get(key)
                if baseline:
                    points.append(Point(None, key, value))
                    continue
                datum["Value"] = value if last is None or value < last else value - last
                points.append(Point(datum, key, value))
        return points

    def commit(self, points: Iterable[Point]) -> None:
        """Remember the readings of delivered (or deliberately unsent) counter points."""
        for point in points:
            if point.key is not None and point.reading is not None:
                self.readings[point.key] = point.reading

    def _dimensions(self, name: str, labels: dict[str, str]) -> list[dict[str, str]]:
        dims = list(self.dimensions)
        for label, value in sorted(labels.items()):
            # An empty label value is the same series as no label in Prometheus, and
            # CloudWatch refuses empty values; a configured dimension wins a clash.
            if not value or label in self._names:
                continue
            if len(dims) == MAX_DIMENSIONS:
                self._warn_once(name, f"more than {MAX_DIMENSIONS} dimensions: labels dropped")
                break
            dims.append({"Name": label[:MAX_DIMENSION_NAME], "Value": value[:MAX_DIMENSION_VALUE]})
        return dims

    def _warn_once(self, name: str, message: str) -> None:
        if name not in self._warned:
            self._warned.add(name)
            log.warning("CloudWatch export: %s: %s", name, message)


def datum_bytes(datum: dict[str, Any]) -> int:
    """An upper bound of the datum's size in a request.

    botocore may send CloudWatch requests as CBOR, JSON or the query
    protocol depending on its version; the query protocol's form encoding
    (``MetricData.member.1000.Dimensions.member.30.Name=…``) is by far the
    largest, so that is what is measured.
    """
    fields: list[tuple[str, str]] = [
        ("MetricData.member.1000.MetricName", datum["MetricName"]),
        ("MetricData.member.1000.Unit", datum.get("Unit", "None")),
        ("MetricData.member.1000.Timestamp", "2000-01-01T00:00:00.000000Z"),
        ("MetricData.member.1000.Value", repr(float(datum.get("Value", 0.0)))),
    ]
    for i, dim in enumerate(datum.get("Dimensions", ()), 1):
        fields.append((f"MetricData.member.1000.Dimensions.member.{i}.Name", dim["Name"]))
        fields.append((f"MetricData.member.1000.Dimensions.member.{i}.Value", dim["Value"]))
    return len(urlencode(fields)) + 1


def batched(
    items: Iterable[T], size_of: Callable[[T], int], max_count: int, max_bytes: int
) -> Iterator[list[T]]:
    """Greedy batches, in order, of at most ``max_count`` items and ``max_bytes`` bytes."""
    batch: list[T] = []
    size = 0
    for item in items:
        n = size_of(item)
        if batch and (len(batch) == max_count or size + n > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += n
    if batch:
        yield batch


# -- audit records: the pure part -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One audit record as a CloudWatch Logs event; ``size`` counts as PutLogEvents does."""

    seq: int
    timestamp: int
    message: str
    size: int

    def as_api(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "message": self.message}


def _event_time_ms(line: bytes) -> int | None:
    try:
        text = json.loads(line)["eventTime"]
        return int(dt.datetime.fromisoformat(text).timestamp() * 1000)
    except (ValueError, KeyError, TypeError, OverflowError):
        return None


def truncated_message(seq: int, line: bytes, limit: int = MAX_EVENT_BYTES) -> str:
    """A stand-in for a record too large for one event, of at most ``limit`` UTF-8 bytes.

    Valid JSON, so log queries still parse it: the sequence number (to find
    the record in the trail), ``"truncated": true``, the original size, the
    SHA-256 of the line (to check a copy against), and as much of the line's
    beginning as fits.
    """
    head = line[:limit].decode("utf-8", "ignore")
    stub: dict[str, Any] = {
        "seq": seq,
        "truncated": True,
        "originalBytes": len(line),
        "sha256": hashlib.sha256(line).hexdigest(),
        "head": head,
    }
    while True:
        message = json.dumps(stub, ensure_ascii=False, separators=(",", ":"))
        excess = len(message.encode("utf-8")) - limit
        if excess <= 0:
            return message
        # Each character left out saves at least one byte, so this ends in a few rounds.
        stub["head"] = stub["head"][: max(0, len(stub["head"]) - excess)]


def log_event(seq: int, line: bytes, now_ms: int) -> LogEvent:
    """The event for one trail line: its text, stamped with its ``eventTime``.

    A record without a readable ``eventTime`` is stamped ``now_ms``; stamps
    are kept inside the window CloudWatch Logs accepts (see ``_OLDEST_MS``).
    """
    line = line.removesuffix(b"\n")
    stamp = _event_time_ms(line)
    if stamp is None:
        stamp = now_ms
    stamp = min(max(stamp, now_ms - _OLDEST_MS), now_ms + _NEWEST_MS)
    if 0 < len(line) <= MAX_EVENT_BYTES:
        message = line.decode("utf-8", "replace")
        size = len(message.encode("utf-8"))
        if size <= MAX_EVENT_BYTES:
            return LogEvent(seq, stamp, message, size + LOG_EVENT_OVERHEAD)
    message = truncated_message(seq, line)
    return LogEvent(seq, stamp, message, len(message.encode("utf-8")) + LOG_EVENT_OVERHEAD)


def log_batches(events: Sequence[LogEvent]) -> list[list[LogEvent]]:
    """PutLogEvents batches: in sequence order across batches, by time within one.

    Batches are cut in sequence order so that when one fails, every record
    before it was delivered and the cursor can stand on the last delivered
    batch's highest number. Within a batch events are sorted by timestamp,
    as the API requires (records from concurrent writers can be a few
    milliseconds out of order in the trail).
    """
    batches: list[list[LogEvent]] = []
    batch: list[LogEvent] = []
    size = 0
    low = high = 0
    for event in sorted(events, key=lambda e: e.seq):
        if batch and (
            len(batch) == MAX_LOG_EVENTS
            or size + event.size > MAX_LOG_BATCH_BYTES
            or max(high, event.timestamp) - min(low, event.timestamp) > MAX_BATCH_SPAN_MS
        ):
            batches.append(batch)
            batch, size = [], 0
        if not batch:
            low = high = event.timestamp
        batch.append(event)
        size += event.size
        low, high = min(low, event.timestamp), max(high, event.timestamp)
    if batch:
        batches.append(batch)
    return [sorted(b, key=lambda e: (e.timestamp, e.seq)) for b in batches]


# -- the exporter -----------------------------------------------------------------------------


class CloudWatchExporter:
    """Sends metrics and audit records to CloudWatch, on demand or every ``interval``.

    ``records_after(after_seq, limit)`` returns up to ``limit`` records
    ``(seq, line)`` with ``seq > after_seq`` in order; ``get_cursor()`` and
    ``set_cursor(seq)`` keep the highest sequence number delivered (0 before
    the first). Records are exported only in an unbroken run from the
    cursor: an index filled by several processes can show seq 101 a moment
    before seq 100, and moving the cursor past a hole would skip that record
    for good. A hole that lasts ``gap_grace`` seconds is given up on, with a
    warning naming the missing numbers.

    :meth:`tick` never raises: a failure is one log line, ``failures`` goes
    up, and the next tick retries from the cursor.
    """

    def __init__(
        self,
        config: CloudWatchExport,
        registry: Registry,
        records_after: Callable[[int, int], list[tuple[int, bytes]]],
        get_cursor: Callable[[], int],
        set_cursor: Callable[[int], None],
        *,
        page_size: int = MAX_LOG_EVENTS,
        gap_grace: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.registry = registry
        self.records_after = records_after
        self.get_cursor = get_cursor
        self.set_cursor = set_cursor
        self.page_size = page_size
        self.gap_grace = gap_grace
        self.clock = clock
        self.log = config.log
        self.failures = 0
        self.last_error: str | None = None
        self.namespace = str(config.namespace)
        self.log_group = str(config.log_group)
        self.log_stream = config.stream_name()
        self.converter = MetricConverter(dict(config.dimensions))
        self._gap: tuple[int, float] | None = None
        self._stream_ready = False
        self._lock = threading.Lock()
        self._runner = PeriodicRunner("cloudwatch-export", config.interval, self.tick, self.log)
        self._errors, self._cloudwatch, self._logs = _clients(config)

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Export now, then every ``interval`` seconds, on a daemon thread."""
        self._runner.start()

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the thread (not waiting past ``timeout``); unsent records stay behind the cursor."""
        stopped = self._runner.stop(timeout)
        if stopped:  # a round still running keeps its connections until it ends
            self._cloudwatch.close()
            self._logs.close()
        return stopped

    def tick(self) -> None:
        """One round: the metrics, then the audit records written since the cursor."""
        with self._lock:
            for what, step in (("metrics", self.export_metrics), ("audit records", self._drain)):
                try:
                    step()
                except Exception as exc:
                    self.failures += 1
                    reason = str(exc) if isinstance(exc, ExportFailed) else _describe(exc)
                    self.last_error = f"{what}: {reason}"
                    self.log.warning("CloudWatch export of %s failed: %s", what, reason)

    # -- metrics --------------------------------------------------------------------------

    def export_metrics(self) -> int:
        """Send the registry's current samples; returns the number of data points sent."""
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        points = self.converter.convert(self.registry.collect(), now)
        self.converter.commit(p for p in points if p.datum is None)
        sendable = [p for p in points if p.datum is not None]
        sent = 0
        for batch in batched(
            sendable,
            lambda p: datum_bytes(p.datum or {}),
            MAX_DATUMS,
            MAX_METRIC_REQUEST_BYTES,
        ):
            self._call(
                "PutMetricData",
                self._cloudwatch.put_metric_data,
                Namespace=self.namespace,
                MetricData=[p.datum for p in batch],
            )
            self.converter.commit(batch)
            sent += len(batch)
        return sent

    # -- audit records --------------------------------------------------------------------

    def export_records(self, records: Sequence[tuple[int, bytes]]) -> int | None:
        """Send ``(seq, line)`` records; returns the highest seq delivered (None: none given).

        Raises :class:`ExportFailed` at the first batch that fails, sending
        nothing after it; its ``delivered`` says how far the batches before
        it got.
        """
        if not records:
            return None
        now_ms = int(self.clock() * 1000)
        events = [log_event(seq, line, now_ms) for seq, line in records]
        self._ensure_stream()
        delivered: int | None = None
        for batch in log_batches(events):
            try:
                response = self._call(
                    "PutLogEvents",
                    self._logs.put_log_events,
                    logGroupName=self.log_group,
                    logStreamName=self.log_stream,
                    logEvents=[e.as_api() for e in batch],
                )
            except ExportFailed as exc:
                if exc.code == "ResourceNotFoundException":
                    self._stream_ready = False  # deleted under us: create it again next time
                raise ExportFailed(str(exc), delivered=delivered, code=exc.code) from None
            seqs = [e.seq for e in batch]
            rejected = response.get("rejectedLogEventsInfo")
            if rejected:
                self.log.warning(
                    "CloudWatch Logs refused some audit records among seq %d..%d: %s",
                    min(seqs),
                    max(seqs),
                    json.dumps(rejected, sort_keys=True),
                )
            delivered = max(seqs)
        return delivered

    def _drain(self) -> None:
        """Export pages of records from the cursor until a short page (or a stop)."""
        while True:
            cursor = self.get_cursor()
            records = self._unbroken(cursor, self.records_after(cursor, self.page_size))
            if not records:
                return
            try:
                delivered = self.export_records(records)
            except ExportFailed as exc:
                if exc.delivered is not None:
                    self.set_cursor(exc.delivered)
                raise
            if delivered is not None:
                self.set_cursor(delivered)
            if len(records) < self.page_size or self._runner.stopping:
                return

    def _unbroken(
        self, cursor: int, records: Sequence[tuple[int, bytes]]
    ) -> list[tuple[int, bytes]]:
        ordered = sorted(records, key=lambda r: r[0])
        if not ordered or ordered[0][0] == cursor + 1:
            self._gap = None
            return _run_from(cursor + 1, ordered)
        first = ordered[0][0]
        now = self.clock()
        if self._gap is None or self._gap[0] != cursor:
            self._gap = (cursor, now)
        if now - self._gap[1] < self.gap_grace:
            return []
        self.log.warning(
            "CloudWatch export: audit records %d..%d did not appear within %.0f s; "
            "exporting on from %d",
            cursor + 1,
            first - 1,
            self.gap_grace,
            first,
        )
        self._gap = None
        return _run_from(first, ordered)

    def _ensure_stream(self) -> None:
        if self._stream_ready:
            return
        for op, call, kwargs in (
            ("CreateLogGroup", self._logs.create_log_group, {"logGroupName": self.log_group}),
            (
                "CreateLogStream",
                self._logs.create_log_stream,
                {"logGroupName": self.log_group, "logStreamName": self.log_stream},
            ),
        ):
            try:
                call(**kwargs)
            except self._errors.ClientError as exc:
                code = _error_code(exc)
                # A group made in advance by an administrator may come with a policy that
                # does not grant logs:CreateLogGroup; CreateLogStream then tells.
                if code == "ResourceAlreadyExistsException" or (
                    op == "CreateLogGroup" and code == "AccessDeniedException"
                ):
                    continue
                raise ExportFailed(f"{op} {self.log_group}: {exc}", code=code) from None
            except self._errors.BotoCoreError as exc:
                raise ExportFailed(f"{op} {self.log_group}: {exc}") from None
        self._stream_ready = True

    def _call(self, op: str, call: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        try:
            return call(**kwargs)
        except self._errors.ClientError as exc:
            raise ExportFailed(f"{op}: {exc}", code=_error_code(exc)) from None
        except self._errors.BotoCoreError as exc:
            raise ExportFailed(f"{op}: {exc}") from None


def _run_from(start: int, ordered: Sequence[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """The records numbered ``start``, ``start + 1``, … up to the first one missing."""
    run: list[tuple[int, bytes]] = []
    for seq, line in ordered:
        if seq != start + len(run):
            break
        run.append((seq, line))
    return run


def _error_code(exc: Any) -> str:
    """The AWS error code of a botocore ``ClientError``."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _clients(config: CloudWatchExport) -> tuple[Any, Any, Any]:
    """botocore's exceptions module and the CloudWatch and Logs clients, with bounded calls."""
    boto3 = require_extra("boto3", "cloudwatch", "CloudWatchExport")
    botocore_config = importlib.import_module("botocore.config")
    errors = importlib.import_module("botocore.exceptions")
    client_config = botocore_config.Config(
        connect_timeout=_CONNECT_TIMEOUT,
        read_timeout=_READ_TIMEOUT,
        retries={"total_max_attempts": _MAX_ATTEMPTS, "mode": "standard"},
        user_agent_extra=f"jupyter-secure/{__version__}",
    )
    kwargs: dict[str, Any] = {"config": client_config}
    if config.region:
        kwargs["region_name"] = config.region
    if config.endpoint_url:
        kwargs["endpoint_url"] = config.endpoint_url
    session = boto3.session.Session()
    try:
        return errors, session.client("cloudwatch", **kwargs), session.client("logs", **kwargs)
    except errors.NoRegionError:
        raise StartupRefused(
            "CloudWatchExport.region: no AWS region configured (set it, or $AWS_REGION)"
        ) from None
    except errors.BotoCoreError as exc:
        raise StartupRefused(f"CloudWatchExport: cannot create the AWS clients: {exc}") from None
