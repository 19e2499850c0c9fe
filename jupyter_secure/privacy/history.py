"""What the budget panels show: a person's charges over time, and an admin's datasets.

``GET /secure/api/budgets`` shows each person their own budgets with the
charges behind them; ``GET /secure/api/admin/budgets`` shows an administrator
(or an instructor, for their groups) the grants and each person's standing.
This module turns the ledger's rows into those shapes.

**History after a reset.** A reset sets a person's spend back to zero but
keeps their releases (what was released stays released), and the ledger does
not store when it happened. So the history is walked back from what the
person has spent *now*: the newest charge brought them to ``spent``, the one
before to ``spent`` minus the newest's cost, and so on until nothing is left.
Charges older than that belong to a budget that was reset and are not part
of the curve (they still show under ``recent``).

Pure: plain values in, JSON-ready dicts out; amounts are exact
(:class:`~jupyter_secure.privacy.amounts.Amount`), never floats.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .amounts import Amount, Measure

__all__ = [
    "CI_LEVEL",
    "MAX_HISTORY",
    "MAX_RECENT",
    "ReleaseRow",
    "ci_of",
    "dataset_entry",
    "describe_query",
    "history",
    "recent",
]

#: The level of every interval the broker releases (OpenDP's accuracy at alpha 0.05).
CI_LEVEL = 0.95
MAX_HISTORY = 500
MAX_RECENT = 20
_MAX_DESCRIPTION = 200
_OPS = {"==": "=", "!=": "≠"}


@dataclass(frozen=True)
class ReleaseRow:
    """One charge as the ledger stored it (``PrivateRelease``), as plain values."""

    id: int
    time: dt.datetime
    measure: Measure
    cost_nanos: int
    status: str
    query: str
    result: str | None


def _text(amount: Amount) -> str:
    return format(amount.value.normalize(), "f")


def _iso(time: dt.datetime) -> str:
    return (time if time.tzinfo else time.replace(tzinfo=dt.UTC)).isoformat()


def history(
    rows_newest_first: Sequence[ReleaseRow], spent_nanos: int, measure: Measure
) -> list[dict[str, str]]:
    """Cumulative spend after each charge since the last reset, oldest first (see above).

    >>> t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> rows = [ReleaseRow(i, t, "rho", n, "released", "{}", None) for i, n in
    ...         ((3, 10**8), (2, 2 * 10**8), (1, 5 * 10**8))]
    >>> [p["spent"] for p in history(rows, 3 * 10**8, "rho")]   # reset before release 2
    ['0.2', '0.3']
    """
    points: list[dict[str, str]] = []
    running = spent_nanos
    for row in rows_newest_first:
        if running <= 0 or len(points) >= MAX_HISTORY:
            break
        points.append({"time": _iso(row.time), "spent": _text(Amount(measure, running))})
        running -= row.cost_nanos
    points.reverse()
    return points


def ci_of(result: str | None) -> dict[str, float] | None:
    """The released 95 % interval of a stored result, or None (grouped, failed, pending)."""
    if not result:
        return None
    try:
        data = json.loads(result)
    except ValueError:
        return None
    ci = data.get("ci") if isinstance(data, dict) else None
    if not isinstance(ci, list) or len(ci) != 2:
        return None
    low, high = ci
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
        return None
    return {"level": CI_LEVEL, "low": float(low), "high": float(high)}


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "(" + ", ".join(str(v) for v in value) + ")"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def describe_query(stored: str) -> str:
    """A short human description of a stored query (its canonical JSON).

    >>> describe_query('{"kind": "mean", "column": "age", "by": [], '
    ...                '"filters": [{"column": "sex", "op": "==", "value": "F"}], "rho": "0.02"}')
    'mean(age) where sex = F'
    >>> describe_query('{"kind": "count", "column": null, "by": ["ward"], "filters": []}')
    'count by ward'
    """
    try:
        q = json.loads(stored)
    except ValueError:
        return "(unreadable query)"
    if not isinstance(q, dict):
        return "(unreadable query)"
    kind = str(q.get("kind", "?"))
    column = q.get("column")
    text = f"{kind}({column})" if column else kind
    if kind == "quantile" and isinstance(q.get("q"), list):
        text = f"{kind}({column}, q={', '.join(str(x) for x in q['q'])})"
    filters = [f for f in q.get("filters") or () if isinstance(f, dict)]
    if filters:
        parts = [
            f"{f.get('column')} {_OPS.get(str(f.get('op')), f.get('op'))} {_value(f.get('value'))}"
            for f in filters
        ]
        text += " where " + " and ".join(parts)
    by = [str(b) for b in q.get("by") or ()]
    if by:
        text += " by " + ", ".join(by)
    return text if len(text) <= _MAX_DESCRIPTION else text[: _MAX_DESCRIPTION - 1] + "…"


def recent(rows_newest_first: Sequence[ReleaseRow]) -> list[dict[str, Any]]:
    """The last :data:`MAX_RECENT` charges, newest first."""
    return [
        {
            "id": row.id,
            "time": _iso(row.time),
            "cost": _text(Amount(row.measure, row.cost_nanos)),
            "status": row.status,
            "query": describe_query(row.query),
            "ci": ci_of(row.result) if row.status == "released" else None,
        }
        for row in rows_newest_first[:MAX_RECENT]
    ]


def dataset_entry(
    shown: Mapping[str, Any],
    standing: Mapping[str, tuple[str | None, str]],
    may_see: Callable[[str, str], bool],
) -> dict[str, Any]:
    """One dataset of ``GET /secure/api/admin/budgets``.

    ``shown`` is :meth:`Broker.show`; ``standing`` maps each user to show to
    (their budget or None without a grant, what they spent); ``may_see(kind,
    principal)`` filters the grants (an instructor sees their own groups' and
    members' only).
    """
    spec = shown["spec"]
    measure: Measure = "epsilon" if spec["measure"] == "epsilon" else "rho"
    users = []
    for user in sorted(standing):
        budget, spent = standing[user]
        remaining = None
        if budget is not None:
            left = Amount.parse(budget, measure) - Amount.parse(spent, measure)
            remaining = _text(left if left.nanos > 0 else Amount.zero(measure))
        users.append({"user": user, "budget": budget, "spent": spent, "remaining": remaining})
    return {
        "name": shown["name"],
        "description": spec.get("description") or "",
        "measure": measure,
        "perUserBudget": spec["per_user_budget"],
        "cap": shown["cap"],
        "capSpent": shown["spent"],
        "grants": [
            {"kind": g["kind"], "principal": g["principal"], "budget": g["budget"]}
            for g in shown["grants"]
            if may_see(g["kind"], g["principal"])
        ],
        "users": users,
    }
