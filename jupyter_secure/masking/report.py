"""The masking report: what was masked and why, as metadata only.

A report goes to the audit log and to the user ("3 columns masked"). It
never contains a value: column names (themselves masked if they hold
personal data), entity names, strategies, counts, rule names and value-free
sentences from the classifier. ``tests/masking/test_report.py`` checks that
no cell value of the input survives into ``to_dict()``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["MaskReport", "ReportEntry"]


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """One column (or index level, or label) and what happened to it."""

    column: str
    position: int
    entity: str
    strategy: str
    count: int
    rule: str
    confidence: float | None = None


@dataclass(frozen=True)
class MaskReport:
    """Everything a caller may log about one masking call."""

    role: str
    known_role: bool
    rows_in: int
    rows_out: int
    columns_in: int
    columns_out: int
    entries: tuple[ReportEntry, ...] = ()
    dropped_columns: tuple[str, ...] = ()
    kanon: str | None = None
    review: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    cache: dict[str, bool] = field(default_factory=dict)

    @property
    def masked_cells(self) -> int:
        """Cells changed (raw entries excluded)."""
        return sum(e.count for e in self.entries if e.strategy != "raw")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict for audit events."""
        return asdict(self)
