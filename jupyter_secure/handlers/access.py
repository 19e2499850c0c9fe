"""The route guard: every request is checked against the policy, whoever handles it.

jupyter_server's Authorizer only sees handlers that opt in with ``@authorized``;
JupyterLab's ``/lab/api/*`` handlers (the extension manager among them) never
do. The identity provider is consulted by every Jupyter handler, though, so
that is where this guard runs: it names the scope a request needs — from the
handler's ``auth_resource``, or from :data:`RESOURCE_OF` for handlers that
declare none — and asks the policy. A handler with neither, and not on the
short :data:`NO_SCOPE` allow-list of pages that carry no data, is denied:
what we have not decided on is refused. One route JupyterLab opens for
everyone and reopens whenever it is refused (the event bus subscription) is on
:data:`QUIET`: someone without its scope who may use JupyterLab is let in to a
version that serves them nothing, so their idle browser does not fill the
trail with refusals; holders of the scope get the real thing.

Object-level checks (whose kernel, which path, which kernel type) stay with
:class:`~jupyter_secure.handlers.authorizer.SecureAuthorizer`, which sees the
object. Both record their denials on the request; :func:`audit_denials`
writes one ``AccessDenied`` audit event per denied request when it finishes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jupyter_server.auth.utils import HTTP_METHOD_TO_AUTH_ACTION
from tornado import web
from tornado.websocket import WebSocketHandler

from ..audit.logger import AuditLogger, Identity, Resource
from ..monitoring import metrics
from ..policy import Decision, LivePolicy, Principal, scope_name
from ..policy.scopes import MethodScopes
from . import workspaces

__all__ = [
    "NO_SCOPE",
    "POLICY_SETTING",
    "QUIET",
    "RESOURCE_OF",
    "audit_denials",
    "check_request",
    "deny",
    "granted_scope",
    "held_scopes",
    "principal_of",
    "request_scope",
]

POLICY_SETTING = "jupyter_secure_policy"

#: Resources for handlers that declare no ``auth_resource`` (by qualified class name, so
#: that this module imports none of them).
RESOURCE_OF: dict[str, str] = {
    "jupyterlab_server.handlers.LabHandler": "lab",
    "jupyterlab_server.settings_handler.SettingsHandler": "settings",
    "jupyterlab_server.workspaces_handler.WorkspacesHandler": "workspaces",
    "jupyterlab_server.translations_handler.TranslationsHandler": "translations",
    "jupyterlab_server.listings_handler.ListingsHandler": "listings",
    "jupyterlab_server.themes_handler.ThemesHandler": "themes",
    "jupyterlab_server.licenses_handler.LicensesHandler": "licenses",
    "jupyterlab.handlers.extension_manager_handler.ExtensionHandler": "extension_manager",
    "jupyterlab.handlers.plugin_manager_handler.PluginHandler": "plugins",
    "jupyterlab.handlers.build_handler.BuildHandler": "build",
    "jupyterlab.handlers.announcements.CheckForUpdateHandler": "announcements",
    "jupyterlab.handlers.announcements.NewsHandler": "announcements",
    "jupyter_server.services.api.handlers.IdentityHandler": "api",
    "jupyter_server.services.contents.handlers.TrustNotebooksHandler": "contents",
    "jupyter_server.base.handlers.PrometheusMetricsHandler": "secure:metrics",
}

#: Handlers that need a signed-in user but no scope: redirects, not-found pages and
#: static assets, none of which reveal or change anything. The sign-in pages never
#: reach the guard with a user they would need to check.
NO_SCOPE: frozenset[str] = frozenset(
    {
        "jupyter_server.base.handlers.TrailingSlashHandler",
        "jupyter_server.base.handlers.MainHandler",
        "jupyter_server.base.handlers.APIVersionHandler",
        "jupyter_server.base.handlers.Template404",
        "jupyter_server.base.handlers.FileFindHandler",
        "jupyter_server.base.handlers.PublicStaticFileHandler",
        "jupyter_server.services.contents.handlers.NotebooksRedirectHandler",
        "jupyterlab_server.handlers.NotFoundHandler",
        "jupyter_secure.handlers.login.LoginHandler",
        "jupyter_secure.handlers.login.MfaHandler",
        "jupyter_secure.handlers.login.EnrollHandler",
        "jupyter_secure.handlers.login.ReauthHandler",
        "jupyter_secure.handlers.login.LogoutHandler",
        "jupyter_secure.handlers.tokens.ReauthApiHandler",
    }
)

#: Routes JupyterLab opens on its own for every user and keeps reopening when refused,
#: by the handler's own class (a subclass is not quiet): ``(scope, quiet scope)``. A
#: request without ``scope`` whose user holds ``quiet scope`` is allowed, granted the
#: quiet scope, and the handler (which reads :func:`granted_scope`) serves it nothing.
#: Only handlers written to serve nothing unless granted ``scope`` belong here.
QUIET: dict[str, tuple[str, str]] = {
    # The event bus carries every user's events; the quiet socket forwards none.
    "jupyter_secure.handlers.events.SubscribeEvents": ("events:execute", "lab:read"),
}

#: Scopes no role can use through the server, whatever the policy says: installing
#: extensions from the browser runs code fetched from the internet on the server.
NEVER: dict[str, str] = {
    "extension_manager:write": "the extension manager is read-only (install from a terminal)",
}

_DENIAL = "_jupyter_secure_denial"
_GRANTED = "_jupyter_secure_granted"


def _qualname(handler: web.RequestHandler) -> str:
    cls = type(handler)
    return f"{cls.__module__}.{cls.__qualname__}"


def _handler_class_names(handler: web.RequestHandler) -> list[str]:
    """The handler's class and its bases: a subclass inherits its parent's classification."""
    return [f"{c.__module__}.{c.__qualname__}" for c in type(handler).__mro__]


def request_scope(handler: web.RequestHandler) -> str | None:
    """The scope this request needs, or None when the handler is not classified.

    A handler's ``auth_scopes`` (built by :func:`~jupyter_secure.policy.scopes.method_scopes`)
    names the exact scope per HTTP method and wins over ``auth_resource``; a method
    it does not list, or a websocket upgrade, needs a scope nobody can hold (None).
    """
    declared = getattr(handler, "auth_scopes", None)
    if declared is not None:
        upgrade = handler.request.headers.get("Upgrade", "").lower() == "websocket"
        if not isinstance(declared, MethodScopes) or upgrade:
            return None  # a hand-made table is not trusted: fail closed
        return declared.get(handler.request.method or "")
    resource = getattr(handler, "auth_resource", None)
    if not isinstance(resource, str) or not resource:
        resource = next(
            (RESOURCE_OF[n] for n in _handler_class_names(handler) if n in RESOURCE_OF), None
        )
    if resource is None:
        return None
    upgrade = handler.request.headers.get("Upgrade", "").lower() == "websocket"
    if isinstance(handler, WebSocketHandler) or upgrade:
        action = "execute"
    else:
        action = HTTP_METHOD_TO_AUTH_ACTION.get(handler.request.method or "", "")
    if action not in {"read", "write", "execute"}:
        return None
    return scope_name(resource, action)


def principal_of(user: Any) -> Principal:
    """The principal of a SecureUser (``username``) or a stored User row (``name``)."""
    name = getattr(user, "username", None) or user.name
    roles = getattr(user, "roles", ())
    groups = getattr(user, "groups", ())
    return Principal(
        name,
        (r if isinstance(r, str) else r.role for r in roles),
        (g if isinstance(g, str) else g.group_name for g in groups),
    )


def check_request(
    handler: web.RequestHandler, user: Any, token_scopes: frozenset[str] | None
) -> Decision:
    """May ``user`` make this request at all (before any object-level check)?

    Every answer is counted (``jupyter_secure_authz_decisions_total``).
    """
    decision = _decide(handler, user, token_scopes)
    metrics.authz_decided(decision.scope, decision.allowed)
    if decision:
        setattr(handler, _GRANTED, decision.scope)
    return decision


def granted_scope(handler: web.RequestHandler) -> str | None:
    """The scope the route guard allowed this request on (None: it allowed none)."""
    granted = getattr(handler, _GRANTED, None)
    return granted if isinstance(granted, str) else None


def held_scopes(handler: web.RequestHandler, user: Any) -> frozenset[str]:
    """The scopes ``user`` may use now: the policy's, cut down to an API token's.

    Empty without a policy or a user (whoever asks hides or refuses everything).
    """
    live: LivePolicy | None = handler.settings.get(POLICY_SETTING)
    if live is None or user is None:
        return frozenset()
    scopes = frozenset(live.current.effective_scopes(principal_of(user)))
    token = getattr(user, "scopes", None)
    return scopes & token if token is not None else scopes


def _decide(
    handler: web.RequestHandler, user: Any, token_scopes: frozenset[str] | None
) -> Decision:
    scope = request_scope(handler)
    live: LivePolicy | None = handler.settings.get(POLICY_SETTING)
    refused = _refused_outright(handler, scope, live)
    if refused is not None or scope is None or live is None:
        return refused if refused is not None else Decision(False, "", "default deny")
    decision = _ask(live, user, token_scopes, scope)
    quiet = QUIET.get(_handler_class_names(handler)[0])
    if decision or quiet is None or quiet[0] != scope:
        return decision
    if _ask(live, user, token_scopes, quiet[1]):
        return Decision(True, quiet[1], f"quiet: no {scope} ({decision.rule}), so nothing is sent")
    return decision


def _ask(live: LivePolicy, user: Any, token_scopes: frozenset[str] | None, scope: str) -> Decision:
    decision = live.current.decide(principal_of(user), scope)
    if decision and token_scopes is not None and scope not in token_scopes:
        return Decision(False, scope, f"the API token does not hold {scope}")
    return decision


def _refused_outright(
    handler: web.RequestHandler, scope: str | None, live: LivePolicy | None
) -> Decision | None:
    """The answer when the policy need not be asked (None: ask it)."""
    classes = _handler_class_names(handler)
    if handler.request.method == "OPTIONS":
        return Decision(True, "", "CORS preflight carries no data")
    if scope is None:
        # The handler's own class only: a subclass of a harmless page may serve data.
        if classes[0] in NO_SCOPE and getattr(handler, "auth_scopes", None) is None:
            return Decision(True, "", f"{classes[0]} needs no scope")
        return Decision(False, "", f"default deny: no scope for {handler.request.method} "
                        f"on {classes[0]}")  # fmt: skip
    never = _never(scope)
    if never is not None:
        return Decision(False, scope, never)
    if live is None:
        return Decision(False, scope, "no policy loaded")
    return None


def _never(scope: str) -> str | None:
    """Why no policy can allow ``scope`` right now, or None."""
    if scope.startswith("workspaces:") and not workspaces.installed():
        return "workspaces are not yet stored per user"
    return NEVER.get(scope)


def deny(
    handler: web.RequestHandler, decision: Decision, *, user: Any = None, **detail: Any
) -> None:
    """Remember a denial on the request, for :func:`audit_denials` to record.

    ``user``: who was refused, when the refusal comes before jupyter_server has set
    ``current_user`` (the route guard runs inside ``get_user``; reading
    ``current_user`` there raises, and the denial would go unrecorded).
    """
    setattr(handler, _DENIAL, (decision, detail, user))


def audit_denials(
    audit: AuditLogger, previous: Callable[[web.RequestHandler], None] | None
) -> Callable[[web.RequestHandler], None]:
    """A tornado ``log_function`` that also records each denied request once."""

    def log_request(handler: web.RequestHandler) -> None:
        if previous is not None:
            previous(handler)
        noted = getattr(handler, _DENIAL, None)
        if noted is None:
            return
        decision, detail, user = noted
        if user is None:
            # Not ``current_user``: before get_user has finished that property raises.
            user = getattr(handler, "_jupyter_current_user", None)
        name = getattr(user, "username", None) or "(unknown)"
        request: dict[str, Any] = {
            "method": handler.request.method or "",
            "path": handler.request.path[:512],
            "scope": decision.scope,
        }
        request.update({k: str(v)[:512] for k, v in detail.items() if v is not None})
        principal = principal_of(user) if user is not None else None
        audit.submit(
            "AccessDenied",
            identity=Identity(
                "User",
                name,
                tuple(sorted(principal.roles)) if principal else (),
                tuple(sorted(principal.groups)) if principal else (),
                session_id=getattr(user, "session_id", None),
            ),
            source_ip=handler.request.remote_ip,
            user_agent=handler.request.headers.get("User-Agent"),
            request=request,
            response={"status": handler.get_status(), "rule": decision.rule[:512]},
            error_code="AccessDenied",
            resources=[Resource("route", _qualname(handler))],
        )

    return log_request


def json_body(handler: web.RequestHandler) -> dict[str, Any]:
    """The request body as a JSON object, or {} (the handler itself reports bad bodies)."""
    try:
        body = json.loads(handler.request.body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
