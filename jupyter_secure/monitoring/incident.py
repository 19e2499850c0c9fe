"""Incident response: freeze an account in one step, and say what was done.

``freeze`` is what an administrator runs first when an account may be in the
wrong hands (a stolen password, a lost phone, a suspected leak, a bypass
alarm). In order, in one database transaction whose audit records are durable
before it commits:

1. the account is disabled (the ``user disable`` code, its ``UserDisabled``
   record; skipped, and said, when it was disabled already);
2. every live sign-in session ends with reason ``incident`` (one
   ``SessionEnded`` record each, naming the session);
3. every API token still standing is revoked (one ``ApiTokenRevoked`` each);
4. an ``IncidentFrozen`` record, with a new incident id, says what was done;

and then a signed checkpoint is forced, so that the incident record is
covered by a signature at once rather than within the next checkpoint
interval: whoever holds the account cannot cut it off the trail unnoticed.

**No fresh second factor (step-up) is asked for**, unlike every other
administrative change: a freeze only takes access away, never gives it, and
the moment to freeze is often the moment an administrator's own phone or
session is in doubt. Giving access back (``user enable``, a new password,
``mfa reset``) is where the checks stay.

**Kernels** are stopped by the running server: its session enforcer reads the
database every couple of seconds, shuts down the kernels of disabled users and
closes connections whose session ended (tested on a live server). The command
line runs in another process and cannot reach them, so the result says so
instead of claiming it. A broker running as its own service (``broker serve
--trust-key``) keeps no user table: the broker tokens it accepts stay valid
until they expire (``KernelGuard.broker_token_hours``), though their kernels
are gone.

Pure: no Jupyter imports; the same function serves the command line and a
future REST endpoint (which passes the signed-in administrator as ``actor``).
It blocks while the records become durable and the checkpoint is signed, so
a handler runs it on a thread, as it does other database writes.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from sqlalchemy import select

from ..audit.ids import uuid7
from ..audit.logger import AuditLogger, Identity, Resource
from ..audit.sink import AuditUnavailable, Receipt
from ..errors import InvalidInput
from ..identity import sessions, tokens
from ..identity.users import UserDirectory
from ..storage.database import Database
from ..storage.models import ApiToken, LoginSession, User

__all__ = ["END_REASON", "MAX_REASON", "FreezeResult", "freeze"]

#: The ``end_reason`` of sessions a freeze ends (and the SessionEnded reason).
END_REASON = "incident"
#: Who stops the frozen user's kernels (the IncidentFrozen ``kernelsToStop``).
KERNELS_STOPPED_BY = "server"
MAX_REASON = 500


@dataclass(frozen=True)
class FreezeResult:
    """What one freeze did, in the order it was done."""

    user: str
    reason: str
    incident_id: str
    #: True when this freeze disabled the account; False when it was disabled already
    disabled: bool
    #: public ids of the sign-in sessions ended
    sessions_ended: tuple[str, ...]
    #: ids of the API tokens revoked
    tokens_revoked: tuple[str, ...]
    #: sequence number of the IncidentFrozen record
    record_seq: int
    #: why the forced checkpoint could not be signed (None: it was)
    checkpoint_error: str | None = None

    def lines(self) -> list[str]:
        """One line per step, for a person reading a terminal."""
        n_sessions, n_tokens = len(self.sessions_ended), len(self.tokens_revoked)
        return [
            f"incident {self.incident_id}: froze {self.user} (reason: {self.reason})",
            "1. account disabled"
            if self.disabled
            else "1. account was already disabled (left disabled)",
            f"2. ended {n_sessions} sign-in session(s)"
            + (f": {', '.join(self.sessions_ended)}" if n_sessions else ""),
            f"3. revoked {n_tokens} API token(s)"
            + (f": {', '.join(self.tokens_revoked)}" if n_tokens else ""),
            f"4. recorded IncidentFrozen as audit record #{self.record_seq} "
            f"(find it with --resource incident:{self.incident_id})",
            f"5. signed a checkpoint covering record #{self.record_seq}"
            if self.checkpoint_error is None
            else f"5. FAILED to sign a checkpoint: {self.checkpoint_error}",
            f"kernels: the running server shuts down {self.user}'s kernels when it reads "
            "this record (within seconds); this command runs in another process and "
            "cannot stop them itself",
        ]


def _check_reason(reason: str) -> str:
    text = " ".join(reason.split())  # one line in the trail and on the terminal
    if not text:
        raise InvalidInput("reason", "say why (it goes into the incident record)")
    if len(text) > MAX_REASON:
        raise InvalidInput("reason", f"at most {MAX_REASON} characters (got {len(text)})")
    return text


def _wait(futures: list[Future[Receipt]], timeout: float) -> list[Receipt]:
    try:
        return [f.result(timeout) for f in futures]
    except FutureTimeout:
        raise AuditUnavailable("timed out waiting for the audit trail") from None


def freeze(
    db: Database,
    audit: AuditLogger,
    user: str,
    reason: str,
    actor: Identity,
    *,
    clock: Callable[[], float] = time.time,
) -> FreezeResult:
    """Freeze ``user`` (see the module docstring); safe to repeat.

    An unknown user or an empty reason is refused (:class:`InvalidInput`)
    before anything is written, to the database or to the trail.
    """
    reason = _check_reason(reason)
    now_ts = clock()
    now = dt.datetime.fromtimestamp(now_ts, dt.UTC)
    incident_id = str(uuid7(int(now_ts * 1e9)))
    with db.write() as s:
        account = s.scalar(select(User).where(User.name == user))
        if account is None:
            raise InvalidInput("user", f"no user named {user!r}")
        disabled = UserDirectory().set_disabled(s, user, True)
        live = s.scalars(
            select(LoginSession)
            .where(LoginSession.user_id == account.id, LoginSession.ended_at.is_(None))
            .order_by(LoginSession.created_at)
        ).all()
        for row in live:
            sessions.end_session(row, now=now, reason=END_REASON)
        standing = s.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == account.id, ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.created_at)
        ).all()
        revoked = [tokens.revoke_token(s, account, row.id, now=now).id for row in standing]
        ended = [row.public_id for row in live]
        s.flush()

        # Queued in order and awaited together: one group commit, and every record is
        # durable before the transaction commits (a failure leaves the account as it was).
        target = [Resource("user", user)]
        futures: list[Future[Receipt]] = []
        if disabled:
            futures.append(
                audit.submit(
                    "UserDisabled",
                    identity=actor,
                    request={"name": user},
                    response={"sessionsEnded": len(ended), "tokensRevoked": len(revoked)},
                    resources=target,
                )
            )
        roles = tuple(r.role for r in account.roles)
        groups = tuple(g.group_name for g in account.groups)
        for public_id in ended:
            # The shape the server records for a session it ends: the session's user,
            # naming the session; who froze it is the IncidentFrozen record's identity.
            futures.append(
                audit.submit(
                    "SessionEnded",
                    identity=Identity("User", user, roles, groups, session_id=public_id),
                    request={"reason": END_REASON},
                    resources=target,
                )
            )
        for token_id in revoked:
            futures.append(
                audit.submit(
                    "ApiTokenRevoked", identity=actor, request={"id": token_id}, resources=target
                )
            )
        futures.append(
            audit.submit(
                "IncidentFrozen",
                identity=actor,
                request={"user": user, "reason": reason},
                response={
                    "incidentId": incident_id,
                    "disabled": disabled,
                    "sessionsEnded": len(ended),
                    "tokensRevoked": len(revoked),
                    "kernelsToStop": KERNELS_STOPPED_BY,
                },
                resources=[*target, Resource("incident", incident_id)],
            )
        )
        receipts = _wait(futures, audit.sink.append_timeout)
    checkpoint_error = None
    try:
        audit.sink.checkpoint()
    except AuditUnavailable as exc:
        # The freeze stands (it is committed and its records are durable); the caller
        # reports that the signature is missing.
        checkpoint_error = str(exc)
    return FreezeResult(
        user=user,
        reason=reason,
        incident_id=incident_id,
        disabled=disabled,
        sessions_ended=tuple(ended),
        tokens_revoked=tuple(revoked),
        record_seq=receipts[-1].seq,
        checkpoint_error=checkpoint_error,
    )
