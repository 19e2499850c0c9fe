"""The six roles jupyter-secure ships with, as data.

A role is a named set of scopes. These are the defaults a policy file falls
back on for every role it does not redefine, so an upgrade that adds a scope
(a new JupyterLab route, say) reaches installations that kept the defaults.

Least privilege decides every line: only ``admin`` gets terminals, server
shutdown, account and policy administration, extension installs, server-wide
front-end settings and unmasking. Three things are kept from everyone else
because they bypass the path rules or reach other users:

* ``lsp:execute`` — language servers run with the server's own rights and
  read any file they are pointed at;
* ``settings:write``, ``config:write``, ``plugins:write`` — JupyterLab keeps
  one settings directory for the whole server, so a change (a keyboard
  shortcut bound to "run all", say) would act in every user's browser;
* ``events:execute`` — the event bus carries every user's events.

``kernelspecs:read`` and ``sessions:read`` are kept from the roles that
cannot run code (``auditor``, ``viewer``): JupyterLab asks for them at start
and shows an empty launcher when refused, which is the point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .scopes import SCOPES, scope

__all__ = ["BUILTIN_ROLE_NAMES", "DEFAULT_ROLES", "Role"]


@dataclass(frozen=True, slots=True)
class Role:
    """A named set of scopes with what the role is for.

    ``scopes`` is sorted and free of duplicates so that two equal roles
    compare, hash and print the same.
    """

    name: str
    description: str
    scopes: tuple[str, ...]

    @classmethod
    def make(cls, name: str, description: str, scopes: Iterable[str]) -> Role:
        """A role whose scopes are checked against the vocabulary (raises on a typo)."""
        return cls(name, description, tuple(sorted({scope(s) for s in scopes})))


def _s(*names: str) -> frozenset[str]:
    return frozenset(scope(n) for n in names)


#: What every signed-in role needs for JupyterLab to load at all. None of it
#: reveals another user's data or changes anything shared.
_UI = _s(
    "api:read",
    "config:read",
    "csp:write",
    "lab:read",
    "settings:read",
    "themes:read",
    "translations:read",
    "licenses:read",
    "listings:read",
    "workspaces:read",
    "build:read",
    "announcements:read",
)
#: Working in one's own files and guarded kernels. Path rules decide which
#: files; the kernelspec table decides which kernels (the guarded one).
_WORK = _s(
    "contents:read",
    "contents:write",
    "nbconvert:read",
    "nbconvert:write",
    "kernelspecs:read",
    "kernels:read",
    "kernels:write",
    "kernels:execute",
    "comms:execute",
    "sessions:read",
    "sessions:write",
    "lsp:read",
    "workspaces:write",
)
_TOKENS = _s("secure:tokens:read", "secure:tokens:write")

DEFAULT_ROLES: Mapping[str, Role] = MappingProxyType(
    {
        r.name: r
        for r in (
            Role.make(
                "admin",
                "Runs the server: every scope, including terminals, shutdown, accounts, "
                "the policy and unmasking.",
                SCOPES,
            ),
            Role.make(
                "instructor",
                "Teaches groups: works in guarded kernels, manages their privacy budgets and "
                "reads their audit; never raw protected data, never unmasked PII.",
                _UI
                | _WORK
                | _TOKENS
                | _s(
                    "secure:datasets:query",
                    "secure:budgets:read",
                    "secure:budgets:admin",
                    "secure:audit:read",
                ),
            ),
            Role.make(
                "data_scientist",
                "Analyses granted datasets: own workspace, guarded kernels, differentially "
                "private queries, pseudonymised PII.",
                _UI | _WORK | _TOKENS | _s("secure:datasets:query", "secure:budgets:read"),
            ),
            Role.make(
                "student",
                "Learns: own workspace, guarded kernels, small DP budgets, PII redacted or "
                "faked; no terminals and no API tokens.",
                _UI | _WORK | _s("secure:datasets:query", "secure:budgets:read"),
            ),
            Role.make(
                "auditor",
                "Reviews: reads every audit record, metrics, budgets and shared reports; "
                "runs no code.",
                _UI
                | _TOKENS
                | _s(
                    "contents:read",
                    "nbconvert:read",
                    "secure:audit:read",
                    "secure:audit:admin",
                    "secure:metrics:read",
                    "secure:alarms:read",
                    "secure:budgets:read",
                ),
            ),
            Role.make(
                "viewer",
                "Reads shared notebooks and their own files; cannot run, change or save anything.",
                _UI | _s("contents:read", "nbconvert:read"),
            ),
        )
    }
)

#: The built-in role names, in the order the docs list them.
BUILTIN_ROLE_NAMES: tuple[str, ...] = tuple(DEFAULT_ROLES)
