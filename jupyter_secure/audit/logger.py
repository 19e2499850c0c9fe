"""The audit event logger: builds CloudTrail-shaped records, validates them, appends them.

Every part of the product records through one :class:`AuditLogger`. It is an
event logger of our own rather than the server's ``event_logger``: that one
feeds ``/api/events``, which any signed-in user can post to and subscribe to.

What is logged for code (decided here, used by the kernel guard): by default
the SHA-256 of a cell's source *and* the source text, so an investigator can
see what ran; with ``AuditLogger.code_record = "hash"`` only the hash and the
length, for sites where code itself may hold secrets. Cell outputs are never
logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import pwd
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from traitlets import Enum, Int
from traitlets.config import LoggingConfigurable

from .._version import __version__
from .ids import uuid7
from .schemas import SchemaSet, load_schemas
from .sink import AuditSink, Receipt, TailRepair

__all__ = ["AuditLogger", "Identity", "IndexFields", "Resource"]

SOURCES = {
    "server": "jupyter-secure.server",
    "cli": "jupyter-secure.cli",
    "kernel": "jupyter-secure.kernel",
    "audit": "jupyter-secure.audit",
    "broker": "jupyter-secure.broker",
}


@dataclass(frozen=True)
class Identity:
    """Who acted (``userIdentity``)."""

    type: str
    name: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    session_id: str | None = None
    mfa: bool = False

    @classmethod
    def system(cls) -> Identity:
        return cls("System", "jupyter-secure")

    @classmethod
    def os_user(cls) -> Identity:
        """The operating-system account running an admin command.

        From the password database by effective uid, not ``$USER``/``$LOGNAME``
        (which anyone can set). Under sudo the invoking account is added, as
        sudo reports it.
        """
        uid = os.geteuid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:  # no passwd entry (containers)
            name = f"uid:{uid}"
        sudo_user = os.environ.get("SUDO_USER")
        if sudo_user and sudo_user != name:
            name = f"{name} (sudo by {sudo_user[:64]})"
        return cls("OSUser", name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "roles": list(self.roles),
            "groups": list(self.groups),
            "sessionId": self.session_id,
            "mfa": self.mfa,
        }


@dataclass(frozen=True)
class Resource:
    type: str
    name: str


@dataclass(frozen=True, slots=True)
class IndexFields:
    """What the index stores about a record, taken from the event before it is written."""

    event_id: str
    time_us: int
    name: str
    source: str
    user: str | None
    error_code: str | None
    resources: tuple[str, ...] = field(default=())


def _iso(ts: float) -> str:
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )


class AuditLogger(LoggingConfigurable):
    """Records audit events for one part of the product (server, CLI, …)."""

    code_record = Enum(
        ["text", "hash"],
        default_value="text",
        help="""What the trail keeps of executed code: "text" keeps the source
        and its SHA-256 (an investigator can see what ran); "hash" keeps only
        the SHA-256 and the length (for sites where code may contain secrets).
        Outputs are never recorded.""",
    ).tag(config=True)

    code_max_bytes = Int(
        65536,
        help="""With code_record="text", sources longer than this many UTF-8
        bytes are cut to this length in the trail (the hash always covers the
        whole source).""",
    ).tag(config=True)

    def __init__(
        self,
        sink: AuditSink,
        *,
        source: str,
        user_agent: str | None = None,
        schemas: SchemaSet | None = None,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if source not in SOURCES:
            raise ValueError(f"unknown event source {source!r}")
        self.sink = sink
        self.source = SOURCES[source]
        self.user_agent = user_agent
        self.schemas = schemas or load_schemas()
        self.clock = clock
        #: Called with each record as it is queued (metrics, in-process watchers). A
        #: listener must be quick and must not raise; one that does is logged and skipped.
        self.listeners: list[Callable[[Mapping[str, Any]], None]] = []
        sink.repair_event = self.repair_event

    def build(
        self,
        name: str,
        *,
        identity: Identity,
        request: Mapping[str, Any] | None = None,
        response: Mapping[str, Any] | None = None,
        resources: Iterable[Resource] = (),
        read_only: bool = False,
        error_code: str | None = None,
        error_message: str | None = None,
        source_ip: str | None = None,
        user_agent: str | None = None,
    ) -> dict[str, Any]:
        """A complete, schema-valid record (without seq/prev/hash)."""
        schema = self.schemas.get(name)
        now = self.clock()
        event = {
            "eventVersion": schema.version,
            "eventID": str(uuid7(int(now * 1e9))),
            "eventTime": _iso(now),
            "eventSource": self.source,
            "eventName": name,
            "userIdentity": identity.as_dict(),
            "sourceIPAddress": source_ip,
            "userAgent": user_agent if user_agent is not None else self.user_agent,
            "requestParameters": dict(request) if request is not None else None,
            "responseElements": dict(response) if response is not None else None,
            "errorCode": error_code,
            "errorMessage": error_message,
            "resources": [{"type": r.type, "name": r.name} for r in resources],
            "readOnly": read_only,
        }
        schema.validate(event)
        return event

    @staticmethod
    def index_fields(event: Mapping[str, Any]) -> IndexFields:
        time_us = int(
            dt.datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00")).timestamp()
            * 1_000_000
        )
        return IndexFields(
            event_id=event["eventID"],
            time_us=time_us,
            name=event["eventName"],
            source=event["eventSource"],
            user=event["userIdentity"]["name"],
            error_code=event["errorCode"],
            resources=tuple(f"{r['type']}:{r['name']}" for r in event["resources"]),
        )

    def submit(self, name: str, **kwargs: Any) -> Future[Receipt]:
        """Build, validate and queue; the future resolves when the record is durable."""
        event = self.build(name, **kwargs)
        future = self.sink.submit(event, self.index_fields(event))
        self._tell(event)
        return future

    def record(self, name: str, **kwargs: Any) -> Receipt:
        """Build, validate, append and wait until durable (blocking)."""
        event = self.build(name, **kwargs)
        receipt = self.sink.append(event, self.index_fields(event))
        self._tell(event)
        return receipt

    def _tell(self, event: Mapping[str, Any]) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                self.log.exception("audit listener %r failed", listener)

    async def record_async(self, name: str, **kwargs: Any) -> Receipt:
        """As :meth:`record`, without blocking the event loop while the disk syncs."""
        future = self.submit(name, **kwargs)
        return await asyncio.wait_for(asyncio.wrap_future(future), self.sink.append_timeout)

    def code_fields(self, code: str) -> dict[str, Any]:
        """The fields an execution event carries for ``code``, per :attr:`code_record`."""
        raw = code.encode("utf-8", "surrogatepass")
        fields: dict[str, Any] = {
            "codeSha256": hashlib.sha256(raw).hexdigest(),
            "codeBytes": len(raw),
        }
        if self.code_record == "text":
            cut = raw[: self.code_max_bytes].decode("utf-8", "ignore")
            fields["code"] = cut
            fields["codeTruncated"] = len(raw) > self.code_max_bytes
        return fields

    def repair_event(self, repair: TailRepair) -> tuple[dict[str, Any], IndexFields]:
        """The record the sink writes after cutting a torn tail (wired in ``__init__``)."""
        event = self.build(
            "AuditTailRepaired",
            identity=Identity.system(),
            request={
                "segment": repair.segment,
                "offset": repair.offset,
                "length": repair.length,
                "sha256": repair.sha256,
                "quarantine": repair.quarantine,
            },
            resources=[Resource("audit-trail", self.sink.trail_id)],
        )
        event["eventSource"] = SOURCES["audit"]
        return event, self.index_fields(event)


def cli_user_agent(command: str) -> str:
    return f"jupyter-secure/{__version__} ({command})"
