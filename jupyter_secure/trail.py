"""The audit trail from a notebook: records, the verification status, alarms.

::

    from jupyter_secure import trail

    trail.records()                          # the last 24 hours I may see, newest first
    trail.records(event="PrivateQuery", since="7d", limit=500)
    trail.verify()                           # {"ok": True, "records": …, "problems": []}
    trail.alarms(state="ALARM")

Everything is read through the server with this kernel's own signed token
(the one :mod:`jupyter_secure.private` uses), which speaks for the notebook's
owner: the server applies the owner's scopes, fresh from the policy on every
call, and the same rule as the admin panel. Everyone may read the records
about themselves; ``secure:audit:read`` (instructors) adds the members of
their groups; ``secure:audit:admin`` (auditors, admins) everything. A student
therefore reads only records about themselves. ``verify()`` needs
``secure:audit:admin`` and ``alarms()`` ``secure:alarms:read``; without the
scope the call raises :class:`TrailRefused` naming it. Nothing in a kernel can
reach the trail's files, and every read is itself recorded (``AuditQueried``).

Outside a guarded kernel every call raises :class:`TrailUnavailable`.
Like :mod:`jupyter_secure.private`: standard library only (pandas is imported
when a frame is built), no proxy, no redirects, a timeout on every request.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from jupyter_secure.kernel import session
from jupyter_secure.kernel.transport import OPENER, error_body

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "REQUEST_TIMEOUT",
    "TrailError",
    "TrailInvalid",
    "TrailRefused",
    "TrailUnavailable",
    "alarms",
    "records",
    "verify",
]

#: Seconds to wait for the server's answer to any one request.
REQUEST_TIMEOUT = 60.0
#: The server's page size; ``records(limit=…)`` above it is read page by page.
PAGE: Final = 500
MAX_RECORDS: Final = 10_000
_COLUMNS: Final = (
    "seq", "time", "event", "user", "roles", "sourceIp", "errorCode", "resources",
    "request", "response",
)  # fmt: skip
_OUTSIDE: Final = (
    "the audit trail is only reachable from a jupyter-secure guarded kernel "
    "(this process has no kernel session)"
)


class TrailError(Exception):
    """The server refused or could not answer; the message is its own sentence."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        #: the HTTP status of the server's answer, if there was one
        self.status = status


class TrailRefused(TrailError):
    """The notebook's owner may not do this: ``scope`` names what they would need."""

    def __init__(self, message: str, *, status: int | None = None, scope: str | None = None):
        super().__init__(message, status=status)
        #: the scope the owner lacks (``"secure:audit:admin"``), when the server said
        self.scope = scope


class TrailInvalid(TrailError, ValueError):
    """A parameter was refused (``field`` names it): a bad time, limit or event name."""

    def __init__(self, message: str, *, status: int | None = None, field: str | None = None):
        super().__init__(message, status=status)
        self.field = field


class TrailUnavailable(TrailError):
    """No server to ask: outside a guarded kernel, unreachable, timed out or failing."""


def _error(status: int, raw: bytes | None) -> TrailError:
    try:
        data = json.loads(raw or b"")
    except ValueError:
        data = None
    data = data if isinstance(data, dict) else {}
    message = data.get("error") if isinstance(data.get("error"), str) else None
    text = message or f"the server answered HTTP {status}"
    if status == 400:
        field = data.get("field") if isinstance(data.get("field"), str) else None
        return TrailInvalid(f"{field}: {text}" if field else text, status=status, field=field)
    if status in (401, 403):
        needed = data.get("scope") if isinstance(data.get("scope"), str) else None
        return TrailRefused(text, status=status, scope=needed)
    return TrailUnavailable(text, status=status)


def _get(route: str, params: Mapping[str, object]) -> dict[str, Any]:
    """One GET to ``<trail url>/<route>``: its JSON object, or the matching error."""
    current = session.current()
    if current is None or not current.trail_url:
        raise TrailUnavailable(_OUTSIDE)
    query = urllib.parse.urlencode({k: str(v) for k, v in params.items() if v is not None})
    url = f"{current.trail_url.rstrip('/')}/{route}" + (f"?{query}" if query else "")
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise TrailUnavailable("the trail URL of this kernel is not http(s)")
    request = urllib.request.Request(  # noqa: S310 - the scheme was checked just above
        url, headers={"Authorization": f"KernelToken {current.token}"}
    )
    try:
        with OPENER.open(request, timeout=REQUEST_TIMEOUT) as response:
            raw = response.read()
    except urllib.error.HTTPError as err:
        raise _error(err.code, error_body(err)) from None
    except TimeoutError:
        raise TrailUnavailable(f"the server did not answer within {REQUEST_TIMEOUT:g} s") from None
    except urllib.error.URLError as err:
        raise TrailUnavailable(f"cannot reach the server ({err.reason})") from None
    except (OSError, http.client.HTTPException) as err:
        raise TrailUnavailable(
            f"the connection to the server failed ({type(err).__name__})"
        ) from None
    try:
        data = json.loads(raw)
    except ValueError:
        raise TrailUnavailable("the server sent a malformed answer (not JSON)") from None
    if not isinstance(data, dict):
        raise TrailUnavailable("the server sent a malformed answer (not a JSON object)")
    return data


def _when(value: str | dt.datetime | None, field: str) -> str | None:
    """A time for the server: ISO 8601 or a duration (``15m``, ``24h``, ``7d``) as given;
    a datetime without a zone is taken as UTC."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    raise TrailInvalid(f"{field}: expected a datetime, an ISO 8601 text or 15m/24h/7d", field=field)


def _frame(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=list(columns))
    for column in ("time", "raisedAt", "resolvedAt", "ackedAt"):
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


def records(
    user: str | None = None,
    event: str | None = None,
    since: str | dt.datetime | None = "24h",
    until: str | dt.datetime | None = None,
    limit: int = 100,
) -> pd.DataFrame:
    """Audit records you may see, newest first, as a DataFrame (one row per record).

    ``user``: only records about this person; ``event``: only this event name
    (``"PrivateQuery"``, ``"CellExecuted"``, …); ``since``/``until``: ISO 8601,
    a datetime, or a duration back from now (``"15m"``, ``"24h"``, ``"7d"``;
    ``since=None`` for all time); ``limit``: at most this many (up to 10,000,
    read 500 at a time).

    Columns: seq, time (UTC), event, user, roles, sourceIp, errorCode,
    resources, request, response.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RECORDS:
        raise TrailInvalid(f"limit: expected a whole number from 1 to {MAX_RECORDS}", field="limit")
    params: dict[str, object] = {
        "user": user,
        "event": event,
        "since": _when(since, "since"),
        "until": _when(until, "until"),
    }
    rows: list[dict[str, Any]] = []
    before = None
    while len(rows) < limit:
        page = _get("records", {**params, "limit": min(PAGE, limit - len(rows)), "before": before})
        found = page.get("records")
        if not isinstance(found, list):
            raise TrailUnavailable("the server sent a malformed answer (records)")
        rows.extend(found)
        before = page.get("next")
        if not found or before is None:
            break
    return _frame(rows, _COLUMNS)


def verify() -> dict[str, Any]:
    """Verify the whole trail now (needs ``secure:audit:admin``): ``ok``, counts, problems."""
    return _get("verify", {})


def alarms(state: str | None = None, limit: int = 100) -> pd.DataFrame:
    """Alarms, newest first (needs ``secure:alarms:read``); ``state``: ``"ALARM"``,
    ``"OK"``, ``"INSUFFICIENT_DATA"`` or ``"unacked"``."""
    data = _get("alarms", {"state": state, "limit": limit})
    found = data.get("alarms")
    if not isinstance(found, list):
        raise TrailUnavailable("the server sent a malformed answer (alarms)")
    columns = tuple(found[0]) if found else ("id", "rule", "key", "severity", "state")
    return _frame(found, columns)
