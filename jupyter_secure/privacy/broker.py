"""The broker: the only thing that reads a protected dataset, and only to release DP answers.

It sits outside the user's kernel (in the server by default; the same class can
serve from its own process and OS account), holds the prepared data in a
directory only it can read, and answers a query in this order:

1. parse the whitelisted JSON query against the dataset's spec (never code);
2. plan the OpenDP measurement and compute its cost — no data read;
3. charge the cost in the ledger's locking transaction (or serve the stored
   release of an identical earlier query, free);
4. read the data once, release, store the result, and record it in the audit
   trail.

No refund once step 4 began. Who is asking comes from the caller (the
server's kernel-token check): a ``user`` field in a body is refused as an
unknown key, never believed.

The admin side adds, removes and grants datasets and changes budgets; each
change is recorded in the audit trail inside its database transaction, so a
change whose record cannot be written does not happen.

Pure: polars, OpenDP and SQLAlchemy; no Jupyter.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import select

from ..audit.logger import AuditLogger, Identity, Resource
from ..storage.database import Database
from ..storage.models import PrivateDataset, PrivateGrant, PrivateRelease, PrivateSpend, User
from ..storage.paths import ensure_private_dir
from .amounts import Amount, AmountError, Measure
from .history import MAX_HISTORY, ReleaseRow
from .ledger import GRANT_KINDS, Budget, Charge, DatasetRow, Ledger, NoGrant
from .queries import PUBLIC_MAX_ROWS, QueryError, parse_query, plan_query, prepare
from .spec import DatasetSpec, parse_spec

__all__ = ["Asker", "Broker", "BrokerError", "spec_to_json"]

_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_MAX_CELL_ID = 200
_MAX_RECORDED_QUERY = 2048


class BrokerError(ValueError):
    """An admin request was refused; the message names the field."""


@dataclass(frozen=True)
class Asker:
    """Who asks, as the server established it (never from a request body)."""

    user: str
    groups: tuple[str, ...]
    roles: tuple[str, ...] = ()

    def identity(self) -> Identity:
        return Identity("User", self.user, self.roles, self.groups)


def spec_to_json(spec: DatasetSpec) -> dict[str, Any]:
    """The spec as the admin wrote it (canonical), for storage and for ``dataset show``."""
    unit: dict[str, Any] = (
        {"rows_per_person": 1}
        if spec.unit.id_column is None
        else {"id_column": spec.unit.id_column, "max_rows_per_person": spec.unit.max_rows}
    )
    return {
        "name": spec.name,
        "description": spec.description,
        "measure": spec.measure,
        "per_user_budget": _text(spec.per_user_budget),
        "dataset_cap": _text(spec.dataset_cap),
        "privacy_unit": unit,
        "columns": schema_of(spec),
    }


def schema_of(spec: DatasetSpec) -> dict[str, Any]:
    """What an analyst may know of the columns: the public metadata, nothing from the data."""
    columns: dict[str, Any] = {}
    for name, col in spec.numeric.items():
        columns[name] = {"type": "numeric", "lower": col.lower, "upper": col.upper}
    for name, cat in spec.categories.items():
        columns[name] = {"type": "category", "categories": list(cat.categories)}
    return columns


def _text(amount: Amount) -> str:
    return format(amount.value.normalize(), "f")


def _kind_of(dtype: pl.DataType) -> str:
    return "numeric" if dtype.is_numeric() else str(dtype).lower()


class Broker:
    """Protected datasets, their budgets, and differentially private answers."""

    def __init__(self, db: Database, data_dir: Path, audit: AuditLogger | None) -> None:
        self.db = db
        self.data_dir = data_dir
        self.audit = audit
        self.ledger = Ledger(db)
        self._specs: dict[tuple[str, str], DatasetSpec] = {}

    # -- who asks ---------------------------------------------------------------------------
    def asker(self, user_name: str) -> Asker:
        """The account's current groups and roles; :class:`NoGrant` if it is gone or disabled."""
        with self.db.read() as s:
            user = s.scalars(select(User).where(User.name == user_name)).first()
            if user is None or user.disabled:
                raise NoGrant(user_name)
            return Asker(
                user.name,
                tuple(g.group_name for g in user.groups),
                tuple(r.role for r in user.roles),
            )

    # -- the analyst's side -----------------------------------------------------------------
    def _spec(self, row: DatasetRow) -> DatasetSpec:
        key = (row.name, row.version)
        if key not in self._specs:
            self._specs[key] = parse_spec(json.loads(row.spec))
        return self._specs[key]

    def _info(self, row: DatasetRow, budget: Budget) -> dict[str, Any]:
        spec = self._spec(row)
        return {
            "name": row.name,
            "description": spec.description,
            "measure": spec.measure,
            "columns": schema_of(spec),
            "budget": budget.to_json(),
        }

    def datasets(self, asker: Asker) -> list[dict[str, Any]]:
        return [self._info(row, b) for row, b in self.ledger.budgets(asker.user, asker.groups)]

    def describe(self, asker: Asker, name: str) -> dict[str, Any]:
        row, budget = self.ledger.dataset(asker.user, asker.groups, name)
        return self._info(row, budget)

    def releases(self, user: str, name: str, limit: int = MAX_HISTORY) -> list[ReleaseRow]:
        """``user``'s newest charges on ``name`` (newest first), for their budget panel."""
        with self.db.read() as s:
            rows = s.scalars(
                select(PrivateRelease)
                .where(PrivateRelease.user_name == user, PrivateRelease.dataset == name)
                .order_by(PrivateRelease.id.desc())
                .limit(limit)
            ).all()
            return [
                ReleaseRow(r.id, r.created_at, _m(r), r.cost_nanos, r.status, r.query, r.result)
                for r in rows
            ]

    def standing(
        self, name: str, users: Mapping[str, tuple[str, ...]]
    ) -> dict[str, tuple[str | None, str]]:
        """Each user's budget on ``name`` (None without a grant) and spend, in one read.

        ``users`` maps names to the groups the account stores (the groups the
        ledger matches grants against)."""
        out: dict[str, tuple[str | None, str]] = {}
        with self.db.read() as s:
            row = s.get(PrivateDataset, name)
            if row is None:
                raise BrokerError(f"dataset: no dataset {name!r}")
            for user, groups in users.items():
                try:
                    budget = self.ledger.budget(s, row, user, groups)
                except NoGrant:
                    spend = s.get(PrivateSpend, (name, user))
                    out[user] = (None, _text(Amount(_m(row), spend.spent_nanos if spend else 0)))
                    continue
                out[user] = (_text(budget.total), _text(budget.spent))
        return out

    def preview(self, asker: Asker, name: str, raw_query: Mapping[str, Any]) -> dict[str, Any]:
        """What a query would cost and how accurate it would be; nothing spent, nothing read."""
        row, budget = self.ledger.dataset(asker.user, asker.groups, name)
        spec = self._spec(row)
        plan = plan_query(spec, parse_query(raw_query, spec))
        return {
            "cost": _text(_charged(plan.query.allowance, plan.cost)),
            "allowance": _text(plan.cost),
            "measure": spec.measure,
            "accuracy": plan.accuracy,
            "ci_half_width": plan.half_width,
            "remaining": budget.to_json()["remaining"],
        }

    def query(
        self,
        asker: Asker,
        name: str,
        raw_query: Mapping[str, Any],
        *,
        kernel_id: str | None = None,
        cell_id: str | None = None,
    ) -> dict[str, Any]:
        """Plan, charge, release: the answer with its interval, cost and what is left.

        Raises :class:`NoGrant`, :class:`QueryError`, ``BudgetExceeded`` or ``Busy``.
        """
        if cell_id is not None:
            cell_id = str(cell_id)[:_MAX_CELL_ID]
        try:
            row, _ = self.ledger.dataset(asker.user, asker.groups, name)
            spec = self._spec(row)
            plan = plan_query(spec, parse_query(raw_query, spec))
        except (NoGrant, QueryError) as exc:
            # Refused before any charge: recorded too (probing shows up in the trail).
            self._record_query(asker, name, _as_recorded(raw_query), kernel_id, cell_id,
                               error=exc)  # fmt: skip
            raise
        described = plan.query.describe()
        try:
            charge = self.ledger.charge(
                dataset=name,
                user=asker.user,
                groups=asker.groups,
                cost=_charged(plan.query.allowance, plan.cost),
                query=described,
                kernel_id=kernel_id,
                cell_id=cell_id,
            )
        except Exception as exc:
            self._record_query(asker, name, described, kernel_id, cell_id, error=exc)
            raise
        if charge.cached:
            result = charge.result or {}
            digest = None
        else:
            try:
                release = plan.release(self._frame(row))
            except Exception:
                self.ledger.settle(charge.release_id, None)
                raise
            result = release.to_json()
            digest = self.ledger.settle(charge.release_id, result)
        answer = self._answer(plan.query.kind, described, spec.measure, charge, result)
        self._record_query(asker, name, described, kernel_id, cell_id, charge=charge,
                           digest=digest)  # fmt: skip
        return answer

    def _answer(
        self,
        kind: str,
        described: dict[str, Any],
        measure: Measure,
        charge: Charge,
        result: Mapping[str, Any],
    ) -> dict[str, Any]:
        return {
            "query": described,
            "kind": kind,
            "column": described.get("column"),
            "by": described.get("by", []),
            "value": result.get("value"),
            "ci": result.get("ci"),
            "groups": result.get("groups"),
            "mechanism": result.get("mechanism", {}),
            "cost": _text(charge.cost),
            "measure": measure,
            "remaining": _text(max(charge.remaining, Amount.zero(measure))),
            "cached": charge.cached,
            "release_id": charge.release_id,
        }

    def _record_query(
        self,
        asker: Asker,
        name: str,
        described: dict[str, Any],
        kernel_id: str | None,
        cell_id: str | None,
        *,
        charge: Charge | None = None,
        digest: str | None = None,
        error: Exception | None = None,
    ) -> None:
        if self.audit is None:
            return
        request = {"dataset": name, "query": described, "kernelId": kernel_id, "cellId": cell_id}
        if error is not None:
            self.audit.record(
                "PrivateQuery",
                identity=asker.identity(),
                request=request,
                error_code=type(error).__name__,
                error_message=str(error)[:500],
                resources=[Resource("dataset", name)],
            )
            return
        if charge is None:  # pragma: no cover - callers pass a charge or an error
            raise ValueError("a query record needs a charge or an error")
        self.audit.record(
            "PrivateQuery",
            identity=asker.identity(),
            request=request,
            response={
                "cost": _text(charge.cost),
                "remaining": _text(max(charge.remaining, Amount.zero(charge.cost.measure))),
                **({"budget": _text(charge.budget)} if charge.budget is not None else {}),
                "releaseId": charge.release_id,
                "cached": charge.cached,
                "resultSha256": digest,
            },
            resources=[Resource("dataset", name)],
        )

    def _frame(self, row: DatasetRow) -> pl.LazyFrame:
        return pl.scan_parquet(self._path(row.name, row.version))

    def _path(self, name: str, version: str) -> Path:
        return self.data_dir / f"{name}-{version[:16]}.parquet"

    # -- the admin's side -------------------------------------------------------------------
    @contextlib.contextmanager
    def _change(
        self, actor: Identity, event: str, request: dict[str, Any], dataset: str
    ) -> Iterator[tuple[Any, dict[str, Any]]]:
        """A write transaction whose audit record is written before it commits.

        A change to one person's budget names them as a ``user`` resource: the
        record is about them, so the audit browser shows it to those who may read
        about them, and hides it from everyone else.
        """
        response: dict[str, Any] = {}
        resources = [Resource("dataset", dataset)]
        if request.get("principalType") == "user":
            resources.append(Resource("user", str(request["principal"])))
        with self.db.write() as s:
            yield s, response
            if self.audit is not None:
                self.audit.record(event, identity=actor, request=request, response=response,
                                  resources=resources)  # fmt: skip

    def add_dataset(
        self, spec_data: Mapping[str, Any], source: Path, actor: Identity
    ) -> dict[str, Any]:
        """Validate, prepare and store a dataset; nothing is left behind on any refusal."""
        spec = parse_spec(spec_data)
        suffix = source.suffix.lower()
        if suffix not in _SUFFIXES:
            raise BrokerError(f"file: expected a .csv or .parquet file, got {source.name!r}")
        try:
            raw = pl.scan_csv(source) if _SUFFIXES[suffix] == "csv" else pl.scan_parquet(source)
            schema = raw.collect_schema()
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise BrokerError(f"file: cannot read {source}: {exc}") from None
        spec.check_columns({c: _kind_of(t) for c, t in schema.items()})
        if spec.unit.id_column is not None:
            _check_ids(raw, spec.unit.id_column)
        ensure_private_dir(self.data_dir, what="protected data directory")
        fd, tmp = tempfile.mkstemp(prefix=".adding-", suffix=".parquet", dir=self.data_dir)
        os.close(fd)
        try:
            try:
                prepare(spec, raw).sink_parquet(tmp)
                rows = pl.scan_parquet(tmp).select(pl.len()).collect().item()
            except pl.exceptions.PolarsError as exc:
                raise BrokerError(f"file: {exc}") from None
            if rows > PUBLIC_MAX_ROWS:
                raise BrokerError(f"file: more than {PUBLIC_MAX_ROWS:,} rows (the bound the "
                                  "accounting of sums assumes)")  # fmt: skip
            version = _sha256(Path(tmp))
            final = self._path(spec.name, version)
            request = {"action": "add", "dataset": spec.name, "file": source.name}
            with self._change(actor, "DatasetChanged", request, spec.name) as (s, response):
                if s.get(PrivateDataset, spec.name) is not None:
                    raise BrokerError(f"name: a dataset {spec.name!r} exists; remove it first")
                s.add(
                    PrivateDataset(
                        name=spec.name,
                        spec=json.dumps(spec_to_json(spec), sort_keys=True),
                        measure=spec.measure,
                        cap_nanos=spec.dataset_cap.nanos,
                        spent_nanos=0,
                        version=version,
                        added_by=actor.name,
                    )
                )
                s.flush()
                os.replace(tmp, final)
                response.update({"version": version, "measure": spec.measure,
                                 "cap": _text(spec.dataset_cap)})  # fmt: skip
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return self.show(spec.name)

    def remove_dataset(self, name: str, actor: Identity) -> None:
        request = {"action": "remove", "dataset": name}
        with self._change(actor, "DatasetChanged", request, name) as (s, response):
            row = s.get(PrivateDataset, name)
            if row is None:
                raise BrokerError(f"name: no dataset {name!r}")
            path = self._path(name, row.version)
            response.update(
                {"version": row.version, "spent": _text(Amount(_m(row), row.spent_nanos))}
            )
            s.delete(row)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def show(self, name: str) -> dict[str, Any]:
        """Everything an admin sees: spec, cap and spend, grants, each user's spend."""
        with self.db.read() as s:
            row = s.get(PrivateDataset, name)
            if row is None:
                raise BrokerError(f"name: no dataset {name!r}")
            m = _m(row)
            grants = s.scalars(select(PrivateGrant).where(PrivateGrant.dataset == name)).all()
            spend = s.scalars(select(PrivateSpend).where(PrivateSpend.dataset == name)).all()
            return {
                "name": row.name,
                "spec": json.loads(row.spec),
                "version": row.version,
                "added_by": row.added_by,
                "created_at": row.created_at.isoformat(),
                "cap": _text(Amount(m, row.cap_nanos)),
                "spent": _text(Amount(m, row.spent_nanos)),
                "grants": [
                    {
                        "kind": g.kind,
                        "principal": g.principal,
                        "budget": _text(Amount(m, g.budget_nanos)),
                    }
                    for g in sorted(grants, key=lambda g: (g.kind, g.principal))
                ],
                "spend": {p.user_name: _text(Amount(m, p.spent_nanos)) for p in spend},
            }

    def list(self) -> list[dict[str, Any]]:
        with self.db.read() as s:
            names = list(s.scalars(select(PrivateDataset.name).order_by(PrivateDataset.name)))
        return [self.show(n) for n in names]

    def grant(
        self, name: str, kind: str, principal: str, budget: str | None, actor: Identity
    ) -> dict[str, Any]:
        """Let a user or a group query ``name``, each member with ``budget`` (the spec's
        per-user budget by default). Raising an existing grant is a budget change."""
        if kind not in GRANT_KINDS:
            raise BrokerError(f"kind: expected user or group, got {kind!r}")
        if not principal or len(principal) > 200:
            raise BrokerError(f"--{kind}: expected a name")
        request: dict[str, Any] = {"action": "grant", "dataset": name, "principalType": kind,
                                   "principal": principal}  # fmt: skip
        with self._change(actor, "BudgetChanged", request, name) as (s, response):
            row = self._dataset_for_update(s, name)
            m = _m(row)
            amount = self._amount(budget, m, "--budget") if budget is not None else None
            if amount is None:
                amount = parse_spec(json.loads(row.spec)).per_user_budget
            grant = s.get(PrivateGrant, (name, kind, principal))
            before = Amount(m, grant.budget_nanos) if grant is not None else None
            if grant is None:
                s.add(PrivateGrant(dataset=name, kind=kind, principal=principal,
                                   budget_nanos=amount.nanos))  # fmt: skip
            else:
                grant.budget_nanos = amount.nanos
            request["amount"] = _text(amount)
            response.update({"before": _text(before) if before else None, "after": _text(amount)})
        return response

    def revoke(self, name: str, kind: str, principal: str, actor: Identity) -> None:
        request = {"action": "revoke", "dataset": name, "principalType": kind,
                   "principal": principal}  # fmt: skip
        with self._change(actor, "BudgetChanged", request, name) as (s, response):
            self._dataset_for_update(s, name)
            grant = s.get(PrivateGrant, (name, kind, principal))
            if grant is None:
                raise BrokerError(f"--{kind}: {principal!r} holds no grant on {name!r}")
            response.update({"before": _text(Amount(_m(grant), grant.budget_nanos)),
                             "after": None})  # fmt: skip
            s.delete(grant)

    def raises_budget(self, name: str, user: str, amount: str) -> bool:
        """Whether setting ``user``'s budget to ``amount`` would raise what they may spend."""
        with self.db.read() as s:
            row = s.get(PrivateDataset, name)
            if row is None:
                raise BrokerError(f"dataset: no dataset {name!r}")
            new = self._amount(amount, _m(row), "amount")
            asker = self.asker(user) if self._user_exists(s, user) else Asker(user, ())
            try:
                current = self.ledger.budget(s, row, user, asker.groups).total
            except NoGrant:
                return True
            return new > current

    def revoke_raises(self, name: str, kind: str, principal: str) -> bool:
        """Whether taking ``principal``'s grant away would let them spend *more*.

        A user's own grant wins over their groups', so revoking a small own grant
        can hand them a larger group budget: that is a raise, and needs the same
        confirmation as one. Revoking a group's grant never raises anyone.
        """
        if kind != "user":
            return False
        with self.db.read() as s:
            row = s.get(PrivateDataset, name)
            own = s.get(PrivateGrant, (name, "user", principal))
            if row is None or own is None:
                return False
            groups = self.asker(principal).groups if self._user_exists(s, principal) else ()
            shared = [
                g.budget_nanos
                for g in s.scalars(
                    select(PrivateGrant).where(
                        PrivateGrant.dataset == name, PrivateGrant.kind == "group"
                    )
                )
                if g.principal in groups
            ]
            return bool(shared) and max(shared) > own.budget_nanos

    def grant_raises_own(self, name: str, group: str, budget: str | None, user: str) -> bool:
        """Whether granting ``group`` ``budget`` on ``name`` (None: the spec's per-user
        budget) would raise what ``user`` may spend there.

        A group grant reaches every member, the granter too: an instructor who
        grants their own group a larger budget would raise their own, which they
        may not do directly. A user's own grant wins over their groups', so it
        shields them.
        """
        with self.db.read() as s:
            row = s.get(PrivateDataset, name)
            if row is None:
                raise BrokerError(f"dataset: no dataset {name!r}")
            m = _m(row)
            if budget is not None:
                amount = self._amount(budget, m, "budget").nanos
            else:
                amount = parse_spec(json.loads(row.spec)).per_user_budget.nanos
            account = s.scalars(select(User).where(User.name == user)).first()
            groups = {g.group_name for g in account.groups} if account is not None else set()
            if group not in groups or s.get(PrivateGrant, (name, "user", user)) is not None:
                return False
            shared = {
                g.principal: g.budget_nanos
                for g in s.scalars(
                    select(PrivateGrant).where(
                        PrivateGrant.dataset == name, PrivateGrant.kind == "group"
                    )
                )
                if g.principal in groups
            }
            before = max(shared.values(), default=None)
            shared[group] = amount
            return before is None or max(shared.values()) > before

    def set_budget(self, name: str, user: str, amount: str, actor: Identity) -> dict[str, Any]:
        """Give ``user`` their own budget on ``name`` (overrides group grants)."""
        return self.grant(name, "user", user, amount, actor)

    def reset(self, name: str, user: str, actor: Identity) -> dict[str, Any]:
        """Forget what ``user`` spent on ``name`` (a fresh budget; the releases stay recorded).

        The dataset-wide spend is not reduced: what was released stays released.
        """
        request = {"action": "reset", "dataset": name, "principalType": "user", "principal": user}
        with self._change(actor, "BudgetChanged", request, name) as (s, response):
            row = self._dataset_for_update(s, name)
            spend = s.get(PrivateSpend, (name, user))
            before = spend.spent_nanos if spend is not None else 0
            if spend is not None:
                spend.spent_nanos = 0
            response.update({"before": _text(Amount(_m(row), before)), "after": "0"})
        return response

    def _dataset_for_update(self, s: Any, name: str) -> PrivateDataset:
        row = s.scalars(
            select(PrivateDataset).where(PrivateDataset.name == name).with_for_update()
        ).first()
        if row is None:
            raise BrokerError(f"dataset: no dataset {name!r}")
        return row  # type: ignore[no-any-return]

    @staticmethod
    def _user_exists(s: Any, user: str) -> bool:
        return s.scalars(select(User.id).where(User.name == user)).first() is not None

    @staticmethod
    def _amount(text: str, measure: Measure, field: str) -> Amount:
        try:
            return Amount.parse(text, measure, field=field)
        except AmountError as exc:
            raise BrokerError(str(exc)) from None


def _as_recorded(raw_query: Mapping[str, Any]) -> dict[str, Any]:
    """A refused query as the trail keeps it: as sent when small, else only its size."""
    try:
        text = json.dumps(raw_query, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):  # not JSON the trail can hold (NaN, infinity)
        return {"unreadable": True}
    if len(text) > _MAX_RECORDED_QUERY:
        return {"truncated": True, "bytes": len(text)}
    return dict(raw_query)


def _charged(allowance: Amount | None, loss: Amount) -> Amount:
    """What a release is charged: the allowance asked for (or solved), never less than its loss.

    OpenDP's loss lands a hair under the allowance (the scale is solved to ~1e-6);
    charging the allowance itself keeps budgets in the round numbers people
    asked for, so "ρ=0.2 left" buys exactly one more ρ=0.2 query.
    """
    return max(allowance, loss) if allowance is not None else loss


def _check_ids(raw: pl.LazyFrame, column: str) -> None:
    """Every row must name its person: rows without an id would all count as one
    "person", and dropping one real person could then change which of them are kept."""
    try:
        missing = (
            raw.select(
                (
                    pl.col(column).is_null()
                    | (pl.col(column).cast(pl.String).str.strip_chars() == "")
                ).sum()
            )
            .collect()
            .item()
        )
    except pl.exceptions.PolarsError as exc:
        raise BrokerError(f"file: {exc}") from None
    if missing:
        raise BrokerError(f"privacy_unit.id_column: {missing} rows have no {column} "
                          "(every row must name its person; fix or drop them first)")  # fmt: skip


def _m(row: Any) -> Measure:
    return "epsilon" if getattr(row, "measure", "rho") == "epsilon" else "rho"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
