"""``policy explain``: a decision and every step that led to it, for a person to read.

The steps come from the same code path as :meth:`Policy.decide` (it is run
with a trace), so the explanation cannot disagree with the decision.
"""

from __future__ import annotations

from .decide import Principal
from .document import Policy

__all__ = ["explain"]


def explain(
    policy: Policy,
    principal: Principal,
    scope: str,
    *,
    path: str | None = None,
    owner: str | None = None,
    kernelspec: str | None = None,
) -> str:
    """Several lines: who the principal is to the policy, each check, the decision."""
    lines = [f"user:     {principal.name}"]
    lines.append(f"account:  roles {_list(principal.roles)}; groups {_list(principal.groups)}")
    sources = _role_sources(policy, principal)
    eff = policy.effective_roles(principal)
    lines.append(f"groups:   {_list(policy.effective_groups(principal))}")
    for g in sorted(principal.groups - set(policy.groups)):
        lines.append(f"          group {g} is not in the policy file: it grants no roles")
    lines.append("roles:    " + (", ".join(f"{r} ({sources[r]})" for r in sorted(eff)) or "-"))
    unknown = (set(sources) - eff) | {r for r in principal.roles if r not in policy.roles}
    for r in sorted(unknown):
        lines.append(f"          role {r} is not defined: ignored")
    if principal.name in policy.users:
        lines.append(f"          note: {principal.name} has a direct grant in [users]")
    asked = [f"scope {scope}"]
    if path is not None:
        asked.append(f"path {path!r}")
    if owner is not None:
        asked.append(f"owner {owner}")
    if kernelspec is not None:
        asked.append(f"kernelspec {kernelspec!r}")
    lines.append("request:  " + ", ".join(asked))
    trace: list[str] = []
    decision = policy._decider.decide(
        principal, scope, path=path, owner=owner, kernelspec=kernelspec, trace=trace
    )
    lines += [f"  check:  {step}" for step in trace]
    verdict = "ALLOW" if decision.allowed else "DENY"
    lines.append(f"decision: {verdict} — {decision.rule}")
    return "\n".join(lines)


def _list(items: frozenset[str]) -> str:
    return ", ".join(sorted(items)) or "-"


def _role_sources(policy: Policy, who: Principal) -> dict[str, str]:
    """Each role the principal has, with where it comes from (first source wins)."""
    out: dict[str, str] = {}
    for r in sorted(who.roles):
        out.setdefault(r, "account")
    grant = policy.users.get(who.name)
    for r in grant.roles if grant else ():
        out.setdefault(r, "direct grant in [users]")
    for g in sorted(policy.effective_groups(who)):
        group = policy.groups.get(g)
        for r in group.roles if group else ():
            out.setdefault(r, f"group {g}")
    return out
