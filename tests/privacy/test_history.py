"""What the budget panels show, from ledger rows: history across resets, recent charges."""

from __future__ import annotations

import datetime as dt
import json

from jupyter_secure.privacy import history as h

T = dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC)
NANO = 10**9


def row(i: int, cost: str, status: str = "released", result: object = None) -> h.ReleaseRow:
    query = {
        "kind": "mean",
        "column": "age",
        "by": [],
        "filters": [{"column": "sex", "op": "==", "value": "F"}],
        "rho": cost,
    }
    return h.ReleaseRow(
        i,
        T + dt.timedelta(minutes=i),
        "rho",
        int(float(cost) * NANO),
        status,
        json.dumps(query),
        json.dumps(result) if result is not None else None,
    )


def test_history_is_cumulative_oldest_first() -> None:
    rows = [row(3, "0.025"), row(2, "0.05"), row(1, "0.05")]  # newest first
    points = h.history(rows, int(0.125 * NANO), "rho")
    assert [p["spent"] for p in points] == ["0.05", "0.1", "0.125"]
    assert points[0]["time"] == (T + dt.timedelta(minutes=1)).isoformat()


def test_history_stops_at_a_reset() -> None:
    # Spent 0.1 then reset, then 0.02 and 0.03: only the charges since the reset count.
    rows = [row(4, "0.03"), row(3, "0.02"), row(2, "0.05"), row(1, "0.05")]
    assert [p["spent"] for p in h.history(rows, int(0.05 * NANO), "rho")] == ["0.02", "0.05"]
    assert h.history(rows, 0, "rho") == []  # reset just now


def test_history_is_bounded() -> None:
    rows = [row(i, "0.001") for i in range(1000, 0, -1)]
    points = h.history(rows, NANO, "rho")
    assert len(points) == h.MAX_HISTORY
    assert points[-1]["spent"] == "1"


def test_recent_names_the_query_and_its_interval() -> None:
    rows = [row(i, "0.01", result={"value": 42.0, "ci": [41.2, 43.9]}) for i in range(30, 0, -1)]
    rows[0] = row(31, "0.01", status="failed")
    out = h.recent(rows)
    assert len(out) == h.MAX_RECENT
    assert out[0] == {
        "id": 31,
        "time": (T + dt.timedelta(minutes=31)).isoformat(),
        "cost": "0.01",
        "status": "failed",
        "query": "mean(age) where sex = F",
        "ci": None,
    }
    assert out[1]["ci"] == {"level": 0.95, "low": 41.2, "high": 43.9}


def test_query_descriptions() -> None:
    q = {
        "kind": "quantile",
        "column": "age",
        "by": ["ward", "sex"],
        "q": [0.5, 0.9],
        "filters": [
            {"column": "ward", "op": "in", "value": ["a", "b"]},
            {"column": "age", "op": ">=", "value": 30.0},
        ],
    }
    text = h.describe_query(json.dumps(q))
    assert text == "quantile(age, q=0.5, 0.9) where ward in (a, b) and age >= 30 by ward, sex"
    assert h.describe_query("not json") == "(unreadable query)"
    assert len(h.describe_query(json.dumps({"kind": "count", "by": ["x" * 300]}))) == 200


def test_grouped_or_malformed_results_have_no_interval() -> None:
    assert h.ci_of(json.dumps({"value": None, "ci": None, "groups": []})) is None
    assert h.ci_of(json.dumps({"ci": ["a", "b"]})) is None
    assert h.ci_of("{") is None


def test_dataset_entry_filters_grants_and_computes_remaining() -> None:
    shown = {
        "name": "patients",
        "spec": {"measure": "rho", "per_user_budget": "0.5", "description": "d"},
        "cap": "10",
        "spent": "1.5",
        "grants": [
            {"kind": "group", "principal": "c1", "budget": "0.5"},
            {"kind": "group", "principal": "c2", "budget": "0.9"},
            {"kind": "user", "principal": "sam", "budget": "0.2"},
        ],
    }
    entry = h.dataset_entry(
        shown, {"sam": ("0.2", "0.3"), "kim": (None, "0")}, lambda kind, who: who in {"c1", "sam"}
    )
    assert [g["principal"] for g in entry["grants"]] == ["c1", "sam"]
    assert entry["users"] == [
        {"user": "kim", "budget": None, "spent": "0", "remaining": None},
        {"user": "sam", "budget": "0.2", "spent": "0.3", "remaining": "0"},
    ]
    assert (entry["perUserBudget"], entry["cap"], entry["capSpent"]) == ("0.5", "10", "1.5")
