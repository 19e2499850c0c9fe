"""SecureIdentityProvider: who is making this request, answered by our sessions and tokens.

jupyter_server asks its IdentityProvider on every request, websockets
included. Ours knows two ways in and no others:

* the sign-in session cookie, for a session that finished the second factor
  (or enrolled one), is not idle or too old, and whose user is enabled;
* ``Authorization: token jst_…`` (or ``Bearer``) for an API token, whose
  scopes then bound what the request may do, within the owner's roles
  (see ``access.py``).

Jupyter's own ``?token=`` and its login token are not accepted: there is no
shared secret that signs a person in without their second factor.

The provider also records the user of the current request in a context
variable, so that code running for that request (the kernel manager, when it
starts a kernel) knows whose it is.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
import os
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.websocket import WebSocketHandler
from traitlets import Unicode, default

from .access import check_request, deny
from .base import SIGNIN_SETTING, cookie_name, run_blocking
from .enforcement import connections

__all__ = ["SecureIdentityProvider", "SecureUser", "current_request_user"]

#: The SecureUser of the request being handled (None outside a request).
current_request_user: contextvars.ContextVar[SecureUser | None] = contextvars.ContextVar(
    "jupyter_secure_user", default=None
)


@dataclasses.dataclass
class SecureUser(User):
    """A jupyter_server User with what the security layer knows about it."""

    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    #: the session's public id (never the cookie), or None for an API token
    session_id: str | None = None
    #: when the second factor was last entered in this session
    mfa_at: dt.datetime | None = None
    #: when the session began (its absolute lifetime runs from here); None for a token
    session_started_at: dt.datetime | None = None
    #: None: the session's full permissions; a set: an API token's scopes
    scopes: frozenset[str] | None = None
    token_id: str | None = None


class SecureIdentityProvider(IdentityProvider):
    """Sessions with a second factor, or scoped API tokens; nothing else."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # No Jupyter login token, whatever the config says: its URL would sign anyone in
        # without a second factor. (It would not work anyway; this keeps it off the banner.)
        self.token = ""

    @default("login_handler_class")
    def _login_handler_default(self) -> Any:
        from .login import LoginHandler

        return LoginHandler

    @default("logout_handler_class")
    def _logout_handler_default(self) -> Any:
        from .login import LogoutHandler

        return LogoutHandler

    cookie_name = Unicode("", help="Unused: jupyter-secure names its session cookie per port.").tag(
        config=False
    )

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return True

    def get_handlers(self) -> list[tuple[str, object]]:
        from .login import EnrollHandler, LoginHandler, LogoutHandler, MfaHandler, ReauthHandler

        return [
            ("/login", LoginHandler),
            ("/login/mfa", MfaHandler),
            ("/login/enroll", EnrollHandler),
            ("/login/reauth", ReauthHandler),
            ("/logout", LogoutHandler),
        ]

    async def get_user(self, handler: web.RequestHandler) -> SecureUser | None:
        """Who is asking, and may they make this request at all (the route guard).

        The database work runs off the event loop. A signed-in user whose roles
        (or whose API token) do not grant the route's scope gets 403, recorded as
        an AccessDenied event; see ``access.py``.
        """
        user = await self._resolve(handler)
        if user is not None:
            decision = check_request(handler, user, user.scopes)
            if not decision:
                deny(handler, decision, user=user)
                raise web.HTTPError(403, f"not allowed: {decision.rule}")
        current_request_user.set(user)
        if user is not None and isinstance(handler, WebSocketHandler):
            connections.track(handler, user)
        return user

    async def _resolve(self, handler: web.RequestHandler) -> SecureUser | None:
        signin = handler.settings.get(SIGNIN_SETTING)
        if signin is None:
            return None
        scheme, _, value = handler.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() in {"token", "bearer"}:
            return await self._token_user(handler, signin, value.strip())
        # Any other Authorization scheme (a proxy's Basic auth) is not ours: use the cookie.
        return await self._session_user(handler, signin)

    @staticmethod
    async def _token_user(
        handler: web.RequestHandler, signin: Any, value: str
    ) -> SecureUser | None:
        found = await run_blocking(signin.token_user, value)
        if found is None:
            return None
        handler._jupyter_secure_token = True  # type: ignore[attr-defined]
        return SecureUser(
            username=found.name,
            roles=found.roles,
            groups=found.groups,
            scopes=found.scopes,
            token_id=found.token_id,
        )

    @staticmethod
    async def _session_user(handler: web.RequestHandler, signin: Any) -> SecureUser | None:
        token = handler.get_cookie(cookie_name(handler))
        if not token:
            return None
        resolved = await run_blocking(signin.resolve, token, ip=handler.request.remote_ip)
        if resolved is None:
            return None
        info, user = resolved
        _ensure_home(handler, user.name)
        return SecureUser(
            username=user.name,
            roles=tuple(r.role for r in user.roles),
            groups=tuple(g.group_name for g in user.groups),
            session_id=info.public_id,
            mfa_at=info.mfa_at,
            session_started_at=info.created_at,
        )

    def identity_model(self, user: User) -> dict[str, Any]:
        """What ``GET /api/me`` tells the browser: the public profile fields only (never
        the session id, token id, scopes or MFA time; ``/secure/api/me`` has those)."""
        return {
            "username": user.username,
            "name": user.name,
            "display_name": user.display_name,
            "initials": user.initials,
            "avatar_url": user.avatar_url,
            "color": user.color,
        }

    def is_token_authenticated(self, handler: web.RequestHandler) -> bool:
        """API-token requests carry their credential in a header, not a cookie: no XSRF risk."""
        return bool(getattr(handler, "_jupyter_secure_token", False))

    def get_token(self, handler: web.RequestHandler) -> str | None:
        return None

    def should_check_origin(self, handler: web.RequestHandler) -> bool:
        return not self.is_token_authenticated(handler)

    def validate_security(self, app: Any, ssl_options: dict[str, Any] | None = None) -> None:
        """Sign-in is always on; nothing to warn about."""

    def login_url(self, base_url: str) -> str:
        return url_path_join(base_url, "login")


_homes_made: set[tuple[str, str]] = set()


def _ensure_home(handler: web.RequestHandler, name: str) -> None:
    """Give a signed-in person their workspace, ``home/<name>`` under the notebook root.

    The default policy lets only its owner read or write it. Done once per name
    and root per process (a set lookup afterwards); only for file-system roots.
    """
    root = getattr(handler.settings.get("contents_manager"), "root_dir", None)
    if not isinstance(root, str) or (root, name) in _homes_made:
        return
    home = os.path.join(root, "home", name)
    if os.path.isdir(root):
        try:
            os.makedirs(home, mode=0o700, exist_ok=True)
        except OSError:
            return  # a read-only root: the person simply has no home yet
    _homes_made.add((root, name))
