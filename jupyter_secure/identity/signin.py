"""Signing in: password, then a second factor, with enrolment, lockout and step-up.

This is the logic behind the sign-in pages, free of tornado so that it can be
tested with a frozen clock and reused by the CLI. Every decision is recorded
in the audit trail before the caller sees it.

Rules (all settings are traits of :class:`SignInPolicy`):

* Wrong user name and wrong password get the same answer and cost the same
  time (an Argon2 verification runs either way). So does a locked account:
  answering "locked" only to the right password would tell an attacker the
  password was right.
* Growing delays: after failures for a user name, or (for passwords, and
  more leniently, since a classroom shares one address) from an IP address,
  the next attempt must wait ``throttle_base * 2^(n-k)`` seconds, capped at
  ``throttle_max``. Delays slow guessing; only the lockout stops it.
* Lockout: ``max_failures`` failed factors (password or code) within
  ``failure_window`` lock the account for ``lockout_cooldown``, or until an
  administrator runs ``jupyter secure user unlock``.
* TOTP codes are accepted once: a code's time step must be newer than the
  last one accepted for that user.
* A session is ``full`` only after the second factor; enrolment is
  confirm-before-activate and ends with ten single-use recovery codes.
* Sensitive actions need a second factor entered within ``step_up_max_age``.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import qrcode
import qrcode.image.svg
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from traitlets import Bool, Float, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from ..audit.logger import AuditLogger, Identity, Resource
from ..errors import InvalidInput
from ..storage.database import Database
from ..storage.models import ApiToken, AuthFailure, LoginSession, RecoveryCode, User
from ..storage.secrets import SecretStore
from . import recovery, sessions, tokens, totp
from .passwords import verify_password

__all__ = ["Enrollment", "Outcome", "SignIn", "SignInPolicy", "TokenUser"]

FAILED = "Sign-in failed. Check your user name and password and try again."
CODE_FAILED = "That code was not accepted. Enter the current code from your authenticator app."
RECOVERY_KEY = "identity/recovery-hmac-key"
_UNKNOWN = "(unknown)"
_NAME_SAFE = re.compile(r"[^\w.@+-]")
# What may appear in the trail as an attempted user name: a password typed into the
# wrong field must not be recorded, even "lightly masked".
_VALID_NAME = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")


class SignInPolicy(LoggingConfigurable):
    """How long sessions live, when sign-in slows down and locks, who must use MFA."""

    session_lifetime = Float(
        8 * 3600.0,
        help="Seconds a session may live, however active (absolute lifetime).",
    ).tag(config=True)
    idle_timeout = Float(
        30 * 60.0, help="Seconds without a request after which a session ends."
    ).tag(config=True)
    max_failures = Int(
        5,
        help="""Failed factors (wrong password or code) within failure_window that
        lock the account.""",
    ).tag(config=True)
    failure_window = Float(15 * 60.0, help="Seconds over which failed factors are counted.").tag(
        config=True
    )
    lockout_cooldown = Float(
        15 * 60.0,
        help="""Seconds an account stays locked, unless an administrator unlocks it
        first (jupyter secure user unlock).""",
    ).tag(config=True)
    throttle_base = Float(
        1.0,
        help="""Delay in seconds imposed after the second failure for a user name;
        it doubles with every further failure in the window.""",
    ).tag(config=True)
    throttle_max = Float(60.0, help="The longest delay imposed between attempts.").tag(config=True)
    ip_free_failures = Int(
        30,
        help="""Failed passwords from one IP address (all user names together) within
        failure_window before password attempts from that address are slowed down
        like a user name's. Generous, because a classroom or an office often shares
        one address: an attacker there can slow everyone's sign-in (never lock it).
        0 turns the per-address limit off.""",
    ).tag(config=True)
    step_up_max_age = Float(
        300.0,
        help="""Sensitive actions (administration, unmasked data, budgets, API
        tokens) need a second factor entered within this many seconds.""",
    ).tag(config=True)
    mfa_required_roles = List(
        Unicode(),
        default_value=["*"],
        help="""Roles whose members must use a second factor; "*" means every role.
        A user needs MFA when any of their roles is listed.""",
    ).tag(config=True)
    issuer = Unicode(
        "jupyter-secure",
        help="The name authenticator apps show next to the account (the otpauth issuer).",
    ).tag(config=True)
    token_max_days = Int(90, help="Longest lifetime, in days, of an API token.").tag(config=True)
    always_secure_cookie = Bool(
        False,
        help="""Mark the session cookie Secure even when the request arrived over plain
        HTTP: set this behind a proxy that terminates TLS (or set
        ServerApp.trust_xheaders so the server sees the original scheme).""",
    ).tag(config=True)


@dataclass(frozen=True)
class Outcome:
    """What a sign-in step decided. ``message`` is safe to show; ``token`` is the new cookie."""

    ok: bool
    message: str = ""
    error: str | None = None
    retry_after: float | None = None
    token: str | None = None
    session: sessions.SessionInfo | None = None
    next: str | None = None
    recovery_codes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Enrollment:
    user: str
    secret: str
    uri: str
    qr_svg: str


@dataclass(frozen=True)
class TokenUser:
    """An identity established by an API token: only the token's scopes count."""

    name: str
    token_id: str
    scopes: frozenset[str]
    #: the owner's roles and groups now: a token never outlives a role taken away
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


def _clean_name(name: str) -> str:
    """An attempted user name as it may appear in the trail: short, no control characters."""
    return _NAME_SAFE.sub("?", name)[:64]


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


class SignIn:
    """The sign-in service over the state database, the secret store and the audit trail."""

    def __init__(
        self,
        db: Database,
        secrets: SecretStore,
        audit: AuditLogger,
        policy: SignInPolicy,
        *,
        user_scopes: Callable[[User], frozenset[str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.audit = audit
        self.policy = policy
        self.user_scopes = user_scopes
        self.clock = clock
        # Fetched once, outside any transaction: a nested write would wait on itself.
        self.recovery_key = secrets.get_or_create(RECOVERY_KEY, lambda: os.urandom(32))
        self._throttle_noted: dict[tuple[str, str], float] = {}

    # -- helpers ----------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        return _utc(self.clock())

    def mfa_required(self, user: User) -> bool:
        if user.service:  # never signs in; reaches the server only with admin-made tokens
            return False
        wanted = set(self.policy.mfa_required_roles)
        return "*" in wanted or any(r.role in wanted for r in user.roles)

    def identity(self, user: User | None, name: str = _UNKNOWN, **kw: Any) -> Identity:
        if user is None:
            return Identity("User", name)
        return Identity(
            "User",
            user.name,
            tuple(r.role for r in user.roles),
            tuple(g.group_name for g in user.groups),
            **kw,
        )

    def _record(
        self,
        name: str,
        identity: Identity,
        *,
        ip: str | None,
        user_agent: str | None,
        request: dict[str, Any] | None = None,
        response: dict[str, Any] | None = None,
        error: str | None = None,
        message: str | None = None,
        user: str | None = None,
    ) -> None:
        self.audit.record(
            name,
            identity=identity,
            request=request,
            response=response,
            error_code=error,
            error_message=message,
            source_ip=ip,
            user_agent=(user_agent or "")[:300] or None,
            resources=[Resource("user", user)] if user else [],
        )

    # -- throttling and lockout -------------------------------------------------------------

    def _wait(
        self, s: Session, user_name: str, now: dt.datetime, *, ip: str | None = None
    ) -> float:
        """Seconds until another attempt is allowed (0: go ahead).

        Always keyed by user name (one free failure, then growing delays). The
        password step also passes the client address: spraying one password over
        many accounts from one address is slowed once that address has failed
        ``ip_free_failures`` times. Neither limit locks anyone out; only failures
        for one account lock that account.
        """
        since = now - dt.timedelta(seconds=self.policy.failure_window)
        limits = [(AuthFailure.user_name, user_name, 1)]
        if ip is not None and self.policy.ip_free_failures > 0:
            limits.append((AuthFailure.ip, ip, self.policy.ip_free_failures))
        wait = 0.0
        for column, value, free in limits:
            n, last = s.execute(
                select(func.count(), func.max(AuthFailure.at)).where(
                    column == value, AuthFailure.at > since
                )
            ).one()
            if n <= free or last is None:
                continue
            last = last if last.tzinfo else last.replace(tzinfo=dt.UTC)
            gap = min(self.policy.throttle_base * 2 ** (n - free - 1), self.policy.throttle_max)
            wait = max(wait, (last - now).total_seconds() + gap)
        return float(wait)

    def _note_throttled(self, event: str, name: str, ident: Identity, ip: str | None) -> None:
        """Record a throttled attempt at most once a minute per user name: attackers'
        traffic must not be able to grow the trail without bound."""
        key = (event, name)
        now = self.clock()
        if now - self._throttle_noted.get(key, 0.0) < 60:
            return
        self._throttle_noted[key] = now
        if len(self._throttle_noted) > 10_000:
            self._throttle_noted.clear()
        self._record(
            event,
            ident,
            ip=ip,
            user_agent=None,
            request={"userName": name} if event == "Login" else {"method": "totp"},
            error="Throttled",
            user=None,
        )

    @staticmethod
    def _lock_row(s: Session, user_id: int) -> User | None:
        """The user row, locked for this transaction (PostgreSQL; SQLite's BEGIN IMMEDIATE
        already serialises writers): two requests with one code cannot both pass."""
        # populate_existing: an object already in this session's identity map would
        # otherwise keep the attribute values read before the lock was taken.
        return s.scalar(
            select(User)
            .where(User.id == user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    def _fail(
        self,
        s: Session,
        user: User | None,
        *,
        user_name: str,
        ip: str | None,
        factor: str,
        now: dt.datetime,
    ) -> bool:
        """Count a failed factor; lock the account when it crosses the threshold.

        Returns True when this failure locked the account.
        """
        # Counted even while locked, so a locked account is throttled exactly like any
        # other name: its behaviour must not reveal that it exists or is locked.
        s.add(AuthFailure(user_name=user_name, ip=(ip or "")[:64] or None, factor=factor, at=now))
        s.flush()
        if user is None or self._locked(user, now):
            return False
        since = now - dt.timedelta(seconds=self.policy.failure_window)
        n = s.scalar(
            select(func.count()).where(AuthFailure.user_name == user.name, AuthFailure.at > since)
        )
        if (n or 0) >= self.policy.max_failures:
            user.locked_until = now + dt.timedelta(seconds=self.policy.lockout_cooldown)
            return True
        return False

    @staticmethod
    def _locked(user: User, now: dt.datetime) -> bool:
        return user.locked_until is not None and user.locked_until > now

    def _lift_expired_lock(self, user: User | None, now: dt.datetime) -> None:
        """A lock whose cool-down has passed is lifted, and the lifting recorded."""
        if user is None or user.locked_until is None or user.locked_until > now:
            return
        user.locked_until = None
        self._record(
            "UserUnlocked",
            Identity.system(),
            ip=None,
            user_agent=None,
            request={"name": user.name, "reason": "cool-down"},
            user=user.name,
        )

    def _note_lock(self, user: User, ip: str | None, user_agent: str | None) -> None:
        self._record(
            "UserLocked",
            Identity.system(),
            ip=ip,
            user_agent=user_agent,
            request={"name": user.name, "failures": self.policy.max_failures},
            response={"lockedUntil": user.locked_until.isoformat() if user.locked_until else ""},
            user=user.name,
        )

    # -- step 1: password -------------------------------------------------------------------

    def password(
        self,
        user_name: str,
        password: str,
        *,
        ip: str | None,
        user_agent: str | None,
        previous: str | None = None,
    ) -> Outcome:
        """Check a user name and password; on success start a pre-MFA (or enrol) session.

        The Argon2 verification runs outside any transaction, so sign-ins do not
        queue behind each other's hashing while holding the database's write lock.
        ``previous`` is the session cookie the browser sent, ended when a new
        sign-in starts.
        """
        now = self.now()
        name = _clean_name(user_name.strip())
        shown = name if _VALID_NAME.match(name) else "(not a user name)"
        with self.db.read() as s:
            wait = self._wait(s, name, now, ip=ip)
            user = s.scalar(select(User).where(User.name == name)) if name else None
            stored = user.password_hash if user is not None else None
            user_id = user.id if user is not None else None
        if wait > 0:
            self._note_throttled("Login", shown, self.identity(None), ip)
            return Outcome(False, _throttled(wait), "throttled", retry_after=wait)
        good = verify_password(stored, password)
        with self.db.write() as s:
            user = self._lock_row(s, user_id) if user_id is not None else None
            self._lift_expired_lock(user, now)
            locked = user is not None and self._locked(user, now)
            if not good or user is None or user.disabled or locked or user.service:
                reason = (
                    "AccountLocked"
                    if locked
                    else "AccountDisabled"
                    if user is not None and user.disabled and good
                    else "InvalidCredentials"
                )
                just_locked = self._fail(s, user, user_name=name, ip=ip, factor="password", now=now)
                self._record(
                    "Login",
                    self.identity(user),
                    ip=ip,
                    user_agent=user_agent,
                    request={"userName": shown},
                    error=reason,
                    user=user.name if user else None,
                )
                if just_locked and user is not None:
                    self._note_lock(user, ip, user_agent)
                return Outcome(False, FAILED, "invalid")
            if previous:
                old = sessions.find_session(s, previous)
                if old is not None:
                    sessions.end_session(old[0], now=now, reason="replaced")
            if not self.mfa_required(user):
                stage = sessions.STAGE_FULL
            elif user.mfa_enrolled_at is None:
                stage = sessions.STAGE_ENROLL
            else:
                stage = sessions.STAGE_PASSWORD
            token, info = sessions.start_session(
                s, user, stage, now=now, ip=ip, user_agent=user_agent
            )
            if stage == sessions.STAGE_FULL:
                user.last_login_at = now
            next_step = {"password": "mfa", "enroll": "enroll", "full": "done"}[stage]
            self._record(
                "Login",
                self.identity(user, session_id=info.public_id),
                ip=ip,
                user_agent=user_agent,
                request={"userName": shown},
                response={"next": next_step},
                user=user.name,
            )
            return Outcome(True, token=token, session=info, next=next_step)

    def _half_done(self, s: Session, token: str, stage: str) -> tuple[LoginSession, User] | None:
        """The pre-MFA session a POST continues, locked, if it is still in time."""
        found = sessions.find_session(s, token)
        if found is None or found[0].stage != stage or found[1].disabled:
            return None
        row, user = found
        if (self.now() - row.created_at).total_seconds() > self.policy.failure_window:
            sessions.end_session(row, now=self.now(), reason="expired")
            return None  # a half-finished sign-in does not wait forever
        locked = self._lock_row(s, user.id)
        return (row, locked) if locked is not None else None

    # -- step 2: second factor --------------------------------------------------------------

    def pending(self, token: str, stage: str) -> tuple[LoginSession, User] | None:
        """The live session a sign-in page needs (in ``stage``), else None."""
        with self.db.read() as s:
            found = sessions.find_session(s, token)
            if found is None or found[0].stage != stage or found[1].disabled:
                return None
            row, user = found
            age = (self.now() - row.created_at).total_seconds()
            if age > self.policy.failure_window:
                return None  # a half-finished sign-in does not wait forever
            s.expunge_all()
            return row, user

    def second_factor(
        self,
        token: str,
        *,
        otp: str | None = None,
        recovery_code: str | None = None,
        ip: str | None,
        user_agent: str | None,
    ) -> Outcome:
        """Check a TOTP code or a recovery code; on success start a new full session."""
        now = self.now()
        method = "recovery" if recovery_code else "totp"
        with self.db.write() as s:
            found = self._half_done(s, token, sessions.STAGE_PASSWORD)
            if found is None:
                return Outcome(False, "Your sign-in expired. Start again.", "expired")
            row, user = found
            ident = self.identity(user, session_id=row.public_id)
            wait = self._wait(s, user.name, now)
            if wait > 0:
                self._note_throttled("MfaVerify", user.name, ident, ip)
                return Outcome(False, _throttled(wait), "throttled", retry_after=wait)
            self._lift_expired_lock(user, now)
            if self._locked(user, now):
                self._record(
                    "MfaVerify",
                    ident,
                    ip=ip,
                    user_agent=user_agent,
                    request={"method": method},
                    error="AccountLocked",
                    user=user.name,
                )
                return Outcome(False, CODE_FAILED, "invalid")
            remaining: int | None = None
            if recovery_code:
                ok, reason, remaining = self._use_recovery_code(s, user, recovery_code, now)
            else:
                ok, reason = self._check_totp(s, user, otp or "", now)
            if not ok:
                just_locked = self._fail(
                    s, user, user_name=user.name, ip=ip, factor=method, now=now
                )
                self._record(
                    "MfaVerify",
                    ident,
                    ip=ip,
                    user_agent=user_agent,
                    request={"method": method},
                    error=reason,
                    user=user.name,
                )
                if just_locked:
                    self._note_lock(user, ip, user_agent)
                return Outcome(False, CODE_FAILED, "invalid")
            sessions.end_session(row, now=now, reason="signed-in")
            new_token, info = sessions.start_session(
                s, user, sessions.STAGE_FULL, now=now, ip=ip, user_agent=user_agent, mfa_at=now
            )
            user.last_login_at = now
            response: dict[str, Any] = {"session": info.public_id}
            if remaining is not None:
                response["recoveryCodesRemaining"] = remaining
            self._record(
                "MfaVerify",
                self.identity(user, session_id=info.public_id, mfa=True),
                ip=ip,
                user_agent=user_agent,
                request={"method": method},
                response=response,
                user=user.name,
            )
            if remaining is not None:
                self._record(
                    "RecoveryCodeUsed",
                    self.identity(user, session_id=info.public_id, mfa=True),
                    ip=ip,
                    user_agent=user_agent,
                    request={"name": user.name},
                    response={"remaining": remaining},
                    user=user.name,
                )
            return Outcome(True, token=new_token, session=info, next="done")

    def _check_totp(self, s: Session, user: User, code: str, now: dt.datetime) -> tuple[bool, str]:
        secret = self.secrets.get(s, f"totp/{user.id}")
        if secret is None:
            return False, "NotEnrolled"
        result = totp.check_code(
            secret.decode(), code, now=now.timestamp(), last_step=user.mfa_last_step
        )
        if not result.ok:
            return False, {"malformed": "MalformedCode", "replayed": "ReplayedCode"}.get(
                result.reason, "InvalidCode"
            )
        user.mfa_last_step = result.step
        return True, "ok"

    def _use_recovery_code(
        self, s: Session, user: User, code: str, now: dt.datetime
    ) -> tuple[bool, str, int | None]:
        digest = recovery.hash_code(self.recovery_key, code)
        row = s.scalar(
            select(RecoveryCode).where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_hash == digest,
                RecoveryCode.used_at.is_(None),
            )
        )
        if row is None:
            return False, "InvalidRecoveryCode", None
        row.used_at = now
        s.flush()
        left = s.scalar(
            select(func.count()).where(
                RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
            )
        )
        return True, "ok", int(left or 0)

    # -- enrolment --------------------------------------------------------------------------

    def enrollment(self, token: str) -> Enrollment | None:
        """The QR code and secret for a session in the enrol stage.

        The secret belongs to this session (someone else who knows the password
        and opens the page gets a different one), unless an administrator issued
        one with ``jupyter secure mfa enroll``; an enrolled user has nothing to enrol.
        """
        found = self.pending(token, sessions.STAGE_ENROLL)
        if found is None or found[1].mfa_enrolled_at is not None:
            return None
        row, user = found
        with self.db.read() as s:
            issued = self.secrets.get(s, _pending_name(user.id, None))
        if issued is not None:
            secret = issued.decode()
        else:
            name = _pending_name(user.id, row.public_id)
            secret = self.secrets.get_or_create(name, lambda: totp.new_secret().encode()).decode()
        uri = totp.provisioning_uri(secret, user.name, self.policy.issuer)
        return Enrollment(user.name, secret, uri, qr_svg(uri))

    def finish_enrollment(
        self, token: str, code: str, *, ip: str | None, user_agent: str | None
    ) -> Outcome:
        """Activate the pending secret once a first code verifies; returns recovery codes."""
        now = self.now()
        with self.db.write() as s:
            found = self._half_done(s, token, sessions.STAGE_ENROLL)
            if found is None or found[1].mfa_enrolled_at is not None:
                return Outcome(False, "Your sign-in expired. Start again.", "expired")
            row, user = found
            ident = self.identity(user, session_id=row.public_id)
            wait = self._wait(s, user.name, now)
            if wait > 0:
                return Outcome(False, _throttled(wait), "throttled", retry_after=wait)
            self._lift_expired_lock(user, now)
            if self._locked(user, now):
                return Outcome(False, CODE_FAILED, "invalid")
            ok, reason, step = self._confirm_pending(s, user, code, now, row.public_id)
            if not ok:
                just_locked = self._fail(
                    s, user, user_name=user.name, ip=ip, factor="enroll", now=now
                )
                self._record(
                    "MfaEnrolled",
                    ident,
                    ip=ip,
                    user_agent=user_agent,
                    request={"name": user.name, "method": "totp"},
                    error=reason,
                    user=user.name,
                )
                if just_locked:
                    self._note_lock(user, ip, user_agent)
                return Outcome(False, CODE_FAILED, "invalid")
            assert step is not None  # noqa: S101 - set whenever ok
            codes = self._activate(s, user, step, now)
            sessions.end_session(row, now=now, reason="enrolled")
            new_token, info = sessions.start_session(
                s, user, sessions.STAGE_FULL, now=now, ip=ip, user_agent=user_agent, mfa_at=now
            )
            user.last_login_at = now
            self._record(
                "MfaEnrolled",
                self.identity(user, session_id=info.public_id, mfa=True),
                ip=ip,
                user_agent=user_agent,
                request={"name": user.name, "method": "totp"},
                response={"recoveryCodes": len(codes)},
                user=user.name,
            )
            return Outcome(True, token=new_token, session=info, next="done", recovery_codes=codes)

    def _confirm_pending(
        self, s: Session, user: User, code: str, now: dt.datetime, session_id: str | None
    ) -> tuple[bool, str, tuple[int, bytes] | None]:
        """Check ``code`` against the pending secret; on success (its step, the secret)."""
        pending = self.secrets.get(s, _pending_name(user.id, None))
        if pending is None and session_id is not None:
            pending = self.secrets.get(s, _pending_name(user.id, session_id))
        if pending is None:
            return False, "NoPendingSecret", None
        result = totp.check_code(pending.decode(), code, now=now.timestamp(), last_step=None)
        if not result.ok:
            return False, "InvalidCode" if result.reason != "malformed" else "MalformedCode", None
        assert result.step is not None  # noqa: S101 - ok results carry their step
        return True, "ok", (result.step, pending)

    def _activate(
        self, s: Session, user: User, confirmed: tuple[int, bytes], now: dt.datetime
    ) -> list[str]:
        """Make the confirmed secret the user's; every other pending secret and every
        other half-finished sign-in of theirs ends with it."""
        step, secret = confirmed
        self.secrets.put(s, f"totp/{user.id}", secret)
        self.secrets.delete_prefix(s, f"totp-pending/{user.id}")
        for other in s.scalars(
            select(LoginSession).where(
                LoginSession.user_id == user.id,
                LoginSession.ended_at.is_(None),
                LoginSession.stage != sessions.STAGE_FULL,
            )
        ):
            sessions.end_session(other, now=now, reason="enrolled")
        user.mfa_enrolled_at = now
        user.mfa_last_step = step
        s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        codes = recovery.new_codes()
        key = self.recovery_key
        for code in codes:
            s.add(
                RecoveryCode(
                    user_id=user.id, code_hash=recovery.hash_code(key, code), created_at=now
                )
            )
        return codes

    # -- sessions ---------------------------------------------------------------------------

    def resolve(
        self, token: str, *, ip: str | None = None
    ) -> tuple[sessions.SessionInfo, User] | None:
        """The signed-in session a cookie names, enforcing every way a session ends."""
        if not token:
            return None
        now = self.now()
        with self.db.read() as s:
            found = sessions.find_session(s, token)
            if found is None:
                return None
            row, user = found
            if row.stage != sessions.STAGE_FULL:
                return None
            reason = self._end_reason(row, user, now)
            info = sessions.SessionInfo.of(row, user)
            s.expunge_all()
        if reason is not None:
            self._end(token, reason, now, ip)
            return None
        if (now - info.last_seen_at).total_seconds() > 60:
            self._touch(info.id, now)
        return info, user

    def _end_reason(self, row: LoginSession, user: User, now: dt.datetime) -> str | None:
        if user.disabled:
            return "disabled"
        if self.mfa_required(user) and user.mfa_enrolled_at is None:
            return "mfa-reset"
        if (now - row.last_seen_at).total_seconds() > self.policy.idle_timeout:
            return "idle"
        if (now - row.created_at).total_seconds() > self.policy.session_lifetime:
            return "lifetime"
        return None

    def _touch(self, session_id: str, now: dt.datetime) -> None:
        with self.db.write() as s:
            row = s.get(LoginSession, session_id)
            if row is not None and row.ended_at is None:
                row.last_seen_at = now

    def _end(self, token: str, reason: str, now: dt.datetime, ip: str | None) -> None:
        with self.db.write() as s:
            found = sessions.find_session(s, token)
            if found is None:
                return
            self._close(*found, reason=reason, now=now, ip=ip)

    def _close(
        self, row: LoginSession, user: User, *, reason: str, now: dt.datetime, ip: str | None
    ) -> None:
        """End one session and record why (inside the caller's write transaction)."""
        sessions.end_session(row, now=now, reason=reason)
        self._record(
            "SessionEnded",
            self.identity(user, session_id=row.public_id),
            ip=ip,
            user_agent=None,
            request={"reason": reason},
            user=user.name,
        )

    def standing(
        self, session_ids: set[str], token_ids: set[str], names: set[str]
    ) -> tuple[set[str], set[str], set[str]]:
        """For the enforcer: which sessions (public ids) and API tokens (ids) still stand,
        and which of ``names`` are cut off (disabled, removed, or their factor reset)."""
        now = self.now()
        with self.db.read() as s:
            good_sessions, ended = self._standing_sessions(s, session_ids, now)
            good_tokens = self._standing_tokens(s, token_ids, now)
            stopped = self._cut_off(s, names)
        for session_id, reason in ended:
            self._end_by_id(session_id, reason, now)
        return good_sessions, good_tokens, stopped

    def _standing_sessions(
        self, s: Session, ids: set[str], now: dt.datetime
    ) -> tuple[set[str], list[tuple[str, str]]]:
        good: set[str] = set()
        ended: list[tuple[str, str]] = []
        if not ids:
            return good, ended
        rows = s.execute(
            select(LoginSession, User)
            .join(User, User.id == LoginSession.user_id)
            .where(LoginSession.public_id.in_(ids))
        ).all()
        for row, user in rows:
            if row.ended_at is not None or row.stage != sessions.STAGE_FULL:
                continue
            reason = self._end_reason(row, user, now)
            if reason is None:
                good.add(row.public_id)
            else:
                ended.append((row.id, reason))
        return good, ended

    def _standing_tokens(self, s: Session, ids: set[str], now: dt.datetime) -> set[str]:
        if not ids:
            return set()
        rows = s.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.id.in_(ids))
        ).all()
        return {
            token.id
            for token, user in rows
            if token.revoked_at is None
            and token.expires_at > now
            and not user.disabled
            and not (self.mfa_required(user) and user.mfa_enrolled_at is None)
        }

    def _cut_off(self, s: Session, names: set[str]) -> set[str]:
        if not names:
            return set()
        users = list(s.scalars(select(User).where(User.name.in_(names))))
        gone = names - {u.name for u in users}
        return gone | {
            u.name
            for u in users
            if u.disabled or (self.mfa_required(u) and u.mfa_enrolled_at is None)
        }

    def _end_by_id(self, session_id: str, reason: str, now: dt.datetime) -> None:
        with self.db.write() as s:
            row = s.get(LoginSession, session_id)
            user = s.get(User, row.user_id) if row is not None else None
            if row is None or user is None or row.ended_at is not None:
                return
            self._close(row, user, reason=reason, now=now, ip=None)

    def logout(self, token: str, *, ip: str | None, user_agent: str | None) -> None:
        now = self.now()
        with self.db.write() as s:
            found = sessions.find_session(s, token)
            if found is None:
                return
            row, user = found
            sessions.end_session(row, now=now, reason="logout")
            self._record(
                "Logout",
                self.identity(user, session_id=row.public_id),
                ip=ip,
                user_agent=user_agent,
                request={"name": user.name},
                user=user.name,
            )

    def fresh(self, mfa_at: dt.datetime | None) -> bool:
        """Whether a second factor entered at ``mfa_at`` still unlocks sensitive actions."""
        if mfa_at is None:
            return False
        return (self.now() - mfa_at).total_seconds() <= self.policy.step_up_max_age

    def _step_up_code(
        self,
        s: Session,
        user: User,
        code: str,
        ident: Identity,
        now: dt.datetime,
        *,
        ip: str | None,
        user_agent: str | None,
    ) -> Outcome | None:
        """Throttling, lockout and the code itself for a step-up; None when the code holds.

        A refusal is recorded as ``StepUp`` with its reason; a wrong code counts
        towards the lockout like any other.
        """
        wait = self._wait(s, user.name, now)
        if wait > 0:
            return Outcome(False, _throttled(wait), "throttled", retry_after=wait)
        self._lift_expired_lock(user, now)
        if self._locked(user, now):
            self._record(
                "StepUp", ident, ip=ip, user_agent=user_agent, error="AccountLocked", user=user.name
            )
            return Outcome(False, CODE_FAILED, "invalid")
        ok, reason = self._check_totp(s, user, code, now)
        if not ok:
            just_locked = self._fail(s, user, user_name=user.name, ip=ip, factor="step-up", now=now)
            self._record(
                "StepUp", ident, ip=ip, user_agent=user_agent, error=reason, user=user.name
            )
            if just_locked:
                self._note_lock(user, ip, user_agent)
            return Outcome(False, CODE_FAILED, "invalid")
        return None

    def step_up(self, token: str, code: str, *, ip: str | None, user_agent: str | None) -> Outcome:
        """Re-enter a TOTP code in a signed-in session to unlock sensitive actions."""
        now = self.now()
        with self.db.write() as s:
            found = sessions.find_session(s, token)
            if found is None or found[0].stage != sessions.STAGE_FULL:
                return Outcome(False, "Sign in first.", "expired")
            row, _ = found
            user = self._lock_row(s, row.user_id)
            if user is None:
                return Outcome(False, "Sign in first.", "expired")
            ident = self.identity(user, session_id=row.public_id, mfa=row.mfa_at is not None)
            failed = self._step_up_code(s, user, code, ident, now, ip=ip, user_agent=user_agent)
            if failed is not None:
                return failed
            row.mfa_at = now
            self._record(
                "StepUp",
                self.identity(user, session_id=row.public_id, mfa=True),
                ip=ip,
                user_agent=user_agent,
                response={"validSeconds": int(self.policy.step_up_max_age)},
                user=user.name,
            )
            return Outcome(True, session=sessions.SessionInfo.of(row, user))

    def confirm(
        self,
        name: str,
        code: str,
        *,
        scope: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> Outcome:
        """Check a fresh TOTP code of account ``name`` to confirm one action, without a session.

        For sensitive commands run outside the server (``jupyter secure budget set``): the
        account must be enabled, enrolled and, when ``scope`` is given, hold it; the code
        goes through the same throttling, lockout and replay guard as :meth:`step_up`, and
        the outcome is recorded as ``StepUp``. Nothing stays unlocked afterwards
        (``validSeconds`` 0): the caller acts once, now.
        """
        now = self.now()
        with self.db.write() as s:
            user_id = s.scalar(select(User.id).where(User.name == name))
            user = self._lock_row(s, user_id) if user_id is not None else None
            if user is None or user.disabled or user.service:
                problem = f"no enabled person named {name!r}"
                refused = "AccountDisabled" if user is not None else "UnknownUser"
            elif user.mfa_enrolled_at is None:
                problem, refused = f"{name} has no second factor", "NotEnrolled"
            elif scope is not None and scope not in self.user_scopes(user):
                problem, refused = f"{name} does not hold {scope}", "MissingScope"
            else:
                problem = refused = ""
            if refused:
                shown = name if _VALID_NAME.match(name) else "(not a user name)"
                ident = self.identity(user, shown)
                self._record(
                    "StepUp",
                    ident,
                    ip=ip,
                    user_agent=user_agent,
                    error=refused,
                    user=user.name if user else None,
                )
                return Outcome(False, problem, "refused")
            assert user is not None  # noqa: S101 - refused otherwise
            ident = self.identity(user)
            failed = self._step_up_code(s, user, code, ident, now, ip=ip, user_agent=user_agent)
            if failed is not None:
                return failed
            self._record(
                "StepUp",
                self.identity(user, mfa=True),
                ip=ip,
                user_agent=user_agent,
                response={"validSeconds": 0},
                user=user.name,
            )
            return Outcome(True)

    # -- API tokens -------------------------------------------------------------------------

    def create_api_token(
        self,
        info: sessions.SessionInfo,
        *,
        name: Any,
        scopes: Any,
        days: Any,
        ip: str | None,
        user_agent: str | None,
    ) -> tuple[str, tokens.TokenInfo]:
        with self.db.write() as s:
            user = s.get(User, info.user_id)
            if user is None:
                raise InvalidInput("user", "no such user")
            actor = self.identity(user, session_id=info.public_id, mfa=True)
            return self.issue_token(
                s, user, name=name, scopes=scopes, days=days, actor=actor, ip=ip, ua=user_agent
            )

    def issue_token(
        self,
        s: Session,
        user: User,
        *,
        name: Any,
        scopes: Any,
        days: Any,
        actor: Identity,
        ip: str | None = None,
        ua: str | None = None,
    ) -> tuple[str, tokens.TokenInfo]:
        """Create a token for ``user`` within what they hold, and record who made it."""
        token, created = tokens.create_token(
            s,
            user,
            name=name,
            scopes=scopes,
            days=days,
            allowed=self.user_scopes(user),
            max_days=self.policy.token_max_days,
            now=self.now(),
        )
        self._record(
            "ApiTokenCreated",
            actor,
            ip=ip,
            user_agent=ua,
            request={"name": created.name, "scopes": list(created.scopes), "days": days},
            response={"id": created.id, "expires": created.expires_at.isoformat()},
            user=user.name,
        )
        return token, created

    def list_api_tokens(self, info: sessions.SessionInfo) -> list[tokens.TokenInfo]:
        with self.db.read() as s:
            user = s.get(User, info.user_id)
            return tokens.list_tokens(s, user) if user else []

    def revoke_api_token(
        self, info: sessions.SessionInfo, token_id: str, *, ip: str | None, user_agent: str | None
    ) -> tokens.TokenInfo:
        now = self.now()
        with self.db.write() as s:
            user = s.get(User, info.user_id)
            if user is None:
                raise InvalidInput("user", "no such user")
            revoked = tokens.revoke_token(s, user, token_id, now=now)
            self._record(
                "ApiTokenRevoked",
                self.identity(user, session_id=info.public_id, mfa=info.mfa_at is not None),
                ip=ip,
                user_agent=user_agent,
                request={"id": token_id},
                user=user.name,
            )
            return revoked

    def token_user(self, bearer: str) -> TokenUser | None:
        now = self.now()
        with self.db.read() as s:
            found = tokens.find_token(s, bearer, now=now)
            if found is None:
                return None
            row, user = found
            if self.mfa_required(user) and user.mfa_enrolled_at is None:
                return None
            stale = row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60
            result = TokenUser(
                user.name,
                row.id,
                frozenset(tokens.TokenInfo.of(row, "").scopes),
                tuple(r.role for r in user.roles),
                tuple(g.group_name for g in user.groups),
            )
            token_id = row.id
        if stale:
            with self.db.write() as s:
                live = s.get(ApiToken, token_id)
                if live is not None:
                    live.last_used_at = now
        return result


def _pending_name(user_id: int, session_id: str | None) -> str:
    """Where a not-yet-confirmed TOTP secret waits: per sign-in session, or issued by an admin."""
    return (
        f"totp-pending/{user_id}" if session_id is None else f"totp-pending/{user_id}/{session_id}"
    )


def qr_svg(data: str) -> str:
    """An inline SVG QR code of ``data`` (no external image, no Pillow)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buf = io.BytesIO()
    image.save(buf)
    text = buf.getvalue().decode("utf-8")
    return text[text.index("<svg") :]


def _iso(time: dt.datetime | None) -> str | None:
    if time is None:
        return None
    return (time if time.tzinfo else time.replace(tzinfo=dt.UTC)).isoformat()


def _throttled(wait: float) -> str:
    return f"Too many attempts. Wait {max(1, round(wait))} seconds and try again."


class AccountAdmin:
    """What administrators do to sign-in state (from the CLI), each audited as the admin."""

    def __init__(self, signin: SignIn) -> None:
        self.signin = signin

    def _user(self, s: Session, name: str) -> User:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            raise InvalidInput("user", f"no user named {name!r}")
        return user

    def issue_secret(self, name: str, actor: Identity) -> Enrollment:
        """A new pending TOTP secret for an admin-assisted enrolment (replaces any pending one)."""
        svc = self.signin
        with svc.db.write() as s:
            user = self._user(s, name)
            if user.disabled:
                raise InvalidInput("user", f"{name} is disabled")
            if user.mfa_enrolled_at is not None:
                raise InvalidInput(
                    "user",
                    f"{name} already has a second factor; run `jupyter secure mfa reset` first",
                )
            secret = totp.new_secret()
            svc.secrets.put(s, _pending_name(user.id, None), secret.encode())
            svc.audit.record(
                "MfaSecretIssued",
                identity=actor,
                request={"name": name},
                resources=[Resource("user", name)],
            )
            uri = totp.provisioning_uri(secret, user.name, svc.policy.issuer)
            return Enrollment(user.name, secret, uri, qr_svg(uri))

    def activate(self, name: str, code: str, actor: Identity) -> list[str]:
        """Confirm the pending secret with a first code; returns the recovery codes."""
        svc = self.signin
        now = svc.now()
        with svc.db.write() as s:
            user = self._user(s, name)
            if user.mfa_enrolled_at is not None:
                raise InvalidInput("user", f"{name} already has a second factor")
            ok, reason, step = svc._confirm_pending(s, user, code, now, None)
            request = {"name": name, "method": "totp", "assistedBy": actor.name}
            if not ok:
                svc.audit.record(
                    "MfaEnrolled",
                    identity=actor,
                    request=request,
                    error_code=reason,
                    resources=[Resource("user", name)],
                )
                raise InvalidInput("code", "that code was not accepted")
            assert step is not None  # noqa: S101 - set whenever ok
            codes = svc._activate(s, user, step, now)
            svc.audit.record(
                "MfaEnrolled",
                identity=actor,
                request=request,
                response={"recoveryCodes": len(codes)},
                resources=[Resource("user", name)],
            )
            return codes

    def overview(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every account (or ``name``'s) as the admin panel lists it, sorted by name.

        ``locked`` is a lockout still running now (an expired one reads unlocked,
        as sign-in treats it); times are ISO 8601. Raises :class:`InvalidInput`
        (``name``) for an unknown ``name``.
        """
        svc = self.signin
        now = svc.now()
        with svc.db.read() as s:
            stmt = select(User).order_by(User.name)
            if name is not None:
                stmt = stmt.where(User.name == name)
            users = list(s.scalars(stmt))
            if name is not None and not users:
                raise InvalidInput("name", f"no user named {name!r}")
            return [
                {
                    "name": u.name,
                    "roles": sorted(r.role for r in u.roles),
                    "groups": sorted(g.group_name for g in u.groups),
                    "disabled": bool(u.disabled),
                    "locked": svc._locked(u, now),
                    "lockedUntil": _iso(u.locked_until) if svc._locked(u, now) else None,
                    "mfaEnrolled": u.mfa_enrolled_at is not None,
                    "lastSignIn": _iso(u.last_login_at),
                    "createdAt": _iso(u.created_at),
                    "service": bool(u.service),
                }
                for u in users
            ]

    def set_disabled(
        self, name: str, disabled: bool, *, actor: Identity, reason: str | None = None
    ) -> tuple[bool, int, int]:
        """Disable (sessions end, API tokens are revoked) or enable an account.

        The one implementation behind ``jupyter secure user disable|enable`` and the
        admin panel, so both write the same ``UserDisabled``/``UserEnabled`` record
        (before the change commits; a refusal is recorded as a failed attempt). The
        server's session enforcer then closes the user's connections and shuts down
        their kernels at its next tick, wherever the change was made. Returns
        (changed, sessions ended, tokens revoked).
        """
        from .users import UserDirectory

        svc = self.signin
        now = svc.now()
        event = "UserDisabled" if disabled else "UserEnabled"
        request = {"name": name, **({"reason": reason[:200]} if reason else {})}
        resources = [Resource("user", name)]
        try:
            with svc.db.write() as s:
                directory = UserDirectory()
                changed = directory.set_disabled(s, name, disabled)
                ended = revoked = 0
                response = None
                if disabled:
                    user = directory.get(s, name)
                    ended = sessions.end_user_sessions(s, user.id, now=now, reason="disabled")
                    revoked = tokens.revoke_user_tokens(s, user.id, now=now)
                    response = {"sessionsEnded": ended, "tokensRevoked": revoked}
                s.flush()
                svc.audit.record(event, identity=actor, request=request, response=response,
                                 resources=resources)  # fmt: skip
                return changed, ended, revoked
        except InvalidInput as exc:
            svc.audit.record(event, identity=actor, request=request, resources=resources,
                             error_code="InvalidInput", error_message=str(exc))  # fmt: skip
            raise

    def reset(self, name: str, actor: Identity, *, reason: str | None = None) -> tuple[int, int]:
        """Remove a user's second factor: sessions end, tokens are revoked, enrol again."""
        svc = self.signin
        now = svc.now()
        with svc.db.write() as s:
            user = self._user(s, name)
            svc.secrets.delete(s, f"totp/{user.id}")
            svc.secrets.delete_prefix(s, f"totp-pending/{user.id}")
            s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
            user.mfa_enrolled_at = None
            user.mfa_last_step = None
            ended = sessions.end_user_sessions(s, user.id, now=now, reason="mfa-reset")
            revoked = tokens.revoke_user_tokens(s, user.id, now=now)
            svc.audit.record(
                "MfaReset",
                identity=actor,
                request={"name": name, **({"reason": reason[:200]} if reason else {})},
                response={"sessionsEnded": ended, "tokensRevoked": revoked},
                resources=[Resource("user", name)],
            )
            return ended, revoked

    def unlock(self, name: str, actor: Identity) -> bool:
        """Lift a lockout and forgive recent failures; False when the user was not locked."""
        svc = self.signin
        now = svc.now()
        with svc.db.write() as s:
            user = self._user(s, name)
            was_locked = svc._locked(user, now)
            user.locked_until = None
            s.execute(delete(AuthFailure).where(AuthFailure.user_name == user.name))
            svc.audit.record(
                "UserUnlocked",
                identity=actor,
                request={"name": name, "reason": "administrator"},
                resources=[Resource("user", name)],
            )
            return was_locked

    def lock(self, name: str, *, reason: str, actor: Identity) -> bool:
        """Lock an account for the lockout cool-down (an alarm's ``lock`` action).

        False when it was locked already (the earlier lock, and its end, stand)."""
        svc = self.signin
        now = svc.now()
        with svc.db.write() as s:
            user = self._user(s, name)
            if svc._locked(user, now):
                return False
            user.locked_until = now + dt.timedelta(seconds=svc.policy.lockout_cooldown)
            svc.audit.record(
                "UserLocked",
                identity=actor,
                request={"name": name, "reason": reason[:200]},
                response={"lockedUntil": user.locked_until.isoformat()},
                resources=[Resource("user", name)],
            )
            return True

    def end_sessions(self, name: str, *, reason: str) -> int:
        """End every live sign-in session of ``name``; the enforcer closes their
        connections at its next tick. The caller records why (one record, not one per
        session)."""
        svc = self.signin
        with svc.db.write() as s:
            user = self._user(s, name)
            return sessions.end_user_sessions(s, user.id, now=svc.now(), reason=reason)

    def service_token(
        self, name: str, *, label: str, scopes: list[str], days: int, actor: Identity
    ) -> tuple[str, tokens.TokenInfo]:
        """An API token for a service account (people create their own, after MFA)."""
        svc = self.signin
        with svc.db.write() as s:
            user = self._user(s, name)
            if not user.service:
                raise InvalidInput(
                    "user", f"{name} is a person: they create their own tokens after signing in"
                )
            if user.disabled:
                raise InvalidInput("user", f"{name} is disabled")
            return svc.issue_token(s, user, name=label, scopes=scopes, days=days, actor=actor)

    def tokens_of(self, name: str) -> list[tokens.TokenInfo]:
        svc = self.signin
        with svc.db.read() as s:
            return tokens.list_tokens(s, self._user(s, name))

    def revoke_token(self, name: str, token_id: str, actor: Identity) -> None:
        svc = self.signin
        now = svc.now()
        with svc.db.write() as s:
            tokens.revoke_token(s, self._user(s, name), token_id, now=now)
            svc.audit.record(
                "ApiTokenRevoked",
                identity=actor,
                request={"id": token_id},
                resources=[Resource("user", name)],
            )
