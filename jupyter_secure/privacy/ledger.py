"""The privacy ledger: who may spend what on which dataset, and every charge made.

A charge is one database transaction that reads the user's spend and the
dataset's total, decides, and writes both before anything is read from the
data. On SQLite the transaction starts with ``BEGIN IMMEDIATE`` (the write lock
is taken before the first read, so two charges never both see the old spend);
on PostgreSQL the dataset row is locked ``FOR UPDATE`` first, which serialises
charges on a dataset across every server and process sharing the database.
Amounts are integers of nano-units, so a budget never drifts.

The ledger refuses before OpenDP would: the mechanism is only ever built for a
query the ledger already charged. Nothing is refunded once a charge commits:
the data may have been touched.

Budgets: a user's own grant on a dataset wins; otherwise the largest grant of
any group the user belongs to; no grant, no access. The dataset's cap bounds
the sum of everyone's spend (what colluding users could combine).

A repeated query (same dataset version, user and canonical query) is answered
from its stored release at no cost: post-processing a release is free. The
repeat is found inside the charge's transaction, so two identical requests
racing are charged once; the second sees the first still running and is told
so (:class:`Busy`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..storage.database import Database
from ..storage.models import PrivateDataset, PrivateGrant, PrivateRelease, PrivateSpend, utcnow
from .amounts import Amount, Measure

__all__ = [
    "Budget",
    "BudgetExceeded",
    "Busy",
    "Charge",
    "DatasetRow",
    "Ledger",
    "NoGrant",
    "query_key",
    "refusal",
]

GRANT_KINDS = ("user", "group")
#: A charge still unsettled after this long belongs to a broker that died mid-release.
STALE_CHARGE_SECONDS = 600


class NoGrant(LookupError):
    """The dataset does not exist, or the user holds no grant on it (the same answer)."""


class Busy(RuntimeError):
    """An identical query by the same user is being released right now."""


class BudgetExceeded(Exception):
    """A charge would take the user's budget or the dataset's cap past its limit."""

    def __init__(self, dataset: str, needed: Amount, left: Amount, scope: str) -> None:
        if scope == "user":
            message = f"needs {needed}, you have {format_left(left)} left on {dataset!r}"
        else:
            # What the cap has left would tell everyone's spend together: not said.
            message = f"needs {needed}, more than the dataset-wide cap of {dataset!r} has left"
        super().__init__(message)
        self.dataset = dataset
        self.needed = needed
        self.left = left
        self.scope = scope


def format_left(left: Amount) -> str:
    return str(left if left.nanos > 0 else Amount.zero(left.measure))


@dataclass(frozen=True)
class Budget:
    """A user's standing on a dataset."""

    dataset: str
    measure: Measure
    total: Amount
    spent: Amount

    @property
    def remaining(self) -> Amount:
        left = self.total - self.spent
        return left if left.nanos > 0 else Amount.zero(self.measure)

    def to_json(self) -> dict[str, str]:
        return {
            "total": _text(self.total),
            "spent": _text(self.spent),
            "remaining": _text(self.remaining),
        }


def _text(amount: Amount) -> str:
    return format(amount.value.normalize(), "f")


@dataclass(frozen=True)
class DatasetRow:
    """A dataset's row as read (a plain value: it outlives the session)."""

    name: str
    spec: str
    measure: Measure
    version: str
    cap_nanos: int
    spent_nanos: int

    @classmethod
    def of(cls, row: PrivateDataset) -> DatasetRow:
        measure: Measure = "epsilon" if row.measure == "epsilon" else "rho"
        return cls(row.name, row.spec, measure, row.version, row.cap_nanos, row.spent_nanos)


@dataclass(frozen=True)
class Charge:
    """A committed charge (``cached`` False) or a stored release served again."""

    release_id: int
    cost: Amount
    remaining: Amount
    cached: bool
    result: dict[str, Any] | None = None
    #: the user's whole budget on the dataset when charged (how full it is, for alarms)
    budget: Amount | None = None


def query_key(version: str, query: Mapping[str, Any]) -> str:
    """The repeat key: the dataset version and the canonical query, hashed."""
    canonical = json.dumps(query, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{version}\n{canonical}".encode()).hexdigest()


def refusal(
    dataset: str, cost: Amount, budget: Budget, cap: Amount, cap_spent: Amount
) -> BudgetExceeded | None:
    """Why ``cost`` cannot be charged, or None. Pure: the whole decision, in integers."""
    if cost.nanos < 0:
        raise ValueError("a cost is never negative")
    user_left = budget.total - budget.spent
    if cost > user_left:
        return BudgetExceeded(dataset, cost, user_left, "user")
    cap_left = cap - cap_spent
    if cost > cap_left:
        return BudgetExceeded(dataset, cost, cap_left, "dataset")
    return None


class Ledger:
    """Grants, spend and releases in the state database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading ---------------------------------------------------------------------------
    def _total(
        self, s: Session, dataset: str, user: str, groups: Iterable[str], measure: Measure
    ) -> Amount | None:
        grants = s.scalars(select(PrivateGrant).where(PrivateGrant.dataset == dataset)).all()
        own = [g for g in grants if g.kind == "user" and g.principal == user]
        if own:
            return Amount(measure, own[0].budget_nanos)
        member = set(groups)
        shared = [g.budget_nanos for g in grants if g.kind == "group" and g.principal in member]
        return Amount(measure, max(shared)) if shared else None

    def _spent(self, s: Session, dataset: str, user: str, *, lock: bool) -> PrivateSpend | None:
        stmt = select(PrivateSpend).where(
            PrivateSpend.dataset == dataset, PrivateSpend.user_name == user
        )
        if lock:
            stmt = stmt.with_for_update()
        return s.scalars(stmt).first()

    def budget(
        self, s: Session, row: PrivateDataset | DatasetRow, user: str, groups: Iterable[str]
    ) -> Budget:
        """The user's budget on ``row``'s dataset; :class:`NoGrant` without a grant."""
        measure: Measure = "epsilon" if row.measure == "epsilon" else "rho"
        total = self._total(s, row.name, user, groups, measure)
        if total is None:
            raise NoGrant(row.name)
        spend = self._spent(s, row.name, user, lock=False)
        return Budget(row.name, measure, total, Amount(measure, spend.spent_nanos if spend else 0))

    def budgets(self, user: str, groups: Iterable[str]) -> list[tuple[DatasetRow, Budget]]:
        """Every dataset the user may query, with their budget on it."""
        groups = list(groups)
        out = []
        with self.db.read() as s:
            for row in s.scalars(select(PrivateDataset).order_by(PrivateDataset.name)):
                try:
                    out.append((DatasetRow.of(row), self.budget(s, row, user, groups)))
                except NoGrant:
                    continue
        return out

    def dataset(self, user: str, groups: Iterable[str], name: str) -> tuple[DatasetRow, Budget]:
        with self.db.read() as s:
            row = s.get(PrivateDataset, name)
            if row is None:
                raise NoGrant(name)
            return DatasetRow.of(row), self.budget(s, row, user, list(groups))

    # -- charging --------------------------------------------------------------------------
    def charge(
        self,
        *,
        dataset: str,
        user: str,
        groups: Iterable[str],
        cost: Amount,
        query: Mapping[str, Any],
        kernel_id: str | None,
        cell_id: str | None,
    ) -> Charge:
        """Charge ``cost`` for ``query`` in one locking transaction, or serve a repeat.

        Raises :class:`NoGrant`, :class:`BudgetExceeded` or :class:`Busy`.
        """
        groups = list(groups)
        with self.db.write() as s:
            row = s.scalars(
                select(PrivateDataset).where(PrivateDataset.name == dataset).with_for_update()
            ).first()
            if row is None:
                raise NoGrant(dataset)
            budget = self.budget(s, row, user, groups)
            key = query_key(row.version, query)
            earlier = s.scalars(
                select(PrivateRelease)
                .where(
                    PrivateRelease.dataset == dataset,
                    PrivateRelease.user_name == user,
                    PrivateRelease.query_sha256 == key,
                    PrivateRelease.status != "failed",
                )
                .order_by(PrivateRelease.id)
            ).first()
            if earlier is not None and earlier.status == "charged":
                age = (utcnow() - earlier.created_at).total_seconds()
                if age < STALE_CHARGE_SECONDS:
                    raise Busy(dataset)
                earlier.status = "failed"  # its broker died mid-release; charged, not served
                earlier = None
            if earlier is not None and earlier.result is not None:
                return Charge(earlier.id, Amount.zero(budget.measure), budget.remaining, True,
                              json.loads(earlier.result), budget.total)  # fmt: skip
            cap = Amount(budget.measure, row.cap_nanos)
            refused = refusal(dataset, cost, budget, cap, Amount(budget.measure, row.spent_nanos))
            if refused is not None:
                raise refused
            spend = self._spent(s, dataset, user, lock=True)
            if spend is None:
                spend = PrivateSpend(dataset=dataset, user_name=user, spent_nanos=0)
                s.add(spend)
            spend.spent_nanos += cost.nanos
            spend.updated_at = utcnow()
            row.spent_nanos += cost.nanos
            release = PrivateRelease(
                dataset=dataset,
                version=row.version,
                user_name=user,
                query_sha256=key,
                query=json.dumps(query, sort_keys=True),
                measure=budget.measure,
                cost_nanos=cost.nanos,
                status="charged",
                kernel_id=kernel_id,
                cell_id=cell_id,
            )
            s.add(release)
            s.flush()
            left = budget.total - Amount(budget.measure, spend.spent_nanos)
            return Charge(release.id, cost, left, False, budget=budget.total)

    def settle(self, release_id: int, result: Mapping[str, Any] | None) -> str | None:
        """Store what a charge released (or that it failed); returns the result's sha256."""
        text = json.dumps(result, sort_keys=True) if result is not None else None
        digest = hashlib.sha256(text.encode()).hexdigest() if text is not None else None
        with self.db.write() as s:
            release = s.get(PrivateRelease, release_id)
            if release is None:  # pragma: no cover - the row was written by charge()
                raise LookupError(release_id)
            release.status = "released" if text is not None else "failed"
            release.result = text
            release.result_sha256 = digest
        return digest
