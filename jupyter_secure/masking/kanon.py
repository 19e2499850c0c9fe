"""k-anonymity over quasi-identifiers: generalise further or suppress, and say so.

Birth date, ZIP code and sex together single out most people (Sweeney). A
row-level frame about to be shown is therefore checked: every row's
combination of quasi-identifier values must be shared by at least ``k`` rows
of the frame. If not, the engine climbs the generalisation hierarchies of
:mod:`.strategies` one level at a time, always on the quasi-identifier with
the most distinct values (the Datafly heuristic), until at most
``max_suppression`` of the rows still violate; those rows have their
quasi-identifiers suppressed (shown as ``*``).

The plan is computed over the whole frame, so the same frame is always
shown at the same levels whichever rows a display picks. Class sizes are
computed on integer codes with numpy; the codes of each level are built
vectorised where the dtype allows (datetimes, numbers, postcode prefixes)
and per distinct value otherwise, and they partition the rows exactly as
:func:`~.strategies.generalize` would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from .entities import Entity
from .strategies import GENERALIZE_DEPTH, generalize

__all__ = ["DECLARED", "KAnonPlan", "QuasiColumn", "class_sizes", "plan_k_anonymity"]

DECLARED = "DECLARED_QUASI_IDENTIFIER"
"""Entity name used for a column declared a quasi-identifier in policy (levels: as is, ``*``)."""


@dataclass(frozen=True, slots=True)
class QuasiColumn:
    """One quasi-identifier column and the level its role's strategy starts at."""

    position: int
    name: str
    entity: str
    start_level: int

    @property
    def depth(self) -> int:
        """Top level of the hierarchy (where every value is ``*``)."""
        return GENERALIZE_DEPTH.get(self.entity, 1)


@dataclass(frozen=True)
class KAnonPlan:
    """The outcome: levels per column, rows to suppress, and the numbers to report."""

    k: int
    columns: tuple[QuasiColumn, ...]
    levels: dict[int, int]
    violating: np.ndarray
    min_class_before: int
    min_class_after: int

    @property
    def suppressed_rows(self) -> int:
        """How many rows of the frame have their quasi-identifiers suppressed."""
        return int(self.violating.sum())

    def describe(self) -> str:
        """One value-free sentence for the report."""
        names = ", ".join(c.name for c in self.columns)
        raised = [
            f"{c.name} to level {self.levels[c.position]}"
            for c in self.columns
            if self.levels[c.position] > c.start_level
        ]
        parts = [f"k-anonymity k={self.k} over {names}"]
        if self.min_class_before >= self.k:
            parts.append("already satisfied")
        else:
            parts.append(
                "generalised " + ", ".join(raised) if raised else "no further generalisation"
            )
            total = len(self.violating)
            parts.append(f"suppressed quasi-identifiers of {self.suppressed_rows} of {total} rows")
            parts.append(f"smallest class {self.min_class_before} -> {self.min_class_after}")
        return "; ".join(parts)


def _dense(values: np.ndarray | pd.Series) -> np.ndarray:
    """Integer codes >= 0 per distinct value (missing -> -1). Series stay Arrow-backed.

    Small-range integer arrays are shifted instead of hashed: the codes need
    not be consecutive, only non-negative and equal exactly for equal values.
    """
    if isinstance(values, np.ndarray) and values.dtype.kind == "i" and len(values):
        low, high = int(values.min()), int(values.max())
        if high - low <= 4 * len(values) + 1024:
            return (values - low).astype(np.int64, copy=False)
    codes, _ = pd.factorize(values)
    return np.asarray(codes, dtype=np.int64)


def _null_separate(codes: np.ndarray, isna: np.ndarray) -> np.ndarray:
    out = codes.astype(np.int64, copy=True)
    if isna.any():
        out[isna] = (out.max() + 1) if len(out) else 0
    return out


def _hashable(series: pd.Series) -> pd.Series:
    """The series, or its string forms if it holds unhashable objects (lists, dicts)."""
    if series.dtype != object:
        return series
    try:
        pd.factorize(series.iloc[:64])
        return series
    except TypeError:
        return series.map(repr)


def level_codes(series: pd.Series, entity: str, level: int) -> np.ndarray:
    """Integer codes partitioning the rows as ``generalize(value, entity, level)`` does.

    Missing values form their own class at every level (they are shown as missing).
    """
    isna = series.isna().to_numpy()
    n = len(series)
    depth = GENERALIZE_DEPTH.get(entity, 1)
    if level >= depth:
        return _null_separate(np.zeros(n, dtype=np.int64), isna)
    if level <= 0:
        return _null_separate(_dense(_hashable(series)), isna)
    if entity == Entity.POSTCODE:
        text = series if ptypes.is_string_dtype(series.dtype) else series.astype(str)
        prefix = text.str.strip().str.upper().str.slice(0, 3 if level == 1 else 1)
        return _null_separate(_dense(prefix), isna)
    if entity == Entity.DATE_OF_BIRTH and ptypes.is_datetime64_any_dtype(series.dtype):
        years = series.dt.year.to_numpy(dtype=np.float64, na_value=np.nan)
        width = {1: 1, 2: 5, 3: 10}[level]
        bucket = np.where(np.isnan(years), -1, np.floor_divide(np.nan_to_num(years), width))
        return _null_separate(_dense(bucket.astype(np.int64)), isna)
    if (
        entity == Entity.AGE
        and ptypes.is_numeric_dtype(series.dtype)
        and not ptypes.is_bool_dtype(series.dtype)
    ):
        ages = series.to_numpy(dtype=np.float64, na_value=np.nan)
        width = {1: 5, 2: 10, 3: 20}[level]
        safe = np.nan_to_num(ages, nan=-1.0, posinf=-1.0, neginf=-1.0)
        bucket = np.floor_divide(np.trunc(safe), width).astype(np.int64)
        bucket = np.where(safe >= 90, -3, bucket)
        bucket = np.where((safe < 0) | (safe >= 1e6), -2, bucket)
        return _null_separate(_dense(bucket), isna)
    codes, uniques = pd.factorize(_hashable(series))
    generalised = np.array([generalize(u, entity, level) for u in uniques], dtype=object)
    mapped, _ = pd.factorize(generalised)
    out = np.where(codes >= 0, mapped[np.maximum(codes, 0)] if len(mapped) else 0, 0)
    return _null_separate(out.astype(np.int64), isna)


def class_sizes(code_arrays: Sequence[np.ndarray]) -> np.ndarray:
    """For each row, the number of rows sharing its combination of codes."""
    if not code_arrays or not len(code_arrays[0]):
        return np.zeros(0, dtype=np.int64)
    combined = np.zeros(len(code_arrays[0]), dtype=np.int64)
    span = 1
    for codes in code_arrays:
        width = int(codes.max()) + 1
        if span >= (2**62) // width:
            combined = _dense(combined)
            span = int(combined.max()) + 1
        combined = combined * width + codes
        span *= width
    if span > 8 * len(combined) + 4096:
        combined = _dense(combined)
    return np.bincount(combined)[combined]


def plan_k_anonymity(
    frame: pd.DataFrame, columns: Sequence[QuasiColumn], *, k: int, max_suppression: float
) -> KAnonPlan:
    """Choose levels (and rows to suppress) so every shown combination has >= k rows."""
    n = len(frame)
    levels = {c.position: c.start_level for c in columns}
    cache: dict[tuple[int, int], np.ndarray] = {}

    def codes(column: QuasiColumn) -> np.ndarray:
        key = (column.position, levels[column.position])
        if key not in cache:
            series = frame.iloc[:, column.position]
            cache[key] = level_codes(series, column.entity, levels[column.position])
        return cache[key]

    if n == 0 or not columns:
        empty = np.zeros(n, dtype=bool)
        return KAnonPlan(k, tuple(columns), levels, empty, n, n)
    sizes = class_sizes([codes(c) for c in columns])
    before = int(sizes.min())
    allowed = int(max_suppression * n)
    while True:
        violating = sizes < k
        if int(violating.sum()) <= allowed:
            break
        open_columns = [c for c in columns if levels[c.position] < c.depth]
        if not open_columns:
            break
        widest = max(open_columns, key=lambda c: int(codes(c).max(initial=0)))
        levels[widest.position] += 1
        sizes = class_sizes([codes(c) for c in columns])
    kept = sizes[~violating]
    after = int(kept.min()) if len(kept) else n
    return KAnonPlan(k, tuple(columns), levels, violating, before, after)
