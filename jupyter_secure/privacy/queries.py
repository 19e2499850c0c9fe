"""Whitelisted queries on a protected dataset, costed with OpenDP before any data is read.

A query arrives as a small JSON object — never code, never a pickled plan —
and :func:`parse_query` checks every field against the dataset's spec: the kind
(``count``, ``sum``, ``mean``), a numeric column the spec bounds, grouping by
category columns (their public category sets are the keys: a key that only the
data could reveal is never released, and a public key with no rows still gets a
noisy answer), filters on public predicates only (a category among the spec's
public values, a numeric comparison with a constant), and either the privacy
allowance in the dataset's own measure (ρ for zCDP, ε for pure DP) or a target
accuracy, for which the cheapest allowance is solved.

:func:`plan_query` builds the OpenDP measurement from the spec, not from the
data: the data it runs on was prepared by :func:`prepare` (each person's rows
beyond ``max_rows_per_person`` dropped, the id column gone), so a person
changes at most that many rows and the measurement's privacy unit is
``contributions=max_rows_per_person``; the clipping bounds and the public row
bound come from the spec too. Its cost comes from the measurement's privacy
map, before the data is touched, so a ledger can refuse first;
:meth:`Plan.release` is the only step that reads rows.

The noise scale is solved directly rather than by OpenDP's generic bisection:
the loss of these mechanisms falls as 1/scale (Laplace) or 1/scale² (Gaussian),
so one probe gives the scale and one or two checks confirm it (about 5 ms
instead of the ~650 privacy-map evaluations a bisection makes).

A mean is released as the bounds' midpoint plus a noisy centred sum over
a noisy count, which keeps the noise of the sum small when values sit near the
middle. Confidence intervals (95 %) come from OpenDP's accuracy of each noisy
statistic; a mean's interval propagates both (conservative, not exact).

Pure: polars and OpenDP, no Jupyter. OpenDP's ``contrib`` features are enabled
on import: that is what its polars plugin needs; nothing here uses
``honest-but-curious``.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

import polars as pl

from .amounts import NANO, Amount, AmountError, Measure
from .cdf import edges, quantiles
from .spec import DatasetSpec

__all__ = ["KINDS", "MAX_GROUPS", "PUBLIC_MAX_ROWS", "QUANTILE_BINS", "Filter", "Group",
           "Plan", "Query", "QueryError", "Release", "parse_query", "plan_query",
           "prepare"]  # fmt: skip

Kind = Literal["count", "sum", "mean", "quantile"]
KINDS: tuple[Kind, ...] = ("count", "sum", "mean", "quantile")
#: Equal-width bins of the noisy histogram a quantile query releases.
QUANTILE_BINS = 128
_MAX_QUANTILES = 9
_BIN = "__jupyter_secure_bin"
#: A public upper bound on a dataset's rows (OpenDP's float sums account for rounding
#: in proportion to it).
PUBLIC_MAX_ROWS = 100_000_000
_CATEGORY_OPS = ("==", "!=", "in")
_NUMERIC_OPS = ("<", "<=", ">", ">=")
_MAX_FILTERS = 8
_MAX_BY = 3
#: The most groups one query may release (the product of the public category sets).
MAX_GROUPS = 10_000
_ALPHA = 0.05
#: The cheapest allowance a target accuracy may be solved to (below it: refused).
#: The smallest allowance a query may spend (10^-6): below it a release is noise,
#: and a budget would buy millions of full scans.
MIN_ALLOWANCE_NANOS = 1_000
_MIN_ACCURACY = 1e-6
_MAX_ACCURACY = 1e15
_MAX_ALLOWANCE_NANOS = 1000 * NANO
_BISECTIONS = 20


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
        if isinstance(self.value, tuple):  # "in", as OR-ed equalities (what OpenDP supports)
            return functools.reduce(operator.or_, (col.eq(v) for v in self.value))
        number = float(self.value)
        return {"<": col < number, "<=": col <= number, ">": col > number,
                ">=": col >= number}[self.op]  # fmt: skip


@dataclass(frozen=True)
class Query:
    kind: Kind
    column: str | None
    filters: tuple[Filter, ...]
    #: The privacy loss to spend; None when ``accuracy`` asks the planner to solve it.
    allowance: Amount | None
    by: tuple[str, ...] = ()
    #: A target 95 % half-width (of the released statistic) to buy as cheaply as possible.
    accuracy: float | None = None
    #: The quantiles a ``quantile`` query asks for (all from one noisy histogram).
    qs: tuple[float, ...] = ()

    def describe(self) -> dict[str, Any]:
        """The canonical JSON form (for the ledger, and to recognise a repeated query)."""
        described: dict[str, Any] = {
            "kind": self.kind,
            "column": self.column,
            "by": list(self.by),
            "filters": [
                {
                    "column": f.column,
                    "op": f.op,
                    "value": list(f.value) if isinstance(f.value, tuple) else f.value,
                }
                for f in self.filters
            ],
        }
        if self.kind == "quantile":
            described["q"] = list(self.qs)
        if self.allowance is not None:
            described[self.allowance.measure] = format(self.allowance.value.normalize(), "f")
        else:
            described["accuracy"] = self.accuracy
        return described

    def with_allowance(self, allowance: Amount) -> Query:
        """The same query with its allowance fixed (after solving for an accuracy)."""
        return Query(self.kind, self.column, self.filters, allowance, self.by, None, self.qs)


def _filter(i: int, raw: object, spec: DatasetSpec) -> Filter:
    where = f"filters[{i}]"
    if not isinstance(raw, Mapping) or set(raw) != {"column", "op", "value"}:
        raise QueryError(f"{where}: expected {{column, op, value}}")
    column, op, value = raw["column"], raw["op"], raw["value"]
    if not isinstance(column, str) or not isinstance(op, str):
        raise QueryError(f"{where}: column and op must be text")
    if column in spec.categories:
        public = spec.categories[column].categories
        if op not in _CATEGORY_OPS:
            raise QueryError(f"{where}.op: {column} is a category: use ==, != or in")
        values = value if op == "in" else [value]
        if (
            not isinstance(values, list)
            or not values
            or len(values) > len(public)
            or any(not isinstance(v, str) or v not in public for v in values)
        ):
            raise QueryError(f"{where}.value: must be among the public categories of {column}")
        return Filter(column, op, tuple(values) if op == "in" else str(value))
    if column in spec.numeric:
        if op not in _NUMERIC_OPS:
            raise QueryError(f"{where}.op: {column} is numeric: use <, <=, > or >=")
        number = _finite(value)
        if number is None:
            raise QueryError(f"{where}.value: expected a finite number")
        return Filter(column, op, number)
    raise QueryError(f"{where}.column: {column!r} is not a column of {spec.name}")


def parse_query(data: Mapping[str, Any], spec: DatasetSpec) -> Query:
    """A checked query, or :class:`QueryError` naming the field."""
    measure = spec.measure
    other = "epsilon" if measure == "rho" else "rho"
    allowed = {"kind", "column", "filters", "by", "accuracy", "q", measure, other}
    for key in data:
        if key not in allowed:
            raise QueryError(f"{key}: unknown key")
    if other in data:
        raise QueryError(f"{other}: {spec.name} is accounted in {measure}; give {measure}")
    kind = data.get("kind")
    if kind not in KINDS:
        raise QueryError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    column = data.get("column")
    if column is not None and not isinstance(column, str):
        raise QueryError("column: expected a column name")
    if kind == "count":
        if column is not None:
            raise QueryError("column: a count takes no column")
    elif column not in spec.numeric:
        raise QueryError(f"column: {kind} needs a numeric column of {spec.name}, got {column!r}")
    raw_filters = data.get("filters", [])
    if not isinstance(raw_filters, list) or len(raw_filters) > _MAX_FILTERS:
        raise QueryError(f"filters: expected a list of at most {_MAX_FILTERS}")
    filters = tuple(_filter(i, f, spec) for i, f in enumerate(raw_filters))
    by = _by(data.get("by", []), spec)
    allowance, target = _allowance(data, measure)
    qs = _qs(data, kind)
    if kind == "quantile" and by:
        raise QueryError("by: quantiles are not grouped (ask one query per group, with a filter)")
    return Query(kind, column, filters, allowance, by, target, qs)


def _qs(data: Mapping[str, Any], kind: str) -> tuple[float, ...]:
    if kind != "quantile":
        if "q" in data:
            raise QueryError("q: only a quantile query takes q")
        return ()
    raw = data.get("q")
    values = raw if isinstance(raw, list) else [raw]
    if raw is None or not values or len(values) > _MAX_QUANTILES:
        raise QueryError(f"q: give one quantile or a list of at most {_MAX_QUANTILES}")
    out: list[float] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 1:
            raise QueryError(f"q: expected numbers strictly between 0 and 1, got {v!r}")
        out.append(float(v))
    return tuple(out)


def _allowance(data: Mapping[str, Any], measure: Measure) -> tuple[Amount | None, float | None]:
    if (measure in data) == ("accuracy" in data):
        raise QueryError(f"{measure}: give either {measure} (the privacy loss to spend) "
                         "or accuracy (the 95 % half-width to buy)")  # fmt: skip
    if "accuracy" in data:
        target = _finite(data["accuracy"])
        if target is None or not _MIN_ACCURACY <= target <= _MAX_ACCURACY:
            raise QueryError(f"accuracy: expected a number from {_MIN_ACCURACY:g} to "
                             f"{_MAX_ACCURACY:g}")  # fmt: skip
        return None, target
    try:
        allowance = Amount.parse(data[measure], measure, field=measure, allow_zero=False)
    except AmountError as exc:
        raise QueryError(str(exc)) from None
    if allowance.nanos < MIN_ALLOWANCE_NANOS:
        raise QueryError(f"{measure}: at least {Amount(measure, MIN_ALLOWANCE_NANOS)} per query "
                         "(less buys nothing but noise)")  # fmt: skip
    return allowance, None


def _finite(value: object) -> float | None:
    """A finite float from a JSON number, or None (bools, text, huge ints, NaN, inf)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _by(raw: object, spec: DatasetSpec) -> tuple[str, ...]:
    if not isinstance(raw, list) or len(raw) > _MAX_BY:
        raise QueryError(f"by: expected a list of at most {_MAX_BY} category columns")
    groups = 1
    for i, column in enumerate(raw):
        if not isinstance(column, str) or column not in spec.categories:
            # Grouping by anything else would release keys only the data knows.
            raise QueryError(f"by[{i}]: {column!r} is not a category column of {spec.name} "
                             "(groups come from public category sets only)")  # fmt: skip
        groups *= len(spec.categories[column].categories)
    if len(set(raw)) != len(raw):
        raise QueryError("by: a column is listed twice")
    if groups > MAX_GROUPS:
        raise QueryError(f"by: {groups} groups; at most {MAX_GROUPS}")
    return tuple(str(c) for c in raw)


@dataclass(frozen=True)
class Group:
    """One group of a grouped release: its public key, value and 95 % interval."""

    key: dict[str, str]
    value: float
    ci: tuple[float, float]


@dataclass(frozen=True)
class Release:
    """What a query released: a value (or one per group), its 95 % interval, its cost."""

    value: float | None
    ci: tuple[float, float] | None
    cost: Amount
    groups: tuple[Group, ...] | None = None
    details: dict[str, float] = field(default_factory=dict)
    #: the noise behind each statistic: {"len": {"distribution": ..., "scale": ...}}
    mechanism: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "mechanism": self.mechanism,
            "value": self.value,
            "ci": list(self.ci) if self.ci is not None else None,
            "groups": [{"key": g.key, "value": g.value, "ci": list(g.ci)} for g in self.groups]
            if self.groups is not None
            else None,
        }


def prepare(spec: DatasetSpec, data: pl.LazyFrame) -> pl.LazyFrame:
    """The rows a protected dataset keeps: the spec's columns, each person at most k rows.

    Applied once, when an admin adds the dataset. Dropping each person's rows
    beyond ``max_rows_per_person`` (in file order) bounds what one person can
    change to k rows, so every later query is planned with ``contributions=k``
    and no query pays for the truncation again; the id column itself is not
    kept, since no query may release it. Numeric columns become Float64 and
    categories text, the types the planner's domain declares.
    """
    unit = spec.unit
    if unit.id_column is not None:
        data = data.filter(pl.int_range(pl.len()).over(unit.id_column) < unit.max_rows)
    return data.select(
        *[pl.col(c).cast(pl.Float64) for c in spec.numeric],
        *[pl.col(c).cast(pl.String) for c in spec.categories],
    )


def _schema(spec: DatasetSpec) -> dict[str, Any]:
    return {**dict.fromkeys(spec.numeric, pl.Float64), **dict.fromkeys(spec.categories, pl.String)}


def _opendp() -> Any:
    import importlib

    # OpenDP's polars plugin (the .dp namespace) is not visible to type checkers.
    dp: Any = importlib.import_module("opendp.prelude")
    dp.enable_features("contrib")
    return dp


def _estimate(
    q: Query, spec: DatasetSpec, row: Mapping[str, Any], accuracy: Mapping[str, float]
) -> tuple[float, tuple[float, float], dict[str, float]]:
    if q.kind == "count":
        n = float(row["len"])
        a = accuracy["len"]
        return n, (n - a, n + a), {"count": n}
    column = str(q.column)
    if q.kind == "sum":
        total = float(row[column])
        a = accuracy[column]
        return total, (total - a, total + a), {}
    col = spec.numeric[column]
    n, s = float(row["len"]), float(row[column])
    a_n, a_s = accuracy["len"], accuracy[column]
    n_eff = max(n, 1.0)
    value = min(max(col.midpoint + s / n_eff, col.lower), col.upper)
    half = (a_s + abs(s / n_eff) * a_n) / max(n - a_n, 1.0)
    ci = (max(value - half, col.lower), min(value + half, col.upper))
    return value, ci, {"count": n, "centred_sum": s}


@dataclass
class Plan:
    """A query planned against a dataset's spec: its cost is known; nothing has been read."""

    query: Query
    spec: DatasetSpec
    cost: Amount
    #: OpenDP's 95 % accuracy of each noisy statistic, by name
    accuracy: dict[str, float]
    scales: dict[str, float]
    _measurement: Any = field(repr=False)
    #: OpenDP's noise distribution of each statistic ("Integer Gaussian", ...)
    distributions: dict[str, str] = field(default_factory=dict)
    _released: bool = field(default=False, repr=False)

    @property
    def half_width(self) -> float | None:
        """The 95 % half-width of a count or a sum (a mean's depends on the data)."""
        if self.query.kind == "count":
            return self.accuracy["len"]
        if self.query.kind == "sum":
            return self.accuracy[str(self.query.column)]
        return None

    def release(self, data: pl.LazyFrame) -> Release:
        """Evaluate on the prepared data: the one step that reads rows. Once per plan."""
        if self._released:
            raise RuntimeError("a plan is released once")
        self._released = True
        frame = self._measurement(data).collect()
        q, spec = self.query, self.spec
        mechanism = {
            name: {"distribution": self.distributions.get(name, ""), "scale": scale}
            for name, scale in self.scales.items()
        }
        if q.kind == "quantile":
            return replace(self._quantiles(frame), mechanism=mechanism)
        if not q.by:
            value, ci, details = _estimate(q, spec, frame.row(0, named=True), self.accuracy)
            return Release(value, ci, self.cost, None, details, mechanism)
        rows = {tuple(r[c] for c in q.by): r for r in frame.iter_rows(named=True)}
        groups = []
        for key in _keys(spec, q.by):
            value, ci, _ = _estimate(q, spec, rows[key], self.accuracy)
            groups.append(Group(dict(zip(q.by, key, strict=True)), value, ci))
        return Release(None, None, self.cost, tuple(groups), {}, mechanism)

    def _quantiles(self, frame: pl.DataFrame) -> Release:
        q, col = self.query, self.spec.numeric[str(self.query.column)]
        by_bin = {str(r[_BIN]): float(r["len"]) for r in frame.iter_rows(named=True)}
        counts = [by_bin[label] for label in _bin_labels()]
        found = quantiles(
            counts,
            col.lower,
            col.upper,
            q.qs,
            distribution=self.distributions["len"],
            scale=self.scales["len"],
            alpha=_ALPHA,
        )
        details = {"count": sum(max(c, 0.0) for c in counts)}
        if len(q.qs) == 1:
            value, lo, hi = found[0]
            return Release(value, (lo, hi), self.cost, None, details)
        groups = tuple(Group({"q": repr(x)}, v, (lo, hi)) for x, (v, lo, hi) in
                       zip(q.qs, found, strict=True))  # fmt: skip
        return Release(None, None, self.cost, groups, details)


def _bin_labels() -> list[str]:
    return [f"b{i}" for i in range(QUANTILE_BINS)]


def _keys(spec: DatasetSpec, by: tuple[str, ...]) -> list[tuple[str, ...]]:
    return list(itertools.product(*(spec.categories[c].categories for c in by)))


def _measurement_factory(spec: DatasetSpec, query: Query) -> tuple[Any, Any, Any]:
    """``make(scale)``, the privacy unit's distance and the measure, for ``query``."""
    dp = _opendp()
    schema = _schema(spec)
    atoms = {pl.Float64: "f64", pl.String: "String"}
    domain = dp.lazyframe_domain(
        [
            dp.series_domain(c, dp.option_domain(dp.atom_domain(T=atoms[t])))
            for c, t in schema.items()
        ]
    )
    domain = dp.with_margin(domain, dp.polars.Margin(max_length=PUBLIC_MAX_ROWS))
    if query.by:
        by = [pl.col(c) for c in query.by]
        domain = dp.with_margin(domain, dp.polars.Margin(by=by, max_length=PUBLIC_MAX_ROWS))
    metric, d_in = dp.unit_of(contributions=spec.unit.max_rows)
    measure = (
        dp.max_divergence() if spec.measure == "epsilon" else dp.zero_concentrated_divergence()
    )

    plan: Any = pl.LazyFrame(schema=schema)
    for f in query.filters:
        plan = plan.filter(f.expr())
    exprs: list[Any] = []
    if query.kind == "quantile":
        col = spec.numeric[str(query.column)]
        # One noisy count per public bin (each row is in one bin: the cost of one count).
        binned = plan.with_columns(
            pl.col(col.name)
            .clip(col.lower, col.upper)
            .cut(edges(col.lower, col.upper, QUANTILE_BINS), labels=_bin_labels())
            .alias(_BIN)
        )
        grouped = binned.group_by(_BIN).agg(dp.len(signed=True))
        keys = pl.LazyFrame({_BIN: _bin_labels()}, schema={_BIN: pl.Categorical})
        plan = keys.join(grouped, how="left", on=[_BIN], nulls_equal=True)
        return _maker(dp, domain, metric, measure, plan), d_in, dp
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
    if query.by:
        keys = pl.LazyFrame(
            [list(k) for k in zip(*_keys(spec, query.by), strict=True)],
            schema=dict.fromkeys(query.by, pl.String),
            orient="col",
        )
        grouped = plan.group_by(*query.by).agg(*exprs)
        # Keys come from the public sets: a key with no rows is still answered (with
        # noise), and a value outside them is never a key.
        plan = keys.join(grouped, how="left", on=list(query.by), nulls_equal=True)
    else:
        plan = plan.select(*exprs)
    return _maker(dp, domain, metric, measure, plan), d_in, dp


def _maker(dp: Any, domain: Any, metric: Any, measure: Any, plan: Any) -> Any:
    def make(scale: float) -> Any:
        return dp.m.make_private_lazyframe(domain, metric, measure, plan, global_scale=scale)

    return make


def _calibrate(make: Any, d_in: Any, allowance: float, gaussian: bool) -> tuple[Any, float]:
    """The measurement with the smallest noise (to ~1e-6) whose loss fits ``allowance``."""
    power = 2.0 if gaussian else 1.0
    scale = 1.0
    m = make(scale)
    loss = float(m.map(d_in))
    if loss <= 0:
        raise QueryError("the mechanism would add no noise: refused")
    for _ in range(8):
        scale *= (loss / allowance) ** (1 / power) * (1 + 1e-6)
        m = make(scale)
        loss = float(m.map(d_in))
        if loss <= allowance:
            return m, loss
    raise QueryError("could not fit the mechanism to the allowance")  # pragma: no cover


def _plan_with(spec: DatasetSpec, query: Query, allowance: Amount) -> Plan:
    make, d_in, dp = _measurement_factory(spec, query)
    m, loss = _calibrate(make, d_in, allowance.as_float(), spec.measure == "rho")
    summary = dp.summarize_polars_measurement(m, alpha=_ALPHA)
    names = summary["column"].to_list()
    scales = dict(zip(names, summary["scale"].to_list(), strict=True))
    if any(not s or s <= 0 for s in scales.values()):
        raise QueryError("the mechanism would add no noise: refused")
    accuracy = dict(zip(names, summary["accuracy"].to_list(), strict=True))
    distributions = dict(zip(names, summary["distribution"].to_list(), strict=True))
    cost = Amount.cost(loss, spec.measure)
    if cost > allowance:
        raise QueryError(f"the mechanism would spend {cost}, more than the {allowance} given")
    return Plan(query.with_allowance(allowance), spec, cost, accuracy, scales, m, distributions)


def plan_query(spec: DatasetSpec, query: Query) -> Plan:
    """The OpenDP measurement for ``query`` on ``spec``'s prepared data, with its cost.

    Reads no data. With a target ``accuracy`` the allowance is solved: the
    accuracy of these mechanisms is proportional to their scale, so one plan at
    a reference allowance gives a first guess; discrete noise rounds its
    interval, so the guess is bracketed and bisected to 0.01 % (a few dozen
    plans of ~5 ms each).
    """
    if query.allowance is not None:
        return _plan_with(spec, query, query.allowance)
    if query.kind in ("mean", "quantile"):
        raise QueryError(f"accuracy: a {query.kind}'s interval depends on the data; give "
                         f"{spec.measure} instead")  # fmt: skip
    target = float(query.accuracy or 0)
    probe = _plan_with(spec, query, Amount.parse("1", spec.measure))
    power = 2 if spec.measure == "rho" else 1
    guess = Decimal(repr(((probe.half_width or 0.0) / target) ** power))

    def plan_at(nanos: int) -> Plan | None:
        """The plan at ``nanos``, or None when its interval is wider than the target."""
        if nanos > _MAX_ALLOWANCE_NANOS:
            raise QueryError(f"accuracy: ±{target:g} is out of reach")
        plan = _plan_with(spec, query, Amount(spec.measure, nanos))
        return plan if (plan.half_width or 0.0) <= target else None

    # Bracket the cheapest allowance that meets the target, then bisect: accuracy is
    # proportional to the scale only up to the rounding of discrete noise.
    hi = max(int(guess * NANO), MIN_ALLOWANCE_NANOS)
    best = plan_at(hi)
    while best is None:
        hi *= 2
        best = plan_at(hi)
    lo = hi // 2
    while lo >= MIN_ALLOWANCE_NANOS and plan_at(lo) is not None:
        hi, lo = lo, lo // 2
    best = plan_at(hi) or best
    for _ in range(_BISECTIONS):
        if hi - lo <= max(1, hi // 10_000):
            break
        mid = (lo + hi) // 2
        found = plan_at(mid)
        if found is None:
            lo = mid
        else:
            hi, best = mid, found
    return best
