"""The closed vocabulary of permissions ("scopes"), each with what it allows.

A scope is ``<resource>:<action>``. The resources are the ``AUTH_RESOURCE``
names jupyter_server and JupyterLab handlers declare, plus ``secure:*`` ones
for this product; the actions are jupyter_server's (``read`` for GET/HEAD,
``write`` for POST/PUT/PATCH/DELETE, ``execute`` for websockets and running
code). Code names a scope through :func:`scope`, which raises at import time
on a typo, so a misspelt permission can never silently grant or deny.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["SCOPES", "UnknownScope", "scope", "scopes_held", "validate_scopes"]

SCOPES: dict[str, str] = {
    "api:read": "Read server status and identity (/api, /api/status, /api/me).",
    "config:read": "Read front-end configuration sections (/api/config).",
    "config:write": "Change front-end configuration sections.",
    "contents:read": "List, open and download files and notebooks.",
    "contents:write": "Create, save, rename and delete files and notebooks.",
    "csp:write": "Report Content-Security-Policy violations.",
    "events:read": "Subscribe to the server's event bus (/api/events/subscribe).",
    "events:write": "Post events to the server's event bus.",
    "kernels:read": "List kernels and read their state.",
    "kernels:write": "Start, interrupt, restart and shut down kernels.",
    "kernels:execute": "Connect to a kernel and run code in it.",
    "kernelspecs:read": "List the kernel types that can be started.",
    "lsp:read": "Read language-server status.",
    "lsp:execute": "Talk to a language server over its websocket.",
    "nbconvert:read": "Convert and download notebooks in other formats.",
    "server:write": "Shut the Jupyter server down.",
    "sessions:read": "List notebook sessions (notebook to kernel).",
    "sessions:write": "Create, change and delete notebook sessions.",
    "terminals:read": "List terminals.",
    "terminals:write": "Create and close terminals.",
    "terminals:execute": "Type into a terminal (a shell on the server).",
    "secure:tokens:read": "List your own API tokens.",
    "secure:tokens:write": "Create and revoke your own API tokens.",
}


class UnknownScope(ValueError):
    """A name that is not in the vocabulary."""


def scope(name: str) -> str:
    """``name`` if it is a scope, else :class:`UnknownScope` with a suggestion."""
    if name not in SCOPES:
        close = difflib.get_close_matches(name, SCOPES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownScope(f"unknown scope {name!r}{hint}")
    return name


def validate_scopes(names: Iterable[str]) -> tuple[str, ...]:
    """Every name checked, duplicates removed, sorted."""
    return tuple(sorted({scope(n) for n in names}))


def scopes_held(user: object) -> frozenset[str]:
    """The scopes a user holds, which bound the API tokens made for them.

    Today every account holds every scope — jupyter_server's own model, where
    anyone signed in may do anything; the roles and groups of the policy room
    narrow this. API tokens are bounded by the scopes they name either way.
    """
    return frozenset(SCOPES)
