"""Access reviews: who holds which roles, how, and who should not any more.

The course module asks for regular reviews of access; this is the data an
admin reviews. For each account: its effective roles (account roles, group
roles from the database and the policy file, direct grants in the file), how
it got them, when it last signed in, and the findings worth acting on:

* ``stale`` — enabled, and no sign-in for ``stale_days`` (or never, and
  created more than ``stale_days`` ago): remove or disable it;
* ``direct`` — roles granted to the person, not through a group;
* ``admin`` — holds the admin role (the summary counts them: keep it small);
* ``service`` — a service account (reviewed with its owner, via its tokens).

Pure: the caller passes the accounts (anything with the attributes of
:class:`Account`) and the clock.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from .decide import Principal
from .document import Policy

__all__ = ["Account", "Review", "ReviewRow", "access_review"]


class Account(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def roles(self) -> tuple[str, ...]: ...
    @property
    def groups(self) -> tuple[str, ...]: ...
    @property
    def disabled(self) -> bool: ...
    @property
    def service(self) -> bool: ...
    @property
    def created_at(self) -> dt.datetime: ...
    @property
    def last_login_at(self) -> dt.datetime | None: ...


@dataclass(frozen=True)
class ReviewRow:
    name: str
    status: str
    roles: tuple[str, ...]
    groups: tuple[str, ...]
    direct_roles: tuple[str, ...]
    last_login: dt.datetime | None
    findings: tuple[str, ...]


@dataclass(frozen=True)
class Review:
    rows: tuple[ReviewRow, ...]
    stale_days: int

    @property
    def admins(self) -> int:
        return sum(1 for r in self.rows if "admin" in r.roles and r.status == "enabled")

    def count(self, finding: str) -> int:
        return sum(1 for r in self.rows if finding in r.findings)

    def summary(self) -> dict[str, int]:
        return {
            "accounts": len(self.rows),
            "enabled": sum(1 for r in self.rows if r.status == "enabled"),
            "admins": self.admins,
            "stale": self.count("stale"),
            "directGrants": self.count("direct"),
            "serviceAccounts": self.count("service"),
        }

    def table(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = [
            ("NAME", "STATUS", "ROLES", "GROUPS", "DIRECT", "LAST SIGN-IN", "FINDINGS")
        ]
        for r in self.rows:
            rows.append(
                (
                    r.name,
                    r.status,
                    ",".join(r.roles) or "-",
                    ",".join(r.groups) or "-",
                    ",".join(r.direct_roles) or "-",
                    f"{r.last_login:%Y-%m-%d}" if r.last_login else "never",
                    ",".join(r.findings) or "-",
                )
            )
        return rows

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            ["name", "status", "roles", "groups", "direct_roles", "last_login", "findings"]
        )
        for r in self.rows:
            writer.writerow(
                [
                    _safe_cell(r.name),
                    r.status,
                    " ".join(r.roles),
                    " ".join(_safe_cell(g) for g in r.groups),
                    " ".join(r.direct_roles),
                    r.last_login.isoformat() if r.last_login else "",
                    " ".join(r.findings),
                ]
            )
        return out.getvalue()


def _safe_cell(value: str) -> str:
    """No spreadsheet formulas from user-chosen names (CSV injection)."""
    return "'" + value if value[:1] in {"=", "+", "-", "@", "\t", "\r"} else value


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def access_review(
    policy: Policy, accounts: Iterable[Account], *, now: dt.datetime, stale_days: int = 90
) -> Review:
    """One row per account, sorted by name, with the findings described above."""
    if stale_days < 1:
        raise ValueError("stale_days must be at least 1")
    cutoff = now - dt.timedelta(days=stale_days)
    rows = []
    for a in sorted(accounts, key=lambda a: a.name):
        principal = Principal(a.name, a.roles, a.groups)
        roles = policy.effective_roles(principal)
        grant = policy.users.get(a.name)
        direct = set(a.roles) | (set(grant.roles) if grant is not None else set())
        findings = []
        last = _aware(a.last_login_at)
        seen = last if last is not None else _aware(a.created_at)
        if not a.disabled and seen is not None and seen < cutoff:
            findings.append("stale")
        if direct:
            findings.append("direct")
        if "admin" in roles:
            findings.append("admin")
        if a.service:
            findings.append("service")
        rows.append(
            ReviewRow(
                name=a.name,
                status="disabled" if a.disabled else "enabled",
                roles=tuple(sorted(roles)),
                groups=tuple(sorted(policy.effective_groups(principal))),
                direct_roles=tuple(sorted(direct)),
                last_login=last,
                findings=tuple(findings),
            )
        )
    return Review(tuple(rows), stale_days)
