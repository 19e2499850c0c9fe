from __future__ import annotations

import json
from datetime import date

import pandas as pd

from jupyter_secure.masking import MaskingPolicy, mask_frame, scan_frame

TODAY = date(2026, 1, 1)


def test_report_is_metadata_only(frame: pd.DataFrame, key: bytes) -> None:
    for role in ("admin", "data_scientist", "student", "auditor", "nobody"):
        report = mask_frame(frame, MaskingPolicy().for_role(role, key=key), today=TODAY).report
        dumped = json.dumps(report.to_dict())
        for column in frame.columns:
            for value in frame[column].astype(str).head(40):
                if len(value) >= 4 and not value.isdigit():
                    assert value not in dumped, (role, column)
        assert report.rows_in == len(frame)


def test_report_counts(frame: pd.DataFrame, key: bytes) -> None:
    report = mask_frame(frame, MaskingPolicy().for_role("auditor", key=key), today=TODAY).report
    by_column = {e.column: e for e in report.entries}
    assert by_column["email"].count == frame["email"].notna().sum()
    assert by_column["email"].strategy == "redact"
    assert report.masked_cells >= 12 * len(frame) - 20


def test_scan_frame_cells(frame: pd.DataFrame) -> None:
    result = scan_frame(frame, today=TODAY)
    cells = {c.name: c for c in result.columns}
    assert cells["email"].flagged_cells == frame["email"].notna().sum()
    assert cells["order_id"].flagged_cells == 0
    assert cells["batch_id"].flagged_cells == 0
    notes = cells["notes"]
    assert notes.entity == "FREE_TEXT"
    assert notes.flagged_cells == len(frame)
    assert {s.entity for spans in notes.spans.values() for s in spans} >= {"PERSON", "PHONE"}
