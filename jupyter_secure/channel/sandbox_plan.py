"""Which parts of the notebook root a guarded kernel may read and write.

The kernel's Landlock ruleset can only *allow* directories (everything else is
denied), so the path rules have to be turned into a list of directories the
user may read, or read and write, as a whole. :func:`plan_workspace` walks the
notebook root: a directory whose whole subtree one answer covers (checked with
:meth:`Policy.decide_tree`, which samples every rule reaching below it) is
allowed as one rule; a directory with mixed answers is descended into (to a
bounded depth), and its files are allowed one by one. Anything undecided stays
denied: fail closed.

Symbolic links are never followed while planning: a link in a workspace that
points at the state directory is allowed only by the rules that cover its
target, and Landlock resolves the link when the kernel opens it. Pure: the
policy room and ``os`` only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..policy import Policy, Principal

__all__ = ["WorkspacePlan", "plan_workspace"]


@dataclass
class WorkspacePlan:
    """Absolute paths: directories readable, directories writable, single files readable."""

    read: list[str] = field(default_factory=list)
    write: list[str] = field(default_factory=list)
    read_files: list[str] = field(default_factory=list)
    #: paths left out because they contain something a kernel must never reach
    excluded: list[str] = field(default_factory=list)


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)


def plan_workspace(
    root: str,
    policy: Policy,
    who: Principal,
    *,
    forbidden: tuple[str, ...] = (),
    max_depth: int = 4,
) -> WorkspacePlan:
    """The Landlock allowances for ``who`` under the notebook ``root``.

    ``forbidden`` are real paths no allowance may contain (the state directory,
    the kernels' runtime directory); an allowance that would is replaced by its
    children, or dropped at ``max_depth``.
    """
    plan = WorkspacePlan()
    real_root = os.path.realpath(root)
    bad = tuple(os.path.realpath(p) for p in forbidden)

    def covers_forbidden(path: str) -> bool:
        return any(_inside(b, path) for b in bad)

    def visit(rel: str, depth: int) -> None:
        path = os.path.join(real_root, rel) if rel else real_root
        if any(_inside(path, b) for b in bad):
            plan.excluded.append(path)
            return
        read_all = bool(policy.decide_tree(who, "contents:read", rel))
        write_all = bool(policy.decide_tree(who, "contents:write", rel))
        if read_all and not covers_forbidden(path):
            if write_all:
                plan.write.append(path)
                return
            if not policy.decide(who, "contents:write", path=f"{rel}/x" if rel else "x"):
                plan.read.append(path)
                return
        if depth >= max_depth:
            if covers_forbidden(path):
                plan.excluded.append(path)
            return
        try:
            entries = list(os.scandir(path))
        except OSError:
            return
        for entry in sorted(entries, key=lambda e: e.name):
            child = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                visit(child, depth + 1)
            elif entry.is_file(follow_symlinks=False) and policy.decide(
                who, "contents:read", path=child
            ):
                plan.read_files.append(entry.path)

    visit("", 0)
    return plan
