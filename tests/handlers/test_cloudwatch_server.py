"""A real server with the CloudWatch export on: metrics and the audit trail land in moto."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    # Dummy credentials; nothing read from this machine's AWS files or metadata service.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def jp_server_config(state_dir: Path, moto_url: str):  # type: ignore[no-untyped-def]
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_secure": True, "jupyterlab": True}},
        "SecureApp": {"state_dir": str(state_dir)},
        "CloudWatchExport": {
            "enabled": True,
            "region": REGION,
            "endpoint_url": moto_url,
            "interval": 5.0,
            "dimensions": {"Site": "test-lab"},
        },
    }


async def poll(check: Any, seconds: float = 60.0) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        found = await asyncio.get_running_loop().run_in_executor(None, check)
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("nothing arrived in time")
        await asyncio.sleep(0.5)


async def test_the_trail_and_metrics_land_in_cloudwatch(server, moto_url: str) -> None:  # type: ignore[no-untyped-def]
    b = server.browser()
    await b.get("login")
    await b.post("login", form={"username": "bob", "password": "wrong"})
    logs = boto3.client("logs", endpoint_url=moto_url, region_name=REGION)
    cloudwatch = boto3.client("cloudwatch", endpoint_url=moto_url, region_name=REGION)

    def records() -> list[dict[str, Any]]:
        try:
            streams = logs.describe_log_streams(logGroupName="/jupyter-secure/audit")
        except logs.exceptions.ResourceNotFoundException:
            return []
        out = []
        for stream in streams["logStreams"]:
            events = logs.get_log_events(
                logGroupName="/jupyter-secure/audit",
                logStreamName=stream["logStreamName"],
                startFromHead=True,
            )["events"]
            out += [json.loads(e["message"]) for e in events]
        return out

    def has_failed_login() -> list[dict[str, Any]]:
        found = records()
        return found if any(r["eventName"] == "Login" for r in found) else []

    found = await poll(has_failed_login)
    names = [r["eventName"] for r in found]
    assert names[0] == "StateInitialized", "the whole trail, from its first record"
    assert "ServerStarted" in names
    seqs = [r["seq"] for r in found]
    assert seqs == sorted(seqs)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "in order, none skipped"

    def metric_names() -> set[str]:
        listed = cloudwatch.list_metrics(Namespace="JupyterSecure")["Metrics"]
        return {m["MetricName"] for m in listed}

    got = await poll(lambda: {"signin_attempts_total", "audit_events_total"} <= metric_names())
    assert got
    listed = cloudwatch.list_metrics(Namespace="JupyterSecure", MetricName="sessions_active")
    dims = {d["Name"]: d["Value"] for m in listed["Metrics"] for d in m["Dimensions"]}
    assert dims.get("Site") == "test-lab"
