"""The policy file: a TOML document read into an immutable, validated :class:`Policy`.

The file lives in the state directory (``jupyter secure init`` writes
:func:`default_policy_text` there). Its sections, all optional:

``version``
    ``1``; another number is refused, so an old server never half-reads a
    newer file.
``[roles.<name>]``
    ``description`` and ``scopes``. A built-in role the file does not
    redefine keeps its built-in scopes (so upgrades reach it); redefining one
    replaces its scopes; any other name adds a role.
``[groups.<name>]``
    ``members`` (user names), ``roles`` and an optional ``description``.
    Members may also come from the accounts' own group lists. Granting roles
    through groups is the recommended way.
``[users.<name>]``
    ``roles`` granted to one person directly, with an optional ``reason``.
    Allowed, but every one is listed in :attr:`Policy.warnings`, because an
    access review reads groups and direct grants are where access lingers.
``[[paths]]``
    Rules for files: ``pattern``, ``read``, ``write`` (lists of role names,
    ``owner`` and ``group:<name>``), ``description``. The first rule whose
    pattern matches decides; a path no rule matches is denied. Matching is
    described in :func:`~jupyter_secure.policy.decide.compile_pattern`.
``[kernelspecs]``
    Role name → kernel types it may start (``"*"`` for any). Roles not listed
    may start none.
``[terminals]``
    ``roles`` whose ``terminals:*`` scopes take effect; for everyone else
    those scopes are withheld even if a role lists them.

Unknown keys anywhere are errors (a misspelt ``wirte`` must not silently
leave a rule without its write list). All problems are collected and raised
together as one :class:`PolicyError`, each with file, line and field.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import hashlib
import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import SecureError
from .decide import (
    ANY_KERNELSPEC,
    GROUP_PREFIX,
    OWNER,
    CompiledRule,
    Decider,
    Decision,
    Principal,
    compile_pattern,
    normalise_path,
)
from .roles import DEFAULT_ROLES, Role
from .scopes import SCOPES, suggest_scope

__all__ = [
    "DEFAULT_KERNELSPECS",
    "DEFAULT_PATHS",
    "DEFAULT_TERMINALS",
    "GUARDED_KERNELSPEC",
    "POLICY_VERSION",
    "Group",
    "PathRule",
    "Policy",
    "PolicyError",
    "PolicyProblem",
    "UserGrant",
    "default_policy",
    "default_policy_text",
    "load_policy",
    "parse_policy",
]

POLICY_VERSION = 1
#: The kernelspec of the guarded kernel (masking, DP queries, no raw data):
#: the only one non-admin roles may start by default.
GUARDED_KERNELSPEC = "jupyter-secure"

_NAME = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")  # as identity.users.validate_name
_KERNELSPEC = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_RESERVED = frozenset({OWNER})


@dataclass(frozen=True, slots=True)
class Group:
    """A group from the policy file: who is in it and which roles it carries."""

    name: str
    roles: tuple[str, ...]
    members: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class UserGrant:
    """Roles granted to one user by name, outside any group (flagged in warnings)."""

    name: str
    roles: tuple[str, ...]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PathRule:
    """Who may read and write the files a pattern covers."""

    pattern: str
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    description: str = ""


_EVERYONE = tuple(sorted(DEFAULT_ROLES))  # sorted, as the reader stores lists
#: The built-in path rules, used when a file has no ``[[paths]]``. Mirrored in
#: ``default_policy.toml`` (a test holds the two together).
DEFAULT_PATHS: tuple[PathRule, ...] = (
    PathRule("shared/raw/**", ("admin",), ("admin",), "Raw protected data: admins only."),
    PathRule("home/{user}/**", (OWNER,), (OWNER,), "Each user's own workspace."),
    PathRule(
        "shared/**",
        _EVERYONE,
        ("admin", "instructor"),
        "Course material and reports: everyone reads, instructors publish.",
    ),
    PathRule("home", _EVERYONE, ("admin",), "The list of homes (filter it per entry)."),
    PathRule("", _EVERYONE, ("admin",), "The root directory listing."),
    PathRule("**", ("admin",), ("admin",), "Anything else: admins only."),
)
#: Roles whose ``terminals:*`` scopes take effect by default.
DEFAULT_TERMINALS: tuple[str, ...] = ("admin",)


def _default_kernelspecs(roles: Mapping[str, Role]) -> dict[str, tuple[str, ...]]:
    """``admin`` any kernel; every other role that may start kernels, the guarded one."""
    out: dict[str, tuple[str, ...]] = {}
    for name, role in roles.items():
        if name == "admin":
            out[name] = (ANY_KERNELSPEC,)
        elif "kernels:write" in role.scopes:
            out[name] = (GUARDED_KERNELSPEC,)
    return out


DEFAULT_KERNELSPECS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    _default_kernelspecs(DEFAULT_ROLES)
)


# ---------------------------------------------------------------------------
# Errors


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One thing wrong with a policy file, located as precisely as the source allows."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class PolicyError(SecureError, ValueError):
    """A policy file was refused; :attr:`problems` lists every reason.

    ``file``, ``line``, ``field`` and ``message`` are those of the first
    problem, for callers that show one; ``str()`` shows them all, one a line.
    """

    def __init__(self, problems: Sequence[PolicyProblem]) -> None:
        if not problems:
            raise ValueError("a PolicyError needs at least one problem")
        self.problems = tuple(problems)
        first = self.problems[0]
        self.file = first.file
        self.line = first.line
        self.field = first.field
        self.message = first.message
        super().__init__("\n".join(str(p) for p in self.problems))


# ---------------------------------------------------------------------------
# Locating fields in the source text


_KEY_PART = re.compile(r"\s*(?:\"((?:[^\"\\]|\\.)*)\"|'([^']*)'|([A-Za-z0-9_-]+))\s*")
_HEADER = re.compile(r"^\s*(\[\[?)([^\[\]]+)\]\]?\s*(?:#.*)?$")
_KEYLINE = re.compile(
    r"^\s*((?:\"(?:[^\"\\]|\\.)*\"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:\"(?:[^\"\\]|\\.)*\"|'[^']*'|[A-Za-z0-9_-]+))*)\s*="
)

FieldPath = tuple[str | int, ...]


def _split_key(text: str) -> tuple[str, ...]:
    parts: list[str] = []
    for piece in _dotted(text):
        m = _KEY_PART.fullmatch(piece)
        if m is None:
            return ()
        parts.append(next(g for g in m.groups() if g is not None))
    return tuple(parts)


def _dotted(text: str) -> list[str]:
    """Split a dotted key on dots outside quotes."""
    out, cur, quote = [], "", ""
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            cur += ch
        elif ch == ".":
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


class _Locator:
    """Best-effort line numbers for field paths, from the raw TOML text.

    tomllib keeps no positions, so this scans the lines once: table headers
    (``[roles.student]``, the n-th ``[[paths]]``) and ``key =`` lines under
    them. A value inside an array is found by searching for it, quoted, from
    its key's line to the next header.
    """

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.where: dict[FieldPath, int] = {}
        self.headers: list[int] = []
        table: FieldPath = ()
        counts: dict[tuple[str, ...], int] = {}
        for no, line in enumerate(self.lines, start=1):
            h = _HEADER.match(line)
            if h is not None:
                key = _split_key(h.group(2))
                if not key:
                    continue
                self.headers.append(no)
                if h.group(1) == "[[":
                    n = counts.get(key, 0)
                    counts[key] = n + 1
                    table = (*key, n)
                else:
                    table = key
                for i in range(1, len(table) + 1):
                    self.where.setdefault(table[:i], no)
                continue
            k = _KEYLINE.match(line)
            if k is not None:
                full = (*table, *_split_key(k.group(1)))
                for i in range(len(table) + 1, len(full) + 1):
                    self.where.setdefault(full[:i], no)

    def line(self, path: FieldPath, value: str | None = None) -> int | None:
        for cut in range(len(path), 0, -1):
            start = self.where.get(path[:cut])
            if start is None:
                continue
            if value is not None:
                end = next((h for h in self.headers if h > start), len(self.lines) + 1)
                needles = (json.dumps(value), f"'{value}'")
                for no in range(start, end):
                    if any(n in self.lines[no - 1] for n in needles):
                        return no
            return start
        return None


def _field(path: FieldPath) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            bare = re.fullmatch(r"[A-Za-z0-9_-]+", p) is not None
            part = p if bare else json.dumps(p)
            out += f".{part}" if out else part
    return out


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


# ---------------------------------------------------------------------------
# Validation


class _Reader:
    """Walks the parsed TOML, building the model and collecting every problem."""

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.locator = _Locator(text)
        self.problems: list[PolicyProblem] = []
        self.warnings: list[str] = []

    def error(self, path: FieldPath, message: str, value: str | None = None) -> None:
        self.problems.append(
            PolicyProblem(self.file, self.locator.line(path, value), _field(path), message)
        )

    def warn(self, path: FieldPath, message: str) -> None:
        line = self.locator.line(path)
        where = f"{self.file}:{line}" if line is not None else self.file
        self.warnings.append(f"{where}: {_field(path)}: {message}")

    def keys(self, path: FieldPath, table: Mapping[str, Any], allowed: Sequence[str]) -> None:
        for key in table:
            if key not in allowed:
                hint = _did_you_mean(key, allowed)
                self.error(
                    (*path, key),
                    f"unknown key {key!r}{hint} (allowed: {', '.join(allowed)})",
                )

    def table(self, path: FieldPath, value: Any) -> Mapping[str, Any] | None:
        if not isinstance(value, dict):
            self.error(path, f"expected a table, got {_kind(value)}")
            return None
        return value

    def string(self, path: FieldPath, value: Any) -> str | None:
        if not isinstance(value, str):
            self.error(path, f"expected a string, got {_kind(value)}")
            return None
        return value

    def strings(self, path: FieldPath, value: Any) -> list[tuple[int, str]]:
        """The string items of a list, with their index; problems for the rest."""
        if not isinstance(value, list):
            self.error(path, f"expected a list of strings, got {_kind(value)}")
            return []
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append((i, item))
            else:
                self.error((*path, i), f"expected a string, got {_kind(item)}")
        return out

    def name(self, path: FieldPath, name: str, what: str) -> bool:
        if _NAME.match(name) is None:
            self.error(
                path,
                f"{name!r} is not a valid {what} name: start with a lower-case letter, then "
                "up to 63 of a-z 0-9 . _ -",
            )
            return False
        return True

    def unique(self, path: FieldPath, items: list[tuple[int, str]]) -> tuple[str, ...]:
        seen: set[str] = set()
        for i, item in items:
            if item in seen:
                self.warn((*path, i), f"{item!r} is listed twice")
            seen.add(item)
        return tuple(sorted(seen))


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


_TOP = ("version", "roles", "groups", "users", "paths", "kernelspecs", "terminals")


def _read(data: Mapping[str, Any], r: _Reader) -> Policy | None:
    r.keys((), data, _TOP)
    version = data.get("version", POLICY_VERSION)
    if version != POLICY_VERSION or isinstance(version, bool):
        r.error(("version",), f"unsupported policy version {version!r} (this server reads 1)")

    roles = _read_roles(data, r)
    known_roles = tuple(roles)
    groups = _read_groups(data, r, known_roles)
    users = _read_users(data, r, known_roles)
    paths = _read_paths(data, r, known_roles, groups)
    kernelspecs = _read_kernelspecs(data, r, roles)
    terminals = _read_terminals(data, r, roles)

    if not any("secure:policy:admin" in role.scopes for role in roles.values()):
        r.warn(("roles",), "no role grants secure:policy:admin: nobody can change the policy")
    if r.problems:
        return None
    return Policy(
        roles=roles,
        groups=groups,
        users=users,
        paths=paths,
        kernelspecs=kernelspecs,
        terminals=terminals,
        warnings=tuple(r.warnings),
        source=r.file,
    )


def _role_ref(
    r: _Reader, path: FieldPath, items: list[tuple[int, str]], known: Sequence[str]
) -> list[tuple[int, str]]:
    """The items that name a defined role; an error with a suggestion for the rest."""
    ok = []
    for i, name in items:
        if name in known:
            ok.append((i, name))
        else:
            r.error((*path, i), f"unknown role {name!r}{_did_you_mean(name, known)}", value=name)
    return ok


def _read_roles(data: Mapping[str, Any], r: _Reader) -> dict[str, Role]:
    roles = dict(DEFAULT_ROLES)
    section = r.table(("roles",), data.get("roles", {}))
    for name, body in (section or {}).items():
        path: FieldPath = ("roles", name)
        if name in _RESERVED:
            r.error(path, f"{name!r} is reserved (it means the owner in path rules)")
            continue
        r.name(path, name, "role")
        spec = r.table(path, body)
        if spec is None:
            continue
        r.keys(path, spec, ("description", "scopes"))
        builtin = DEFAULT_ROLES.get(name)
        description = builtin.description if builtin else ""
        if "description" in spec:
            description = r.string((*path, "description"), spec["description"]) or ""
        elif builtin is None:
            r.error(path, "a new role needs a description (what it is for)")
        if "scopes" not in spec:
            r.error(path, "missing 'scopes' (a role redefined in the file replaces its scopes)")
            continue
        items = r.strings((*path, "scopes"), spec["scopes"])
        good = []
        for i, s in items:
            if s in SCOPES:
                good.append((i, s))
                continue
            close = suggest_scope(s)
            hint = f"; did you mean {close!r}?" if close else ""
            r.error((*path, "scopes", i), f"unknown scope {s!r}{hint}", value=s)
        roles[name] = Role(name, description, r.unique((*path, "scopes"), good))
    return roles


def _read_groups(
    data: Mapping[str, Any], r: _Reader, known_roles: Sequence[str]
) -> dict[str, Group]:
    groups: dict[str, Group] = {}
    section = r.table(("groups",), data.get("groups", {}))
    for name, body in (section or {}).items():
        path: FieldPath = ("groups", name)
        r.name(path, name, "group")
        spec = r.table(path, body)
        if spec is None:
            continue
        r.keys(path, spec, ("description", "members", "roles"))
        if "roles" not in spec:
            r.error(path, "missing 'roles' (what membership grants)")
        roles = _role_ref(
            r, (*path, "roles"), r.strings((*path, "roles"), spec.get("roles", [])), known_roles
        )
        members = r.strings((*path, "members"), spec.get("members", []))
        for i, m in members:
            r.name((*path, "members", i), m, "user")
        description = r.string((*path, "description"), spec.get("description", "")) or ""
        groups[name] = Group(
            name,
            r.unique((*path, "roles"), roles),
            r.unique((*path, "members"), members),
            description,
        )
    return groups


def _read_users(
    data: Mapping[str, Any], r: _Reader, known_roles: Sequence[str]
) -> dict[str, UserGrant]:
    users: dict[str, UserGrant] = {}
    section = r.table(("users",), data.get("users", {}))
    for name, body in (section or {}).items():
        path: FieldPath = ("users", name)
        r.name(path, name, "user")
        spec = r.table(path, body)
        if spec is None:
            continue
        r.keys(path, spec, ("roles", "reason"))
        if "roles" not in spec:
            r.error(path, "missing 'roles'")
        roles = _role_ref(
            r, (*path, "roles"), r.strings((*path, "roles"), spec.get("roles", [])), known_roles
        )
        reason = r.string((*path, "reason"), spec.get("reason", "")) or ""
        grant = UserGrant(name, r.unique((*path, "roles"), roles), reason)
        users[name] = grant
        r.warn(
            path,
            f"direct grant of {', '.join(grant.roles) or 'no roles'} to {name}; prefer a group "
            "(access reviews and removals work per group)",
        )
    return users


def _read_paths(
    data: Mapping[str, Any],
    r: _Reader,
    known_roles: Sequence[str],
    groups: Mapping[str, Group],
) -> tuple[PathRule, ...]:
    if "paths" not in data:
        return DEFAULT_PATHS
    value = data["paths"]
    if not isinstance(value, list):
        r.error(("paths",), f"expected [[paths]] tables, got {_kind(value)}")
        return ()
    rules: list[PathRule] = []
    seen: dict[str, int] = {}
    for n, body in enumerate(value):
        path: FieldPath = ("paths", n)
        spec = r.table(path, body)
        if spec is None:
            continue
        r.keys(path, spec, ("pattern", "read", "write", "description"))
        if "pattern" not in spec:
            r.error(path, f"rule #{n + 1} has no 'pattern'")
            continue
        pattern = r.string((*path, "pattern"), spec["pattern"])
        if pattern is None:
            continue
        has_user = False
        try:
            has_user = "user" in compile_pattern(pattern).groupindex
        except ValueError as exc:
            r.error((*path, "pattern"), f"rule #{n + 1}: {exc}")
        norm = pattern.strip("/")
        if norm in seen:
            r.warn(
                (*path, "pattern"),
                f"rule #{n + 1} never applies: rule #{seen[norm] + 1} has the same pattern",
            )
        seen.setdefault(norm, n)
        lists = _path_entries(
            r, path, spec, has_user=has_user, known_roles=known_roles, groups=groups
        )
        description = r.string((*path, "description"), spec.get("description", "")) or ""
        rules.append(PathRule(norm, lists["read"], lists["write"], description))
    return tuple(rules)


def _path_entries(
    r: _Reader,
    path: FieldPath,
    spec: Mapping[str, Any],
    *,
    has_user: bool,
    known_roles: Sequence[str],
    groups: Mapping[str, Group],
) -> dict[str, tuple[str, ...]]:
    """A rule's ``read`` and ``write`` lists: roles, ``owner``, ``group:<name>``."""
    lists: dict[str, tuple[str, ...]] = {}
    for access in ("read", "write"):
        items = r.strings((*path, access), spec.get(access, []))
        good = []
        for i, entry in items:
            where = (*path, access, i)
            if entry == OWNER:
                if not has_user:
                    r.error(where, "'owner' needs a {user} segment in the pattern", entry)
                    continue
            elif entry.startswith(GROUP_PREFIX):
                g = entry[len(GROUP_PREFIX) :]
                if not r.name(where, g, "group"):
                    continue
                if g not in groups:
                    r.warn(where, f"group {g!r} is not in [groups]: only accounts list it")
            elif entry not in known_roles:
                choices = [*known_roles, OWNER]
                r.error(
                    where,
                    f"unknown role {entry!r}{_did_you_mean(entry, choices)} (entries are "
                    "role names, 'owner' or 'group:<name>')",
                    entry,
                )
                continue
            good.append((i, entry))
        lists[access] = r.unique((*path, access), good)
    return lists


def _read_kernelspecs(
    data: Mapping[str, Any], r: _Reader, roles: Mapping[str, Role]
) -> dict[str, tuple[str, ...]]:
    if "kernelspecs" not in data:
        return _default_kernelspecs(roles)
    section = r.table(("kernelspecs",), data["kernelspecs"])
    out: dict[str, tuple[str, ...]] = {}
    for role, names in (section or {}).items():
        path: FieldPath = ("kernelspecs", role)
        if role not in roles:
            r.error(path, f"unknown role {role!r}{_did_you_mean(role, roles)}")
            continue
        good = []
        for i, k in r.strings(path, names):
            if k != ANY_KERNELSPEC and _KERNELSPEC.match(k) is None:
                r.error((*path, i), f"{k!r} is not a kernelspec name (or '*')", k)
                continue
            good.append((i, k))
        out[role] = r.unique(path, good)
        if out[role] and "kernels:write" not in roles[role].scopes:
            r.warn(path, f"role {role} cannot start kernels (no kernels:write); this has no effect")
    return out


def _read_terminals(
    data: Mapping[str, Any], r: _Reader, roles: Mapping[str, Role]
) -> tuple[str, ...]:
    if "terminals" not in data:
        return DEFAULT_TERMINALS
    spec = r.table(("terminals",), data["terminals"])
    if spec is None:
        return ()
    r.keys(("terminals",), spec, ("roles",))
    items = r.strings(("terminals", "roles"), spec.get("roles", []))
    good = _role_ref(r, ("terminals", "roles"), items, tuple(roles))
    for i, role in good:
        if "terminals:execute" not in roles[role].scopes:
            r.warn(
                ("terminals", "roles", i),
                f"role {role} lacks terminals:execute; listing it here grants nothing",
            )
    return r.unique(("terminals", "roles"), good)


# ---------------------------------------------------------------------------
# The policy


@dataclass(frozen=True, eq=False)
class Policy:
    """A validated policy: roles, groups, direct grants, path, kernel and terminal rules.

    Immutable: a reload builds a new one and swaps the reference, so a
    request sees one whole policy, never half of two. Compare two with
    :meth:`digest` (equal policies have equal digests whatever their
    formatting) and :meth:`diff`.
    """

    roles: Mapping[str, Role]
    groups: Mapping[str, Group] = field(default_factory=dict)
    users: Mapping[str, UserGrant] = field(default_factory=dict)
    paths: tuple[PathRule, ...] = DEFAULT_PATHS
    kernelspecs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    terminals: tuple[str, ...] = DEFAULT_TERMINALS
    #: Things that are allowed but deserve a look (direct grants first among them).
    warnings: tuple[str, ...] = ()
    #: Where the policy came from (a file name), for messages; not part of the digest.
    source: str = "<built-in>"
    _decider: Decider = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("roles", "groups", "users", "kernelspecs"):
            value = getattr(self, name)
            object.__setattr__(self, name, MappingProxyType(dict(value)))
        object.__setattr__(self, "_decider", self._compile())

    def _compile(self) -> Decider:
        members: dict[str, set[str]] = {}
        for g in self.groups.values():
            for m in g.members:
                members.setdefault(m, set()).add(g.name)
        rules = tuple(
            CompiledRule(
                index=i,
                pattern=p.pattern,
                regex=compile_pattern(p.pattern),
                read=frozenset(p.read),
                write=frozenset(p.write),
            )
            for i, p in enumerate(self.paths, start=1)
        )
        return Decider(
            role_scopes={n: frozenset(r.scopes) for n, r in self.roles.items()},
            group_roles={n: frozenset(g.roles) for n, g in self.groups.items()},
            member_groups={u: frozenset(gs) for u, gs in members.items()},
            user_roles={n: frozenset(u.roles) for n, u in self.users.items()},
            kernelspecs={n: frozenset(k) for n, k in self.kernelspecs.items()},
            terminal_roles=frozenset(self.terminals),
            rules=rules,
        )

    # -- decisions -------------------------------------------------------

    def decide(
        self,
        principal: Principal,
        scope: str,
        *,
        path: str | None = None,
        owner: str | None = None,
        kernelspec: str | None = None,
    ) -> Decision:
        """May ``principal`` use ``scope`` (on ``path``, ``owner``'s object, ``kernelspec``)?

        Never raises and has no side effects; see
        :mod:`jupyter_secure.policy.decide` for the order of the checks.
        """
        return self._decider.decide(principal, scope, path=path, owner=owner, kernelspec=kernelspec)

    def decide_tree(self, principal: Principal, scope: str, path: str) -> Decision:
        """May ``principal`` use ``scope`` on ``path`` *and everything below it*?

        For operations that act on a whole directory at once — copying it,
        renaming or deleting it — deciding on the top path is not enough: a
        copy of ``shared`` carries ``shared/raw`` with it. Each path rule whose
        pattern reaches below ``path`` is checked on a sample path it covers
        (``{user}`` standing for someone other than the principal, ``*`` and
        ``**`` for an arbitrary name); the first refusal decides.
        """
        top = self.decide(principal, scope, path=path)
        normal, _ = normalise_path(path)
        if not top or normal is None:
            return top
        for rule in self.paths:
            sample = _sample_below(rule.pattern, normal, principal.name)
            if sample is None:
                continue
            below = self.decide(principal, scope, path=sample)
            if not below:
                return Decision(
                    False, scope, f"{path or '/'} contains {rule.pattern}: {below.rule}"
                )
        return top

    def effective_roles(self, principal: Principal) -> frozenset[str]:
        """The defined roles the principal holds, directly or through groups."""
        return self._decider.resolve(principal).roles

    def effective_groups(self, principal: Principal) -> frozenset[str]:
        """The account's groups plus the policy groups that list the principal."""
        return self._decider.resolve(principal).groups

    def effective_scopes(self, principal: Principal) -> frozenset[str]:
        """Every scope the principal's roles grant (before path, owner and kernel rules)."""
        return self._decider.resolve(principal).scopes

    def allowed_kernelspecs(self, principal: Principal) -> frozenset[str]:
        """Kernel types the principal may start; contains ``"*"`` when any is allowed."""
        return frozenset(self._decider.resolve(principal).kernelspecs)

    def group_members(self, group: str) -> frozenset[str]:
        """The members the policy file lists for ``group`` (accounts may add more)."""
        g = self.groups.get(group)
        return frozenset(g.members) if g else frozenset()

    # -- comparison ------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The policy as plain data, every default filled in (what the digest covers)."""
        return {
            "version": POLICY_VERSION,
            "roles": {
                n: {"description": r.description, "scopes": list(r.scopes)}
                for n, r in sorted(self.roles.items())
            },
            "groups": {
                n: {
                    "description": g.description,
                    "members": list(g.members),
                    "roles": list(g.roles),
                }
                for n, g in sorted(self.groups.items())
            },
            "users": {
                n: {"roles": list(u.roles), "reason": u.reason}
                for n, u in sorted(self.users.items())
            },
            "paths": [
                {
                    "pattern": p.pattern,
                    "read": sorted(p.read),
                    "write": sorted(p.write),
                    "description": p.description,
                }
                for p in self.paths
            ],
            "kernelspecs": {n: sorted(k) for n, k in sorted(self.kernelspecs.items())},
            "terminals": {"roles": sorted(self.terminals)},
        }

    def digest(self) -> str:
        """``sha256:<hex>`` of the canonical form: stable across runs, comments and layout."""
        return self._digest

    @functools.cached_property
    def _digest(self) -> str:
        # cached_property writes the instance __dict__ directly, which a frozen
        # dataclass allows; the policy cannot change, so neither can this.
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Policy) and self.digest() == other.digest()

    def __hash__(self) -> int:
        return hash(self.digest())

    def diff(self, other: Policy) -> list[str]:
        """What changes from this policy to ``other``, one human-readable line per change.

        For the audit event of a hot reload: ``+``/``-`` for added and removed
        items, ``a → b`` for changed values; empty when the two are equal.
        """
        old, new = self.to_dict(), other.to_dict()
        out: list[str] = []
        for name, label, items in (
            ("roles", "role", ("scopes",)),
            ("groups", "group", ("roles", "members")),
            ("users", "direct grant to", ("roles",)),
        ):
            a, b = old[name], new[name]
            for key in sorted(a.keys() - b.keys()):
                out.append(f"- {label} {key}")
            for key in sorted(b.keys() - a.keys()):
                detail = "; ".join(f"{k}: {', '.join(b[key][k]) or '-'}" for k in items)
                out.append(f"+ {label} {key} ({detail})")
            for key in sorted(a.keys() & b.keys()):
                for k in items:
                    gone = sorted(set(a[key][k]) - set(b[key][k]))
                    came = sorted(set(b[key][k]) - set(a[key][k]))
                    singular = k.rstrip("s")
                    out += [f"{label} {key}: - {singular} {x}" for x in gone]
                    out += [f"{label} {key}: + {singular} {x}" for x in came]
                for k in ("description", "reason"):
                    if k in a[key] and a[key][k] != b[key][k]:
                        out.append(f"{label} {key}: {k} {a[key][k]!r} → {b[key][k]!r}")
        pa, pb = old["paths"], new["paths"]
        for i in range(max(len(pa), len(pb))):
            if i >= len(pb):
                out.append(f"- path rule #{i + 1} {_rule_text(pa[i])}")
            elif i >= len(pa):
                out.append(f"+ path rule #{i + 1} {_rule_text(pb[i])}")
            elif pa[i] != pb[i]:
                out.append(f"path rule #{i + 1}: {_rule_text(pa[i])} → {_rule_text(pb[i])}")
        ka, kb = old["kernelspecs"], new["kernelspecs"]
        for role in sorted(ka.keys() | kb.keys()):
            ra, rb = set(ka.get(role, [])), set(kb.get(role, []))
            out += [f"kernelspecs {role}: - {k}" for k in sorted(ra - rb)]
            out += [f"kernelspecs {role}: + {k}" for k in sorted(rb - ra)]
        ta, tb = set(old["terminals"]["roles"]), set(new["terminals"]["roles"])
        out += [f"terminals: - role {x}" for x in sorted(ta - tb)]
        out += [f"terminals: + role {x}" for x in sorted(tb - ta)]
        return out


def _rule_text(rule: Mapping[str, Any]) -> str:
    read = ", ".join(rule["read"]) or "-"
    write = ", ".join(rule["write"]) or "-"
    return f"{rule['pattern'] or '(root)'} read [{read}] write [{write}]"


# ---------------------------------------------------------------------------
# Loading

_TOML_AT = re.compile(r"\(at line (\d+), column \d+\)")


def parse_policy(text: str, *, file: str = "<policy>") -> Policy:
    """A policy from TOML text, or :class:`PolicyError` with every problem found."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_AT.search(str(exc))
        message = _TOML_AT.sub("", str(exc)).strip()
        raise PolicyError(
            [PolicyProblem(file, int(m.group(1)) if m else None, "", f"not valid TOML: {message}")]
        ) from None
    reader = _Reader(text, file)
    policy = _read(data, reader)
    if policy is None:
        # In reading order; problems without a line (none today) last.
        raise PolicyError(sorted(reader.problems, key=lambda p: (p.line is None, p.line or 0)))
    return policy


def load_policy(path: str | Path) -> Policy:
    """The policy in the file at ``path``; unreadable counts as invalid (fail closed)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([PolicyProblem(str(p), None, "", f"cannot read: {exc}")]) from None
    return parse_policy(text, file=str(p))


def default_policy_text() -> str:
    """The commented default policy file, as ``jupyter secure init`` writes it."""
    return (resources.files(__package__) / "default_policy.toml").read_text(encoding="utf-8")


@functools.cache
def default_policy() -> Policy:
    """The shipped default policy (parsed once)."""
    return parse_policy(default_policy_text(), file="default_policy.toml")


def _sample_below(pattern: str, top: str, name: str) -> str | None:
    """A path strictly below directory ``top`` that ``pattern`` covers, or None.

    Pattern segments are matched against ``top``'s segments (``{user}``, ``*``
    and ``?`` match any segment, ``**`` any rest); the remaining pattern
    segments are filled in to make a concrete path.
    """
    pat = [s for s in pattern.strip("/").split("/") if s] if pattern.strip("/") else []
    segs = top.split("/") if top else []
    out: list[str] = []
    i = 0
    for i, p in enumerate(pat):
        if p == "**":
            return "/".join([*segs, "x"])  # covers all of top's subtree
        if i >= len(segs):
            break
        if not (p == "{user}" or fnmatch.fnmatchcase(segs[i], p)):
            return None
        out.append(segs[i])
    else:
        return None  # the pattern ends at or above top: nothing strictly below
    rest = pat[len(segs) :]
    if not rest:
        return None
    filled = [
        f"{name}-other" if p == "{user}" else "x" if ("*" in p or "?" in p) else p for p in rest
    ]
    return "/".join([*segs, *filled])
