"""REST endpoints for API tokens and step-up, under ``/secure/api``.

Creating a token is a sensitive action: it needs a signed-in session (not
another token) whose second factor is fresh; a stale one gets ``403`` with
``{"error": "step-up required", "reauth": …}`` and the UI asks for a code at
``/secure/api/reauth``.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .._version import __version__
from ..errors import InvalidInput
from .access import POLICY_SETTING, held_scopes, principal_of
from .base import SecureHandlerMixin, run_blocking
from .identity_provider import SecureUser

__all__ = ["AUTH_RESOURCE", "MeHandler", "default_handlers", "require_step_up"]

AUTH_RESOURCE = "secure:tokens"


def require_step_up(handler: Any) -> SecureUser:
    """The current user, if they signed in with a session whose second factor is fresh.

    Otherwise answers ``403`` (JSON, with where to step up) and stops the request.
    """
    user = handler.current_user
    if not isinstance(user, SecureUser) or user.session_id is None:
        handler.json_error(403, "this action needs a signed-in session, not an API token")
        raise web.Finish()
    if not handler.signin.fresh(user.mfa_at):
        handler.json_error(
            403,
            "step-up required",
            reauth=url_path_join(handler.base_url, "secure/api/reauth"),
            maxAgeSeconds=int(handler.signin.policy.step_up_max_age),
        )
        raise web.Finish()
    return user


class _Api(SecureHandlerMixin, APIHandler):
    auth_resource = AUTH_RESOURCE

    def body_json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "the body is not JSON") from None
        if not isinstance(data, dict):
            raise web.HTTPError(400, "the body must be a JSON object")
        return data

    async def session_info(self) -> Any:
        resolved = await run_blocking(self.signin.resolve, self.session_token())
        if resolved is None:
            raise web.HTTPError(403)
        return resolved[0]


class TokensHandler(_Api):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        user = self.current_user
        if user.session_id is None:
            raise web.HTTPError(403, "list tokens from a signed-in session")
        info = await self.session_info()
        found = await run_blocking(self.signin.list_api_tokens, info)
        self.finish(json.dumps([t.as_dict() for t in found]))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        require_step_up(self)
        body = self.body_json()
        info = await self.session_info()
        try:
            token, created = await run_blocking(
                self.signin.create_api_token,
                info,
                name=body.get("name"),
                scopes=body.get("scopes"),
                days=body.get("expiresInDays", 30),
                ip=self.client_ip,
                user_agent=self.user_agent,
            )
        except InvalidInput as exc:
            self.json_error(400, exc.message, field=exc.field)
            return
        self.set_status(201)
        self.finish(json.dumps({"token": token, **created.as_dict()}))


class TokenHandler(_Api):
    @web.authenticated
    @authorized
    async def delete(self, token_id: str) -> None:
        if self.current_user.session_id is None:
            raise web.HTTPError(403, "revoke tokens from a signed-in session")
        info = await self.session_info()
        try:
            await run_blocking(
                self.signin.revoke_api_token,
                info,
                token_id,
                ip=self.client_ip,
                user_agent=self.user_agent,
            )
        except InvalidInput:
            raise web.HTTPError(404, "no such token") from None
        self.set_status(204)
        self.finish()


class ReauthApiHandler(_Api):
    """Step-up for the UI: POST {"otp": "123456"}.

    Part of signing in, like ``/login/reauth``: every signed-in person may prove
    their second factor again, so it needs no scope (see ``access.NO_SCOPE``).
    """

    auth_resource = ""

    @web.authenticated
    async def post(self) -> None:
        if self.current_user.session_id is None:
            raise web.HTTPError(403, "API tokens cannot step up")
        code = self.body_json().get("otp")
        if not isinstance(code, str):
            self.json_error(400, "give the code as a string", field="otp")
            return
        outcome = await run_blocking(
            self.signin.step_up,
            self.session_token(),
            code,
            ip=self.client_ip,
            user_agent=self.user_agent,
        )
        if not outcome.ok:
            if outcome.retry_after:
                self.set_header("Retry-After", str(max(1, round(outcome.retry_after))))
            self.json_error(429 if outcome.retry_after else 401, outcome.message)
            return
        self.finish(
            json.dumps({"ok": True, "maxAgeSeconds": int(self.signin.policy.step_up_max_age)})
        )


default_handlers = [
    (r"/secure/api/tokens", TokensHandler),
    (r"/secure/api/tokens/([0-9a-f]{16})", TokenHandler),
    (r"/secure/api/reauth", ReauthApiHandler),
]


class MeHandler(_Api):
    """``GET /secure/api/me``: who I am and what I may do, for the UI to hide the rest.

    Roles and groups include those the policy file adds; ``scopes`` are the
    effective ones (an API token's are cut down to what it holds). ``version``
    is the server package's, which the JupyterLab extension compares with its
    own; ``session`` says when the session ends (null expiry for an API token).
    """

    auth_resource = "api"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        user: SecureUser = self.current_user
        policy = self.settings[POLICY_SETTING].current
        principal = principal_of(user)
        scopes = held_scopes(self, user)
        fresh_until = None
        if user.mfa_at is not None:
            fresh_until = user.mfa_at.timestamp() + self.signin.policy.step_up_max_age
        self.finish(
            json.dumps(
                {
                    "name": user.username,
                    "roles": sorted(policy.effective_roles(principal)),
                    "groups": sorted(policy.effective_groups(principal)),
                    "scopes": sorted(scopes),
                    "kernelspecs": sorted(policy.allowed_kernelspecs(principal)),
                    "via": "token" if user.token_id else "session",
                    "mfa": {
                        "at": user.mfa_at.isoformat() if user.mfa_at else None,
                        "fresh": bool(user.session_id) and self.signin.fresh(user.mfa_at),
                        "freshUntil": fresh_until,
                    },
                    "policy": policy.digest(),
                    "version": __version__,
                    "session": self._session(user),
                }
            )
        )

    def _session(self, user: SecureUser) -> dict[str, float | None]:
        """Idle timeout and absolute expiry (Unix seconds) of the caller's session."""
        policy = self.signin.policy
        started = user.session_started_at if user.session_id else None
        expires = started.timestamp() + policy.session_lifetime if started else None
        return {"idleTimeoutSeconds": int(policy.idle_timeout), "expiresAt": expires}


default_handlers.append((r"/secure/api/me", MeHandler))
