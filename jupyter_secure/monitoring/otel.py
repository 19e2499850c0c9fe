"""Optional export of the metrics to an OpenTelemetry collector (OTLP over HTTP).

Off unless ``OtelExport.enabled``; needs ``pip install 'jupyter-secure[otel]'``
(the OpenTelemetry SDK and its OTLP/HTTP exporter, imported only when an
exporter is built).

The samples come from a ``prometheus_client`` registry through
``collect()``. Counters become monotonic cumulative sums named after the
family, without ``_total`` (OpenTelemetry's Prometheus compatibility rule; a
collector exporting to Prometheus adds it back), starting at their
``_created`` time; gauges and untyped samples become gauges; histograms OTLP
histograms with their buckets, sum and count (no minimum or maximum:
Prometheus does not keep them). Simpler than those rules, because the SDK's
data model has no summary: a summary sends its ``_count`` and ``_sum`` as
sums (quantiles cannot be aggregated and are left out), and info and state
sets go as gauges rather than non-monotonic sums. Labels become attributes;
NaN and infinite values are not sent.

Why not the SDK's observable instruments: an instrument is fixed when it
is created, and the SDK holds its collection lock while it calls their
callbacks, so a family registered after start-up could never be added; a
histogram would also have had to shrink to its sum and count. Building the
SDK's ``MetricsData`` from one ``collect()`` and handing it to the OTLP
exporter keeps every family, every bucket, and one consistent snapshot.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from traitlets import Bool, Dict, Float, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

from .._version import __version__
from ..kernel.config import is_http_url
from .exporting import ExportFailed, PeriodicRunner, require_extra

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricsData, NumberDataPoint
    from opentelemetry.sdk.resources import Resource
    from prometheus_client.metrics_core import Metric as Family
    from prometheus_client.samples import Sample

__all__ = ["ExportFailed", "OtelExport", "OtelExporter", "metrics_data"]

METRICS_PATH = "/v1/metrics"
_EXTRA = "otel"
_TOKEN = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class Registry(Protocol):
    """What the exporter reads: any ``prometheus_client`` registry (or collector)."""

    def collect(self) -> Iterable[Family]: ...


class OtelExport(LoggingConfigurable):
    """Where and how to export metrics to an OpenTelemetry collector (off by default)."""

    enabled = Bool(
        False,
        help="""Export the metrics to an OpenTelemetry collector over OTLP/HTTP
        (protobuf). Needs `pip install 'jupyter-secure[otel]'`; the server refuses to
        start when enabled without it.""",
    ).tag(config=True)

    endpoint = Unicode(
        "",
        help="""The collector's OTLP/HTTP base URL, e.g. http://collector:4318
        (/v1/metrics is added). Empty: the standard $OTEL_EXPORTER_OTLP_METRICS_ENDPOINT
        or $OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318.""",
    ).tag(config=True)

    headers = Dict(
        value_trait=Unicode(),
        key_trait=Unicode(),
        default_value={},
        help="""HTTP headers sent with every export, e.g. {"Authorization":
        "Bearer …"}. Empty (the default): $OTEL_EXPORTER_OTLP_HEADERS, if set. A
        token is better given in that variable than in a config file others can
        read.""",
    ).tag(config=True)

    interval = Float(
        60.0,
        min=5.0,
        help="Seconds between exports (each sends every metric's current value).",
    ).tag(config=True)

    timeout = Float(
        10.0,
        min=1.0,
        max=60.0,
        help="""Seconds one export may take, retries included; a collector that
        does not answer in time counts as a failed export (retried at the next).""",
    ).tag(config=True)

    service_name = Unicode(
        "jupyter-secure",
        help="The service.name resource attribute the metrics carry.",
    ).tag(config=True)

    @validate("endpoint")
    def _valid_endpoint(self, proposal: Any) -> str:
        url = str(proposal["value"]).rstrip("/")
        if url and not is_http_url(url):
            raise TraitError(f"OtelExport.endpoint: expected an http(s) URL, got {url!r}")
        return url

    @validate("headers")
    def _valid_headers(self, proposal: Any) -> dict[str, str]:
        value: dict[str, str] = dict(proposal["value"])
        for name, text in value.items():
            if not name or any(c not in _TOKEN for c in name):
                raise TraitError(f"OtelExport.headers: {name[:40]!r} is not an HTTP header name")
            if any(c in text for c in "\r\n\0"):
                raise TraitError(f"OtelExport.headers[{name!r}]: value contains a line break")
        return value

    def metrics_url(self) -> str | None:
        """The full /v1/metrics URL, or None to let the OTLP exporter read its variables."""
        if not self.endpoint:
            return None
        url = str(self.endpoint)
        return url if url.endswith(METRICS_PATH) else url + METRICS_PATH


Key = tuple[tuple[str, str], ...]


def _attributes(labels: dict[str, str], drop: str = "") -> dict[str, str]:
    # An empty label value is the same series as no label at all in Prometheus.
    return {k: v for k, v in labels.items() if v and k != drop}


def _key(labels: dict[str, str], drop: str = "") -> Key:
    return tuple(sorted(_attributes(labels, drop).items()))


def _samples(family: Family, suffix: str) -> list[Sample]:
    name = family.name + suffix
    return [s for s in family.samples if s.name == name and math.isfinite(s.value)]


def _histogram_series(family: Family) -> dict[Key, dict[str, Any]]:
    """Per label set (without ``le``): its ``(bound, cumulative count)`` buckets, count, sum."""
    series: dict[Key, dict[str, Any]] = {}
    for s in family.samples:
        entry = series.setdefault(
            _key(s.labels, "le"),
            {"attributes": _attributes(s.labels, "le"), "buckets": [], "count": 0, "sum": 0.0},
        )
        if s.name == f"{family.name}_bucket":
            entry["buckets"].append((float(s.labels["le"]), int(s.value)))
        elif s.name == f"{family.name}_count":
            entry["count"] = int(s.value)
        elif s.name == f"{family.name}_sum":
            entry["sum"] = s.value
    return series


def _bucket_counts(buckets: list[tuple[float, int]], count: int) -> tuple[list[float], list[int]]:
    """OTLP's explicit bounds and per-bucket counts from Prometheus's cumulative ``le`` buckets.

    >>> _bucket_counts([(1.0, 3), (0.1, 1), (math.inf, 4)], 4)
    ([0.1, 1.0], [1, 2, 1])
    """
    ordered = sorted(buckets)
    bounds = [b for b, _ in ordered if not math.isinf(b)]
    running = [c for b, c in ordered if not math.isinf(b)] + [count]
    return bounds, [max(0, c - (running[i - 1] if i else 0)) for i, c in enumerate(running)]


def _number_points(
    family: Family, suffix: str, created: dict[Key, int] | None, start_ns: int, now_ns: int
) -> list[NumberDataPoint]:
    """Data points of one sample kind; ``created`` gives cumulative ones their start time."""
    from opentelemetry.sdk.metrics.export import NumberDataPoint

    return [
        NumberDataPoint(
            _attributes(s.labels),
            0 if created is None else created.get(_key(s.labels), start_ns),
            now_ns,
            s.value,
        )
        for s in _samples(family, suffix)
    ]


def metrics_data(
    families: Iterable[Family],
    *,
    resource: Resource,
    start_ns: int,
    now_ns: int,
) -> MetricsData:
    """One OTLP snapshot of ``families`` (see the module docstring for the mapping).

    ``start_ns`` is the start time of a cumulative series that has no
    ``_created`` sample (the exporter's own start).
    """
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        Gauge,
        Histogram,
        HistogramDataPoint,
        Metric,
        MetricsData,
        ResourceMetrics,
        ScopeMetrics,
        Sum,
    )
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    cumulative = AggregationTemporality.CUMULATIVE
    out: list[Metric] = []
    for family in families:
        name, unit, doc = family.name, family.unit or "", family.documentation or ""
        created = {_key(s.labels): int(s.value * 1e9) for s in _samples(family, "_created")}

        # Cumulative series start at their _created time; gauges have no start.
        running = partial(_number_points, family, created=created, start_ns=start_ns, now_ns=now_ns)
        current = partial(_number_points, family, created=None, start_ns=start_ns, now_ns=now_ns)

        if family.type == "counter":
            out.append(Metric(name, doc, unit, Sum(running("_total"), cumulative, True)))
        elif family.type in ("gauge", "unknown", "stateset"):
            out.append(Metric(name, doc, unit, Gauge(current(""))))
        elif family.type == "info":
            out.append(Metric(f"{name}_info", doc, unit, Gauge(current("_info"))))
        elif family.type == "summary":
            out.append(Metric(f"{name}_count", doc, "", Sum(running("_count"), cumulative, True)))
            # A sum of observations goes down when one is negative: not monotonic.
            out.append(Metric(f"{name}_sum", doc, unit, Sum(running("_sum"), cumulative, False)))
        elif family.type == "histogram":
            hist: list[HistogramDataPoint] = []
            for key, entry in _histogram_series(family).items():
                bounds, counts = _bucket_counts(entry["buckets"], entry["count"])
                hist.append(
                    HistogramDataPoint(
                        attributes=entry["attributes"],
                        start_time_unix_nano=created.get(key, start_ns),
                        time_unix_nano=now_ns,
                        count=entry["count"],
                        sum=entry["sum"],
                        bucket_counts=counts,
                        explicit_bounds=bounds,
                        # Optional in OTLP, and Prometheus does not keep them: left unset.
                        min=None,  # type: ignore[arg-type]
                        max=None,  # type: ignore[arg-type]
                    )
                )
            out.append(Metric(name, doc, unit, Histogram(hist, cumulative)))
        # Gauge histograms are not exported.
    # A labelled metric with no child yet has nothing to say (collectors flag empty metrics).
    out = [m for m in out if m.data.data_points]
    scope = InstrumentationScope("jupyter_secure", __version__)
    return MetricsData([ResourceMetrics(resource, [ScopeMetrics(scope, out, "")], "")])


class _Reasons(logging.Handler):
    """Collects what the OTLP exporter logs on this thread during one export: the reason.

    The exporter reports only SUCCESS or FAILURE; why (a refused connection, an
    HTTP status) it logs. The first message names the cause, the last the outcome.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())

    def reason(self) -> str:
        if not self.messages:
            return "the collector did not accept it"
        first, last = self.messages[0], self.messages[-1]
        return last if first == last else f"{last} (first: {first})"


class OtelExporter:
    """Sends the registry's metrics to an OTLP/HTTP collector, on demand or every ``interval``.

    :meth:`tick` never raises: a failure is one log line and ``failures``
    goes up; values are cumulative, so the next export makes up for it.
    """

    def __init__(
        self,
        config: OtelExport,
        registry: Registry,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        require_extra("opentelemetry.sdk.metrics", _EXTRA, "OtelExport")
        http = require_extra(
            "opentelemetry.exporter.otlp.proto.http.metric_exporter", _EXTRA, "OtelExport"
        )
        from opentelemetry.sdk.resources import Resource

        self.config = config
        self.registry = registry
        self.clock = clock
        self.log = config.log
        self.failures = 0
        self.last_error: str | None = None
        self.timeout = float(config.timeout)
        self.resource = Resource.create(
            {"service.name": str(config.service_name), "service.version": __version__}
        )
        self.start_ns = int(clock() * 1e9)
        self.exporter = http.OTLPMetricExporter(
            endpoint=config.metrics_url(),
            headers=dict(config.headers) or None,
            timeout=self.timeout,
        )
        self.url = config.metrics_url() or "the $OTEL_EXPORTER_OTLP_* endpoint"
        self._lock = threading.Lock()
        self._closed = False
        self._runner = PeriodicRunner("otel-export", config.interval, self.tick, self.log)

    def start(self) -> None:
        """Export now, then every ``interval`` seconds, on a daemon thread."""
        self._runner.start()

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the thread (not waiting past ``timeout``) and close the HTTP session."""
        self._runner.signal_stop()
        if not self._closed:
            self._closed = True
            # Before the join: this also ends a retry back-off the round may be waiting in.
            self.exporter.shutdown()
        return self._runner.stop(timeout)

    def tick(self) -> None:
        """One export; a failure is logged and counted, never raised."""
        with self._lock:
            try:
                self.export()
            except Exception as exc:
                self.failures += 1
                reason = (
                    str(exc) if isinstance(exc, ExportFailed) else f"{type(exc).__name__}: {exc}"
                )
                self.last_error = reason
                self.log.warning("OpenTelemetry export failed: %s", reason)

    def export(self) -> int:
        """Send one snapshot now; returns the number of metrics sent.

        Raises :class:`ExportFailed` when the collector did not take it.
        """
        from opentelemetry.sdk.metrics.export import MetricExportResult

        data = metrics_data(
            self.registry.collect(),
            resource=self.resource,
            start_ns=self.start_ns,
            now_ns=int(self.clock() * 1e9),
        )
        count = sum(len(s.metrics) for r in data.resource_metrics for s in r.scope_metrics)
        reasons = _Reasons()
        otel_log = logging.getLogger("opentelemetry.exporter")
        otel_log.addHandler(reasons)
        try:
            result = self.exporter.export(data, timeout_millis=self.timeout * 1000)
        finally:
            otel_log.removeHandler(reasons)
        if result is not MetricExportResult.SUCCESS:
            raise ExportFailed(f"OTLP export to {self.url}: {reasons.reason()}")
        return count
