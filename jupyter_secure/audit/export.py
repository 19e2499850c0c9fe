"""Writing audit records out: JSON Lines (byte-exact) and CSV (for spreadsheets).

JSONL export copies each record's stored bytes unchanged, so every exported
line still checks against its own hash. CSV flattens the envelope into
columns; values that a spreadsheet would run as a formula (starting with
``= + - @``, tab or carriage return) are prefixed with an apostrophe, because
an audit export is exactly the file an attacker would like an administrator
to open.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import IO, Any

__all__ = ["CSV_COLUMNS", "csv_safe", "write_csv", "write_jsonl"]

CSV_COLUMNS = [
    "seq",
    "eventTime",
    "eventID",
    "eventName",
    "eventSource",
    "userType",
    "userName",
    "roles",
    "groups",
    "sessionId",
    "mfa",
    "sourceIPAddress",
    "userAgent",
    "resources",
    "readOnly",
    "errorCode",
    "errorMessage",
    "requestParameters",
    "responseElements",
    "hash",
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> str:
    """``value`` as a CSV cell that no spreadsheet evaluates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    else:
        text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def _row(event: dict[str, Any]) -> list[str]:
    who = event.get("userIdentity") or {}
    values: dict[str, Any] = {
        **event,
        "userType": who.get("type"),
        "userName": who.get("name"),
        "roles": ";".join(who.get("roles") or []),
        "groups": ";".join(who.get("groups") or []),
        "sessionId": who.get("sessionId"),
        "mfa": who.get("mfa"),
        "resources": ";".join(f"{r['type']}:{r['name']}" for r in event.get("resources") or []),
    }
    return [csv_safe(values.get(column)) for column in CSV_COLUMNS]


def write_jsonl(records: Iterable[tuple[bytes, dict[str, Any]]], out: IO[bytes]) -> int:
    count = 0
    for line, _event in records:
        out.write(line)
        count += 1
    return count


def write_csv(records: Iterable[tuple[bytes, dict[str, Any]]], out: IO[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for _line, event in records:
        writer.writerow(_row(event))
        count += 1
    return count
