"""Every default role grants and denies what the issue says it does."""

from __future__ import annotations

import pytest

from jupyter_secure.identity import KNOWN_ROLES
from jupyter_secure.policy import (
    DEFAULT_ROLES,
    GUARDED_KERNELSPEC,
    SCOPES,
    Principal,
    default_policy,
)

POLICY = default_policy()

#: Only admin may hold these (least privilege).
ADMIN_ONLY = {
    "terminals:read",
    "terminals:write",
    "terminals:execute",
    "server:write",
    "secure:users:admin",
    "secure:policy:admin",
    "secure:unmask",
    "secure:datasets:admin",
    "extension_manager:read",
    "extension_manager:write",
    "settings:write",
    "config:write",
    "plugins:write",
    "build:write",
    "kernels:admin",
    "sessions:admin",
    "events:execute",
    "events:write",
    "lsp:execute",
}

#: (role, scope, allowed) — the issue's sentences, one row each.
EXPECTED = [
    # admin: everything.
    *[("admin", s, True) for s in SCOPES],
    # instructor: manages budgets, reads audit of their groups; no raw data, no unmask.
    ("instructor", "secure:budgets:admin", True),
    ("instructor", "secure:budgets:read", True),
    ("instructor", "secure:audit:read", True),
    ("instructor", "secure:audit:admin", False),
    ("instructor", "secure:unmask", False),
    ("instructor", "kernels:execute", True),
    ("instructor", "contents:write", True),
    ("instructor", "terminals:execute", False),
    # data_scientist: own workspace, guarded kernels, DP queries, pseudonymised PII.
    ("data_scientist", "contents:read", True),
    ("data_scientist", "contents:write", True),
    ("data_scientist", "kernels:execute", True),
    ("data_scientist", "sessions:write", True),
    ("data_scientist", "secure:datasets:query", True),
    ("data_scientist", "secure:unmask", False),
    ("data_scientist", "secure:budgets:admin", False),
    ("data_scientist", "secure:audit:read", False),
    ("data_scientist", "terminals:execute", False),
    # student: own workspace, guarded kernels, DP budgets; no terminals, no tokens.
    ("student", "kernels:execute", True),
    ("student", "contents:write", True),
    ("student", "secure:datasets:query", True),
    ("student", "terminals:read", False),
    ("student", "terminals:write", False),
    ("student", "terminals:execute", False),
    ("student", "secure:tokens:write", False),
    ("student", "secure:budgets:admin", False),
    ("student", "secure:audit:read", False),
    # auditor: reads audit, metrics, reports; no kernels, no execute.
    ("auditor", "secure:audit:read", True),
    ("auditor", "secure:audit:admin", True),
    ("auditor", "secure:metrics:read", True),
    ("auditor", "contents:read", True),
    ("auditor", "contents:write", False),
    ("auditor", "kernels:read", False),
    ("auditor", "kernels:write", False),
    ("auditor", "kernels:execute", False),
    ("auditor", "sessions:write", False),
    ("auditor", "secure:datasets:query", False),
    # viewer: reads notebooks; cannot execute or write.
    ("viewer", "contents:read", True),
    ("viewer", "nbconvert:read", True),
    ("viewer", "lab:read", True),
    ("viewer", "contents:write", False),
    ("viewer", "kernels:execute", False),
    ("viewer", "kernels:write", False),
    ("viewer", "sessions:write", False),
    ("viewer", "workspaces:write", False),
    ("viewer", "secure:datasets:query", False),
    ("viewer", "secure:tokens:write", False),
]


def test_exactly_the_six_roles_of_the_issue() -> None:
    assert tuple(DEFAULT_ROLES) == KNOWN_ROLES
    assert set(POLICY.roles) == set(KNOWN_ROLES)
    for role in DEFAULT_ROLES.values():
        assert len(role.description) > 20
        assert list(role.scopes) == sorted(set(role.scopes))


@pytest.mark.parametrize(("role", "scope", "allowed"), EXPECTED)
def test_role_grants(role: str, scope: str, allowed: bool) -> None:
    d = POLICY.decide(Principal("someone", {role}), scope)
    assert d.allowed is allowed, d.rule
    if allowed:
        assert d.rule == f"role {role} grants {scope}"
    else:
        assert d.rule == f"default deny: no role grants {scope}"


@pytest.mark.parametrize("scope", sorted(ADMIN_ONLY))
def test_least_privilege_admin_only(scope: str) -> None:
    holders = {
        name for name in POLICY.roles if scope in POLICY.effective_scopes(Principal("x", {name}))
    }
    assert holders == {"admin"}


@pytest.mark.parametrize("role", ["instructor", "data_scientist", "student", "auditor", "viewer"])
def test_everyone_can_load_the_ui(role: str) -> None:
    held = POLICY.effective_scopes(Principal("x", {role}))
    ui = {"api:read", "lab:read", "settings:read", "themes:read", "translations:read", "csp:write"}
    assert ui <= held


def test_non_admins_start_only_the_guarded_kernel() -> None:
    assert GUARDED_KERNELSPEC == "jupyter-secure"
    for role in ("instructor", "data_scientist", "student"):
        p = Principal("x", {role})
        assert POLICY.allowed_kernelspecs(p) == {"jupyter-secure"}
        assert POLICY.decide(p, "kernels:write", kernelspec="jupyter-secure").allowed
        d = POLICY.decide(p, "kernels:write", kernelspec="python3")
        assert not d.allowed
        assert d.rule == (
            f"kernelspec 'python3' is not allowed for roles {role} (allowed: jupyter-secure)"
        )
    admin = Principal("root", {"admin"})
    assert POLICY.allowed_kernelspecs(admin) == {"*"}
    d = POLICY.decide(admin, "kernels:write", kernelspec="python3")
    assert d.allowed
    for role in ("auditor", "viewer"):
        assert POLICY.allowed_kernelspecs(Principal("x", {role})) == frozenset()


def test_role_scope_counts() -> None:
    """A change to a default role shows up here and in the generated docs on purpose."""
    counts = {n: len(POLICY.effective_scopes(Principal("x", {n}))) for n in POLICY.roles}
    assert counts == {
        "admin": len(SCOPES),
        "instructor": 31,
        "data_scientist": 29,
        "student": 27,
        "auditor": 21,
        "viewer": 14,
    }
