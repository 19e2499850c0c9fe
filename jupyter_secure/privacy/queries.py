"""Whitelisted queries on a protected dataset, costed with OpenDP before any data is read.

A query arrives as a small JSON object — never code, never a pickled plan —
and :func:`parse_query` checks every field against the dataset's spec: the kind
(``count``, ``sum``, ``mean``), a numeric column the spec bounds, filters on
public predicates only (a category among the spec's public values, a numeric
comparison with a constant), and the privacy allowance in the dataset's own
measure (ρ for zCDP, ε for pure DP).

:func:`plan_query` builds the OpenDP measurement from the spec, not from the
data: the privacy unit (one row per person, or an id column truncated to
``max_rows_per_person`` rows each), the clipping bounds, the public row bound.
Its cost comes from the measurement's privacy map, before the data is touched,
so a ledger can refuse first; :meth:`Plan.release` is the only step that reads
rows. A mean is released as the bounds' midpoint plus a noisy centred sum over
a noisy count, which keeps the noise of the sum small when values sit near the
middle. Confidence intervals (95 %) come from OpenDP's accuracy of each noisy
statistic; a mean's interval propagates both (conservative, not exact).

Pure: polars and OpenDP, no Jupyter. OpenDP's ``contrib`` features are enabled
on import: that is what its polars plugin needs; nothing here uses
``honest-but-curious``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from .amounts import Amount, AmountError
from .spec import DatasetSpec

__all__ = ["KINDS", "PUBLIC_MAX_ROWS", "Filter", "Plan", "Query", "QueryError", "Release",
           "parse_query", "plan_query"]  # fmt: skip

Kind = Literal["count", "sum", "mean"]
KINDS: tuple[Kind, ...] = ("count", "sum", "mean")
#: A public upper bound on a dataset's rows (OpenDP's float sums account for rounding
#: in proportion to it).
PUBLIC_MAX_ROWS = 100_000_000
_CATEGORY_OPS = ("==", "!=", "in")
_NUMERIC_OPS = ("<", "<=", ">", ">=")
_MAX_FILTERS = 8
_ALPHA = 0.05


class QueryError(ValueError):
    """A query was refused before anything was computed; the message names the field."""


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    value: str | float | tuple[str, ...]

    def expr(self) -> pl.Expr:
        col = pl.col(self.column)
        if self.op == "==":
            return col.eq(self.value)
        if self.op == "!=":
            return col.ne(self.value)
        if isinstance(self.value, tuple):  # "in"
            return col.is_in(list(self.value))
        number = float(self.value)
        return {"<": col < number, "<=": col <= number, ">": col > number,
                ">=": col >= number}[self.op]  # fmt: skip


@dataclass(frozen=True)
class Query:
    kind: Kind
    column: str | None
    filters: tuple[Filter, ...]
    allowance: Amount

    def describe(self) -> dict[str, Any]:
        """The canonical JSON form (for the ledger, and to recognise a repeated query)."""
        return {
            "kind": self.kind,
            "column": self.column,
            "filters": [
                {
                    "column": f.column,
                    "op": f.op,
                    "value": list(f.value) if isinstance(f.value, tuple) else f.value,
                }
                for f in self.filters
            ],
            self.allowance.measure: str(self.allowance.value),
        }


def _filter(i: int, raw: object, spec: DatasetSpec) -> Filter:
    where = f"filters[{i}]"
    if not isinstance(raw, Mapping) or set(raw) != {"column", "op", "value"}:
        raise QueryError(f"{where}: expected {{column, op, value}}")
    column, op, value = raw["column"], raw["op"], raw["value"]
    if column in spec.categories:
        public = spec.categories[column].categories
        if op not in _CATEGORY_OPS:
            raise QueryError(f"{where}.op: {column} is a category: use ==, != or in")
        values = value if op == "in" else [value]
        if not isinstance(values, list) or not values or any(v not in public for v in values):
            raise QueryError(f"{where}.value: must be among the public categories of {column}")
        return Filter(column, op, tuple(values) if op == "in" else str(value))
    if column in spec.numeric:
        if op not in _NUMERIC_OPS:
            raise QueryError(f"{where}.op: {column} is numeric: use <, <=, > or >=")
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number):
            raise QueryError(f"{where}.value: expected a finite number")
        return Filter(column, op, float(value))
    raise QueryError(f"{where}.column: {column!r} is not a column of {spec.name}")


def parse_query(data: Mapping[str, Any], spec: DatasetSpec) -> Query:
    """A checked query, or :class:`QueryError` naming the field."""
    measure = spec.measure
    other = "epsilon" if measure == "rho" else "rho"
    allowed = {"kind", "column", "filters", measure, other}
    for key in data:
        if key not in allowed:
            raise QueryError(f"{key}: unknown key")
    if other in data:
        raise QueryError(f"{other}: {spec.name} is accounted in {measure}; give {measure}")
    kind = data.get("kind")
    if kind not in KINDS:
        raise QueryError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    column = data.get("column")
    if kind == "count":
        if column is not None:
            raise QueryError("column: a count takes no column")
    elif column not in spec.numeric:
        raise QueryError(f"column: {kind} needs a numeric column of {spec.name}, got {column!r}")
    raw_filters = data.get("filters", [])
    if not isinstance(raw_filters, list) or len(raw_filters) > _MAX_FILTERS:
        raise QueryError(f"filters: expected a list of at most {_MAX_FILTERS}")
    filters = tuple(_filter(i, f, spec) for i, f in enumerate(raw_filters))
    if measure not in data:
        raise QueryError(f"{measure}: required (the privacy loss to spend)")
    try:
        allowance = Amount.parse(data[measure], measure, field=measure, allow_zero=False)
    except AmountError as exc:
        raise QueryError(str(exc)) from None
    return Query(kind, column, filters, allowance)


@dataclass(frozen=True)
class Release:
    """What a query released: a value, its 95 % interval, and what it cost."""

    value: float
    ci: tuple[float, float]
    cost: Amount
    details: dict[str, float] = field(default_factory=dict)


@dataclass
class Plan:
    """A query planned against a dataset: its cost is known; nothing has been read."""

    query: Query
    spec: DatasetSpec
    cost: Amount
    #: OpenDP's 95 % accuracy of each noisy statistic, by name
    accuracy: dict[str, float]
    scales: dict[str, float]
    _dp_query: Any = field(repr=False)

    def release(self) -> Release:
        """Evaluate: the one step that reads the data and spends the allowance."""
        row = self._dp_query.release().collect().row(0, named=True)
        q, spec = self.query, self.spec
        if q.kind == "count":
            n = float(row["len"])
            a = self.accuracy["len"]
            return Release(n, (n - a, n + a), self.cost, {"count": n})
        column = str(q.column)
        if q.kind == "sum":
            total = float(row[column])
            a = self.accuracy[column]
            return Release(total, (total - a, total + a), self.cost)
        mid = spec.numeric[column].midpoint
        n, s = float(row["len"]), float(row[column])
        a_n, a_s = self.accuracy["len"], self.accuracy[column]
        n_eff = max(n, 1.0)
        value = mid + s / n_eff
        lo_n = max(n - a_n, 1.0)
        half = (a_s + abs(s / n_eff) * a_n) / lo_n
        col = spec.numeric[column]
        value = min(max(value, col.lower), col.upper)
        ci = (max(value - half, col.lower), min(value + half, col.upper))
        return Release(value, ci, self.cost, {"count": n, "centred_sum": s})


def plan_query(spec: DatasetSpec, data: pl.LazyFrame, query: Query) -> Plan:
    """The OpenDP measurement for ``query`` on ``data`` (lazy), with its cost."""
    import importlib

    # OpenDP's polars plugin (the .dp namespace) is not visible to type checkers.
    dp: Any = importlib.import_module("opendp.prelude")
    dp.enable_features("contrib")
    unit = spec.unit
    if unit.id_column is None:
        privacy_unit = dp.unit_of(contributions=1)
    else:
        privacy_unit = dp.unit_of(contributions=1, identifier=pl.col(unit.id_column))
    loss = (
        dp.loss_of(rho=query.allowance.as_float())
        if spec.measure == "rho"
        else dp.loss_of(epsilon=query.allowance.as_float())
    )
    context = dp.Context.compositor(
        data=data,
        privacy_unit=privacy_unit,
        privacy_loss=loss,
        split_evenly_over=1,
        margins=[dp.polars.Margin(max_length=PUBLIC_MAX_ROWS)],
    )
    q: Any = context.query()
    if unit.id_column is not None:
        # Each person's rows beyond max_rows_per_person are left out (truncation).
        q = q.filter(pl.int_range(pl.len()).over(unit.id_column) < unit.max_rows)
    for f in query.filters:
        q = q.filter(f.expr())
    exprs: list[Any] = []
    if query.kind in ("count", "mean"):
        exprs.append(dp.len(signed=True))
    if query.kind in ("sum", "mean"):
        col = spec.numeric[str(query.column)]
        if query.kind == "mean":
            half = (col.upper - col.lower) / 2
            centred: Any = (pl.col(col.name).fill_null(col.midpoint) - col.midpoint).clip(
                -half, half
            )
            exprs.append(centred.dp.sum(bounds=(-half, half)))
        else:
            clipped: Any = pl.col(col.name).fill_null(col.lower).clip(col.lower, col.upper)
            exprs.append(clipped.dp.sum(bounds=(col.lower, col.upper)))
    q = q.select(*exprs)
    summary = q.summarize(alpha=_ALPHA)
    scales = dict(zip(summary["column"].to_list(), summary["scale"].to_list(), strict=True))
    if any(not s or s <= 0 for s in scales.values()):
        raise QueryError("the mechanism would add no noise: refused")
    accuracy = dict(zip(summary["column"].to_list(), summary["accuracy"].to_list(), strict=True))
    spent = q.resolve().map(1)
    cost = Amount.cost(float(spent), spec.measure)
    if cost > query.allowance:
        raise QueryError(f"the mechanism would spend {cost}, more than the {query.allowance} given")
    return Plan(query, spec, cost, accuracy, scales, q)
