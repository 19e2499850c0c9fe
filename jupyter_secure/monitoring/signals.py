"""Signals: what the alarm rules count, read off audit records.

The audit trail is the one source for alarms, as CloudTrail is for
CloudWatch: every process (server, command line, broker) writes to it, so
the monitor sees a budget raised from a terminal as surely as a failed
sign-in in the browser. Each record maps to zero or more :class:`Signal`
values; the mapping is a table here, and :data:`SIGNALS` is the closed set of
names a rule may count (a rule naming another is refused).

Some signals are not in the trail: ``rows.displayed`` and ``lines.printed``
(outputs are never recorded, so the channel guard reports their sizes to the
monitor directly) and write errors (a failing write cannot record itself; the
monitor reads the sink's counter into ``audit.problem``). ``signin.new_ip`` is
derived by the engine from each user's history of networks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["CONFIG_EVENTS", "SIGNALS", "Signal", "event_time", "signals_from_event"]


@dataclass(frozen=True, slots=True)
class Signal:
    """One countable thing that happened at ``t`` (seconds since the epoch)."""

    name: str
    t: float
    value: float = 1.0
    user: str | None = None
    ip: str | None = None
    dataset: str | None = None


#: Every signal a rule may count, with what it means.
SIGNALS: dict[str, str] = {
    "signin.ok": "a completed sign-in (password and, where enrolled, the second factor)",
    "signin.failed": "a refused password (wrong, unknown account, locked, throttled)",
    "signin.new_ip": "a completed sign-in from a network the user has not signed in from",
    "mfa.failed": "a refused second-factor code (sign-in or step-up)",
    "lockout": "an account locked by too many failed factors",
    "denied": "a request or kernel message refused by the access policy",
    "cell": "a cell sent to a guarded kernel (as the server forwarded it)",
    "rows.displayed": "rows of tabular output shown to a user (masked or not)",
    "lines.printed": "lines of print output (stdout, stderr) shown to a user",
    "dp.spend": "privacy loss charged by a private query (in the dataset's measure)",
    "dp.spend_share": "the share of the user's budget a private query spent (0..1): "
    "comparable across datasets and measures",
    "dp.refused": "a private query refused (budget exceeded, no grant, malformed)",
    "dp.budget_used": "the fraction of the user's budget spent, after a query (0..1)",
    "config.change": "a change to the policy, roles, accounts, budgets, datasets or keys",
    "audit.problem": "an audit pipeline problem: a repaired tail, a failed verification, "
    "a write error",
    "unreconciled": "a kernel ran code the server did not forward (guard bypass)",
}

#: Records that change who may do what, by kind: each is a ``config.change`` signal,
#: and metrics count them per kind (one table, so the two cannot disagree).
#: ``PolicyChanged`` is ``policy`` or ``role`` by its diff; ``PolicyRejected`` (an
#: attempted change) is a signal but changed nothing, so it is not counted as a change.
CONFIG_EVENTS: dict[str, str] = {
    "BudgetChanged": "budget",
    "DatasetChanged": "dataset",
    "KeysRotated": "key",
    "UserAdded": "user",
    "UserRemoved": "user",
    "UserEnabled": "user",
    "UserDisabled": "user",
    "UserUnlocked": "user",
    "PasswordChanged": "user",
    "ApiTokenCreated": "token",
    "ApiTokenRevoked": "token",
    "MfaReset": "mfa",
    "MfaSecretIssued": "mfa",
}

_UNKNOWN = "(unknown)"


def event_time(event: Mapping[str, Any]) -> float:
    """The record's ``eventTime`` as seconds since the epoch."""
    text = str(event["eventTime"]).replace("Z", "+00:00")
    return dt.datetime.fromisoformat(text).timestamp()


def _user(event: Mapping[str, Any]) -> str | None:
    ident = event.get("userIdentity") or {}
    name = ident.get("name")
    if not isinstance(name, str) or not name or name == _UNKNOWN:
        return None
    return name


def _param(event: Mapping[str, Any], section: str, key: str) -> Any:
    part = event.get(section)
    return part.get(key) if isinstance(part, Mapping) else None


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def _login(event: Mapping[str, Any], t: float, ip: str | None) -> list[Signal]:
    # Failures for names that are not accounts count together, as "(unknown)": keyed by
    # the typed name, anyone could mint one alarm per made-up name (a flood).
    user = _user(event) or _UNKNOWN
    if event.get("errorCode"):
        return [Signal("signin.failed", t, user=user, ip=ip)]
    if _param(event, "responseElements", "next") == "done":
        return [Signal("signin.ok", t, user=user, ip=ip)]
    return []


def _mfa(event: Mapping[str, Any], t: float, ip: str | None) -> list[Signal]:
    if event.get("errorCode"):
        return [Signal("mfa.failed", t, user=_user(event), ip=ip)]
    if event.get("eventName") == "MfaVerify":
        return [Signal("signin.ok", t, user=_user(event), ip=ip)]
    return []


def _enrolled(event: Mapping[str, Any], t: float, ip: str | None) -> list[Signal]:
    """Finishing enrolment signs the user in: the riskiest sign-in of all (a new account,
    or one whose factor was reset), so it is a sign-in for new-network and off-hours."""
    if event.get("errorCode"):
        return [Signal("mfa.failed", t, user=_user(event), ip=ip)]
    if _param(event, "requestParameters", "assistedBy"):
        return []  # enrolled by an administrator at a terminal: no session was opened
    return [Signal("signin.ok", t, user=_user(event), ip=ip)]


def _locked(event: Mapping[str, Any], t: float, ip: str | None) -> list[Signal]:
    if _param(event, "requestParameters", "reason"):
        return []  # locked by an alarm's action: that alarm is already raised
    name = _param(event, "requestParameters", "name")
    return [Signal("lockout", t, user=name if isinstance(name, str) else _user(event), ip=ip)]


def _private(event: Mapping[str, Any], t: float, ip: str | None) -> list[Signal]:
    dataset = _param(event, "requestParameters", "dataset")
    dataset = dataset if isinstance(dataset, str) else None
    user = _user(event)
    if event.get("errorCode"):
        return [Signal("dp.refused", t, user=user, ip=ip, dataset=dataset)]
    out = []
    cost = _decimal(_param(event, "responseElements", "cost"))
    budget = _decimal(_param(event, "responseElements", "budget"))
    if cost is not None and cost > 0:
        out.append(Signal("dp.spend", t, float(cost), user=user, dataset=dataset))
        if budget is not None and budget > 0:
            share = float(min(Decimal(1), cost / budget))
            out.append(Signal("dp.spend_share", t, share, user=user, dataset=dataset))
    remaining = _decimal(_param(event, "responseElements", "remaining"))
    if budget is not None and remaining is not None and budget > 0:
        used = min(Decimal(1), max(Decimal(0), 1 - remaining / budget))
        out.append(Signal("dp.budget_used", t, float(used), user=user, dataset=dataset))
    return out


def _budget_changed(event: Mapping[str, Any], t: float, ip: str | None) -> list[Signal]:
    """A user's own budget raised or reset: how full it is now is unknown until the next
    query, so say 0 for that user (their budget alarms may resolve)."""
    out = [Signal("config.change", t, user=_user(event), ip=ip)]
    kind = _param(event, "requestParameters", "principalType")
    who = _param(event, "requestParameters", "principal")
    dataset = _param(event, "requestParameters", "dataset")
    action = _param(event, "requestParameters", "action")
    if kind == "user" and isinstance(who, str) and action in ("grant", "reset"):
        out.append(Signal("dp.budget_used", t, 0.0, user=who, dataset=str(dataset)))
    return out


def _simple(name: str) -> Callable[[Mapping[str, Any], float, str | None], list[Signal]]:
    def make(event: Mapping[str, Any], t: float, ip: str | None) -> list[Signal]:
        return [Signal(name, t, user=_user(event), ip=ip)]

    return make


def _verified(event: Mapping[str, Any], t: float, ip: str | None) -> list[Signal]:
    return [Signal("audit.problem", t)] if event.get("errorCode") else []


_MAP: dict[str, Callable[[Mapping[str, Any], float, str | None], list[Signal]]] = {
    "Login": _login,
    "MfaVerify": _mfa,
    "StepUp": _mfa,
    "MfaEnrolled": _enrolled,
    "UserLocked": _locked,
    "AccessDenied": _simple("denied"),
    "KernelMessageRefused": _simple("denied"),
    "CellExecuteRequested": _simple("cell"),
    "PrivateQuery": _private,
    "BudgetChanged": _budget_changed,
    "ExecutionUnreconciled": _simple("unreconciled"),
    "AuditTailRepaired": _simple("audit.problem"),
    "AuditVerified": _verified,
    **{name: _simple("config.change") for name in CONFIG_EVENTS if name != "BudgetChanged"},
    "PolicyChanged": _simple("config.change"),
    "PolicyRejected": _simple("config.change"),
}


def signals_from_event(event: Mapping[str, Any]) -> list[Signal]:
    """The signals one audit record carries (none for most records)."""
    handler = _MAP.get(str(event.get("eventName")))
    if handler is None:
        return []
    ip = event.get("sourceIPAddress")
    return handler(event, event_time(event), ip if isinstance(ip, str) and ip else None)
