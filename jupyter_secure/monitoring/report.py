"""Periodic reviews: what happened in a time range, as one HTML page and a CSV per table.

A review is what an administrator (or an auditor) reads once a week or a
month: who signed in and who failed to, what the policy refused, which alarms
fired, who ran code and asked private queries, who spent privacy budget on
which dataset, which accounts nobody uses any more, and whether the audit
trail still verifies. :func:`gather` reads it all into a :class:`Review`;
:func:`write_report` writes it out.

Where each part comes from:

* the audit index, for [since, until): sign-ins (``MfaVerify`` accepted, or a
  ``Login`` accepted whose next step is ``done``), failures (``Login`` /
  ``MfaVerify`` refused, by attempted user name and by address), lockouts
  (``UserLocked``), denials (``AccessDenied``, ``KernelMessageRefused``),
  alarms (``AlarmRaised`` / ``Resolved`` / ``Acknowledged``), private queries
  (``PrivateQuery``), executed cells (``CellExecuteRequested``) and code a
  kernel ran that the server did not forward (``ExecutionUnreconciled``).
  Reads of files and notebooks are not recorded by the product, so the
  review cannot count them and says so;
* the ledger (``private_releases``), for budget spend: every charge counts,
  a failed release too (nothing is refunded once the data may have been
  read), a repeat served from its stored release does not (it cost nothing);
* the accounts as they stand when the review is made (the database keeps
  only the latest sign-in), for stale accounts: enabled, not a service
  account, no sign-in for ``stale_days`` (or never, and created more than
  that ago) — the same finding as ``jupyter secure access review``;
* the verifier ``audit verify`` runs, over the whole trail at the time of the
  review (not only the period), passed in by the caller.

The page is hostile-input safe by construction: user names, addresses, rules
and notes reach it from attackers (an address from a forwarded header, a name
typed at the sign-in page), so every value is HTML-escaped, the page carries
no script and no external reference (charts are inline SVG drawn here), and a
Content-Security-Policy forbids anything but its own inline styles. CSV cells
that a spreadsheet would evaluate as a formula get a leading apostrophe.

Pure: no Jupyter imports.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import html
import math
import os
import secrets
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select

from ..audit.export import csv_safe
from ..audit.index import AuditIndex, AuditIntegrityError, QueryFilter
from ..audit.verify import VerifyReport
from ..errors import InvalidInput
from ..identity.users import UserDirectory
from ..policy.document import Policy
from ..policy.review import access_review
from ..privacy.amounts import MEASURES, Amount, Measure
from ..storage.database import Database
from ..storage.models import PrivateRelease, PrivateSpend, utcnow
from ..storage.paths import fsync_dir as _fsync_dir

__all__ = [
    "CSV_FILES",
    "HTML_FILE",
    "REPORT_FILES",
    "Review",
    "Series",
    "Table",
    "Verification",
    "check_out_dir",
    "gather",
    "render_html",
    "write_report",
]

HTML_FILE = "report.html"
#: The tables, in the order the page shows them; each is written as ``<name>.csv``.
TABLE_NAMES = (
    "signins",
    "failures",
    "denials",
    "alarms",
    "data_access",
    "budget_spend",
    "stale_accounts",
    "verification",
)
CSV_FILES = (*(f"{name}.csv" for name in TABLE_NAMES), "daily.csv")
REPORT_FILES = (HTML_FILE, *CSV_FILES)
#: Longest series a chart draws; a longer range is grouped into buckets of several days.
MAX_BUCKETS = 366
#: Rows of a table shown on the page (the CSV has them all).
PAGE_ROWS = 50

SIGNIN_EVENTS = ("Login", "MfaVerify", "UserLocked")
DENIAL_EVENTS = ("AccessDenied", "KernelMessageRefused")
ALARM_EVENTS = ("AlarmRaised", "AlarmResolved", "AlarmAcknowledged")
ACCESS_EVENTS = ("PrivateQuery", "CellExecuteRequested", "ExecutionUnreconciled")
REVIEWED_EVENTS = (*SIGNIN_EVENTS, *DENIAL_EVENTS, *ALARM_EVENTS, *ACCESS_EVENTS)

Cell = str | int | None


@dataclass(frozen=True)
class Table:
    """One table of the review: a section of the page and one CSV file."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""


@dataclass(frozen=True)
class Verification:
    """The outcome of verifying the audit trail, as the review reports it."""

    ok: bool
    mode: str
    trail: str
    records: int
    segments: int
    checkpoints: int
    signed_seq: int
    seconds: float
    problems: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()

    @classmethod
    def of(cls, report: VerifyReport, mode: str) -> Verification:
        return cls(
            ok=report.ok,
            mode=mode,
            trail=report.trail_id or "",
            records=report.records,
            segments=report.segments,
            checkpoints=report.checkpoints,
            signed_seq=report.signed_seq,
            seconds=report.seconds,
            problems=tuple(str(p) for p in report.problems),
            notices=tuple(report.notices),
        )

    @property
    def summary(self) -> str:
        """The line ``jupyter secure audit verify`` prints."""
        verdict = "OK" if self.ok else "FAILED"
        return (
            f"audit trail {self.trail}: {verdict} — {self.records:,} records in "
            f"{self.segments} segments, {self.checkpoints:,} checkpoints, "
            f"checked in {self.seconds:.2f} s ({self.mode})"
        )


@dataclass(frozen=True)
class Series:
    """Counts per bucket of ``bucket_days`` days (one day unless the range is long)."""

    starts: tuple[dt.date, ...]
    bucket_days: int
    signins_ok: tuple[int, ...]
    signins_failed: tuple[int, ...]
    denials: tuple[int, ...]
    #: privacy spent per bucket, in nano-units, per measure charged in the range
    spend: Mapping[str, tuple[int, ...]]


@dataclass(frozen=True)
class Review:
    """Everything one periodic review shows."""

    since: dt.datetime
    until: dt.datetime
    made_at: dt.datetime
    stale_days: int
    verification: Verification
    #: headline numbers, in the order shown
    totals: Mapping[str, int]
    series: Series
    #: by name, in TABLE_NAMES order
    tables: Mapping[str, Table]
    #: budget spend summed per dataset (shown on the page only)
    spend_by_dataset: Table
    #: audit records read for the review (the AuditQueried record's count)
    records_read: int
    #: why the trail's records could not be read (then its sections are empty)
    trail_error: str | None = None


# -- gathering ------------------------------------------------------------------------------


def _time(event: Mapping[str, Any]) -> str:
    """The record's time to the second, ISO 8601 in UTC."""
    return str(event["eventTime"])[:19] + "Z"


def _who(event: Mapping[str, Any]) -> str:
    return str((event.get("userIdentity") or {}).get("name") or "")


def _params(event: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = event.get(key)
    return value if isinstance(value, dict) else {}


@dataclass
class _Span:
    """How often something happened, and when first and last."""

    count: int = 0
    first: str = ""
    last: str = ""

    def see(self, when: str) -> None:
        self.count += 1
        self.first = min(self.first, when) if self.first else when
        self.last = max(self.last, when)


@dataclass
class _UserSignins:
    ok: int = 0
    failed: int = 0
    lockouts: int = 0
    recovery: int = 0
    last_ok: str = ""
    addresses: set[str] = field(default_factory=set)


@dataclass
class _Alarm:
    rule: str = ""
    key: str = ""
    severity: str = ""
    raised: str = ""
    reason: str = ""
    value: str = ""
    threshold: str = ""
    resolved: str = ""
    acknowledged: str = ""
    acknowledged_by: str = ""
    note: str = ""
    state: str = ""
    seen: str = ""


@dataclass
class _Access:
    span: _Span = field(default_factory=_Span)
    refused: int = 0
    repeats: int = 0


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


class _Tally:
    """Folds the period's audit records into counts (pure: records in, numbers out)."""

    def __init__(self, day_of: Callable[[str], int | None]) -> None:
        self.day_of = day_of
        self.records = 0
        self.users: dict[str, _UserSignins] = {}
        self.failures: dict[tuple[str, str], tuple[_Span, Counter[str]]] = {}
        self.lockouts = 0
        self.denials: dict[tuple[str, str, str, str], tuple[_Span, str]] = {}
        self.alarms: dict[str, _Alarm] = {}
        self.access: dict[tuple[str, str, str], _Access] = {}
        self.daily: dict[str, Counter[int]] = {
            "ok": Counter(),
            "failed": Counter(),
            "denials": Counter(),
        }
        self.counts: Counter[str] = Counter()

    def _user(self, name: str) -> _UserSignins:
        return self.users.setdefault(name, _UserSignins())

    def _day(self, series: str, when: str) -> None:
        bucket = self.day_of(when)
        if bucket is not None:
            self.daily[series][bucket] += 1

    def add(self, event: Mapping[str, Any]) -> None:
        self.records += 1
        handler = _HANDLERS.get(str(event.get("eventName")))
        if handler is not None:
            handler(self, event, _time(event))

    # -- sign-ins ---------------------------------------------------------------------------

    def _ok(self, user: str, event: Mapping[str, Any], when: str) -> None:
        u = self._user(user)
        u.ok += 1
        u.last_ok = max(u.last_ok, when)
        if event.get("sourceIPAddress"):
            u.addresses.add(str(event["sourceIPAddress"]))
        self.counts["signins"] += 1
        self._day("ok", when)

    def _failed(self, user: str, event: Mapping[str, Any], when: str) -> None:
        self._user(user).failed += 1
        reason = str(event.get("errorCode"))
        keys = [("user", user)]
        if event.get("sourceIPAddress"):
            keys.append(("address", str(event["sourceIPAddress"])))
        for key in keys:
            span, reasons = self.failures.setdefault(key, (_Span(), Counter()))
            span.see(when)
            reasons[reason] += 1
        self.counts["failed"] += 1
        self._day("failed", when)

    def login(self, event: Mapping[str, Any], when: str) -> None:
        # The name typed (cleaned by the sign-in service), so a spray over many names
        # shows as many names; the identity is "(unknown)" for names that do not exist.
        typed = str(_params(event, "requestParameters").get("userName") or _who(event))
        if event.get("errorCode"):
            self._failed(typed, event, when)
        elif _params(event, "responseElements").get("next") == "done":
            self._ok(_who(event), event, when)

    def mfa_verify(self, event: Mapping[str, Any], when: str) -> None:
        if event.get("errorCode"):
            self._failed(_who(event), event, when)
            return
        self._ok(_who(event), event, when)
        if _params(event, "requestParameters").get("method") == "recovery":
            self._user(_who(event)).recovery += 1
            self.counts["recovery"] += 1

    def user_locked(self, event: Mapping[str, Any], when: str) -> None:
        name = str(_params(event, "requestParameters").get("name") or _who(event))
        self._user(name).lockouts += 1
        self.lockouts += 1

    # -- denials ----------------------------------------------------------------------------

    def _deny(self, key: tuple[str, str, str, str], example: str, when: str) -> None:
        span, _example = self.denials.setdefault(key, (_Span(), example))
        span.see(when)
        self.counts["denials"] += 1
        self._day("denials", when)

    def access_denied(self, event: Mapping[str, Any], when: str) -> None:
        req, resp = _params(event, "requestParameters"), _params(event, "responseElements")
        key = ("AccessDenied", _who(event), str(req.get("scope", "")), str(resp.get("rule", "")))
        self._deny(key, f"{req.get('method', '')} {req.get('path', '')}".strip(), when)

    def kernel_message_refused(self, event: Mapping[str, Any], when: str) -> None:
        req, resp = _params(event, "requestParameters"), _params(event, "responseElements")
        key = (
            "KernelMessageRefused",
            _who(event),
            str(req.get("scope", "")),
            str(resp.get("rule", "")),
        )
        self._deny(key, f"{req.get('channel', '')} {req.get('msgType', '')}".strip(), when)

    # -- alarms -----------------------------------------------------------------------------

    def _alarm(self, when: str, alarm_id: Any) -> _Alarm:
        alarm = self.alarms.setdefault(str(alarm_id or "(no id)"), _Alarm(seen=when))
        alarm.seen = min(alarm.seen, when)
        return alarm

    def alarm_raised(self, event: Mapping[str, Any], when: str) -> None:
        req, resp = _params(event, "requestParameters"), _params(event, "responseElements")
        alarm = self._alarm(when, resp.get("alarmId"))
        alarm.rule, alarm.key = str(req.get("rule", "")), str(req.get("key", ""))
        alarm.severity = str(req.get("severity", ""))
        if not alarm.raised or when < alarm.raised:
            alarm.raised = when
            alarm.reason = str(resp.get("reason", ""))
            alarm.value, alarm.threshold = (
                _number(resp.get("value")),
                _number(resp.get("threshold")),
            )
        if when >= alarm.resolved:
            alarm.state = str(resp.get("state", "ALARM"))
        self.counts["alarms"] += 1

    def alarm_resolved(self, event: Mapping[str, Any], when: str) -> None:
        req, resp = _params(event, "requestParameters"), _params(event, "responseElements")
        alarm = self._alarm(when, resp.get("alarmId"))
        alarm.rule = alarm.rule or str(req.get("rule", ""))
        alarm.key = alarm.key or str(req.get("key", ""))
        alarm.severity = alarm.severity or str(req.get("severity", ""))
        alarm.resolved = max(alarm.resolved, when)
        if when >= alarm.raised:
            alarm.state = str(resp.get("state", "OK"))
        self.counts["resolved"] += 1

    def alarm_acknowledged(self, event: Mapping[str, Any], when: str) -> None:
        req, resp = _params(event, "requestParameters"), _params(event, "responseElements")
        alarm = self._alarm(when, req.get("alarmId"))
        alarm.rule = alarm.rule or str(resp.get("rule", ""))
        alarm.key = alarm.key or str(resp.get("key", ""))
        alarm.state = alarm.state or str(resp.get("state", ""))
        if not event.get("errorCode") and when >= alarm.acknowledged:
            alarm.acknowledged, alarm.acknowledged_by = when, _who(event)
            alarm.note = str(req.get("note", ""))
            self.counts["acknowledged"] += 1

    # -- data access ------------------------------------------------------------------------

    def _access(self, user: str, activity: str, obj: str, when: str) -> _Access:
        entry = self.access.setdefault((user, activity, obj), _Access())
        entry.span.see(when)
        return entry

    def private_query(self, event: Mapping[str, Any], when: str) -> None:
        dataset = str(_params(event, "requestParameters").get("dataset", ""))
        entry = self._access(_who(event), "private queries", dataset, when)
        self.counts["queries"] += 1
        if event.get("errorCode"):
            entry.refused += 1
        elif _params(event, "responseElements").get("cached"):
            entry.repeats += 1

    def cell_execute_requested(self, event: Mapping[str, Any], when: str) -> None:
        notebook = str(_params(event, "requestParameters").get("notebook") or "(no notebook)")
        self._access(_who(event), "cells executed", notebook, when)
        self.counts["cells"] += 1

    def execution_unreconciled(self, event: Mapping[str, Any], when: str) -> None:
        kernel = str(_params(event, "requestParameters").get("kernelId", ""))
        self._access(_who(event), "code run outside the server", f"kernel {kernel}", when)
        self.counts["unreconciled"] += 1


_HANDLERS: dict[str, Callable[[_Tally, Mapping[str, Any], str], None]] = {
    "Login": _Tally.login,
    "MfaVerify": _Tally.mfa_verify,
    "UserLocked": _Tally.user_locked,
    "AccessDenied": _Tally.access_denied,
    "KernelMessageRefused": _Tally.kernel_message_refused,
    "AlarmRaised": _Tally.alarm_raised,
    "AlarmResolved": _Tally.alarm_resolved,
    "AlarmAcknowledged": _Tally.alarm_acknowledged,
    "PrivateQuery": _Tally.private_query,
    "CellExecuteRequested": _Tally.cell_execute_requested,
    "ExecutionUnreconciled": _Tally.execution_unreconciled,
}


def _reasons(counter: Counter[str]) -> str:
    return "; ".join(f"{reason} {n}" for reason, n in sorted(counter.items(), key=_by_count))


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])


def _tables_from_tally(t: _Tally) -> dict[str, Table]:
    signins = sorted(t.users.items(), key=lambda kv: (-kv[1].ok, -kv[1].failed, kv[0]))
    failures = sorted(t.failures.items(), key=lambda kv: (-kv[1][0].count, kv[0]))
    denials = sorted(t.denials.items(), key=lambda kv: (-kv[1][0].count, kv[0]))
    alarms = sorted(t.alarms.items(), key=lambda kv: (kv[1].seen, kv[0]))
    access = sorted(t.access.items(), key=lambda kv: (-kv[1].span.count, kv[0]))
    return {
        "signins": Table(
            "signins",
            "Sign-ins by user",
            (
                "user",
                "sign-ins",
                "failed",
                "lockouts",
                "recovery codes used",
                "last sign-in",
                "addresses",
            ),
            tuple(
                (
                    name,
                    u.ok,
                    u.failed,
                    u.lockouts,
                    u.recovery,
                    u.last_ok,
                    "; ".join(sorted(u.addresses)),
                )
                for name, u in signins
            ),
            "A sign-in is a second factor accepted (or a password, for an account that "
            "needs no second factor). Failures count wrong passwords, wrong codes and "
            "throttled attempts, under the user name that was typed.",
        ),
        "failures": Table(
            "failures",
            "Failed sign-ins by user name and by address",
            ("by", "value", "failures", "reasons", "first", "last"),
            tuple(
                (by, value, span.count, _reasons(reasons), span.first, span.last)
                for (by, value), (span, reasons) in failures
            ),
            "(not a user name) stands for input that is not a valid user name "
            "(such as a password typed into the name field), which is never recorded.",
        ),
        "denials": Table(
            "denials",
            "Denials",
            ("event", "user", "scope", "rule", "count", "example", "first", "last"),
            tuple(
                (event, user, scope, rule, span.count, example, span.first, span.last)
                for (event, user, scope, rule), (span, example) in denials
            ),
            "AccessDenied: requests the policy refused. KernelMessageRefused: messages "
            "the channel guard did not pass to a kernel.",
        ),
        "alarms": Table(
            "alarms",
            "Alarms",
            (
                "alarm",
                "rule",
                "key",
                "severity",
                "state",
                "raised",
                "reason",
                "value",
                "threshold",
                "resolved",
                "acknowledged",
                "acknowledged by",
                "note",
            ),
            tuple(
                (
                    alarm_id,
                    a.rule,
                    a.key,
                    a.severity,
                    a.state,
                    a.raised,
                    a.reason,
                    a.value,
                    a.threshold,
                    a.resolved,
                    a.acknowledged,
                    a.acknowledged_by,
                    a.note,
                )
                for alarm_id, a in alarms
            ),
            "Every alarm with a record in the period: raised, resolved or acknowledged. "
            "An empty 'raised' means it was raised before the period began.",
        ),
        "data_access": Table(
            "data_access",
            "Data access",
            ("user", "activity", "object", "requests", "refused", "repeats", "first", "last"),
            tuple(
                (user, activity, obj, e.span.count, e.refused, e.repeats, e.span.first, e.span.last)
                for (user, activity, obj), e in access
            ),
            "Private queries per user and dataset (refused ones included; a repeat is "
            "served from its earlier release at no cost), cells executed per user and "
            "notebook, and code a kernel ran that did not come through the server. "
            "Reads of files and notebooks are not recorded in the audit trail, so they "
            "are not counted here.",
        ),
    }


def _spend_tables(
    db: Database, since: dt.datetime, until: dt.datetime, bucket_of: Callable[[dt.date], int]
) -> tuple[Table, Table, dict[str, Counter[int]]]:
    """Budget spend per user and dataset in the range, per dataset, and per bucket."""
    with db.read() as s:
        charges = s.execute(
            select(
                PrivateRelease.user_name,
                PrivateRelease.dataset,
                PrivateRelease.measure,
                PrivateRelease.cost_nanos,
                PrivateRelease.created_at,
            ).where(PrivateRelease.created_at >= since, PrivateRelease.created_at < until)
        ).all()
        to_date = {
            (row.user_name, row.dataset): row.spent_nanos for row in s.scalars(select(PrivateSpend))
        }
    per: dict[tuple[str, str, str], list[int]] = {}
    per_dataset: dict[tuple[str, str], list[int]] = {}
    daily: dict[str, Counter[int]] = {}
    for user, dataset, measure, cost, created in charges:
        for entry in (
            per.setdefault((user, dataset, measure), [0, 0]),
            per_dataset.setdefault((dataset, measure), [0, 0]),
        ):
            entry[0] += 1
            entry[1] += cost
        day = created.astimezone(dt.UTC).date()
        daily.setdefault(measure, Counter())[bucket_of(day)] += cost
    rows = sorted(per.items(), key=lambda kv: (-kv[1][1], kv[0]))
    table = Table(
        "budget_spend",
        "Privacy budget spent",
        ("user", "dataset", "measure", "charges", "spent in period", "spent to date"),
        tuple(
            (
                user,
                dataset,
                measure,
                n,
                _amount(measure, cost),
                _amount(measure, to_date.get((user, dataset), 0)),
            )
            for (user, dataset, measure), (n, cost) in rows
        ),
        "From the ledger of this state store: every charge in the period, failed "
        "releases included (nothing is refunded once data may have been read); repeats "
        "cost nothing. 'Spent to date' is the user's spend now (a budget reset clears it).",
    )
    by_dataset = Table(
        "budget_spend",
        "By dataset (spent in the period)",
        ("dataset", "measure", "charges", "spent"),
        tuple(
            (dataset, measure, n, _amount(measure, cost))
            for (dataset, measure), (n, cost) in sorted(per_dataset.items())
        ),
    )
    return table, by_dataset, daily


def _amount(measure: str, nanos: int) -> str:
    m: Measure = "epsilon" if measure == "epsilon" else "rho"
    return format(Amount(m, nanos).value.normalize(), "f")


def _stale_table(db: Database, policy: Policy, now: dt.datetime, stale_days: int) -> Table:
    with db.read() as s:
        accounts = UserDirectory().list(s)
    created = {a.name: a.created_at for a in accounts}
    review = access_review(policy, accounts, now=now, stale_days=stale_days)
    rows = []
    for r in review.rows:
        if "stale" not in r.findings or "service" in r.findings:
            continue
        seen = r.last_login or created[r.name]
        rows.append(
            (
                r.name,
                ", ".join(r.roles),
                ", ".join(r.groups),
                _iso(created[r.name]),
                _iso(r.last_login) if r.last_login else "never",
                (now - seen).days,
            )
        )
    rows.sort(key=lambda row: (-int(row[5]), str(row[0])))
    return Table(
        "stale_accounts",
        "Stale accounts",
        ("user", "roles", "groups", "created", "last sign-in", "days idle"),
        tuple(rows),
        f"Enabled accounts (not service accounts) with no sign-in for {stale_days} days, "
        "or never signed in and created longer ago: disable or remove them. As the "
        "accounts stand now, not at the end of the period.",
    )


def _verification_table(v: Verification, made_at: dt.datetime) -> Table:
    rows: list[tuple[Cell, ...]] = [
        ("status", "ok" if v.ok else "FAILED"),
        ("summary", v.summary),
        ("mode", v.mode),
        ("trail", v.trail),
        ("records", v.records),
        ("segments", v.segments),
        ("checkpoints", v.checkpoints),
        ("signed through record", v.signed_seq),
        ("checked at", _iso(made_at)),
    ]
    rows += [("problem", p) for p in v.problems]
    rows += [("notice", n) for n in v.notices]
    return Table(
        "verification",
        "Audit trail verification",
        ("item", "value"),
        tuple(rows),
        "The whole trail as it stood when the review was made (not only the period), "
        "checked by the verifier `jupyter secure audit verify` runs"
        + (" (newest segment and every checkpoint only)." if v.mode == "newest" else "."),
    )


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _buckets(since: dt.datetime, until: dt.datetime) -> tuple[dt.date, int, int]:
    """First day, days per bucket and number of buckets for [since, until)."""
    first = since.astimezone(dt.UTC).date()
    last = (until - dt.timedelta(microseconds=1)).astimezone(dt.UTC).date()
    days = (last - first).days + 1
    size = max(1, math.ceil(days / MAX_BUCKETS))
    return first, size, math.ceil(days / size)


def gather(
    db: Database,
    index: AuditIndex,
    policy: Policy,
    *,
    since: dt.datetime,
    until: dt.datetime,
    verification: Verification,
    stale_days: int = 90,
    now: dt.datetime | None = None,
) -> Review:
    """The review of [since, until): records from ``index``, the rest from ``db``.

    A record that fails its hash while being read (the trail was altered after
    it was verified, or verification already failed) stops the reading: the
    sections from the trail are then empty and ``trail_error`` says why; the
    sections from the database are still filled.
    """
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be aware datetimes")
    if since >= until:
        raise InvalidInput("since", f"must be before until ({_iso(since)} >= {_iso(until)})")
    if stale_days < 1:
        raise InvalidInput("stale_days", "must be at least 1")
    made_at = now or utcnow()
    first, size, count = _buckets(since, until)

    def bucket_of(day: dt.date) -> int:
        return min(count - 1, max(0, (day - first).days // size))

    def day_of(when: str) -> int | None:
        try:
            return bucket_of(dt.date.fromisoformat(when[:10]))
        except ValueError:
            return None

    tally = _Tally(day_of)
    trail_error = None
    since_us, until_us = _micros(since), _micros(until)
    try:
        for name in REVIEWED_EVENTS:
            for _line, event in index.query(
                QueryFilter(event=name, since_us=since_us, until_us=until_us)
            ):
                tally.add(event)
    except AuditIntegrityError as exc:
        trail_error = str(exc)
        records_read = tally.records
        tally = _Tally(day_of)
    else:
        records_read = tally.records
    tables = _tables_from_tally(tally)
    spend, by_dataset, spend_daily = _spend_tables(db, since, until, bucket_of)
    tables["budget_spend"] = spend
    tables["stale_accounts"] = _stale_table(db, policy, made_at, stale_days)
    tables["verification"] = _verification_table(verification, made_at)
    starts = tuple(first + dt.timedelta(days=i * size) for i in range(count))
    series = Series(
        starts=starts,
        bucket_days=size,
        signins_ok=tuple(tally.daily["ok"][i] for i in range(count)),
        signins_failed=tuple(tally.daily["failed"][i] for i in range(count)),
        denials=tuple(tally.daily["denials"][i] for i in range(count)),
        spend={
            m: tuple(spend_daily[m][i] for i in range(count)) for m in MEASURES if m in spend_daily
        },
    )
    c = tally.counts
    totals = {
        "sign-ins": c["signins"],
        "failed sign-ins": c["failed"],
        "lockouts": tally.lockouts,
        "users signed in": sum(1 for u in tally.users.values() if u.ok),
        "recovery codes used": c["recovery"],
        "denials": c["denials"],
        "alarms raised": c["alarms"],
        "alarms acknowledged": c["acknowledged"],
        "private queries": c["queries"],
        "cells executed": c["cells"],
        "code run outside the server": c["unreconciled"],
        "budget charges": sum(int(row[2] or 0) for row in by_dataset.rows),
        "stale accounts": len(tables["stale_accounts"].rows),
    }
    return Review(
        since=since,
        until=until,
        made_at=made_at,
        stale_days=stale_days,
        verification=verification,
        totals=totals,
        series=series,
        tables={name: tables[name] for name in TABLE_NAMES},
        spend_by_dataset=by_dataset,
        records_read=records_read,
        trail_error=trail_error,
    )


def _micros(t: dt.datetime) -> int:
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# -- the page -------------------------------------------------------------------------------


def _e(value: object) -> str:
    """Any value, escaped for HTML text and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


CSP = "default-src 'none'; style-src 'unsafe-inline'"
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em;
       padding: 0 1em; color: #1b1b1b; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1em; }
.meta { color: #555; }
.banner { padding: .6em 1em; border-radius: 4px; font-weight: 600; }
.banner.ok { background: #e8f5e9; color: #1b5e20; }
.banner.failed { background: #ffebee; color: #b71c1c; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left;
         vertical-align: top; }
th { background: #f5f5f5; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.totals td { min-width: 6em; }
.note { color: #555; font-size: .9em; max-width: 60em; }
.more { color: #555; font-style: italic; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
svg .axis { stroke: #999; }
svg .grid { stroke: #e6e6e6; }
svg .ok { fill: #2e7d32; }
svg .failed { fill: #c62828; }
svg .denials { fill: #ef6c00; }
svg .line { fill: none; stroke: #1565c0; stroke-width: 2; }
svg .dot { fill: #1565c0; }
"""


def _fmt_value(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.4g}"


ChartSeries = tuple[str, Sequence[float], str]


class _Chart:
    """An inline SVG chart drawn here (no script, no external reference): stacked bars,
    or one line per series, over one bucket per x position. Every text is escaped."""

    width, height = 760, 220
    left, right, top, bottom = 56, 12, 28, 36

    def __init__(
        self, title: str, starts: Sequence[dt.date], series: Sequence[ChartSeries], kind: str
    ) -> None:
        self.title, self.starts, self.series, self.kind = title, starts, series, kind
        self.plot_w = self.width - self.left - self.right
        self.plot_h = self.height - self.top - self.bottom
        self.slot = self.plot_w / max(1, len(starts))
        if kind == "bar":
            tops = (sum(s[1][i] for s in series) for i in range(len(starts)))
        else:
            tops = (max(s[1], default=0) for s in series)
        self.empty = not any(v > 0 for s in series for v in s[1])
        peak = max(tops, default=0)
        # Counts get whole-number grid lines (0, half, top); amounts keep their own scale.
        self.peak = max(2, 2 * math.ceil(peak / 2)) if kind == "bar" else (peak or 1)

    def y(self, v: float) -> float:
        return self.top + self.plot_h - self.plot_h * v / self.peak

    def x(self, i: int) -> float:
        return self.left + self.slot * (i + 0.5)

    def svg(self) -> str:
        out = [
            f'<svg viewBox="0 0 {self.width} {self.height}" width="{self.width}" '
            f'height="{self.height}" role="img" aria-label="{_e(self.title)}">'
            f"<title>{_e(self.title)}</title>",
            *self.axes(),
            *(self.bars() if self.kind == "bar" else self.lines()),
            *self.legend(),
        ]
        if self.empty:
            out.append(
                f'<text x="{self.left + self.plot_w / 2:.1f}" y="{self.top + self.plot_h / 2:.1f}"'
                ' text-anchor="middle">nothing in this period</text>'
            )
        out.append("</svg>")
        return "".join(out)

    def axes(self) -> Iterable[str]:
        end = self.width - self.right
        for frac in (0, 0.5, 1):
            gy = self.y(self.peak * frac)
            yield (
                f'<line class="grid" x1="{self.left}" x2="{end}" y1="{gy:.1f}" y2="{gy:.1f}"/>'
                f'<text x="{self.left - 6}" y="{gy + 4:.1f}" text-anchor="end">'
                f"{_e(_fmt_value(self.peak * frac))}</text>"
            )
        base = self.top + self.plot_h
        yield f'<line class="axis" x1="{self.left}" x2="{end}" y1="{base}" y2="{base}"/>'
        every = max(1, math.ceil(len(self.starts) / 12))
        for i, day in enumerate(self.starts):
            if i % every == 0:
                yield (
                    f'<text x="{self.x(i):.1f}" y="{base + 16}" text-anchor="middle">'
                    f"{_e(day.strftime('%m-%d'))}</text>"
                )

    def bars(self) -> Iterable[str]:
        width = max(1.0, self.slot * 0.8)
        for i, day in enumerate(self.starts):
            base = 0.0
            for label, values, css in self.series:
                v = values[i]
                if v > 0:
                    yield (
                        f'<rect class="{_e(css)}" x="{self.x(i) - width / 2:.1f}" '
                        f'y="{self.y(base + v):.1f}" width="{width:.1f}" '
                        f'height="{self.y(base) - self.y(base + v):.1f}"><title>'
                        f"{_e(day.isoformat())}: {_e(_fmt_value(v))} {_e(label)}</title></rect>"
                    )
                    base += v

    def lines(self) -> Iterable[str]:
        for label, values, _css in self.series:
            points = " ".join(f"{self.x(i):.1f},{self.y(v):.1f}" for i, v in enumerate(values))
            yield f'<polyline class="line" points="{points}"/>'
            for i, v in enumerate(values):
                if v > 0:
                    yield (
                        f'<circle class="dot" cx="{self.x(i):.1f}" cy="{self.y(v):.1f}" r="2.5">'
                        f"<title>{_e(self.starts[i].isoformat())}: {_e(_fmt_value(v))} "
                        f"{_e(label)}</title></circle>"
                    )

    def legend(self) -> Iterable[str]:
        lx = self.left
        for label, _values, css in self.series:
            if self.kind == "bar":
                yield f'<rect class="{_e(css)}" x="{lx}" y="8" width="10" height="10"/>'
            else:
                yield f'<line class="line" x1="{lx}" x2="{lx + 10}" y1="13" y2="13"/>'
            yield f'<text x="{lx + 14}" y="17">{_e(label)}</text>'
            lx += 24 + 7 * len(label)


def _chart(
    title: str, starts: Sequence[dt.date], series: Sequence[ChartSeries], *, kind: str = "bar"
) -> str:
    return _Chart(title, starts, series, kind).svg()


def _html_table(table: Table, limit: int = PAGE_ROWS, title: str | None = None) -> str:
    out = [f"<h3>{_e(title or table.title)}</h3>"]
    if not table.rows:
        out.append('<p class="more">none in this period</p>')
        return "".join(out)
    out.append("<table><thead><tr>")
    out += [f"<th>{_e(c)}</th>" for c in table.columns]
    out.append("</tr></thead><tbody>")
    for row in table.rows[:limit]:
        out.append("<tr>")
        for cell in row:
            css = ' class="n"' if isinstance(cell, int) else ""
            out.append(f"<td{css}>{_e(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    if len(table.rows) > limit:
        more = len(table.rows) - limit
        out.append(f'<p class="more">… and {more} more rows in {_e(table.name)}.csv</p>')
    return "".join(out)


def _grouped(
    table: Table, title: str, *, key: Sequence[int], count: int, columns: Sequence[str]
) -> Table:
    """A smaller table for the page: ``table``'s count summed over the ``key`` columns."""
    totals: Counter[tuple[Cell, ...]] = Counter()
    for row in table.rows:
        value = row[count]
        totals[tuple(row[k] for k in key)] += value if isinstance(value, int) else 0
    rows = sorted(totals.items(), key=lambda kv: (-kv[1], tuple(str(c) for c in kv[0])))
    return Table(table.name, title, (*columns, "count"), tuple((*k, v) for k, v in rows))


def _note(table: Table) -> str:
    return f'<p class="note">{_e(table.note)}</p>' if table.note else ""


def render_html(review: Review) -> str:
    """The review as one self-contained page: no script, no external reference."""
    t = review.tables
    s = review.series
    v = review.verification
    unit = "day" if s.bucket_days == 1 else f"{s.bucket_days} days"
    period = f"{_iso(review.since)} to {_iso(review.until)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>jupyter-secure review {_e(period)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>jupyter-secure review: {_e(period)}</h1>",
        f'<p class="meta">Made {_e(_iso(review.made_at))} from {_e(review.records_read)} '
        f"audit records of trail {_e(v.trail)}. Stale means no sign-in for "
        f"{_e(review.stale_days)} days. Times are UTC; the period includes its start "
        "and excludes its end.</p>",
        f'<p class="banner {"ok" if v.ok else "failed"}">Audit trail verification: '
        f"{'ok' if v.ok else 'FAILED'} — {_e(v.summary)}</p>",
    ]
    if review.trail_error:
        parts.append(
            '<p class="banner failed">The period\'s audit records could not be read: '
            f"{_e(review.trail_error)}. The sections from the trail are empty.</p>"
        )
    parts.append('<table class="totals"><tbody>')
    for label, number in review.totals.items():
        parts.append(f'<tr><th>{_e(label)}</th><td class="n">{_e(number)}</td></tr>')
    parts.append("</tbody></table>")

    parts.append('<h2 id="signins">Sign-ins</h2>')
    parts.append(
        _chart(
            f"Sign-ins per {unit}",
            s.starts,
            [("signed in", s.signins_ok, "ok"), ("failed", s.signins_failed, "failed")],
        )
    )
    parts.append(
        f"<p>{_e(review.totals['sign-ins'])} sign-ins by "
        f"{_e(review.totals['users signed in'])} users; {_e(review.totals['failed sign-ins'])} "
        f"failed; {_e(review.totals['lockouts'])} lockouts; "
        f"{_e(review.totals['recovery codes used'])} recovery codes used.</p>"
    )
    parts += [_html_table(t["signins"]), _note(t["signins"])]
    parts += [_html_table(t["failures"]), _note(t["failures"])]

    parts.append('<h2 id="denials">Denials</h2>')
    parts.append(_chart(f"Denials per {unit}", s.starts, [("denials", s.denials, "denials")]))
    by_user = _grouped(t["denials"], "By user", key=(1,), count=4, columns=("user",))
    by_rule = _grouped(
        t["denials"],
        "By scope and rule",
        key=(0, 2, 3),
        count=4,
        columns=("event", "scope", "rule"),
    )
    parts += [_html_table(by_user), _html_table(by_rule)]
    parts += [_html_table(t["denials"], title="All denials"), _note(t["denials"])]

    parts.append('<h2 id="alarms">Alarms</h2>')
    parts.append(
        f"<p>{_e(review.totals['alarms raised'])} raised, "
        f"{_e(review.totals['alarms acknowledged'])} acknowledged; "
        f"{_e(review.totals['code run outside the server'])} executions a kernel reported "
        "that did not come through the server (ExecutionUnreconciled).</p>"
    )
    parts += [_html_table(t["alarms"]), _note(t["alarms"])]

    parts.append('<h2 id="data-access">Top data access</h2>')
    parts += [_html_table(t["data_access"]), _note(t["data_access"])]

    parts.append('<h2 id="budget">Privacy budget spend</h2>')
    for measure, values in s.spend.items():
        symbol = "ρ" if measure == "rho" else "ε"
        parts.append(
            _chart(
                f"Privacy spent per {unit} ({symbol})",
                s.starts,
                [(f"{symbol} spent", [n / 1e9 for n in values], "line")],
                kind="line",
            )
        )
    parts.append(_html_table(review.spend_by_dataset))
    parts += [_html_table(t["budget_spend"]), _note(t["budget_spend"])]

    parts.append('<h2 id="stale">Stale accounts</h2>')
    parts += [_html_table(t["stale_accounts"]), _note(t["stale_accounts"])]

    parts.append('<h2 id="verification">Audit verification</h2>')
    parts += [_html_table(t["verification"], limit=200), _note(t["verification"])]
    parts.append(
        '<p class="note">Files: '
        + ", ".join(_e(name) for name in CSV_FILES)
        + " hold every row of these tables.</p></body></html>"
    )
    return "\n".join(parts) + "\n"


# -- the files ------------------------------------------------------------------------------


def _daily_rows(s: Series) -> Iterable[tuple[Cell, ...]]:
    for i, start in enumerate(s.starts):
        yield (
            start.isoformat(),
            s.signins_ok[i],
            s.signins_failed[i],
            s.denials[i],
            *(_amount(m, s.spend[m][i]) if m in s.spend else "0" for m in MEASURES),
        )


def _write_csv(out: IO[str], columns: Sequence[str], rows: Iterable[Sequence[Cell]]) -> None:
    # CRLF (RFC 4180): the csv module quotes a cell only for the line terminator's own
    # characters, so with "\n" alone a carriage return in a value would end the row.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_safe(c) for c in columns])
    for row in rows:
        writer.writerow([csv_safe(cell) for cell in row])


def _create(path: Path) -> IO[str]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


def _finish(f: IO[str]) -> None:
    f.flush()
    os.fsync(f.fileno())


def check_out_dir(out: Path, *, force: bool, flag: str = "out") -> None:
    """Refuse an output directory the report must not be written to.

    A missing or empty directory is fine. A non-empty one only with ``force``,
    and only if it holds nothing but an earlier report's files: ``force``
    replaces a report, it never deletes someone's directory.
    """
    if out.is_symlink():
        raise InvalidInput(flag, f"{out} is a symbolic link; give the directory itself")
    if out.exists() and not out.is_dir():
        raise InvalidInput(flag, f"{out} exists and is not a directory")
    if not out.parent.is_dir():
        raise InvalidInput(flag, f"directory {out.parent} does not exist")
    if not out.is_dir():
        return
    entries = sorted(os.listdir(out))
    if not entries:
        return
    if not force:
        raise InvalidInput(
            flag, f"{out} exists and is not empty (--force replaces an earlier report there)"
        )
    foreign = [e for e in entries if e not in REPORT_FILES]
    if foreign:
        shown = ", ".join(foreign[:5]) + (" …" if len(foreign) > 5 else "")
        raise InvalidInput(
            flag,
            f"{out} holds files that are not part of a report ({shown}); "
            "--force only replaces an earlier report",
        )


def write_report(
    review: Review, out: Path, *, force: bool = False, flag: str = "out"
) -> list[Path]:
    """Write the page and the CSV files to ``out``, whole or not at all.

    Everything is written (and synced) into a private temporary directory
    beside ``out`` and renamed into place, so a failure leaves no half report
    and readers never see one. The directory is 0700 and its files 0600: a
    review names people and addresses.
    """
    check_out_dir(out, force=force, flag=flag)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        with _create(tmp / HTML_FILE) as f:
            f.write(render_html(review))
            _finish(f)
        for table in review.tables.values():
            with _create(tmp / f"{table.name}.csv") as f:
                _write_csv(f, table.columns, table.rows)
                _finish(f)
        with _create(tmp / "daily.csv") as f:
            columns = (
                "day",
                "sign-ins",
                "failed sign-ins",
                "denials",
                *(f"{m} spent" for m in MEASURES),
            )
            _write_csv(f, columns, _daily_rows(review.series))
            _finish(f)
        _fsync_dir(tmp)
        _swap(tmp, out, force=force, flag=flag)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(out.parent)
    return [out / name for name in REPORT_FILES]


def _swap(tmp: Path, out: Path, *, force: bool, flag: str) -> None:
    """Rename ``tmp`` to ``out``; an earlier report there is moved aside, then removed."""
    try:
        os.rename(tmp, out)  # out missing, or an empty directory (replaced atomically)
        return
    except OSError:
        # Not empty (any more): looked at again, it may have changed since the first check.
        check_out_dir(out, force=force, flag=flag)
        if not force or not out.is_dir():
            raise InvalidInput(
                flag, f"cannot write {out}: it changed while the report was made"
            ) from None
    aside = out.parent / f".{out.name}.old-{secrets.token_hex(4)}"
    os.rename(out, aside)
    try:
        os.rename(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.rename(aside, out)
        raise
    shutil.rmtree(aside, ignore_errors=True)
