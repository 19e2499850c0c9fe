"""The generated reference tables: every scope, and what each role of a policy holds.

``scripts/gen_config_docs.py`` writes these into the docs and a test checks
the docs are current, so the tables cannot drift from the vocabulary.
"""

from __future__ import annotations

from .decide import Principal
from .document import Policy
from .scopes import RESOURCES, SCOPES, resource_of

__all__ = ["roles_markdown", "scopes_markdown"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def scopes_markdown() -> str:
    """A table of every scope, grouped by resource, with what it allows and where it is checked."""
    lines = ["| scope | allows | checked at |", "|---|---|---|"]
    for resource, where in RESOURCES.items():
        for name, text in SCOPES.items():
            if resource_of(name) == resource:
                lines.append(f"| `{name}` | {_cell(text)} | {_cell(where)} |")
    return "\n".join(lines) + "\n"


def roles_markdown(policy: Policy) -> str:
    """The roles of ``policy``: a table of descriptions, then a matrix of scopes by roles.

    The matrix shows *effective* scopes (``[terminals]`` applied), i.e. what a
    user holding only that role gets before path, owner and kernel rules.
    """
    names = list(policy.roles)
    lines = ["| role | what it is for | scopes | kernelspecs |", "|---|---|---:|---|"]
    held: dict[str, frozenset[str]] = {}
    for n in names:
        who = Principal(f"<role {n}>", frozenset({n}))  # never a user name
        held[n] = policy.effective_scopes(who)
        specs = ", ".join(f"`{k}`" for k in policy.kernelspecs.get(n, ())) or "none"
        lines.append(f"| `{n}` | {_cell(policy.roles[n].description)} | {len(held[n])} | {specs} |")
    lines += ["", "| scope | " + " | ".join(f"`{n}`" for n in names) + " |"]
    lines.append("|---|" + "---|" * len(names))
    for s in SCOPES:
        marks = " | ".join("✓" if s in held[n] else "" for n in names)
        lines.append(f"| `{s}` | {marks} |")
    return "\n".join(lines) + "\n"
