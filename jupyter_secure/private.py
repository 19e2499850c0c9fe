"""Differentially private queries on protected datasets, from a notebook.

The data never enters the kernel. It lives in a broker inside the Jupyter
server; notebook code can only ask that broker for *differentially private
releases* (a count, sum or mean, optionally filtered and grouped by public
categories), each charged to the user's privacy budget on that dataset::

    from jupyter_secure import private

    private.datasets()                      # what I may query, with what is left
    ds = private.dataset("patients")
    ds.schema                               # public: columns, bounds, categories
    ds.mock(rows=200, seed=1)               # synthetic rows to write code against, free
    q = ds.mean("age", rho=0.02, where=[("sex", "==", "F")])
    q.preview()                             # what it would cost and how accurate: free
    q                                       # displaying it runs it: ρ=0.02 is spent
    ds.groupby("sex").count(accuracy=10).to_pandas()

**What spends.** ``ds.count(...)``, ``ds.sum(...)`` and ``ds.mean(...)`` return
a :class:`PendingQuery`, which runs the first time its *result* is needed:
displaying it as a cell's output, reading ``.value``, ``.ci``, ``.cost``,
``.remaining``, ``.groups``, calling ``.to_pandas()``, ``float()`` or
``.run()``. ``.preview()`` never spends, nor do ``repr()`` and ``str()`` (so
debuggers, variable inspectors and logs cannot spend by looking): until it has
run they describe the pending query. Once run, the :class:`Release` is kept: a
second display does not ask again (and the broker answers an identical
query again without charging it). A refusal met while *displaying* (say,
:class:`BudgetExceeded`) is shown as an error, but IPython does not fail a
cell for what happens in its display step, so "Run All" goes on: in code that
must stop on a refusal, call ``.run()`` or read ``.value``, which raise.

Amounts of privacy loss (ρ under zCDP, ε under pure DP) travel as decimal
strings and are held as :class:`~decimal.Decimal`, never floats: a float
``0.1`` is sent as ``"0.1"`` (its shortest text), so budgets add up exactly.
Each query gives exactly one of ``rho=``, ``epsilon=`` (the dataset's own
measure) or ``accuracy=`` (the 95 % half-width wanted; the broker charges the
cheapest allowance that achieves it).

How it talks to the broker: over HTTP to the URL and with the token the
launcher put in :mod:`jupyter_secure.kernel.session`, with
``Authorization: KernelToken …``, never through a proxy (an ``http_proxy`` in
the environment must not see the token) and never following a redirect (the
token goes to the broker and nowhere else). Every request has a timeout.
Outside a guarded kernel there is no session, and every call raises
:class:`BrokerUnavailable`. The server checks everything again; the checks
here only fail early with a clearer message.

Standard library only, because this runs inside the sandboxed kernel; pandas
is imported only by :meth:`Release.to_pandas` and :meth:`Dataset.mock`.
"""

from __future__ import annotations

import copy
import html
import http.client
import json
import math
import numbers
import random
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final, overload

from jupyter_secure.kernel import session
from jupyter_secure.kernel.transport import OPENER, error_body

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "REQUEST_TIMEOUT",
    "AccessDenied",
    "BrokerUnavailable",
    "Budget",
    "BudgetExceeded",
    "Dataset",
    "DatasetInfo",
    "DatasetList",
    "DatasetNotFound",
    "GroupBy",
    "PendingQuery",
    "Preview",
    "PrivateQueryError",
    "QueryBusy",
    "QueryRefused",
    "Release",
    "dataset",
    "datasets",
    "load_ipython_extension",
    "privacy_budget",
]

#: Seconds to wait for the broker's answer to any one request (read at each request).
REQUEST_TIMEOUT = 60.0

_KINDS: Final = ("count", "sum", "mean", "quantile")
_MEASURES: Final = ("rho", "epsilon")
_FILTER_OPS: Final = ("==", "!=", "in", "<", "<=", ">", ">=")
_SYMBOL: Final = {"rho": "ρ", "epsilon": "ε"}
_OUTSIDE: Final = (
    "private datasets are only reachable from a jupyter-secure guarded kernel "
    "(this process has no broker session)"
)
_MAX_UNITS_EXPONENT: Final = 6  # no sensible ρ or ε is a million; the server refuses it too


# -- errors ----------------------------------------------------------------------------


class PrivateQueryError(Exception):
    """The broker refused or could not answer; the message is the broker's own sentence."""

    def __init__(self, message: str, *, status: int | None = None, kind: str | None = None):
        super().__init__(message)
        #: The HTTP status of the broker's answer, if there was one.
        self.status = status
        #: The broker's error kind (``"BudgetExceeded"``, ``"QueryError"``, …), if it gave one.
        self.kind = kind


class BudgetExceeded(PrivateQueryError):
    """The query costs more than is left of the budget: nothing was spent."""


class QueryRefused(PrivateQueryError):
    """The broker refused the query as malformed or not allowed (its ``QueryError``)."""


class DatasetNotFound(PrivateQueryError):
    """No such dataset, or none granted to this user (the broker does not say which)."""


class AccessDenied(PrivateQueryError):
    """The broker refused this kernel or user the request."""


class QueryBusy(PrivateQueryError):
    """The identical query is already running; once it finishes, asking again is free."""


class BrokerUnavailable(PrivateQueryError):
    """No broker to ask: outside a guarded kernel, unreachable, timed out or failing (5xx)."""


_ERROR_KINDS: Final[Mapping[str, type[PrivateQueryError]]] = {
    "BudgetExceeded": BudgetExceeded,
    "QueryError": QueryRefused,
    "NotFound": DatasetNotFound,
    "Forbidden": AccessDenied,
    "Busy": QueryBusy,
}


def _error_from_response(
    status: int, body: bytes | str | Mapping[str, Any] | None
) -> PrivateQueryError:
    """The exception for a non-2xx answer: by the broker's error kind, else by status."""
    data: object = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body)
        except ValueError:
            data = None
    kind = message = None
    if isinstance(data, Mapping):
        kind = data.get("error") if isinstance(data.get("error"), str) else None
        message = data.get("message") if isinstance(data.get("message"), str) else None
    cls = _ERROR_KINDS.get(kind or "")
    if cls is None:
        if status >= 500:
            cls = BrokerUnavailable
        elif status in (401, 403):
            cls = AccessDenied
        else:
            cls = PrivateQueryError
    if not message:
        message = f"the private-query broker answered HTTP {status}"
    return cls(message, status=status, kind=kind)


def _malformed(what: str) -> BrokerUnavailable:
    return BrokerUnavailable(f"the private-query broker sent a malformed answer ({what})")


# -- transport ---------------------------------------------------------------------------


def _url(base: str, *parts: str) -> str:
    """``base`` joined with each part quoted as one path segment (a ``/`` in a name too)."""
    return "/".join([base.rstrip("/"), *(urllib.parse.quote(p, safe="") for p in parts)])


def _call(
    method: str,
    parts: tuple[str, ...],
    payload: Mapping[str, Any] | None = None,
    *,
    spends: bool = False,
    timeout: float | None = None,
) -> dict[str, Any]:
    """One request to the broker; its JSON object, or the matching :class:`PrivateQueryError`."""
    if timeout is None:
        timeout = REQUEST_TIMEOUT
    current = session.current()
    if current is None or not current.broker_url:
        raise BrokerUnavailable(_OUTSIDE)
    url = _url(current.broker_url, *parts)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise BrokerUnavailable("the broker URL of this kernel is not http(s)")
    request = urllib.request.Request(  # noqa: S310 - the scheme was checked just above
        url,
        data=None if payload is None else json.dumps(payload).encode(),
        method=method,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"KernelToken {current.token}",
        },
    )
    maybe_spent = (
        ": the query may have run and been charged; ask again to get its release "
        "(the broker does not charge an identical query twice)"
        if spends
        else ""
    )
    try:
        with OPENER.open(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as err:
        raise _error_from_response(err.code, error_body(err)) from None
    except TimeoutError:
        raise BrokerUnavailable(
            f"the private-query broker did not answer within {timeout:g} s{maybe_spent}"
        ) from None
    except urllib.error.URLError as err:
        reason = "timed out" if isinstance(err.reason, TimeoutError) else str(err.reason)
        raise BrokerUnavailable(f"cannot reach the private-query broker ({reason})") from None
    except (OSError, http.client.HTTPException) as err:
        raise BrokerUnavailable(
            f"the connection to the private-query broker failed ({type(err).__name__}){maybe_spent}"
        ) from None
    try:
        data = json.loads(raw)
    except ValueError:
        raise _malformed("not JSON") from None
    if not isinstance(data, dict):
        raise _malformed("not a JSON object")
    return data


def _cell_id() -> str | None:
    """The id of the notebook cell being run (from the execute request), or None."""
    try:
        from IPython import get_ipython

        shell: Any = get_ipython()
        cell = shell.kernel.get_parent("shell")["metadata"].get("cellId")
    except Exception:
        return None
    return cell if isinstance(cell, str) else None


# -- reading the broker's answers ---------------------------------------------------------


def _amount(value: object, field: str) -> Decimal:
    """An amount the broker sent (a decimal string), exactly."""
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _malformed(f"{field}: expected a decimal string")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _malformed(f"{field}: {value!r} is not a number") from None
    if not number.is_finite():
        raise _malformed(f"{field}: not finite")
    return number


def _number(value: object, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _malformed(f"{field}: expected a number")
    return float(value)


def _interval(value: object, field: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise _malformed(f"{field}: expected [low, high]")
    lo, hi = _number(value[0], field), _number(value[1], field)
    if lo is None or hi is None:
        raise _malformed(f"{field}: expected [low, high]")
    return (lo, hi)


def _measure(value: object) -> str:
    if value not in _MEASURES:
        raise _malformed(f"measure: {value!r}")
    return str(value)


def _mapping(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _malformed(f"{field}: expected an object")
    return value


def _budget_from_json(data: object, measure: str, dataset: str) -> Budget:
    budget = _mapping(data, "budget")
    return Budget(
        total=_amount(budget.get("total"), "budget.total"),
        spent=_amount(budget.get("spent"), "budget.spent"),
        remaining=_amount(budget.get("remaining"), "budget.remaining"),
        measure=measure,
        dataset=dataset,
    )


def _info_from_json(data: Mapping[str, Any]) -> DatasetInfo:
    name = data.get("name")
    if not isinstance(name, str):
        raise _malformed("name")
    measure = _measure(data.get("measure"))
    columns = _mapping(data.get("columns"), "columns")
    schema = {str(c): dict(_mapping(col, f"columns.{c}")) for c, col in columns.items()}
    return DatasetInfo(
        name=name,
        description=str(data.get("description") or ""),
        measure=measure,
        schema=schema,
        budget=_budget_from_json(data.get("budget"), measure, name),
    )


def _preview_from_json(data: Mapping[str, Any], query: Mapping[str, Any], dataset: str) -> Preview:
    measure = _measure(data.get("measure"))
    accuracy = _mapping(data.get("accuracy") or {}, "accuracy")
    return Preview(
        query=dict(query),
        dataset=dataset,
        cost=_amount(data.get("cost"), "cost"),
        measure=measure,
        accuracy={
            str(k): n for k, v in accuracy.items() if (n := _number(v, "accuracy")) is not None
        },
        ci_half_width=_number(data.get("ci_half_width"), "ci_half_width"),
        remaining=_amount(data.get("remaining"), "remaining"),
        allowance=_amount(data.get("allowance", data.get("cost")), "allowance"),
    )


def _release_from_json(data: Mapping[str, Any], dataset: str) -> Release:
    """A :class:`Release` from the broker's JSON (amounts exact, intervals as tuples)."""
    raw_groups = data.get("groups")
    groups: list[dict[str, Any]] | None = None
    if raw_groups is not None:
        if not isinstance(raw_groups, list):
            raise _malformed("groups: expected a list")
        groups = []
        for i, raw in enumerate(raw_groups):
            group = _mapping(raw, f"groups[{i}]")
            key = _mapping(group.get("key"), f"groups[{i}].key")
            groups.append(
                {
                    "key": {str(k): v for k, v in key.items()},
                    "value": _number(group.get("value"), f"groups[{i}].value"),
                    "ci": _interval(group.get("ci"), f"groups[{i}].ci"),
                }
            )
    query = dict(_mapping(data.get("query") or {}, "query"))
    kind = data.get("kind", query.get("kind"))
    if kind not in _KINDS:
        raise _malformed(f"kind: {kind!r}")
    column = data.get("column", query.get("column"))
    by = data.get("by", query.get("by")) or []
    if not isinstance(by, list | tuple):
        raise _malformed("by: expected a list")
    release_id = data.get("release_id")
    return Release(
        dataset=dataset,
        query=query,
        kind=str(kind),
        column=None if column is None else str(column),
        by=tuple(str(c) for c in by),
        value=_number(data.get("value"), "value"),
        ci=_interval(data.get("ci"), "ci"),
        groups=groups,
        cost=_amount(data.get("cost"), "cost"),
        measure=_measure(data.get("measure")),
        remaining=_amount(data.get("remaining"), "remaining"),
        cached=bool(data.get("cached", False)),
        release_id=release_id if isinstance(release_id, int) else None,
    )


# -- building queries ----------------------------------------------------------------------


def _allowance_text(value: object, name: str) -> str:
    """``rho=``/``epsilon=`` as the exact decimal string sent: a float by its shortest text."""
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a number, not {value!r}")
    if isinstance(value, float):
        text = float.__repr__(value)  # also for float subclasses (numpy's float64)
    elif isinstance(value, Decimal | int | str):
        text = str(value).strip()
    elif isinstance(value, numbers.Integral):
        text = str(int(value))
    elif isinstance(value, numbers.Real):
        text = float.__repr__(float(value))
    else:
        raise TypeError(f"{name}: expected a number, not {type(value).__name__}")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{name}: {value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{name}: must be finite, not {value!r}")
    if number <= 0:
        raise ValueError(f"{name}: must be greater than 0, got {value!r}")
    if number.adjusted() >= _MAX_UNITS_EXPONENT:
        raise ValueError(f"{name}: {value!r} is out of range")
    return format(number.normalize(), "f")


def _positive_float(value: object, name: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a number, not {value!r}")
    if not isinstance(value, numbers.Real | Decimal):
        raise TypeError(f"{name}: expected a number, not {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return number


def _allowance(
    measure: str,
    *,
    rho: object = None,
    epsilon: object = None,
    accuracy: object = None,
    dataset: str = "this dataset",
) -> dict[str, str | float]:
    """Exactly one of ``rho``/``epsilon`` (the dataset's measure) or ``accuracy``, as JSON."""
    given = {
        n: v
        for n, v in (("rho", rho), ("epsilon", epsilon), ("accuracy", accuracy))
        if v is not None
    }
    if not given:
        raise TypeError(
            f"give exactly one of {measure}= (the privacy loss to spend) or accuracy= "
            "(the 95% half-width to buy)"
        )
    if len(given) > 1:
        names = " and ".join(f"{n}=" for n in given)
        raise TypeError(f"give exactly one of rho=, epsilon= or accuracy=, not {names}")
    ((name, value),) = given.items()
    if name == "accuracy":
        return {"accuracy": _positive_float(value, "accuracy")}
    if name != measure:
        raise ValueError(
            f"{name}: {dataset} is accounted in {_SYMBOL[measure]} ({measure}); "
            f"give {measure}= or accuracy="
        )
    return {name: _allowance_text(value, name)}


def _json_value(value: object, where: str) -> str | int | float:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{where}: expected a category or a number, not {value!r}")
    if isinstance(value, str):
        return str(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real | Decimal):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{where}: must be finite, not {value!r}")
        return number
    raise TypeError(f"{where}: expected a category or a number, not {type(value).__name__}")


def _filter(raw: object, where: str) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        if set(raw) != {"column", "op", "value"}:
            raise ValueError(f"{where}: expected keys column, op and value, got {sorted(raw)}")
        column, op, value = raw["column"], raw["op"], raw["value"]
    elif isinstance(raw, tuple | list) and len(raw) == 3:
        column, op, value = raw
    else:
        raise TypeError(f"{where}: expected (column, op, value) or a dict, got {raw!r}")
    if not isinstance(column, str) or not column:
        raise ValueError(f"{where}: the column must be a name, got {column!r}")
    if op not in _FILTER_OPS:
        raise ValueError(f"{where}: op must be one of {' '.join(_FILTER_OPS)}, got {op!r}")
    if op == "in":
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
            raise ValueError(f"{where}: 'in' takes a list of categories, got {value!r}")
        values = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        return {"column": column, "op": op, "value": [_json_value(v, where) for v in values]}
    return {"column": column, "op": op, "value": _json_value(value, where)}


def _filters(where: object) -> list[dict[str, Any]]:
    """``where=`` as the broker's ``filters``: one filter or a list, each a tuple or a dict."""
    if where is None:
        return []
    single = isinstance(where, Mapping) or (
        isinstance(where, tuple) and len(where) == 3 and isinstance(where[0], str)
    )
    if single:
        return [_filter(where, "where")]
    if isinstance(where, str) or not isinstance(where, Iterable):
        raise TypeError(f"where: expected a list of (column, op, value), got {where!r}")
    return [_filter(f, f"where[{i}]") for i, f in enumerate(where)]


def _by(columns: Iterable[object]) -> list[str]:
    by: list[str] = []
    for column in columns:
        if isinstance(column, list | tuple):
            by.extend(_by(column))
            continue
        if not isinstance(column, str) or not column:
            raise TypeError(f"by: expected category column names, got {column!r}")
        if column in by:
            raise ValueError(f"by: {column!r} is listed twice")
        by.append(column)
    return by


def _query_body(
    kind: str,
    column: str | None,
    *,
    measure: str,
    rho: object = None,
    epsilon: object = None,
    accuracy: object = None,
    where: object = None,
    by: Iterable[str] = (),
    dataset: str = "this dataset",
    q: object = None,
) -> dict[str, Any]:
    """The query object ``Q`` the broker takes, checked as far as the client can."""
    if kind not in _KINDS:
        raise ValueError(f"kind: expected one of {', '.join(_KINDS)}, got {kind!r}")
    if kind == "count":
        if column is not None:
            raise TypeError("column: a count takes no column")
    elif not isinstance(column, str) or not column:
        raise TypeError(f"column: {kind} needs a numeric column name, got {column!r}")
    body: dict[str, Any] = {"kind": kind, "column": column}
    by_list = _by(by)
    if by_list:
        body["by"] = by_list
    filters = _filters(where)
    if filters:
        body["filters"] = filters
    if kind == "quantile":
        body["q"] = _quantile_levels(q)
    body.update(_allowance(measure, rho=rho, epsilon=epsilon, accuracy=accuracy, dataset=dataset))
    return body


def _quantile_levels(q: object) -> float | list[float]:
    """``q`` as the broker takes it: one level or a list, each strictly between 0 and 1."""
    raw = list(q) if isinstance(q, list | tuple) else [q]
    levels: list[float] = []
    for level in raw:
        if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
            raise ValueError(f"q: expected levels strictly between 0 and 1, got {level!r}")
        levels.append(float(level))
    return levels if isinstance(q, list | tuple) else levels[0]


# -- showing things ------------------------------------------------------------------------


def _fmt_amount(measure: str, amount: Decimal) -> str:
    return f"{_SYMBOL.get(measure, measure)}={format(amount.normalize(), 'f')}"


def _decimals(half_width: float | None) -> int:
    """Digits after the point so that the interval's half-width shows two significant ones."""
    if half_width is None or not math.isfinite(half_width) or half_width <= 0:
        return 2
    return min(6, max(0, 1 - math.floor(math.log10(half_width))))


def _half_width(value: float | None, ci: tuple[float, float] | None) -> float | None:
    # The larger side: a mean's interval may be clipped to the column's bounds.
    if value is None or ci is None:
        return None
    return max(value - ci[0], ci[1] - value)


def _estimate(value: float | None, ci: tuple[float, float] | None) -> tuple[str, str, str]:
    """``(value, ± half-width, 95% CI)`` as text, to a precision the interval justifies."""
    if value is None:
        return ("—", "", "")
    half = _half_width(value, ci)
    d = _decimals(half)
    if ci is None or half is None:
        return (f"{value:.{d}f}", "", "")
    return (f"{value:.{d}f}", f"± {half:.{d}f}", f"{ci[0]:.{d}f} \u2013 {ci[1]:.{d}f}")


def _describe(kind: str, column: str | None, query: Mapping[str, Any]) -> str:
    """``mean(age where sex == 'F') by region``: what a query asks, in one line."""
    conditions = " and ".join(
        f"{f.get('column')} {f.get('op')} {f.get('value')!r}"
        for f in query.get("filters") or []
        if isinstance(f, Mapping)
    )
    inside = " where ".join(p for p in (column or "", conditions) if p)
    text = f"{kind}({inside})" if inside else kind
    by = query.get("by") or []
    return f"{text} by {', '.join(map(str, by))}" if by else text


def _html_table(headers: list[str], rows: list[list[str]], caption: str = "") -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<table class="jupyter-secure-private">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    )


# -- the objects a notebook sees -----------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """A user's privacy budget on one dataset, exact."""

    total: Decimal
    spent: Decimal
    remaining: Decimal
    measure: str
    dataset: str = ""

    def __repr__(self) -> str:
        on = f" on {self.dataset!r}" if self.dataset else ""
        m = self.measure
        return (
            f"Budget{on}: {_fmt_amount(m, self.remaining)} left of {_fmt_amount(m, self.total)}"
            f" ({_fmt_amount(m, self.spent)} spent)"
        )


@dataclass(frozen=True)
class DatasetInfo:
    """What the broker says about a dataset granted to this user: public facts only."""

    name: str
    description: str
    measure: str
    #: Column name -> ``{"type": "numeric", "lower", "upper"}`` or
    #: ``{"type": "category", "categories": [...]}``, as the broker gave it.
    schema: dict[str, dict[str, Any]]
    budget: Budget

    def __repr__(self) -> str:
        return (
            f"DatasetInfo({self.name!r}, {len(self.schema)} columns, "
            f"{_fmt_amount(self.measure, self.budget.remaining)} left)"
        )

    def _repr_html_(self) -> str:
        return _schema_html(self)


def _schema_rows(schema: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    rows = []
    for name, col in schema.items():
        if col.get("type") == "numeric":
            rows.append([name, "numeric", f"[{col.get('lower')}, {col.get('upper')}]"])
        else:
            cats = ", ".join(str(c) for c in col.get("categories") or [])
            rows.append([name, str(col.get("type", "?")), cats])
    return rows


def _schema_html(info: DatasetInfo) -> str:
    caption = f"{info.name} · {info.budget!r}"
    table = _html_table(["column", "type", "public values"], _schema_rows(info.schema), caption)
    desc = f"<p>{html.escape(info.description)}</p>" if info.description else ""
    return desc + table


def _budget_rows(infos: Iterable[DatasetInfo]) -> list[list[str]]:
    return [
        [
            i.name,
            _SYMBOL.get(i.measure, i.measure),
            format(i.budget.total.normalize(), "f"),
            format(i.budget.spent.normalize(), "f"),
            format(i.budget.remaining.normalize(), "f"),
        ]
        for i in infos
    ]


_BUDGET_HEADERS: Final = ["dataset", "measure", "total", "spent", "remaining"]


class DatasetList:
    """The datasets granted to this user (a read-only sequence of :class:`DatasetInfo`)."""

    def __init__(self, items: Iterable[DatasetInfo]) -> None:
        self._items = list(items)

    def __iter__(self) -> Iterator[DatasetInfo]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> DatasetInfo: ...
    @overload
    def __getitem__(self, index: str) -> DatasetInfo: ...
    @overload
    def __getitem__(self, index: slice) -> list[DatasetInfo]: ...
    def __getitem__(self, index: int | str | slice) -> DatasetInfo | list[DatasetInfo]:
        """By position, or by dataset name."""
        if isinstance(index, str):
            for info in self._items:
                if info.name == index:
                    return info
            raise KeyError(index)
        return self._items[index]

    @property
    def names(self) -> list[str]:
        return [i.name for i in self._items]

    def __repr__(self) -> str:
        if not self._items:
            return "no private datasets are granted to you"
        return _text_table(_BUDGET_HEADERS, _budget_rows(self._items))

    def _repr_html_(self) -> str:
        rows = [
            [*row, i.description]
            for row, i in zip(_budget_rows(self._items), self._items, strict=True)
        ]
        return _html_table([*_BUDGET_HEADERS, "description"], rows, "private datasets")


@dataclass(frozen=True)
class Preview:
    """What a query would cost and how accurate it would be; nothing was spent."""

    query: dict[str, Any]
    dataset: str
    cost: Decimal
    measure: str
    #: OpenDP's 95 % accuracy of each noisy statistic, by name.
    accuracy: dict[str, float]
    #: The 95 % half-width of the released value, when the broker can give one.
    ci_half_width: float | None
    remaining: Decimal
    #: The allowance the query asks (or, for ``accuracy=``, the one solved for it).
    allowance: Decimal

    def __repr__(self) -> str:
        what = _describe(str(self.query.get("kind")), self.query.get("column"), self.query)
        if self.ci_half_width is not None:
            d = _decimals(self.ci_half_width)
            acc = f"95% CI ± {self.ci_half_width:.{d}f}"
        elif self.accuracy:
            acc = "95% accuracy " + ", ".join(f"{k} ± {v:.4g}" for k, v in self.accuracy.items())
        else:
            acc = "accuracy not given"
        return (
            f"preview {what} on {self.dataset!r}: would cost {_fmt_amount(self.measure, self.cost)}"
            f" of {_fmt_amount(self.measure, self.remaining)} left · {acc} · nothing spent"
        )


@dataclass(frozen=True)
class Release:
    """A differentially private release: the value (or one per group), its 95 % CI, its cost."""

    dataset: str
    #: The query as the broker ran it (an ``accuracy=`` query carries its solved allowance).
    query: dict[str, Any]
    kind: str
    column: str | None
    by: tuple[str, ...]
    value: float | None
    ci: tuple[float, float] | None
    #: Grouped releases: ``[{"key": {column: category}, "value": v, "ci": (lo, hi)}, ...]``.
    groups: list[dict[str, Any]] | None
    cost: Decimal
    measure: str
    remaining: Decimal
    #: True when the broker answered an identical earlier query again, without charging.
    cached: bool
    release_id: int | None

    @property
    def label(self) -> str:
        return _describe(self.kind, self.column, {**self.query, "by": list(self.by)})

    def _ledger(self) -> str:
        cost = _fmt_amount(self.measure, self.cost)
        cached = " (cached: not charged again)" if self.cached else ""
        left = _fmt_amount(self.measure, self.remaining)
        return f"cost {cost}{cached} · {left} left on {self.dataset!r}"

    def __repr__(self) -> str:
        if self.groups is None:
            value, pm, ci = _estimate(self.value, self.ci)
            shown = f"{value} {pm} (95% CI {ci})" if ci else value
            return f"{self.label} = {shown} · {self._ledger()}"
        lines = [f"{self.label} · {self._ledger()}"]
        for group in self.groups:
            key = ", ".join(f"{k}={v}" for k, v in group["key"].items())
            value, pm, ci = _estimate(group["value"], group["ci"])
            lines.append(f"  {key}: {value} {pm} (95% CI {ci})" if ci else f"  {key}: {value}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        headers = [*self.by, "value", "± (95%)", "95% CI"]
        if self.groups is None:
            rows = [list(_estimate(self.value, self.ci))]
        else:
            rows = [
                [*(str(g["key"].get(c, "")) for c in self.by), *_estimate(g["value"], g["ci"])]
                for g in self.groups
            ]
        return _html_table(headers, rows, f"{self.label} · {self._ledger()}")

    def __float__(self) -> float:
        if self.groups is not None:
            raise TypeError(
                "a grouped release has one value per group: use .groups or .to_pandas()"
            )
        if self.value is None:
            raise TypeError("this release has no value")
        return self.value

    def to_pandas(self) -> pd.DataFrame:
        """One row per group (the key columns, then value, ci_low, ci_high), or one row."""
        import pandas as pd

        columns = [*self.by, "value", "ci_low", "ci_high"]
        if self.groups is None:
            lo, hi = self.ci if self.ci is not None else (None, None)
            return pd.DataFrame([[self.value, lo, hi]], columns=columns)
        records = []
        for g in self.groups:
            lo, hi = g["ci"] if g["ci"] is not None else (None, None)
            records.append([*(g["key"].get(c) for c in self.by), g["value"], lo, hi])
        return pd.DataFrame(records, columns=columns)


class PendingQuery:
    """A query not run yet: reading its result runs it (and spends); ``preview()`` is free."""

    def __init__(self, dataset: Dataset, query: dict[str, Any]) -> None:
        self._dataset = dataset
        self._query = query
        self._release: Release | None = None

    @property
    def query(self) -> dict[str, Any]:
        """The query object sent to the broker (a copy)."""
        return copy.deepcopy(self._query)

    @property
    def dataset(self) -> str:
        return self._dataset.name

    @property
    def done(self) -> bool:
        """Whether it has run (its release is kept)."""
        return self._release is not None

    def preview(self) -> Preview:
        """Cost, accuracy and what would be left, from the broker: spends nothing."""
        answer = _call("POST", ("datasets", self.dataset, "preview"), {"query": self._query})
        return _preview_from_json(answer, self._query, self.dataset)

    def run(self) -> Release:
        """Run the query (once: later calls return the same release) and spend its cost."""
        if self._release is None:
            payload = {"query": self._query, "cell_id": _cell_id()}
            answer = _call("POST", ("datasets", self.dataset, "query"), payload, spends=True)
            self._release = _release_from_json(answer, self.dataset)
        return self._release

    # Reading the result runs the query.
    @property
    def value(self) -> float | None:
        return self.run().value

    @property
    def ci(self) -> tuple[float, float] | None:
        return self.run().ci

    @property
    def groups(self) -> list[dict[str, Any]] | None:
        return self.run().groups

    @property
    def cost(self) -> Decimal:
        return self.run().cost

    @property
    def measure(self) -> str:
        return self._dataset.measure

    @property
    def remaining(self) -> Decimal:
        return self.run().remaining

    @property
    def cached(self) -> bool:
        return self.run().cached

    @property
    def release_id(self) -> int | None:
        return self.run().release_id

    def to_pandas(self) -> pd.DataFrame:
        return self.run().to_pandas()

    def __float__(self) -> float:
        return float(self.run())

    def _ipython_display_(self) -> None:
        """Run once and display the release (every mimetype from that one run).

        A refusal is shown here, as the broker's sentence: raised, IPython would
        print the traceback and then try the other formatters, each asking again.
        """
        from IPython import display, get_ipython

        shell: Any = get_ipython()
        try:
            release = self.run()
        except PrivateQueryError as err:
            if shell is None:
                print(f"{type(err).__name__}: {err}", file=sys.stderr)
            else:
                shell.showtraceback(exception_only=True)
            return
        show: Any = display.display  # untyped in IPython
        show(release)

    def _repr_html_(self) -> str:
        return self.run()._repr_html_()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self.run()))

    def __repr__(self) -> str:
        # Never runs: a debugger or variable inspector must not spend by looking.
        if self._release is not None:
            return repr(self._release)
        what = _describe(str(self._query["kind"]), self._query.get("column"), self._query)
        asks = next(
            (_fmt_amount(m, Decimal(str(self._query[m]))) for m in _MEASURES if m in self._query),
            f"accuracy ± {self._query.get('accuracy')}",
        )
        return (
            f"<pending {what} on {self.dataset!r}, {asks}: not run yet; display it, "
            "read .value or call .run() to spend; .preview() is free>"
        )


class GroupBy:
    """``ds.groupby(columns)``: the same queries, released per public category key."""

    def __init__(self, dataset: Dataset, by: list[str]) -> None:
        self._dataset = dataset
        self.by = by

    def count(
        self,
        *,
        rho: object = None,
        epsilon: object = None,
        accuracy: object = None,
        where: object = None,
    ) -> PendingQuery:
        return self._dataset._pending(
            "count", None, rho=rho, epsilon=epsilon, accuracy=accuracy, where=where, by=self.by
        )

    def sum(
        self,
        column: str,
        *,
        rho: object = None,
        epsilon: object = None,
        accuracy: object = None,
        where: object = None,
    ) -> PendingQuery:
        return self._dataset._pending(
            "sum", column, rho=rho, epsilon=epsilon, accuracy=accuracy, where=where, by=self.by
        )

    def mean(
        self,
        column: str,
        *,
        rho: object = None,
        epsilon: object = None,
        accuracy: object = None,
        where: object = None,
    ) -> PendingQuery:
        return self._dataset._pending(
            "mean", column, rho=rho, epsilon=epsilon, accuracy=accuracy, where=where, by=self.by
        )

    def __repr__(self) -> str:
        return f"GroupBy({self._dataset.name!r}, by={self.by!r})"


class Dataset:
    """A protected dataset granted to this user: its public schema, queries, a mock."""

    def __init__(self, info: DatasetInfo) -> None:
        self.info = info

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def description(self) -> str:
        return self.info.description

    @property
    def measure(self) -> str:
        """``"rho"`` (zCDP) or ``"epsilon"`` (pure DP): the unit of this dataset's budget."""
        return self.info.measure

    @property
    def schema(self) -> dict[str, dict[str, Any]]:
        """Column -> its public description (bounds or categories), as the broker gave it."""
        return self.info.schema

    def budget(self) -> Budget:
        """The budget left on this dataset, fresh from the broker."""
        answer = _call("GET", ("datasets", self.name))
        return _budget_from_json(answer.get("budget"), _measure(answer.get("measure")), self.name)

    def _pending(
        self,
        kind: str,
        column: str | None,
        *,
        rho: object,
        epsilon: object,
        accuracy: object,
        where: object,
        by: Iterable[str] = (),
        q: object = None,
    ) -> PendingQuery:
        body = _query_body(
            kind,
            column,
            measure=self.measure,
            rho=rho,
            epsilon=epsilon,
            accuracy=accuracy,
            where=where,
            by=by,
            dataset=repr(self.name),
            q=q,
        )
        return PendingQuery(self, body)

    def count(
        self,
        *,
        rho: object = None,
        epsilon: object = None,
        accuracy: object = None,
        where: object = None,
    ) -> PendingQuery:
        """A noisy count of rows (matching ``where``)."""
        return self._pending(
            "count", None, rho=rho, epsilon=epsilon, accuracy=accuracy, where=where
        )

    def sum(
        self,
        column: str,
        *,
        rho: object = None,
        epsilon: object = None,
        accuracy: object = None,
        where: object = None,
    ) -> PendingQuery:
        """A noisy sum of a numeric column, each value clipped to the column's bounds."""
        return self._pending(
            "sum", column, rho=rho, epsilon=epsilon, accuracy=accuracy, where=where
        )

    def mean(
        self,
        column: str,
        *,
        rho: object = None,
        epsilon: object = None,
        accuracy: object = None,
        where: object = None,
    ) -> PendingQuery:
        """A noisy mean of a numeric column, each value clipped to the column's bounds."""
        return self._pending(
            "mean", column, rho=rho, epsilon=epsilon, accuracy=accuracy, where=where
        )

    def quantile(
        self,
        column: str,
        q: float | list[float] = 0.5,
        *,
        rho: object = None,
        epsilon: object = None,
        where: object = None,
    ) -> PendingQuery:
        """Noisy quantile(s) of a numeric column, each with a 95 % interval.

        All levels in ``q`` (up to 9) come from one noisy histogram, so asking for
        several costs what asking for one does.
        """
        return self._pending(
            "quantile", column, rho=rho, epsilon=epsilon, accuracy=None, where=where, q=q
        )

    def median(
        self, column: str, *, rho: object = None, epsilon: object = None, where: object = None
    ) -> PendingQuery:
        """The noisy median of a numeric column (``quantile(column, 0.5)``)."""
        return self.quantile(column, 0.5, rho=rho, epsilon=epsilon, where=where)

    def groupby(self, *columns: str | list[str] | tuple[str, ...]) -> GroupBy:
        """Group by one or more category columns (their public categories are the keys)."""
        by = _by(columns)
        if not by:
            raise TypeError("groupby: name at least one category column")
        return GroupBy(self, by)

    def mock(self, rows: int = 100, seed: int | None = None) -> pd.DataFrame:
        """Synthetic rows with this dataset's columns, to write code against before spending.

        Made from the public schema only (it never contacts the broker or the
        data): numbers uniform within each column's bounds (whole numbers when
        both bounds are), categories drawn uniformly from the public ones. Its
        values say nothing about the real data.
        """
        import pandas as pd

        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise ValueError(f"rows: expected a whole number >= 0, got {rows!r}")
        rng = random.Random(seed)  # noqa: S311 - synthetic data, not a secret
        data: dict[str, list[Any]] = {}
        for name, col in self.schema.items():
            if col.get("type") == "numeric":
                lo, hi = float(col["lower"]), float(col["upper"])
                if lo.is_integer() and hi.is_integer():
                    data[name] = [rng.randint(int(lo), int(hi)) for _ in range(rows)]
                else:
                    data[name] = [rng.uniform(lo, hi) for _ in range(rows)]
            else:
                cats = [str(c) for c in col.get("categories") or []]
                data[name] = [rng.choice(cats) if cats else None for _ in range(rows)]
        frame = pd.DataFrame(data, columns=list(self.schema))
        frame.attrs["synthetic"] = True
        return frame

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, measure={self.measure!r}, columns={list(self.schema)!r})"

    def _repr_html_(self) -> str:
        return _schema_html(self.info)


# -- entry points ----------------------------------------------------------------------------


def datasets() -> DatasetList:
    """The datasets you may query, with what is left of your budget on each."""
    answer = _call("GET", ("datasets",))
    items = answer.get("datasets")
    if not isinstance(items, list):
        raise _malformed("datasets: expected a list")
    return DatasetList(_info_from_json(_mapping(i, "datasets[]")) for i in items)


def dataset(name: str) -> Dataset:
    """A dataset granted to you; :class:`DatasetNotFound` if there is none by that name."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a dataset name, got {name!r}")
    return Dataset(_info_from_json(_call("GET", ("datasets", name))))


def privacy_budget(line: str = "") -> None:
    """``%privacy_budget [dataset]``: print total, spent and remaining budget."""
    name = line.strip().strip("'\"")
    infos = [dataset(name).info] if name else list(datasets())
    print(DatasetList(infos))


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%privacy_budget`` (the guarded kernel's launcher calls this)."""
    ipython.register_magic_function(privacy_budget, "line", "privacy_budget")
