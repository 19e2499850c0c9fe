"""Copies of each checkpoint kept outside the state directory.

Someone who can write the state directory can cut the end off the trail and
off the checkpoint file together, and nothing left inside shows it. A copy of
every checkpoint somewhere they cannot write — another disk, a syslog
collector, an HTTP endpoint — bounds that: ``audit verify --mirror`` fails
when the trail ends before the last copied checkpoint.

Sending happens on a background thread so a slow collector never delays an
audit append; failures are logged and counted, and retried with back-off.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import queue
import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from ..errors import InvalidInput, StartupRefused

__all__ = ["CheckpointMirror", "MirrorPump", "mirror_file", "mirror_from_url", "read_mirror"]

log = logging.getLogger(__name__)


class CheckpointMirror(Protocol):
    def describe(self) -> str: ...
    def send(self, line: bytes) -> None: ...
    def close(self) -> None: ...


def mirror_file(directory: Path, trail_id: str) -> Path:
    return directory / f"{trail_id}.checkpoints.jsonl"


class DirectoryMirror:
    """Appends each checkpoint line to ``<dir>/<trail id>.checkpoints.jsonl`` and fsyncs."""

    def __init__(self, directory: Path, trail_id: str) -> None:
        self.path = mirror_file(directory, trail_id)

    def describe(self) -> str:
        return f"directory {self.path.parent}"

    def probe(self) -> None:
        """The directory must already exist: creating it would hide an unmounted volume."""
        if not self.path.parent.is_dir():
            raise StartupRefused(
                f"audit checkpoint mirror directory {self.path.parent} does not exist "
                "(not mounted?): create it, on storage the state directory's owner cannot rewrite"
            )
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.close(fd)
        except OSError as exc:
            raise StartupRefused(
                f"audit checkpoint mirror {self.path} is not writable: {exc.strerror or exc}"
            ) from None

    def send(self, line: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Nothing stays open between sends."""


class SyslogMirror:
    """Sends each checkpoint as one syslog message (facility ``authpriv``)."""

    def __init__(self, address: str | tuple[str, int]) -> None:
        self.address = address
        self._handler: logging.handlers.SysLogHandler | None = None

    def describe(self) -> str:
        return f"syslog {self.address}"

    def probe(self) -> None:
        try:
            self._connect()
        except OSError as exc:
            raise StartupRefused(f"audit checkpoint mirror {self.describe()}: {exc}") from None

    def _connect(self) -> logging.handlers.SysLogHandler:
        if self._handler is None:
            self._handler = logging.handlers.SysLogHandler(
                address=self.address,
                facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV,
                socktype=socket.SOCK_DGRAM,
            )
        return self._handler

    def send(self, line: bytes) -> None:
        handler = self._connect()
        record = logging.LogRecord(
            "jupyter-secure-audit",
            logging.INFO,
            __file__,
            0,
            "jupyter-secure audit checkpoint %s",
            (line.decode("utf-8").strip(),),
            None,
        )
        handler.emit(record)

    def close(self) -> None:
        if self._handler is not None:
            self._handler.close()
            self._handler = None


class HttpMirror:
    """POSTs each checkpoint as JSON to an endpoint (5 s timeout)."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout

    def describe(self) -> str:
        return f"HTTP endpoint {self.url}"

    def probe(self) -> None:
        """Nothing to probe without a checkpoint; the first send reports failures."""

    def send(self, line: bytes) -> None:
        body = json.dumps({"checkpoint": json.loads(line)}).encode()
        req = urllib.request.Request(  # noqa: S310 - scheme checked in mirror_from_url
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
            if resp.status >= 300:
                raise OSError(f"HTTP {resp.status}")

    def close(self) -> None:
        """Each send opens its own connection."""


def mirror_from_url(url: str, trail_id: str) -> DirectoryMirror | SyslogMirror | HttpMirror | None:
    """Build a mirror from ``AuditSink.checkpoint_mirror``; empty means none."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme in {"", "file"}:
        path = Path(parts.path if parts.scheme else url).expanduser()
        if not path.is_absolute():
            raise InvalidInput("AuditSink.checkpoint_mirror", f"directory {url!r} is not absolute")
        return DirectoryMirror(path, trail_id)
    if parts.scheme == "syslog":
        if parts.hostname:
            return SyslogMirror((parts.hostname, parts.port or 514))
        return SyslogMirror(parts.path or "/dev/log")
    if parts.scheme in {"http", "https"}:
        return HttpMirror(url)
    raise InvalidInput(
        "AuditSink.checkpoint_mirror",
        f"unsupported scheme {parts.scheme!r}; use a directory, syslog:// or https://",
    )


def read_mirror(directory: Path, trail_id: str) -> list[bytes]:
    """The checkpoint lines a directory mirror holds (complete lines only)."""
    try:
        data = mirror_file(directory, trail_id).read_bytes()
    except FileNotFoundError:
        return []
    return [line + b"\n" for line in data.split(b"\n")[:-1] if line]


class MirrorPump:
    """Sends checkpoint lines to a mirror from a daemon thread, newest first on back-log."""

    def __init__(self, mirror: CheckpointMirror, retries: int = 3, backoff: float = 0.5) -> None:
        self.mirror = mirror
        self.retries = retries
        self.backoff = backoff
        self.failures = 0
        self.sent = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=1000)
        self._thread = threading.Thread(target=self._run, name="audit-mirror", daemon=True)
        self._thread.start()

    def put(self, line: bytes) -> None:
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self.failures += 1
            log.error("audit checkpoint mirror %s is falling behind", self.mirror.describe())

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        self.mirror.close()

    def _run(self) -> None:
        while True:
            line = self._queue.get()
            if line is None:
                return
            for attempt in range(1, self.retries + 1):
                try:
                    self.mirror.send(line)
                except Exception as exc:  # any transport error: retry, then give up loudly
                    if attempt == self.retries:
                        self.failures += 1
                        log.error(
                            "audit checkpoint mirror %s failed: %s", self.mirror.describe(), exc
                        )
                    else:
                        time.sleep(self.backoff * attempt)
                else:
                    self.sent += 1
                    break
