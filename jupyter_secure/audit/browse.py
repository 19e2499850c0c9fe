"""Reading the trail from the admin panel and from a notebook: filters, visibility, shape.

The REST route ``GET /secure/api/audit`` and the kernel's ``jupyter_secure.trail``
read the same records under the same rule, so the rule lives here, once:

* holders of ``secure:audit:admin`` see every record;
* holders of ``secure:audit:read`` only see records *about* themselves and the
  members of their groups — records those people made (``userIdentity``) and
  records whose resources name one of them as a ``user`` (an administrator
  disabling a student is about the student) — and never a record that names
  anyone else as a ``user`` (a member who is also an administrator disabling
  someone outside the reader's groups).

Also here: the query parameters both routes accept (each refusal names its
field), times given as ISO 8601 or as a duration back from now (``15m``,
``24h``, ``7d``), and the JSON summary of one record.

Pure: no I/O, no clock (``now`` is a parameter), no Jupyter.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput

__all__ = [
    "MAX_LIMIT",
    "AuditRequest",
    "is_visible",
    "parse_limit",
    "parse_request",
    "parse_time",
    "summary",
    "visible_users",
]

#: The most records one request returns (a page; ``before=`` fetches the next).
MAX_LIMIT = 500
DEFAULT_LIMIT = 100

_RELATIVE = re.compile(r"^(\d{1,9})\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NAME = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
_EVENT = re.compile(r"^[A-Z][A-Za-z]{0,99}$")


def parse_time(value: str, field: str, *, now: float) -> int:
    """An instant as microseconds since the epoch.

    Accepts ISO 8601 (``2026-11-26``, ``2026-11-26T10:00``, with ``Z`` or an
    offset; no zone means UTC) or a duration back from ``now`` (``30m``,
    ``12h``, ``7d``, ``2w``).

    >>> parse_time("1h", "since", now=7200.0)
    3600000000
    >>> parse_time("1970-01-01T00:00:01Z", "since", now=0.0)
    1000000
    """
    text = value.strip()
    rel = _RELATIVE.match(text)
    if rel:
        seconds = int(rel.group(1)) * _UNIT_SECONDS[rel.group(2)]
        return int((now - seconds) * 1_000_000)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            field, f"{value!r} is not a time: use ISO 8601 (2026-11-26T10:00Z) or 30m, 12h, 7d"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1_000_000)


def parse_limit(
    text: str | None, field: str = "limit", *, most: int = MAX_LIMIT, default: int = DEFAULT_LIMIT
) -> int:
    """A page size from 1 to ``most`` (``default`` when not given)."""
    if text is None or text == "":
        return default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise InvalidInput(field, f"expected a whole number from 1 to {most}, got {text[:20]!r}")
    return int(text)


@dataclass(frozen=True)
class AuditRequest:
    """One page of records asked for, every value checked."""

    user: str | None = None
    event: str | None = None
    since_us: int | None = None
    until_us: int | None = None
    limit: int = DEFAULT_LIMIT
    #: only records with a sequence number below this (the previous page's ``next``)
    before: int | None = None

    def recorded(self, since: str | None, until: str | None) -> dict[str, Any]:
        """The ``AuditQueried`` request parameters for this page (times as the caller gave
        them, so a duration reads as asked)."""
        return {
            "user": self.user,
            "event": self.event,
            "since": since,
            "until": until,
            "resource": None,
            "format": "api",
        }


def parse_request(
    args: Mapping[str, str | None],
    *,
    now: float,
    known_events: Iterable[str] | None = None,
) -> AuditRequest:
    """The filters of ``GET /secure/api/audit`` (and the kernel route), or
    :class:`InvalidInput` naming the first bad one.

    ``args`` maps parameter names to their text (None or absent: not given);
    an unknown parameter is refused, so a misspelt filter never silently
    widens a query.
    """
    unknown = sorted(set(args) - {"user", "event", "since", "until", "limit", "before"})
    if unknown:
        raise InvalidInput(
            unknown[0], "unknown parameter (known: user, event, since, until, limit, before)"
        )
    user = args.get("user") or None
    if user is not None and not _NAME.match(user):
        raise InvalidInput("user", f"{user[:80]!r} is not a user name")
    event = args.get("event") or None
    if event is not None:
        names = set(known_events) if known_events is not None else None
        if not _EVENT.match(event) or (names is not None and event not in names):
            raise InvalidInput("event", f"unknown event {event[:80]!r}")
    since_text = args.get("since") or None
    until_text = args.get("until") or None
    since = parse_time(since_text, "since", now=now) if since_text else None
    until = parse_time(until_text, "until", now=now) if until_text else None
    if since is not None and until is not None and until <= since:
        raise InvalidInput("until", "must be later than since")
    before_text = args.get("before") or None
    before = None
    if before_text is not None:
        if not before_text.isdigit() or not 1 <= int(before_text) < 2**63:
            raise InvalidInput("before", f"expected a record's seq, got {before_text[:20]!r}")
        before = int(before_text)
    return AuditRequest(user, event, since, until, parse_limit(args.get("limit")), before)


def visible_users(
    viewer: str,
    viewer_groups: Iterable[str],
    accounts: Iterable[tuple[str, Iterable[str]]],
    listed: Mapping[str, Iterable[str]] | None = None,
) -> frozenset[str]:
    """Whom a holder of ``secure:audit:read`` (without ``…:admin``) may read about.

    ``viewer_groups`` are the viewer's effective groups; ``accounts`` every
    account with the groups it stores; ``listed`` the members the policy file
    lists per group. The viewer is always included.

    >>> sorted(visible_users("ida", ["c1"], [("sam", ["c1"]), ("bo", ["c2"])], {"c1": ["tia"]}))
    ['ida', 'sam', 'tia']
    """
    mine = set(viewer_groups)
    seen = {viewer}
    for name, groups in accounts:
        if mine.intersection(groups):
            seen.add(name)
    for group, members in (listed or {}).items():
        if group in mine:
            seen.update(members)
    return frozenset(seen)


def is_visible(event: Mapping[str, Any], users: frozenset[str] | None) -> bool:
    """Whether a record may be shown to a reader limited to ``users`` (None: no limit).

    A record that names as a ``user`` anyone outside ``users`` is hidden even when
    someone visible made it: an administrator or a co-instructor who shares one
    group with the reader also acts on people outside it, and such a record is
    about them (``AuditIndex`` applies the same rule in its query).
    """
    if users is None:
        return True
    named = {
        res.get("name")
        for res in event.get("resources") or ()
        if isinstance(res, Mapping) and res.get("type") == "user"
    }
    if named - users:
        return False
    who = event.get("userIdentity")
    return bool(named) or (isinstance(who, Mapping) and who.get("name") in users)


def summary(event: Mapping[str, Any]) -> dict[str, Any]:
    """One record as the REST API and ``trail.records()`` show it.

    >>> summary({"seq": 3, "eventTime": "2026-11-27T10:00:00.000000Z", "eventName": "Login",
    ...          "userIdentity": {"name": "sam", "roles": ["student"]}, "resources": [],
    ...          "errorCode": None})["time"]
    '2026-11-27T10:00:00.000000+00:00'
    """
    who = event.get("userIdentity") or {}
    time = str(event.get("eventTime", ""))
    if time.endswith("Z"):
        time = time[:-1] + "+00:00"
    return {
        "seq": event.get("seq"),
        "time": time,
        "event": event.get("eventName"),
        "user": who.get("name"),
        "roles": list(who.get("roles") or ()),
        "sourceIp": event.get("sourceIPAddress"),
        "errorCode": event.get("errorCode"),
        "resources": [
            {"type": r.get("type"), "name": r.get("name")} for r in event.get("resources") or ()
        ],
        "request": event.get("requestParameters"),
        "response": event.get("responseElements"),
    }
