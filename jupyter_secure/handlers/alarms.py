"""``/secure/api/alarms``: the alarm list, the rules in effect, acknowledgements.

For the admin panel and for scripts with an API token. Reading needs
``secure:alarms:read`` (admins, auditors); acknowledging needs
``secure:alarms:write`` (admins) and is recorded as ``AlarmAcknowledged``
with the acknowledger's identity and address.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..audit.logger import Identity, Resource
from ..errors import InvalidInput
from ..monitoring.monitor import AlarmMonitor
from ..monitoring.store import AlarmStore, NoSuchAlarm
from .access import principal_of
from .base import SecureHandlerMixin, run_blocking

__all__ = ["AUTH_RESOURCE", "default_handlers"]

AUTH_RESOURCE = "secure:alarms"
_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_STATES = ("ALARM", "OK", "INSUFFICIENT_DATA", "unacked")


class _Api(SecureHandlerMixin, APIHandler):
    auth_resource = AUTH_RESOURCE

    def initialize(self, monitor: Callable[[], AlarmMonitor | None]) -> None:
        self._monitor = monitor

    @property
    def monitor(self) -> AlarmMonitor:
        found = self._monitor()
        if found is None:
            raise web.HTTPError(503, "the alarm monitor is not running (AlarmMonitor.enabled)")
        return found

    @property
    def store(self) -> AlarmStore:
        return self.monitor.store


class AlarmsHandler(_Api):
    """``GET ?state=ALARM|OK|INSUFFICIENT_DATA|unacked&since=ISO&limit=N``, newest first."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        state = self.get_query_argument("state", None)
        if state is not None and state not in _STATES:
            self.json_error(400, f"expected one of {', '.join(_STATES)}", field="state")
            return
        limit_text = self.get_query_argument("limit", "100")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
            self.json_error(400, "expected a whole number from 1 to 1000", field="limit")
            return
        since = None
        since_text = self.get_query_argument("since", None)
        if since_text is not None:
            try:
                since = dt.datetime.fromisoformat(since_text.replace("Z", "+00:00"))
            except ValueError:
                self.json_error(400, "expected an ISO 8601 time", field="since")
                return
            if since.tzinfo is None:
                since = since.replace(tzinfo=dt.UTC)
        rows = await run_blocking(self.store.find, state=state, since=since,
                                  limit=int(limit_text))  # fmt: skip
        self.finish(json.dumps({"alarms": [r.as_dict() for r in rows],
                                "firing": self.monitor.firing()}))  # fmt: skip


class RulesHandler(_Api):
    """``GET``: every rule in effect, with why it exists."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        rules = [
            {
                "name": r.name,
                "description": r.description,
                "why": r.why,
                "rule": r.describe(),
                "signal": r.signal,
                "key": r.key,
                "severity": r.severity,
                "actions": list(r.actions),
                "enabled": r.enabled,
            }
            for r in self.monitor.rules
        ]
        self.finish(json.dumps({"rules": rules}))


class AckHandler(_Api):
    """``POST {"note": "..."}``: acknowledge one alarm (the first acknowledgement stands)."""

    @web.authenticated
    @authorized
    async def post(self, alarm_id: str) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            self.json_error(400, "the body is not JSON")
            return
        note = body.get("note", "") if isinstance(body, dict) else None
        if not isinstance(note, str) or len(note) > 500:
            self.json_error(400, "a text of at most 500 characters", field="note")
            return
        user = self.current_user
        principal = principal_of(user)
        identity = Identity(
            "User",
            user.username,
            tuple(sorted(principal.roles)),
            tuple(sorted(principal.groups)),
            session_id=getattr(user, "session_id", None),
        )
        try:
            row = await run_blocking(
                self.store.ack,
                alarm_id,
                by=user.username,
                note=note,
                audit=self.monitor.audit,
                identity=identity,
                source_ip=self.client_ip,
                user_agent=self.user_agent,
                resources=[Resource("alarm", alarm_id)],
            )
        except NoSuchAlarm:
            self.json_error(404, "no such alarm", field="alarm")
            return
        except InvalidInput as exc:
            self.json_error(400, exc.message, field=exc.field)
            return
        self.finish(json.dumps(row.as_dict()))


def default_handlers(monitor: Callable[[], AlarmMonitor | None]) -> list[tuple[str, Any, Any]]:
    args = {"monitor": monitor}
    return [
        (r"/secure/api/alarms", AlarmsHandler, args),
        (r"/secure/api/alarms/rules", RulesHandler, args),
        (rf"/secure/api/alarms/({_ID})/ack", AckHandler, args),
    ]
