from __future__ import annotations

import csv
import io

from jupyter_secure.audit.export import CSV_COLUMNS, csv_safe, write_csv, write_jsonl
from jupyter_secure.audit.record import parse_record


def test_csv_defuses_formulas() -> None:
    for value in ('=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert csv_safe(value).startswith("'")
    assert csv_safe("alice") == "alice"
    assert csv_safe(None) == ""
    assert csv_safe(True) == "true"
    assert csv_safe({"b": 1, "a": "=x"}) == '{"a":"=x","b":1}'


def test_exports_from_a_real_trail(trail) -> None:  # type: ignore[no-untyped-def]
    trail.add(3, user="=cmd|' /C calc'!A0")
    directory = trail.directory
    lines = (directory / "segment-00000001.jsonl").read_bytes().splitlines(keepends=True)
    import json

    records = [(line, json.loads(line)) for line in lines]
    out = io.BytesIO()
    assert write_jsonl(records, out) == 3
    for line in out.getvalue().splitlines(keepends=True):
        assert parse_record(line).hash_ok, "JSONL export keeps every record verifiable"
    text = io.StringIO()
    write_csv(records, text)
    rows = list(csv.reader(io.StringIO(text.getvalue())))
    assert rows[0] == CSV_COLUMNS
    assert len(rows) == 4
    resources = rows[1][CSV_COLUMNS.index("resources")]
    assert resources.startswith("user:=cmd")
    request = rows[1][CSV_COLUMNS.index("requestParameters")]
    assert request.startswith("{")
    for row in rows[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row)
