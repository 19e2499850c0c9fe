"""``/secure/api/trail/…``: the audit trail, its verification and the alarms, for a kernel.

The caller is a guarded kernel, authenticated by the signed token its guard
file carried for this launch (the one ``jupyter_secure.private`` presents to
the broker), checked by ``SecureApp._kernel_caller``: signed by this store,
unexpired, its kernel still running for the same owner, and the token of the
kernel's latest (re)start. The token speaks for the kernel's **owner**, whose
scopes are taken fresh from the policy on every request — a role taken away
stops working at once — and who is then treated exactly like the same person
in the browser: ``secure:audit:read`` reads records about themselves and the
members of their groups, ``secure:audit:admin`` everything
(:func:`jupyter_secure.handlers.admin.audit_page`, one implementation for both).
One thing more than the browser: every owner, whatever their scopes, may read
the records about themselves (a student learning what the trail keeps on
them); the browser's ``/secure/api/audit`` is an admin-panel route and needs
``secure:audit:read``.

No header: 401. A token that is forged, expired, of a stopped or restarted
kernel, or of a disabled account: 403. A scope the owner does not hold: 403
naming the scope. Every refusal is an ``AccessDenied`` record; every read an
``AuditQueried`` or ``AuditVerified`` one. The browser's cookie is no
credential here (this is no JupyterHandler).

Routes (GET; JSON out; errors ``{"error": text, "field"?, "scope"?}``):
``records?user=&event=&since=&until=&limit=&before=``, ``verify``,
``alarms?state=&limit=``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..audit import browse
from ..audit.index import AuditIntegrityError
from ..audit.logger import Identity, Resource
from ..errors import InvalidInput
from ..identity.users import UserDirectory
from ..monitoring.monitor import AlarmMonitor
from ..policy import Decision, Principal
from ..policy.scopes import scope
from ..state import SecureState
from .access import POLICY_SETTING, deny
from .admin import (
    AUDIT_ADMIN,
    STATE_SETTING,
    AuditForbidden,
    audience,
    audit_page,
    verified,
    verified_record,
    verify_summary,
)
from .base import run_blocking
from .kernel_token import KernelTokenHandler

__all__ = ["TrailHandler", "default_handlers"]

#: ``authenticate(token) -> (kernel id, owner, groups)``, or None for a token it refuses.
Authenticate = Callable[[str], "tuple[str, str, tuple[str, ...] | None] | None"]
ALARMS_READ = scope("secure:alarms:read")
#: The scope each route needs (None: any owner may read the records about themselves;
#: ``secure:audit:read`` and ``…:admin`` widen what they see, as in the browser).
_NEEDS: dict[str, str | None] = {"records": None, "verify": AUDIT_ADMIN, "alarms": ALARMS_READ}
_ALARM_STATES = ("ALARM", "OK", "INSUFFICIENT_DATA", "unacked")
_PARAMS = {
    "records": {"user", "event", "since", "until", "limit", "before"},
    "verify": set(),
    "alarms": {"state", "limit"},
}


class _Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("error"))
        self.status = status
        self.body = body


class TrailHandler(KernelTokenHandler):
    """One handler for the three routes; ``what`` says which."""

    def initialize(
        self, authenticate: Authenticate, monitor: Callable[[], AlarmMonitor | None]
    ) -> None:
        self._authenticate = authenticate
        self._monitor = monitor

    @property
    def state(self) -> SecureState:
        found = self.settings.get(STATE_SETTING)
        if found is None:
            raise _Refused(503, {"error": "the state store is not open"})
        return found  # type: ignore[no-any-return]

    def _refuse(
        self, status: int, rule: str, error: str, who: Principal | None = None, **extra: str
    ) -> _Refused:
        """A refusal, noted for the ``AccessDenied`` record (written when the request ends)."""
        deny(self, Decision(False, extra.get("scope", ""), rule), user=_Named(who) if who else None)
        return _Refused(status, {"error": error, **extra})

    def _owner(self) -> tuple[str, Principal]:
        """(kernel id, its owner as the policy sees them now), or a refusal."""
        token = self.kernel_token()
        if token is None:
            raise self._refuse(
                401,
                "trail: no kernel token",
                "the trail answers guarded kernels only (no kernel token)",
            )
        found = self._authenticate(token)
        if found is None:
            raise self._refuse(
                403,
                "trail: kernel token refused",
                "this kernel's token is not valid (forged, expired, or of a "
                "stopped or restarted kernel)",
            )
        kernel_id, name, _ = found
        with self.state.db.read() as s:
            user = UserDirectory().find(s, name)
            account = (
                None
                if user is None or user.disabled
                else Principal(
                    user.name, [r.role for r in user.roles], [g.group_name for g in user.groups]
                )
            )
        if account is None:
            raise self._refuse(
                403,
                "trail: the kernel's owner is gone or disabled",
                "this kernel's owner is disabled",
                Principal(name),
            )
        return kernel_id, account

    async def get(self, what: str) -> None:
        try:
            await self._get(what)
        except _Refused as exc:
            self._reply(exc.status, exc.body)

    async def _get(self, what: str) -> None:
        kernel_id, who = await run_blocking(self._owner)
        policy = self.settings[POLICY_SETTING].current
        scopes = policy.effective_scopes(who)
        needed = _NEEDS[what]
        if needed is not None and needed not in scopes:
            raise self._refuse(
                403,
                f"trail: {who.name} does not hold {needed}",
                f"{who.name} does not hold {needed}",
                who,
                scope=needed,
            )
        args = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        unknown = sorted(set(args) - _PARAMS[what])
        if unknown:
            raise _Refused(400, {"error": "unknown parameter", "field": unknown[0]})
        identity = Identity("User", who.name, tuple(sorted(who.roles)), tuple(sorted(who.groups)))
        resources = [Resource("audit-trail", self.state.trail_id), Resource("kernel", kernel_id)]
        if what == "records":
            await self._records(args, who, scopes, identity, resources)
        elif what == "verify":
            report, mirrored = await verified(self.state)
            await self.state.audit.record_async(
                "AuditVerified",
                identity=identity,
                **verified_record(report, mirrored),
                resources=resources,
                read_only=True,
            )
            self._reply(200, verify_summary(report))
        else:
            await self._alarms(args)

    async def _records(
        self,
        args: dict[str, str],
        who: Principal,
        scopes: frozenset[str],
        identity: Identity,
        resources: list[Resource],
    ) -> None:
        try:
            req = browse.parse_request(
                args, now=time.time(), known_events=self.state.audit.schemas.names()
            )
        except InvalidInput as exc:
            raise _Refused(400, {"error": exc.message, "field": exc.field}) from None
        policy = self.settings[POLICY_SETTING].current
        try:
            users = await run_blocking(audience, self.state, policy, who, scopes)
            records, after = await run_blocking(audit_page, self.state, users, req)
        except AuditForbidden:
            raise self._refuse(
                403,
                f"trail: {who.name} may not read about {req.user}",
                "you may read records about yourself and the members of your groups only",
                who,
                field="user",
                scope=AUDIT_ADMIN,
            ) from None
        except AuditIntegrityError as exc:
            raise _Refused(
                500,
                {
                    "error": f"audit record seq {exc.seq} does not match its "
                    "hash; ask an administrator to verify the trail"
                },
            ) from None
        request = {**req.recorded(args.get("since"), args.get("until")), "format": "kernel"}
        await self.state.audit.record_async(
            "AuditQueried",
            identity=identity,
            request=request,
            response={"records": len(records)},
            resources=resources,
            read_only=True,
        )
        self._reply(200, {"records": records, "next": after})

    async def _alarms(self, args: dict[str, str]) -> None:
        monitor = self._monitor()
        if monitor is None:
            raise _Refused(503, {"error": "the alarm monitor is not running"})
        state = args.get("state") or None
        if state is not None and state not in _ALARM_STATES:
            raise _Refused(
                400, {"error": f"expected one of {', '.join(_ALARM_STATES)}", "field": "state"}
            )
        try:
            limit = browse.parse_limit(args.get("limit"), most=1000)
        except InvalidInput as exc:
            raise _Refused(400, {"error": exc.message, "field": exc.field}) from None
        rows = await run_blocking(monitor.store.find, state=state, since=None, limit=limit)
        self._reply(200, {"alarms": [r.as_dict() for r in rows], "firing": monitor.firing()})


class _Named:
    """Who a refused kernel request spoke for, for the ``AccessDenied`` record."""

    def __init__(self, who: Principal) -> None:
        self.username = who.name
        self.roles = tuple(sorted(who.roles))
        self.groups = tuple(sorted(who.groups))


def default_handlers(
    authenticate: Authenticate, monitor: Callable[[], AlarmMonitor | None]
) -> list[tuple[str, Any, dict[str, Any]]]:
    args = {"authenticate": authenticate, "monitor": monitor}
    return [(r"/secure/api/trail/(?P<what>records|verify|alarms)", TrailHandler, args)]
