"""The closed vocabulary of permissions ("scopes"), each with what it allows.

A scope is ``<resource>:<action>``. The resources are the ``AUTH_RESOURCE``
names jupyter_server's handlers declare (jupyter_server_terminals and
jupyter_lsp included), names for JupyterLab's ``/lab`` and ``/lab/api/*``
routes (which declare none and never consult the Authorizer, so the route
guard maps them here), plus ``secure:*`` ones for this product. The actions
are jupyter_server's: ``read`` for GET/HEAD, ``write`` for POST/PUT/PATCH/
DELETE, ``execute`` for websockets and running code; ``admin`` is ours and
means "act on other users' objects of this kind" (see :func:`owner_scope`).

Code names a scope through :func:`scope`, which raises at import time on a
typo, so a misspelt permission can never silently grant or deny.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping

__all__ = [
    "ACTIONS",
    "HTTP_METHODS",
    "RESOURCES",
    "SCOPES",
    "MethodScopes",
    "UnknownScope",
    "method_scopes",
    "owner_scope",
    "resource_of",
    "scope",
    "scope_name",
    "scopes_held",
    "suggest_scope",
    "validate_scopes",
]

#: The actions a scope may name: jupyter_server's three, and ``admin`` for
#: acting on objects that belong to someone else.
ACTIONS = ("read", "write", "execute", "admin")

#: Each resource with where it is checked. The route guard and the docs read
#: this: a resource no handler checks would be a permission that means nothing.
RESOURCES: dict[str, str] = {
    "api": "jupyter_server `services/api/handlers.py`: `/api/spec.yaml`, `/api/status`, "
    "`/api/resolvePath`, `/api/me` (PATCH)",
    "config": "jupyter_server `services/config/handlers.py`: `/api/config/<section>`",
    "contents": "jupyter_server `services/contents`, `files/`, `view/`: `/api/contents`, "
    "`/files/`, `/view/`, `/api/contents/<path>/checkpoints`, `/api/trust`",
    "csp": "jupyter_server `services/security/handlers.py`: `/api/security/csp-report`",
    "events": "jupyter_server `services/events/handlers.py`: `/api/events`, "
    "`/api/events/subscribe` (websocket, `execute`; jupyter-secure's `SubscribeEvents`, "
    "quiet for non-holders)",
    "kernels": "jupyter_server `services/kernels`: `/api/kernels`, "
    "`/api/kernels/<id>/channels` (websocket, `execute`)",
    "comms": "jupyter-secure channel guard: `comm_*` messages on a kernel's channels "
    "(widgets); checked per message",
    "debugger": "jupyter-secure channel guard: `debug_request` on a kernel's control channel; "
    "checked per message",
    "kernelspecs": "jupyter_server `services/kernelspecs`, `kernelspecs/`: `/api/kernelspecs`, "
    "`/kernelspecs/<name>/<file>`",
    "lsp": "jupyter_lsp `handlers.py`: `/lsp/status`, `/lsp/ws/<language server>` "
    "(websocket, `execute`)",
    "nbconvert": "jupyter_server `nbconvert/`, `services/nbconvert`: `/nbconvert/<format>/<path>` "
    "(GET), `/nbconvert/<format>` (POST), `/api/nbconvert`",
    "server": "jupyter_server `services/shutdown.py`: `/api/shutdown`",
    "sessions": "jupyter_server `services/sessions`: `/api/sessions`",
    "terminals": "jupyter_server_terminals: `/api/terminals`, `/terminals/websocket/<name>` "
    "(websocket, `execute`)",
    "lab": "JupyterLab `LabHandler` (no AUTH_RESOURCE): `/lab`, `/lab/tree/...`, "
    "`/lab/workspaces/...`, `/doc/...`",
    "settings": "jupyterlab_server `SettingsHandler` (no AUTH_RESOURCE): `/lab/api/settings`",
    "workspaces": "jupyterlab_server `WorkspacesHandler` (no AUTH_RESOURCE): `/lab/api/workspaces`",
    "themes": "jupyterlab_server `ThemesHandler` (no AUTH_RESOURCE): `/lab/api/themes`",
    "translations": "jupyterlab_server `TranslationsHandler` (no AUTH_RESOURCE): "
    "`/lab/api/translations`",
    "licenses": "jupyterlab_server `LicensesHandler` (no AUTH_RESOURCE): `/lab/api/licenses`",
    "listings": "jupyterlab_server `ListingsHandler` (no AUTH_RESOURCE): `/lab/api/listings`",
    "extension_manager": "JupyterLab `ExtensionHandler` (no AUTH_RESOURCE): `/lab/api/extensions`",
    "plugins": "JupyterLab `PluginHandler` (no AUTH_RESOURCE): `/lab/api/plugins`",
    "build": "JupyterLab `BuildHandler` (no AUTH_RESOURCE): `/lab/api/build`",
    "announcements": "JupyterLab `NewsHandler`, `CheckForUpdateHandler` (no AUTH_RESOURCE): "
    "`/lab/api/news`, `/lab/api/update`",
    "secure:tokens": "jupyter-secure `handlers/tokens.py`: `/secure/api/tokens`",
    "secure:datasets": "jupyter-secure datasets (DP queries through the guarded kernel)",
    "secure:budgets": "jupyter-secure privacy budgets: `jupyter secure budget`, "
    "`/secure/api/budgets` (read), `/secure/api/admin/budgets` (admin)",
    "secure:audit": "jupyter-secure audit trail: `jupyter secure audit`, `/secure/api/audit` "
    "(read), `/secure/api/audit/verify` (admin), `jupyter_secure.trail` in a kernel",
    "secure:users": "jupyter-secure accounts, roles and groups: `jupyter secure user`, "
    "`/secure/api/admin/users`, `/secure/api/admin/access-review`",
    "secure:unmask": "jupyter-secure PII masking (seeing values unmasked)",
    "secure:policy": "jupyter-secure policy file (this vocabulary, roles, groups, path rules)",
    "secure:metrics": "jupyter-secure metrics and reports",
    "secure:alarms": "jupyter-secure `handlers/alarms.py`: `/secure/api/alarms`",
}

SCOPES: dict[str, str] = {
    # jupyter_server
    "api:read": "Read server status and the API spec (/api/status, /api/spec.yaml, "
    "/api/resolvePath).",
    "api:write": "Change your own display name and avatar (PATCH /api/me; the route guard "
    "checks it, jupyter_server does not).",
    "config:read": "Read front-end configuration sections (/api/config).",
    "config:write": "Change front-end configuration sections, which every user's UI reads.",
    "contents:read": "List, open and download files and notebooks (subject to path rules).",
    "contents:write": "Create, save, rename and delete files and notebooks (subject to path "
    "rules).",
    "csp:write": "Report Content-Security-Policy violations (the browser does this).",
    "events:read": "Reserved: jupyter_server has no read route for events; kept so existing "
    "tokens stay valid.",
    "events:write": "Post events to the server's event bus (/api/events).",
    "events:execute": "Subscribe to the server's event bus, which carries every user's "
    "events (/api/events/subscribe); without it, holders of lab:read get a subscription "
    "that carries nothing, so JupyterLab stops reconnecting.",
    "kernels:read": "List your kernels and read their state.",
    "kernels:write": "Start, interrupt, restart and shut down your kernels.",
    "kernels:execute": "Connect to one of your kernels and run code in it.",
    "kernels:admin": "Act on other users' kernels: list, connect to, interrupt, restart, "
    "shut down.",
    "comms:execute": "Exchange widget (comm) messages with your kernels; their data is "
    "masked like any output.",
    "debugger:execute": "Use the debugger on your kernels: it shows variables and frames unmasked.",
    "kernelspecs:read": "List the kernel types that can be started, and their logos.",
    "lsp:read": "Read language-server status (/lsp/status).",
    "lsp:execute": "Talk to a language server, which reads files with the server's own "
    "rights (no path rules).",
    "nbconvert:read": "Convert a stored notebook and download it (subject to path rules).",
    "nbconvert:write": "Convert a notebook sent in the request body.",
    "server:write": "Shut the Jupyter server down.",
    "sessions:read": "List your notebook sessions (notebook to kernel).",
    "sessions:write": "Create, change and delete your notebook sessions.",
    "sessions:admin": "Act on other users' sessions: list, change, delete.",
    "terminals:read": "List terminals.",
    "terminals:write": "Create and close terminals.",
    "terminals:execute": "Type into a terminal: a shell with the server's rights.",
    # JupyterLab (the route guard maps its routes; they declare no AUTH_RESOURCE)
    "lab:read": "Open the JupyterLab application page (/lab, /lab/tree/..., /doc/...).",
    "settings:read": "Read JupyterLab settings and their schemas (/lab/api/settings).",
    "settings:write": "Change JupyterLab settings, which are shared by every user of this server.",
    "workspaces:read": "Read saved JupyterLab layouts (/lab/api/workspaces).",
    "workspaces:write": "Save, import and delete JupyterLab layouts.",
    "themes:read": "Load JupyterLab themes (/lab/api/themes).",
    "translations:read": "Load JupyterLab language packs (/lab/api/translations).",
    "licenses:read": "Read the third-party licenses of the front end (/lab/api/licenses).",
    "listings:read": "Read the extension allow and block lists (/lab/api/listings).",
    "extension_manager:read": "List installed and available extensions (/lab/api/extensions).",
    "extension_manager:write": "Install, update, enable or disable extensions (the route "
    "guard keeps this read-only).",
    "plugins:read": "List JupyterLab plugins and whether they are enabled (/lab/api/plugins).",
    "plugins:write": "Enable or disable JupyterLab plugins for every user.",
    "build:read": "Read whether JupyterLab needs a rebuild (/lab/api/build).",
    "build:write": "Start or cancel a JupyterLab build.",
    "announcements:read": "Read JupyterLab news and update checks (/lab/api/news, "
    "/lab/api/update).",
    # jupyter-secure
    "secure:tokens:read": "List your own API tokens.",
    "secure:tokens:write": "Create and revoke your own API tokens.",
    "secure:datasets:query": "Run differentially private queries on the datasets you are granted.",
    "secure:datasets:admin": "Register datasets and grant them to groups.",
    "secure:budgets:read": "Read your own privacy budgets and the charges made to them.",
    "secure:budgets:admin": "Grant datasets to your groups and set and reset their members' "
    "budgets (every group's with secure:datasets:admin).",
    "secure:audit:read": "Read audit records about yourself and the members of your groups.",
    "secure:audit:admin": "Read, export and verify every user's audit records (nobody can "
    "change them).",
    "secure:users:admin": "Add, disable, lock and remove accounts, reset their second factor, "
    "change their roles and groups, review access.",
    "secure:unmask": "See PII unmasked in outputs and exports.",
    "secure:policy:admin": "Change the policy file: roles, groups, path rules.",
    "secure:metrics:read": "Read the metrics endpoint and usage reports.",
    "secure:alarms:read": "List alarms, their history and the rules in effect.",
    "secure:alarms:write": "Acknowledge alarms.",
}


class UnknownScope(ValueError):
    """A name that is not in the vocabulary."""


def suggest_scope(name: str) -> str | None:
    """The closest scope to a misspelt ``name``, for error messages."""
    close = difflib.get_close_matches(name, SCOPES, n=1, cutoff=0.6)
    return close[0] if close else None


def scope(name: str) -> str:
    """``name`` if it is a scope, else :class:`UnknownScope` with a suggestion."""
    if name not in SCOPES:
        close = suggest_scope(name)
        hint = f"; did you mean {close!r}?" if close else ""
        raise UnknownScope(f"unknown scope {name!r}{hint}")
    return name


#: The HTTP methods a handler's ``auth_scopes`` table may name.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class MethodScopes(Mapping[str, str]):
    """A handler's ``auth_scopes``: the exact scope each HTTP method needs.

    For routes whose permissions do not follow jupyter_server's read/write split
    (``GET /secure/api/audit`` needs ``secure:audit:read`` but ``GET
    /secure/api/audit/verify`` needs ``secure:audit:admin``). Built only by
    :func:`method_scopes`, which checks every name when the handler's module is
    imported; the route guard honours nothing else, so a hand-made dict fails
    closed. A method not in the table is refused.
    """

    __slots__ = ("_table",)

    def __init__(self, table: Mapping[str, str], _token: object = None) -> None:
        if _token is not _BUILD:
            raise TypeError("build MethodScopes with method_scopes()")
        self._table = dict(table)

    def __getitem__(self, method: str) -> str:
        return self._table[method]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"method_scopes({self._table!r})"


_BUILD = object()


def method_scopes(table: Mapping[str, str]) -> MethodScopes:
    """``table`` checked: each key an HTTP method, each value a scope (raises on a typo)."""
    if not table:
        raise UnknownScope("auth_scopes: give at least one method")
    for method, name in table.items():
        if method not in HTTP_METHODS:
            raise UnknownScope(f"auth_scopes: {method!r} is not one of {', '.join(HTTP_METHODS)}")
        scope(name)
    return MethodScopes(table, _BUILD)


def scope_name(resource: str, action: str) -> str:
    """The scope jupyter_server's ``is_authorized(handler, user, action, resource)`` means.

    Not validated: :meth:`~jupyter_secure.policy.Policy.decide` denies an
    unknown scope with a rule saying so, which is what a request needs.
    """
    return f"{resource}:{action}"


def owner_scope(name: str) -> str | None:
    """The scope that lets a holder of ``name`` act on someone else's object, if any.

    ``kernels:execute`` → ``kernels:admin``; ``None`` when the resource has
    no ``admin`` scope, so an object owned by another user is simply denied.
    """
    resource = resource_of(name)
    candidate = f"{resource}:admin"
    return candidate if candidate in SCOPES else None


def validate_scopes(names: Iterable[str]) -> tuple[str, ...]:
    """Every name checked, duplicates removed, sorted."""
    return tuple(sorted({scope(n) for n in names}))


def scopes_held(user: object) -> frozenset[str]:
    """The scopes a user holds, which bound the API tokens made for them.

    Today every account holds every scope — jupyter_server's own model, where
    anyone signed in may do anything; :meth:`Policy.effective_scopes` narrows
    this once the server wires the policy in. API tokens are bounded by the
    scopes they name either way.
    """
    return frozenset(SCOPES)


def resource_of(name: str) -> str:
    """The resource a scope belongs to (``secure:unmask`` is its own resource)."""
    return name if name in RESOURCES else name.rpartition(":")[0]


def _check_vocabulary() -> None:
    """Every scope belongs to a known resource and has a one-line description.

    Checked at import, so a scope added without its resource or description
    breaks every test rather than shipping undocumented.
    """
    for name, text in SCOPES.items():
        resource = resource_of(name)
        action = name[len(resource) + 1 :] if resource != name else ""
        if resource not in RESOURCES or action not in (*ACTIONS, "query", ""):
            raise RuntimeError(f"scope {name!r} does not fit the vocabulary")
        if not text or "\n" in text:
            raise RuntimeError(f"scope {name!r} needs a one-line description")


_check_vocabulary()
