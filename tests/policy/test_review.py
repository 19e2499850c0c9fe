"""Access review findings: stale accounts, direct grants, admins, CSV safety."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

import pytest

from jupyter_secure.policy import access_review, parse_policy

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Acct:
    name: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    disabled: bool = False
    service: bool = False
    created_at: dt.datetime = NOW - dt.timedelta(days=400)
    last_login_at: dt.datetime | None = None


POLICY = parse_policy(
    """
version = 1
[groups.course]
members = ["sam"]
roles = ["student"]
[groups.staff]
roles = ["admin"]
[users.dave]
roles = ["auditor"]
reason = "external audit"
"""
)


def rows(*accounts: Acct, stale_days: int = 90):  # type: ignore[no-untyped-def]
    review = access_review(POLICY, accounts, now=NOW, stale_days=stale_days)
    return review, {r.name: r for r in review.rows}


def test_findings() -> None:
    review, by = rows(
        Acct("sam", last_login_at=NOW - dt.timedelta(days=3)),
        Acct("old", ("student",), last_login_at=NOW - dt.timedelta(days=200)),
        Acct("never", groups=("course",)),
        Acct("new", groups=("course",), created_at=NOW - dt.timedelta(days=2)),
        Acct("gone", ("student",), disabled=True),
        Acct("root", groups=("staff",), last_login_at=NOW),
        Acct("dave", last_login_at=NOW),
        Acct("bot", ("viewer",), service=True, last_login_at=NOW),
    )
    assert by["sam"].roles == ("student",)
    assert by["sam"].findings == ()  # a group member, recently seen: nothing to do
    assert by["old"].findings == ("stale", "direct")
    assert by["never"].findings == ("stale",)
    assert "stale" not in by["new"].findings  # created two days ago, not yet stale
    assert "stale" not in by["gone"].findings  # disabled already
    assert by["root"].findings == ("admin",)
    assert by["dave"].direct_roles == ("auditor",)
    assert "direct" in by["dave"].findings
    assert "service" in by["bot"].findings
    assert review.summary() == {
        "accounts": 8,
        "enabled": 7,
        "admins": 1,
        "stale": 2,
        "directGrants": 4,
        "serviceAccounts": 1,
    }
    assert [r.name for r in review.rows] == sorted(by)


def test_csv_is_parseable_and_carries_no_formulas() -> None:
    review, _ = rows(Acct("=cmd", ("viewer",), groups=("@evil",)))
    parsed = list(csv.DictReader(io.StringIO(review.csv())))
    assert parsed[0]["name"] == "'=cmd"
    assert parsed[0]["groups"] == "'@evil"
    assert parsed[0]["last_login"] == ""


def test_stale_days_must_be_positive() -> None:
    with pytest.raises(ValueError, match="stale_days"):
        access_review(POLICY, [], now=NOW, stale_days=0)
