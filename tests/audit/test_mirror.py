"""Checkpoint copies leave the machine: a real HTTP endpoint and a real syslog socket."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from jupyter_secure.audit.checkpoints import parse_checkpoint
from jupyter_secure.audit.mirror import SyslogMirror, mirror_from_url
from jupyter_secure.errors import InvalidInput


class _Collector(BaseHTTPRequestHandler):
    received: list[dict] = []  # type: ignore[type-arg]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector():  # type: ignore[no-untyped-def]
    _Collector.received = []
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/checkpoints", _Collector.received
    server.shutdown()
    server.server_close()


def local_checkpoints(directory: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(x) for x in (directory / "checkpoints.jsonl").read_bytes().splitlines()]


def test_http_endpoint_receives_every_checkpoint(make_trail, collector) -> None:  # type: ignore[no-untyped-def]
    url, received = collector
    t = make_trail(checkpoint_mirror=url, checkpoint_interval=0.0)
    for _ in range(3):
        t.add(2)
    t.close()
    assert [r["checkpoint"] for r in received] == local_checkpoints(t.directory)


def test_an_unreachable_endpoint_never_blocks_appends(make_trail) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = make_trail(checkpoint_mirror=f"http://127.0.0.1:{port}/nothing-listens")
    t.sink._mirror.backoff = 0.01  # type: ignore[union-attr]
    t.add(5)
    t.close()
    assert t.sink._mirror.failures >= 1  # type: ignore[union-attr]
    assert len(local_checkpoints(t.directory)) >= 2


def test_syslog_receives_checkpoints(make_trail) -> None:  # type: ignore[no-untyped-def]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    port = sock.getsockname()[1]
    try:
        t = make_trail(checkpoint_mirror=f"syslog://127.0.0.1:{port}")
        t.add(2)
        t.close()
        expected = local_checkpoints(t.directory)
        got = []
        while len(got) < len(expected):
            message = sock.recv(65536).decode()
            assert message.startswith("<")  # a syslog priority, then the text
            got.append(json.loads(message[message.index("{") :].rstrip("\x00")))
    finally:
        sock.close()
    assert got == expected
    assert parse_checkpoint(json.dumps(got[-1]).encode()).seq == 2


@pytest.mark.parametrize(
    ("url", "message"),
    [("relative/dir", "not absolute"), ("ftp://x/y", "unsupported scheme 'ftp'")],
)
def test_bad_mirror_settings_name_the_setting(url: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        mirror_from_url(url, "t")
    assert info.value.field == "AuditSink.checkpoint_mirror"


def test_syslog_url_forms() -> None:
    local = mirror_from_url("syslog:///dev/log", "t")
    remote = mirror_from_url("syslog://logs.example.org", "t")
    assert isinstance(local, SyslogMirror)
    assert local.address == "/dev/log"
    assert isinstance(remote, SyslogMirror)
    assert remote.address == ("logs.example.org", 514)
