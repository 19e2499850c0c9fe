"""``scan_frame``: cell-level findings for a whole frame (CLI, notebook scrubbing, benchmarks).

Masking needs column decisions; reviewing a data set needs to know which
cells hold what. ``scan_frame`` combines both views at the cost of one
column classification plus a text scan of the columns that need one:

* a labelled column flags all its non-null cells with its entity;
* a FREE_TEXT column, and any unlabelled text column, is scanned cell by
  cell (once per distinct value) and reports spans;
* numeric, boolean and datetime columns nobody labelled are not scanned:
  a number alone is not personal data without a header hint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from .columns import Classification, classify_columns
from .config import DetectionConfig
from .entities import Entity
from .frame import _is_textual
from .text import DEFAULT_CONFIG, Span, scan_text

__all__ = ["ColumnFindings", "FrameScan", "scan_frame"]


@dataclass(frozen=True)
class ColumnFindings:
    """Findings for one column: whole cells (labelled column) or spans per row."""

    position: int
    name: str
    entity: str | None
    flagged: np.ndarray
    spans: dict[int, list[Span]] = field(default_factory=dict)

    @property
    def flagged_cells(self) -> int:
        """Number of cells with at least one finding."""
        return int(self.flagged.sum())


@dataclass(frozen=True)
class FrameScan:
    """The classification plus per-column cell findings."""

    classification: Classification
    columns: tuple[ColumnFindings, ...]

    @property
    def flagged_cells(self) -> int:
        """Cells with at least one finding, over the whole frame."""
        return sum(c.flagged_cells for c in self.columns)


def _scan_column(
    series: pd.Series, hint: object, config: DetectionConfig
) -> tuple[np.ndarray, dict[int, list[Span]]]:
    values = series.tolist()
    isna = series.isna().to_numpy()
    flagged = np.zeros(len(values), dtype=bool)
    spans_by_row: dict[int, list[Span]] = {}
    memo: dict[str, list[Span]] = {}
    for row, (value, missing) in enumerate(zip(values, isna.tolist(), strict=True)):
        if missing:
            continue
        text = value if isinstance(value, str) else str(value)
        found = memo.get(text)
        if found is None:
            found = scan_text(text, config, hint=hint)
            memo[text] = found
        if found:
            flagged[row] = True
            spans_by_row[row] = found
    return flagged, spans_by_row


def scan_frame(
    df: pd.DataFrame, config: DetectionConfig | None = None, *, today: date | None = None
) -> FrameScan:
    """Classify the columns of ``df`` and find personal data cell by cell.

    >>> frame = pd.DataFrame({"note": ["call 555-0100 now", "ok"], "email": ["a@b.org", None]})
    >>> [(c.name, c.entity, c.flagged_cells) for c in scan_frame(frame).columns]
    [('note', None, 1), ('email', 'EMAIL', 1)]
    """
    cfg = config if config is not None else DEFAULT_CONFIG
    classification = classify_columns(df, cfg, today=today)
    findings = []
    for d in classification.columns:
        series = df.iloc[:, d.position]
        if d.entity is not None and d.entity != Entity.FREE_TEXT:
            flagged = series.notna().to_numpy()
            findings.append(ColumnFindings(d.position, d.name, d.entity, flagged))
        elif d.entity == Entity.FREE_TEXT or _is_textual(series):
            flagged, spans = _scan_column(series, d.label, cfg)
            findings.append(ColumnFindings(d.position, d.name, d.entity, flagged, spans))
        else:
            findings.append(ColumnFindings(d.position, d.name, None, np.zeros(len(series), bool)))
    return FrameScan(classification, tuple(findings))
