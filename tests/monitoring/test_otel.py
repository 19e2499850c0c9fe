"""OTel export to a real OTLP/HTTP receiver on loopback, decoded with opentelemetry-proto."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, Summary
from traitlets import TraitError

from jupyter_secure.errors import StartupRefused
from jupyter_secure.monitoring.exporting import ExportFailed
from jupyter_secure.monitoring.otel import OtelExport, OtelExporter

CUMULATIVE = metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


class Receiver:
    """An OTLP/HTTP metrics endpoint: keeps each decoded request and its headers."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], ExportMetricsServiceRequest]] = []
        self.status = 200
        self.hits = 0
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.arrived:
                    receiver.hits += 1
                    receiver.arrived.notify_all()
                if self.path != "/v1/metrics" or receiver.status != 200:
                    self.send_response(404 if self.path != "/v1/metrics" else receiver.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                request = ExportMetricsServiceRequest.FromString(body)
                with receiver.arrived:
                    receiver.requests.append(
                        ({k.lower(): v for k, v in self.headers.items()}, request)
                    )
                    receiver.arrived.notify_all()
                reply = ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def wait_for(self, n: int, timeout: float = 20) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.requests) >= n, timeout), "no export"

    def wait_for_hits(self, n: int, timeout: float = 20) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: self.hits >= n, timeout), "no request"

    def metrics(self, index: int = -1) -> dict[str, metrics_pb2.Metric]:
        _, request = self.requests[index]
        [resource_metrics] = request.resource_metrics
        [scope_metrics] = resource_metrics.scope_metrics
        return {m.name: m for m in scope_metrics.metrics}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _attrs(point: Any) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in point.attributes}


def _by_attrs(metric: Any) -> dict[tuple[tuple[str, str], ...], Any]:
    data = getattr(metric, metric.WhichOneof("data"))
    return {tuple(sorted(_attrs(p).items())): p for p in data.data_points}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_config_is_checked_naming_the_field() -> None:
    assert OtelExport().enabled is False
    with pytest.raises(TraitError, match=r"OtelExport\.endpoint"):
        OtelExport(endpoint="collector:4318")
    with pytest.raises(TraitError, match=r"OtelExport\.headers\['Authorization'\]"):
        OtelExport(headers={"Authorization": "Bearer x\r\nX-Evil: 1"})
    with pytest.raises(TraitError, match=r"OtelExport\.headers"):
        OtelExport(headers={"Bad Name": "x"})
    assert OtelExport(endpoint="http://c:4318/").metrics_url() == "http://c:4318/v1/metrics"
    assert OtelExport(endpoint="http://c/v1/metrics").metrics_url() == "http://c/v1/metrics"
    assert OtelExport().metrics_url() is None


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.metric_exporter", None)
    with pytest.raises(StartupRefused, match=r"pip install 'jupyter-secure\[otel\]'"):
        OtelExporter(OtelExport(enabled=True, endpoint="http://c:4318"), CollectorRegistry())


def test_metrics_arrive_with_values_and_attributes(receiver: Receiver) -> None:
    registry = CollectorRegistry()
    signins = Counter("jupyter_secure_signin_attempts", "Sign-ins", ["outcome"], registry=registry)
    budget = Gauge("jupyter_secure_dp_budget_remaining", "Budget", ["dataset"], registry=registry)
    append = Histogram(
        "jupyter_secure_audit_append_seconds", "Append", registry=registry, buckets=(0.1, 1.0)
    )
    queries = Summary("jupyter_secure_query_seconds", "Queries", registry=registry)
    Info("jupyter_secure_build", "Build", registry=registry).info({"version": "1.2"})
    Gauge("jupyter_secure_unset", "No child yet", ["x"], registry=registry)
    signins.labels("ok").inc(3)
    signins.labels("failed").inc()
    budget.labels("census").set(0.75)
    append.observe(0.05)
    append.observe(0.5)
    append.observe(2.0)
    queries.observe(1.5)

    config = OtelExport(
        enabled=True,
        endpoint=receiver.url,
        headers={"Authorization": "Bearer t0ken"},
        service_name="lab-1",
    )
    exporter = OtelExporter(config, registry)
    assert exporter.export() == 6
    receiver.wait_for(1)

    headers, request = receiver.requests[0]
    assert headers["authorization"] == "Bearer t0ken"
    assert headers["content-type"] == "application/x-protobuf"
    resource = {
        kv.key: kv.value.string_value for kv in request.resource_metrics[0].resource.attributes
    }
    assert resource["service.name"] == "lab-1"
    metrics = receiver.metrics()
    assert set(metrics) == {
        "jupyter_secure_signin_attempts",
        "jupyter_secure_dp_budget_remaining",
        "jupyter_secure_audit_append_seconds",
        "jupyter_secure_query_seconds_count",
        "jupyter_secure_query_seconds_sum",
        "jupyter_secure_build_info",
    }

    counter = metrics["jupyter_secure_signin_attempts"]
    assert counter.description == "Sign-ins"
    assert counter.sum.is_monotonic
    assert counter.sum.aggregation_temporality == CUMULATIVE
    points = _by_attrs(counter)
    assert points[(("outcome", "ok"),)].as_double == 3.0
    assert points[(("outcome", "failed"),)].as_double == 1.0
    created = points[(("outcome", "ok"),)].start_time_unix_nano
    assert 0 < created <= points[(("outcome", "ok"),)].time_unix_nano

    gauge = metrics["jupyter_secure_dp_budget_remaining"]
    assert _by_attrs(gauge)[(("dataset", "census"),)].as_double == 0.75

    [hist] = metrics["jupyter_secure_audit_append_seconds"].histogram.data_points
    assert list(hist.explicit_bounds) == [0.1, 1.0]
    assert list(hist.bucket_counts) == [1, 1, 1]
    assert hist.count == 3
    assert hist.sum == pytest.approx(2.55)
    assert not hist.HasField("min"), "Prometheus keeps no minimum: left unset, not invented"

    assert metrics["jupyter_secure_query_seconds_count"].sum.data_points[0].as_double == 1.0
    assert metrics["jupyter_secure_query_seconds_sum"].sum.data_points[0].as_double == 1.5
    info = metrics["jupyter_secure_build_info"].gauge.data_points[0]
    assert _attrs(info) == {"version": "1.2"}

    # Cumulative: the next export carries the running totals, from the same start.
    signins.labels("ok").inc(2)
    Counter("jupyter_secure_late", "Registered after start", registry=registry).inc(4)
    exporter.export()
    receiver.wait_for(2)
    later = receiver.metrics()
    again = _by_attrs(later["jupyter_secure_signin_attempts"])[(("outcome", "ok"),)]
    assert again.as_double == 5.0
    assert again.start_time_unix_nano == created
    assert later["jupyter_secure_late"].sum.data_points[0].as_double == 4.0
    assert exporter.failures == 0


def test_refused_export_raises_and_is_counted(receiver: Receiver) -> None:
    receiver.status = 400  # not retryable: fails at once
    registry = CollectorRegistry()
    Gauge("jupyter_secure_up", "Up", registry=registry).set(1)
    exporter = OtelExporter(OtelExport(enabled=True, endpoint=receiver.url), registry)
    with pytest.raises(ExportFailed, match="400"):
        exporter.export()
    exporter.tick()
    assert exporter.failures == 1
    assert "400" in str(exporter.last_error)


def test_collector_down_fails_within_the_timeout() -> None:
    registry = CollectorRegistry()
    Gauge("jupyter_secure_up", "Up", registry=registry).set(1)
    config = OtelExport(enabled=True, endpoint=f"http://127.0.0.1:{_closed_port()}", timeout=1)
    exporter = OtelExporter(config, registry)
    started = time.monotonic()
    exporter.tick()
    assert exporter.failures == 1
    assert time.monotonic() - started < 10
    assert exporter.stop(timeout=5)


def test_the_thread_exports_and_stops(receiver: Receiver) -> None:
    registry = CollectorRegistry()
    Gauge("jupyter_secure_up", "Up", registry=registry).set(1)
    exporter = OtelExporter(OtelExport(enabled=True, endpoint=receiver.url, interval=5), registry)
    exporter.start()
    receiver.wait_for(1)
    started = time.monotonic()
    assert exporter.stop(timeout=10)
    assert time.monotonic() - started < 5, "stop does not wait out the interval"
    assert "jupyter_secure_up" in receiver.metrics()


def test_stop_cuts_a_retry_short(receiver: Receiver) -> None:
    receiver.status = 503  # retryable: the exporter backs off and tries again
    registry = CollectorRegistry()
    Gauge("jupyter_secure_up", "Up", registry=registry).set(1)
    config = OtelExport(enabled=True, endpoint=receiver.url, interval=5, timeout=30)
    exporter = OtelExporter(config, registry)
    exporter.start()
    receiver.wait_for_hits(1)
    started = time.monotonic()
    assert exporter.stop(timeout=10)
    assert time.monotonic() - started < 5, "not the 30 s the retries could take"
    assert exporter.failures == 1
