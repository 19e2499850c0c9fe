"""The admin panel's routes: accounts, budgets, the audit trail, access reviews.

``/secure/api/admin/users``, ``/secure/api/admin/budgets``, ``/secure/api/audit``,
``/secure/api/audit/verify`` and ``/secure/api/admin/access-review`` (the REST
contract is docs/rest-api.md). Each handler names the exact scope per HTTP
method (``auth_scopes``), which the route guard and the authorizer both check;
what the scope alone cannot decide is decided here, per object:

* an instructor (``secure:budgets:admin`` without ``secure:datasets:admin``)
  manages only their own groups and those groups' members, never their own
  budget;
* ``secure:audit:read`` reads only records about the reader and the members of
  their groups (:mod:`jupyter_secure.audit.browse`); ``secure:audit:admin`` all.

Changes need a fresh second factor in a signed-in session (``require_step_up``)
and go through the same service code as the command line — ``AccountAdmin``
for accounts, ``Broker`` for budgets — so they write the same audit records,
with the administrator's identity and address. Disabling an account or
resetting its second factor ends its sessions and revokes its tokens in the
same transaction; the session enforcer closes its connections and shuts its
kernels down at its next tick, as after ``jupyter secure user disable``.

Reads of personal data (the account list, audit records, a review) are
recorded too, as the command line records them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..audit import browse
from ..audit.index import AuditIntegrityError, QueryFilter
from ..audit.logger import Identity, Resource
from ..audit.mirror import DirectoryMirror, mirror_from_url, read_mirror
from ..audit.verify import VerifyReport, verify_trail
from ..errors import InvalidInput
from ..identity.signin import AccountAdmin
from ..identity.users import UserDirectory, validate_name
from ..policy import Decision, Principal
from ..policy.document import Policy
from ..policy.review import access_review
from ..policy.scopes import method_scopes, scope
from ..privacy.amounts import Amount, AmountError
from ..privacy.broker import Broker, BrokerError
from ..privacy.history import dataset_entry
from ..state import SecureState
from ..storage.models import utcnow
from .access import POLICY_SETTING, deny, principal_of
from .base import JsonErrors, SecureHandlerMixin, run_blocking
from .tokens import require_step_up

__all__ = [
    "AUDIT_ADMIN",
    "AUDIT_READ",
    "AuditForbidden",
    "audience",
    "audit_page",
    "default_handlers",
    "verify_now",
    "verify_summary",
]

USERS_ADMIN = scope("secure:users:admin")
BUDGETS_ADMIN = scope("secure:budgets:admin")
DATASETS_ADMIN = scope("secure:datasets:admin")
AUDIT_READ = scope("secure:audit:read")
AUDIT_ADMIN = scope("secure:audit:admin")
STATE_SETTING = "jupyter_secure_state"

#: Account actions, and whether one may aim them at oneself (locking yourself out
#: from the panel is never what was meant).
ACTIONS: Mapping[str, bool] = {
    "lock": False,
    "unlock": True,
    "disable": False,
    "enable": True,
    "mfa-reset": False,
}
_BUDGET_FIELDS = {
    "grant": {"action", "dataset", "group", "user", "budget"},
    "set": {"action", "dataset", "user", "budget"},
    "reset": {"action", "dataset", "user"},
}
_MAX_REASON = 200
#: A verification this recent (seconds since it ended) is shared rather than run again.
VERIFY_REUSE_SECONDS = 10.0
#: ... or this many times the last run's length, when that is longer (a large trail).
VERIFY_REUSE_FACTOR = 4.0
_verifying: weakref.WeakKeyDictionary[SecureState, _Verifying] = weakref.WeakKeyDictionary()


class AuditForbidden(Exception):
    """The reader asked for records about someone they may not read about."""


# -- shared with the kernel's trail routes (handlers/trail.py) ------------------------------


def audience(
    state: SecureState, policy: Policy, who: Principal, scopes: frozenset[str]
) -> frozenset[str] | None:
    """Whose records ``who`` may read: None for everyone (``secure:audit:admin``), the
    members of their groups too with ``secure:audit:read``, else only themselves (a
    notebook may always read what the trail says about its own user)."""
    if AUDIT_ADMIN in scopes:
        return None
    if AUDIT_READ not in scopes:
        return frozenset({who.name})
    with state.db.read() as s:
        accounts = [(u.name, u.groups) for u in UserDirectory().list(s)]
    groups = policy.effective_groups(who)
    listed = {g: policy.group_members(g) for g in groups}
    return browse.visible_users(who.name, groups, accounts, listed)


def audit_page(
    state: SecureState, users: frozenset[str] | None, req: browse.AuditRequest
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of records, newest first, and the ``before`` of the next page (or None).

    Blocking (the database, then each record read back from its segment and
    its hash checked): run it off the event loop.
    """
    if req.user is not None and users is not None and req.user not in users:
        raise AuditForbidden(req.user)
    state.index.flush(timeout=5)
    flt = QueryFilter(
        user=req.user,
        event=req.event,
        since_us=req.since_us,
        until_us=req.until_us,
        limit=req.limit + 1,
        before_seq=req.before,
        about=users,
        newest_first=True,
    )
    out: list[dict[str, Any]] = []
    more = False
    for _, event in state.index.query(flt):
        if not browse.is_visible(event, users):  # the query already filtered; belt and braces
            continue
        if len(out) == req.limit:
            more = True
            break
        out.append(browse.summary(event))
    return out, (out[-1]["seq"] if more and out else None)


def verify_now(state: SecureState) -> tuple[VerifyReport, bool]:
    """Verify the live trail the way the server does at start (blocking: seconds per
    million records); also whether a checkpoint mirror was compared."""
    witness = state.index.witness()  # first: it only ever lags the files
    mirror = mirror_from_url(state.sink.checkpoint_mirror, state.trail_id)
    lines = (
        read_mirror(mirror.path.parent, state.trail_id)
        if isinstance(mirror, DirectoryMirror)
        else None
    )
    report = verify_trail(
        state.audit_dir,
        public_keys=state.public_keys,
        expected_trail=state.trail_id,
        mirror_lines=lines,
        witness=witness,
    )
    return report, lines is not None


class _Verifying:
    """One store's verifications: a lock, and the last report with when it ran."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.last: tuple[float, float, VerifyReport, bool] | None = None  # started, ended, …


def _reusable(
    last: tuple[float, float, VerifyReport, bool] | None, asked: float
) -> tuple[VerifyReport, bool] | None:
    """The last report, if it answers a caller who asked at ``asked`` (monotonic)."""
    if last is None:
        return None
    started, ended, report, mirrored = last
    fresh = time.monotonic() - ended < max(
        VERIFY_REUSE_SECONDS, VERIFY_REUSE_FACTOR * report.seconds
    )
    return (report, mirrored) if started >= asked or fresh else None


async def verified(state: SecureState) -> tuple[VerifyReport, bool]:
    """:func:`verify_now` off the event loop, one at a time per store.

    Each run reads the whole trail (seconds per million records), so callers
    share: one who waited for a verification that started after they asked gets
    its report (it covers everything they could ask about), and one who comes
    within :data:`VERIFY_REUSE_SECONDS` (or four times the last run's length) of
    the last run's end gets that report, its ``checkedAt`` saying when. A burst
    of clicks or a ``trail.verify()`` loop in a notebook then costs one read of
    the trail per period, not one per call; each call is still recorded.
    """
    asked = time.monotonic()
    mine = _verifying.setdefault(state, _Verifying())
    async with mine.lock:
        shared = _reusable(mine.last, asked)
        if shared is not None:
            return shared
        started = time.monotonic()
        report, mirrored = await run_blocking(verify_now, state)
        report.checked_at = dt.datetime.now(dt.UTC).isoformat()
        mine.last = (started, time.monotonic(), report, mirrored)
        return report, mirrored


def verify_summary(report: VerifyReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "records": report.records,
        "segments": report.segments,
        "checkpoints": report.checkpoints,
        "lastSeq": report.last_seq,
        "signedSeq": report.signed_seq,
        "lastCheckpoint": report.last_checkpoint_time,
        "problems": [
            {"kind": p.kind, "where": p.where, "detail": p.message, "seq": p.seq}
            for p in report.problems
        ],
        "notices": list(report.notices),
        "checkedAt": report.checked_at or dt.datetime.now(dt.UTC).isoformat(),
        "seconds": round(report.seconds, 3),
    }


def verified_record(report: VerifyReport, mirror: bool) -> dict[str, Any]:
    """The ``AuditVerified`` request and response of a report."""
    first = report.first_problem
    return {
        "request": {"mode": "full", "mirror": mirror},
        "response": {
            "ok": report.ok,
            "records": report.records,
            "problems": len(report.problems),
            "firstProblem": str(first)[:500] if first else None,
        },
    }


# -- the handlers ------------------------------------------------------------------------------


class _Admin(JsonErrors, SecureHandlerMixin, APIHandler):
    """What the admin routes share: the caller's scopes and identity, arguments, errors."""

    def initialize(self, broker: Callable[[], Broker | None]) -> None:
        self._broker = broker

    @property
    def state(self) -> SecureState:
        found = self.settings.get(STATE_SETTING)
        if found is None:
            raise web.HTTPError(503, "the state store is not open")
        return found  # type: ignore[no-any-return]

    @property
    def policy(self) -> Policy:
        return self.settings[POLICY_SETTING].current  # type: ignore[no-any-return]

    def principal(self) -> Principal:
        return principal_of(self.current_user)

    def scopes(self) -> frozenset[str]:
        """The caller's effective scopes now (an API token's cut down to what it holds)."""
        held = self.policy.effective_scopes(self.principal())
        token = self.current_user.scopes
        return held & token if token is not None else held

    def actor(self) -> Identity:
        user = self.current_user
        principal = self.principal()
        return Identity(
            "User",
            user.username,
            tuple(sorted(principal.roles)),
            tuple(sorted(principal.groups)),
            session_id=getattr(user, "session_id", None),
        )

    def broker(self) -> Broker:
        found = self._broker()
        if found is None:
            self.json_error(503, "private queries are off on this server (no broker here)")
            raise web.Finish()
        return found

    def args(self, known: set[str]) -> dict[str, str]:
        """The query arguments (last value of each); an unknown one is refused by name."""
        got = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        unknown = sorted(set(got) - known)
        if unknown:
            self.json_error(
                400, f"unknown parameter (known: {', '.join(sorted(known))})", field=unknown[0]
            )
            raise web.Finish()
        return got

    def body(self, allowed: set[str]) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            self.json_error(400, "the body must be a JSON object", field="body")
            raise web.Finish()
        extra = sorted(set(data) - allowed)
        if extra:
            self.json_error(
                400, f"unknown field (known: {', '.join(sorted(allowed))})", field=extra[0]
            )
            raise web.Finish()
        return data

    def refuse(self, status: int, message: str, field: str | None = None) -> NoReturn:
        self.json_error(status, message, **({"field": field} if field else {}))
        raise web.Finish()

    def forbid(self, wanted: str, message: str, field: str, value: str) -> NoReturn:
        """403 for an object the scope does not reach; recorded as ``AccessDenied``."""
        deny(self, Decision(False, wanted, message), object=f"{field}:{value}")
        self.refuse(403, message, field)

    async def record(
        self,
        event: str,
        *,
        request: Any = None,
        response: Any = None,
        resources: list[Resource] | None = None,
        read_only: bool = True,
    ) -> None:
        await self.state.audit.record_async(
            event,
            identity=self.actor(),
            request=request,
            response=response,
            resources=resources or [],
            read_only=read_only,
            source_ip=self.client_ip,
            user_agent=(self.user_agent or "")[:300] or None,
        )

    def reply(self, data: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))


class UsersHandler(_Admin):
    """``GET``: every account with its state (recorded as ``UsersListed``)."""

    auth_resource = "secure:users"
    auth_scopes = method_scopes({"GET": USERS_ADMIN})

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.args(set())
        rows = await run_blocking(AccountAdmin(self.signin).overview)
        await self.record("UsersListed", request={"format": "json"}, response={"users": len(rows)})
        self.reply({"users": rows})


class UserActionHandler(_Admin):
    """``POST {"reason"?}``: lock, unlock, disable, enable or mfa-reset one account."""

    auth_resource = "secure:users"
    auth_scopes = method_scopes({"POST": USERS_ADMIN})

    @web.authenticated
    @authorized
    async def post(self, name: str, action: str) -> None:
        require_step_up(self)
        self.args(set())  # a POST's parameters are in its body; "?force=1" is not ignored
        body = self.body({"reason"})
        reason = body.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > _MAX_REASON):
            self.refuse(400, f"a text of at most {_MAX_REASON} characters", "reason")
        if action not in ACTIONS:
            self.refuse(
                400, f"unknown action {action[:40]!r} (known: {', '.join(ACTIONS)})", "action"
            )
        admin = AccountAdmin(self.signin)
        try:
            await run_blocking(admin.overview, name)
        except InvalidInput:
            self.refuse(404, f"no user named {name[:64]!r}", "name")
        if name == self.current_user.username and not ACTIONS[action]:
            self.refuse(
                400,
                f"you cannot {action} your own account here; ask another "
                "administrator or use the command line",
                "name",
            )
        await run_blocking(self._act, admin, name, action, reason or None)
        rows = await run_blocking(admin.overview, name)
        self.reply(rows[0])

    def _act(self, admin: AccountAdmin, name: str, action: str, reason: str | None) -> None:
        actor = self.actor()
        if action == "lock":
            admin.lock(name, reason=reason or "administrator", actor=actor)
        elif action == "unlock":
            admin.unlock(name, actor)
        elif action in {"disable", "enable"}:
            admin.set_disabled(name, action == "disable", actor=actor, reason=reason)
        else:
            admin.reset(name, actor, reason=reason)


class AccessReviewHandler(_Admin):
    """``GET ?staleDays=N``: the access review (recorded as ``AccessReviewed``)."""

    auth_resource = "secure:users"
    auth_scopes = method_scopes({"GET": USERS_ADMIN})

    @web.authenticated
    @authorized
    async def get(self) -> None:
        text = self.args({"staleDays"}).get("staleDays", "90")
        if not text.isdigit() or not 1 <= int(text) <= 3650:
            self.refuse(400, "expected a whole number of days from 1 to 3650", "staleDays")
        days = int(text)

        def review() -> Any:
            with self.state.db.read() as s:
                accounts = UserDirectory().list(s)
            return access_review(self.policy, accounts, now=utcnow(), stale_days=days)

        found = await run_blocking(review)
        summary = found.summary()
        await self.record(
            "AccessReviewed", request={"staleDays": days, "format": "json"}, response=summary
        )
        self.reply(
            {
                "summary": summary,
                "staleDays": days,
                "rows": [
                    {
                        "user": r.name,
                        "status": r.status,
                        "roles": list(r.roles),
                        "groups": list(r.groups),
                        "directRoles": list(r.direct_roles),
                        "lastSignIn": r.last_login.isoformat() if r.last_login else None,
                        "findings": list(r.findings),
                    }
                    for r in found.rows
                ],
            }
        )


class AuditHandler(_Admin):
    """``GET ?user=&event=&since=&until=&limit=&before=``: records, newest first."""

    auth_resource = "secure:audit"
    auth_scopes = method_scopes({"GET": AUDIT_READ})

    @web.authenticated
    @authorized
    async def get(self) -> None:
        args = self.args({"user", "event", "since", "until", "limit", "before"})
        try:
            req = browse.parse_request(
                args, now=time.time(), known_events=self.state.audit.schemas.names()
            )
        except InvalidInput as exc:
            self.refuse(400, exc.message, exc.field)
        state = self.state
        try:
            users = await run_blocking(
                audience, state, self.policy, self.principal(), self.scopes()
            )
            records, after = await run_blocking(audit_page, state, users, req)
        except AuditForbidden:
            self.forbid(
                AUDIT_ADMIN,
                "you may read records about yourself and the members of your groups only",
                "user",
                str(req.user),
            )
        except AuditIntegrityError as exc:
            self.refuse(
                500,
                f"audit record seq {exc.seq} does not match its hash; run "
                "`jupyter secure audit verify`",
            )
        await self.record(
            "AuditQueried",
            request=req.recorded(args.get("since"), args.get("until")),
            response={"records": len(records)},
            resources=[Resource("audit-trail", state.trail_id)],
        )
        self.reply({"records": records, "next": after})


class AuditVerifyHandler(_Admin):
    """``GET``: verify the whole trail now (recorded as ``AuditVerified``)."""

    auth_resource = "secure:audit"
    auth_scopes = method_scopes({"GET": AUDIT_ADMIN})

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.args(set())
        report, mirrored = await verified(self.state)
        entry = verified_record(report, mirror=mirrored)
        await self.record(
            "AuditVerified", **entry, resources=[Resource("audit-trail", self.state.trail_id)]
        )
        self.reply(verify_summary(report))


class BudgetsAdminHandler(_Admin):
    """``GET``: the datasets and budgets the caller manages; ``POST``: grant, set, reset."""

    auth_resource = "secure:budgets"
    auth_scopes = method_scopes({"GET": BUDGETS_ADMIN, "POST": BUDGETS_ADMIN})

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.args(set())
        broker = self.broker()
        view = await run_blocking(self._view)
        entries = await run_blocking(lambda: [self._entry(broker, d, view) for d in broker.list()])
        self.reply({"datasets": entries})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        require_step_up(self)
        self.args(set())
        broker = self.broker()
        body = self.body(set().union(*_BUDGET_FIELDS.values()))
        action = body.get("action")
        if action not in _BUDGET_FIELDS:
            self.refuse(400, "expected grant, set or reset", "action")
        extra = sorted(set(body) - _BUDGET_FIELDS[action])
        if extra:
            self.refuse(400, f"not a field of {action}", extra[0])
        name = body.get("dataset")
        if not isinstance(name, str) or not name:
            self.refuse(400, "give the dataset's name", "dataset")
        try:
            shown = await run_blocking(broker.show, name)
        except BrokerError:
            self.refuse(404, f"no dataset {name[:64]!r}", "dataset")
        kind, who = self._principal(body, action)
        view = await run_blocking(self._view)
        accounts, everyone, groups, members = view
        if kind == "user" and who not in accounts:
            self.refuse(404, f"no user named {who!r}", "user")
        budget = self._budget(body, action, shown["spec"]["measure"])
        if not everyone:
            await self._within_reach(broker, name, (kind, who), budget, (groups, members))
        actor = self.actor()
        try:
            if action == "grant":
                await run_blocking(broker.grant, name, kind, who, budget, actor)
            elif action == "set":
                await run_blocking(broker.set_budget, name, who, budget, actor)
            else:
                await run_blocking(broker.reset, name, who, actor)
        except (BrokerError, AmountError) as exc:
            field, _, message = str(exc).partition(": ")
            self.refuse(400, message or str(exc), field.lstrip("-") if message else None)
        shown = await run_blocking(broker.show, name)
        self.reply(await run_blocking(self._entry, broker, shown, view))

    async def _within_reach(
        self,
        broker: Broker,
        name: str,
        target: tuple[str, str],
        budget: str | None,
        reach: tuple[frozenset[str], frozenset[str]],
    ) -> None:
        """An instructor's change (``target``: kind and name; ``reach``: their groups and
        those groups' members): within reach only, and never a raise of their own
        budget (403, recorded)."""
        (kind, who), (groups, members) = target, reach
        if kind == "group" and who not in groups:
            self.forbid(BUDGETS_ADMIN, f"{who} is not one of your groups", "group", who)
        if kind == "user" and who not in members:
            self.forbid(BUDGETS_ADMIN, f"{who} is not a member of your groups", "user", who)
        me = self.current_user.username
        if kind == "group" and await run_blocking(broker.grant_raises_own, name, who, budget, me):
            # A group grant reaches the granter too: never a way round "not your own".
            self.forbid(
                BUDGETS_ADMIN,
                f"this grant would raise your own budget on {name} (you are in {who}); "
                "ask an administrator to set your own budget first",
                "group",
                who,
            )

    def _principal(self, body: Mapping[str, Any], action: str) -> tuple[str, str]:
        group, user = body.get("group"), body.get("user")
        if action == "grant" and (group is None) == (user is None):
            self.refuse(400, "give exactly one of group and user", "group")
        if action != "grant" and user is None:
            self.refuse(400, f"{action} applies to one user: give user", "user")
        kind, who = ("group", group) if group is not None else ("user", user)
        if not isinstance(who, str):
            self.refuse(400, "expected a name", kind)
        try:
            validate_name(who, kind)
        except InvalidInput as exc:
            self.refuse(400, exc.message, exc.field)
        return kind, who

    def _budget(self, body: Mapping[str, Any], action: str, measure: str) -> str | None:
        budget = body.get("budget")
        if budget is None:
            if action == "set":
                self.refuse(400, 'give the new budget, a decimal string like "0.5"', "budget")
            return None
        if not isinstance(budget, str):
            self.refuse(400, 'a decimal string like "0.5" (amounts are exact)', "budget")
        try:
            Amount.parse(budget, "epsilon" if measure == "epsilon" else "rho", field="budget")
        except AmountError as exc:
            self.refuse(400, str(exc).partition(": ")[2] or str(exc), "budget")
        return budget

    def _view(self) -> tuple[dict[str, tuple[str, ...]], bool, frozenset[str], frozenset[str]]:
        """(every account with its stored groups, manages everyone?, own groups, members)."""
        with self.state.db.read() as s:
            accounts = {u.name: u.groups for u in UserDirectory().list(s)}
        who = self.principal()
        everyone = DATASETS_ADMIN in self.scopes()
        groups = self.policy.effective_groups(who)
        listed = {g: self.policy.group_members(g) for g in groups}
        members = browse.visible_users(who.name, groups, accounts.items(), listed) - {who.name}
        return accounts, everyone, groups, members

    def _entry(
        self,
        broker: Broker,
        shown: Mapping[str, Any],
        view: tuple[dict[str, tuple[str, ...]], bool, frozenset[str], frozenset[str]],
    ) -> dict[str, Any]:
        accounts, everyone, groups, members = view
        if everyone:
            granted = {g["principal"] for g in shown["grants"] if g["kind"] == "group"}
            names = {g["principal"] for g in shown["grants"] if g["kind"] == "user"}
            names |= {n for n, gs in accounts.items() if granted.intersection(gs)}
            names |= set(shown["spend"])
        else:
            names = {m for m in members if m in accounts}
        standing = broker.standing(shown["name"], {n: accounts.get(n, ()) for n in names})

        def may_see(kind: str, principal: str) -> bool:
            return everyone or principal in (groups if kind == "group" else members)

        return dataset_entry(shown, standing, may_see)


def default_handlers(broker: Callable[[], Broker | None]) -> list[tuple[str, Any, Any]]:
    args = {"broker": broker}
    return [
        (r"/secure/api/admin/users", UsersHandler, args),
        (r"/secure/api/admin/users/([^/]+)/([^/]+)", UserActionHandler, args),
        (r"/secure/api/admin/budgets", BudgetsAdminHandler, args),
        (r"/secure/api/admin/access-review", AccessReviewHandler, args),
        (r"/secure/api/audit", AuditHandler, args),
        (r"/secure/api/audit/verify", AuditVerifyHandler, args),
    ]
