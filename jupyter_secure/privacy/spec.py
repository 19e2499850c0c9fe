"""A protected dataset's description: what differential privacy needs, from the admin.

Nothing here is inferred from the data. Bounds and category sets learned from
the rows would themselves leak them (a maximum age of 104 says someone is 104),
so the admin states them, and :func:`parse_spec` refuses a spec that leaves any
out. Every problem found is reported at once, each naming its field
(``columns.age.upper: must be greater than lower (0)``), so a spec is fixed in
one pass. Pure: no I/O; :meth:`DatasetSpec.check_columns` compares a spec with a
file's column types once the caller has read them.

Format (TOML or JSON, the same keys)::

    name = "patients"
    measure = "rho"                       # or "epsilon" (pure DP)
    per_user_budget = "0.5"               # exact decimals; see amounts.py
    dataset_cap = "5"
    [privacy_unit]
    id_column = "patient_id"              # or: rows_per_person = 1 (one row each)
    max_rows_per_person = 3
    [columns.age]
    type = "numeric"
    lower = 0
    upper = 120
    [columns.sex]
    type = "category"
    categories = ["F", "M"]
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .amounts import MEASURES, Amount, AmountError, Measure

__all__ = [
    "CategoryColumn",
    "DatasetSpec",
    "NumericColumn",
    "PrivacyUnit",
    "SpecError",
    "parse_spec",
]

_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_TOP = {"name", "measure", "per_user_budget", "dataset_cap", "privacy_unit", "columns",
        "description"}  # fmt: skip
_MAX_CATEGORIES = 10_000
#: Bounds beyond this make sums' sensitivity (upper - lower) lose all precision.
_MAX_BOUND = 1e15


class SpecError(ValueError):
    """A dataset spec was refused; ``problems`` lists every ``field: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid dataset spec:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class PrivacyUnit:
    """Whose data one person is: rows sharing ``id_column`` (at most ``max_rows`` each),
    or one row per person when ``id_column`` is None."""

    id_column: str | None
    max_rows: int


@dataclass(frozen=True)
class NumericColumn:
    name: str
    lower: float
    upper: float

    @property
    def midpoint(self) -> float:
        return (self.lower + self.upper) / 2


@dataclass(frozen=True)
class CategoryColumn:
    name: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    measure: Measure
    per_user_budget: Amount
    dataset_cap: Amount
    unit: PrivacyUnit
    numeric: Mapping[str, NumericColumn]
    categories: Mapping[str, CategoryColumn]

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categories)

    def check_columns(self, kinds: Mapping[str, str]) -> None:
        """Hold the spec against a file's columns (``name -> "numeric"|"string"|...``)."""
        problems: list[str] = []
        needed = [*self.columns]
        if self.unit.id_column is not None:
            needed.append(self.unit.id_column)
        for name in needed:
            if name not in kinds:
                problems.append(f"columns.{name}: no such column in the data")
        for name in self.numeric:
            if name in kinds and kinds[name] != "numeric":
                problems.append(
                    f"columns.{name}: is numeric in the spec, {kinds[name]} in the data"
                )
        if problems:
            raise SpecError(problems)


def _number(value: object, field: str, problems: list[str]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{field}: expected a number, got {value!r}")
        return None
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or abs(number) > _MAX_BOUND:
        problems.append(f"{field}: must be a finite number within ±{_MAX_BOUND:g}")
        return None
    return number


def _numeric(name: str, raw: Mapping[str, Any], problems: list[str]) -> NumericColumn | None:
    where = f"columns.{name}"
    for key in sorted(set(raw) - {"type", "lower", "upper"}):
        problems.append(f"{where}.{key}: unknown key")
    if "lower" not in raw or "upper" not in raw:
        problems.append(f"{where}: numeric columns need lower and upper bounds")
        return None
    lo = _number(raw["lower"], f"{where}.lower", problems)
    hi = _number(raw["upper"], f"{where}.upper", problems)
    if lo is None or hi is None:
        return None
    if not lo < hi:
        problems.append(f"{where}.upper: must be greater than lower ({raw['lower']})")
        return None
    return NumericColumn(name, lo, hi)


def _category(name: str, raw: Mapping[str, Any], problems: list[str]) -> CategoryColumn | None:
    where = f"columns.{name}.categories"
    for key in sorted(set(raw) - {"type", "categories"}):
        problems.append(f"columns.{name}.{key}: unknown key")
    cats = raw.get("categories")
    if not isinstance(cats, list) or not cats:
        problem = "expected a non-empty list of public values"
    elif not all(isinstance(c, str) for c in cats):
        problem = "every category must be a string"
    elif len(set(cats)) != len(cats):
        problem = "a category is listed more than once"
    elif len(cats) > _MAX_CATEGORIES:
        problem = f"more than {_MAX_CATEGORIES}"
    else:
        return CategoryColumn(name, tuple(cats))
    problems.append(f"{where}: {problem}")
    return None


def _column(name: str, raw: object, problems: list[str]) -> NumericColumn | CategoryColumn | None:
    if not isinstance(raw, Mapping):
        problems.append(f"columns.{name}: expected a table")
        return None
    kind = raw.get("type")
    if kind == "numeric":
        return _numeric(name, raw, problems)
    if kind == "category":
        return _category(name, raw, problems)
    problems.append(f"columns.{name}.type: expected numeric or category, got {kind!r}")
    return None


def _unit(raw: object, problems: list[str]) -> PrivacyUnit | None:
    if not isinstance(raw, Mapping):
        problems.append("privacy_unit: expected a table (id_column + max_rows_per_person, "
                        "or rows_per_person = 1)")  # fmt: skip
        return None
    for key in sorted(set(raw) - {"id_column", "max_rows_per_person", "rows_per_person"}):
        problems.append(f"privacy_unit.{key}: unknown key")
    if "id_column" in raw:
        column, rows = raw["id_column"], raw.get("max_rows_per_person")
        if not isinstance(column, str) or not column:
            problems.append("privacy_unit.id_column: expected a column name")
            return None
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            problems.append("privacy_unit.max_rows_per_person: expected a whole number >= 1")
            return None
        return PrivacyUnit(column, rows)
    if raw.get("rows_per_person") == 1 and not isinstance(raw.get("rows_per_person"), bool):
        return PrivacyUnit(None, 1)
    problems.append("privacy_unit: give id_column and max_rows_per_person, or rows_per_person = 1")
    return None


def _amounts(data: Mapping[str, Any], measure: Measure, problems: list[str]) -> dict[str, Amount]:
    amounts: dict[str, Amount] = {}
    for key in ("per_user_budget", "dataset_cap"):
        if key not in data:
            problems.append(f"{key}: required")
            continue
        try:
            amounts[key] = Amount.parse(data[key], measure, field=key, allow_zero=False)
        except AmountError as exc:
            problems.append(str(exc))
    if len(amounts) == 2 and amounts["dataset_cap"] < amounts["per_user_budget"]:
        problems.append("dataset_cap: must be at least per_user_budget")
    return amounts


def _columns(
    raw_columns: object, problems: list[str]
) -> tuple[dict[str, NumericColumn], dict[str, CategoryColumn]]:
    numeric: dict[str, NumericColumn] = {}
    categories: dict[str, CategoryColumn] = {}
    if not isinstance(raw_columns, Mapping) or not raw_columns:
        problems.append("columns: describe at least one column")
        return numeric, categories
    for col, raw in raw_columns.items():
        parsed = _column(str(col), raw, problems)
        if isinstance(parsed, NumericColumn):
            numeric[parsed.name] = parsed
        elif isinstance(parsed, CategoryColumn):
            categories[parsed.name] = parsed
    return numeric, categories


def parse_spec(data: Mapping[str, Any]) -> DatasetSpec:
    """A validated spec, or :class:`SpecError` with every problem."""
    problems = [f"{key}: unknown key" for key in sorted(set(data) - _TOP)]
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.append(f"name: expected lower-case letters, digits, '-' or '_', got {name!r}")
    measure = data.get("measure", "rho")
    if measure not in MEASURES:
        problems.append(f"measure: expected rho or epsilon, got {measure!r}")
        measure = "rho"
    amounts = _amounts(data, measure, problems)
    unit = _unit(data.get("privacy_unit"), problems)
    numeric, categories = _columns(data.get("columns"), problems)
    if unit is not None and unit.id_column in (*numeric, *categories):
        problems.append(f"columns.{unit.id_column}: the privacy unit's id column is never released")
    description = data.get("description", "")
    if not isinstance(description, str):
        problems.append("description: expected text")
    if problems or unit is None:
        raise SpecError(problems or ["privacy_unit: missing"])
    return DatasetSpec(
        name=str(name),
        description=str(description),
        measure=measure,
        per_user_budget=amounts["per_user_budget"],
        dataset_cap=amounts["dataset_cap"],
        unit=unit,
        numeric=numeric,
        categories=categories,
    )
