"""Access decisions: who (a :class:`Principal`) may do what (a scope) to which object.

Everything here is pure and side-effect free: a decision depends only on the
policy and its arguments, never raises for a request (an unknown role, scope
or a hostile path is a denial with a rule that says so) and writes nothing.
Auditing a denial is the caller's job, with the :class:`Decision` it got.

A decision runs these checks in order and the first that fails decides:

1. the scope is in the vocabulary;
2. one of the principal's effective roles grants it (``terminals:*`` only
   from roles the ``[terminals]`` table lists);
3. ``owner``: an object that belongs to someone else needs the resource's
   ``admin`` scope (``kernels:admin``, ``sessions:admin``, …);
4. ``kernelspec``: one of the roles may start that kernel type;
5. ``path``: the first path rule that matches allows the access.

Effective roles are the principal's own roles, the policy file's direct
grants for that name, and the roles of every group the principal is in —
groups listed on the account and groups whose ``members`` name them.
The result of steps 1-2 is cached per principal, so a decision costs a dict
lookup plus, for a path, a few compiled regexes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .scopes import SCOPES, owner_scope, resource_of

__all__ = [
    "ANY_KERNELSPEC",
    "OWNER",
    "CompiledRule",
    "Decider",
    "Decision",
    "Principal",
    "compile_pattern",
    "normalise_path",
]

#: In a path rule's ``read``/``write`` list: the user the ``{user}`` segment names.
OWNER = "owner"
#: In a path rule's ``read``/``write`` list, prefix for a group: ``group:course-101``.
GROUP_PREFIX = "group:"
#: In the ``[kernelspecs]`` table: any kernel type.
ANY_KERNELSPEC = "*"

_TERMINALS = frozenset(s for s in SCOPES if s.startswith("terminals:"))
_CACHE_MAX = 4096
_EMPTY: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, init=False)
class Principal:
    """The identity a decision is about: a user name, their roles and groups.

    ``roles`` and ``groups`` are what the account stores (any iterable); the
    policy file adds direct grants and group memberships of its own.
    Hashable, so that decisions can be cached per principal.
    """

    name: str
    roles: frozenset[str]
    groups: frozenset[str]

    def __init__(self, name: str, roles: Iterable[str] = (), groups: Iterable[str] = ()) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "roles", frozenset(roles))
        object.__setattr__(self, "groups", frozenset(groups))

    @classmethod
    def of(cls, user: _HasRolesGroups) -> Principal:
        """From anything with ``name``, ``roles`` and ``groups`` (``UserInfo``, ``SecureUser``)."""
        return cls(user.name, user.roles, user.groups)


class _HasRolesGroups(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def roles(self) -> Iterable[str]: ...
    @property
    def groups(self) -> Iterable[str]: ...


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer and what decided it.

    ``rule`` is one line for the audit event and the ``policy explain`` CLI,
    e.g. ``role student grants contents:read`` or ``path rule #1
    shared/raw/** (admin only)``. Truthy when allowed.
    """

    allowed: bool
    scope: str
    rule: str

    def __bool__(self) -> bool:
        return self.allowed


def normalise_path(path: str) -> tuple[str | None, str]:
    """``(normalised path, "")`` or ``(None, reason)`` for a path that is refused.

    Leading, trailing and doubled slashes and ``.`` segments go. A ``..``
    segment is refused rather than collapsed: collapsing is only sound
    lexically, and through a symlink ``a/link/../x`` is not ``a/x`` on disk,
    so no decision is made about such a path at all. Backslashes and NULs are
    refused too (Windows separators, C-string truncation). Decoding
    ``%2e%2e`` is the caller's job (tornado already does it).
    """
    if "\\" in path or "\x00" in path:
        return None, "path contains a backslash or NUL"
    if "/." not in path and "//" not in path and not path.startswith("."):
        # No "." or ".." segment can hide here (each starts the path or follows
        # a "/"), and no empty one inside: the common case, without a split.
        return path.strip("/"), ""
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        return None, "path contains '..'"
    return "/".join(parts), ""


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A path-rule pattern as an anchored regex; ``ValueError`` says what is wrong.

    Patterns are matched against normalised paths (no leading ``/``):

    * ``*`` matches within one segment, ``?`` one character of a segment;
    * ``**`` as a whole segment matches zero or more segments, so
      ``shared/raw/**`` matches ``shared/raw`` itself and all below it;
    * ``{user}`` as a whole segment matches one segment, any user's name;
      the rule's ``owner`` entry then means the user it names;
    * ``""`` (or ``/``) matches the root directory only;
    * everything else is literal and case-sensitive.
    """
    norm, reason = normalise_path(pattern)
    if norm is None:
        raise ValueError(reason.replace("path", "pattern"))
    if norm == "":
        return re.compile("")
    segs = norm.split("/")
    # "a/**/**/b" means the same as "a/**/b".
    segs = [s for i, s in enumerate(segs) if not (s == "**" and i > 0 and segs[i - 1] == "**")]
    if sum(s == "{user}" for s in segs) > 1:
        raise ValueError("{user} may appear once")
    out: list[str] = []
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        if seg == "**":
            if len(segs) == 1:
                out.append(".*")
            elif last:
                out.append("(?:/.*)?")
            elif i == 0:
                out.append("(?:.*/)?")
            else:
                out.append("/(?:.*/)?")
            continue
        sep = "" if i == 0 or segs[i - 1] == "**" else "/"
        out.append(sep + _segment(seg))
    return re.compile("".join(out))


def _segment(seg: str) -> str:
    if seg == "{user}":
        return "(?P<user>[^/]+)"
    if "**" in seg:
        raise ValueError("** must be a whole segment (a/**/b)")
    if "{" in seg or "}" in seg:
        raise ValueError("the only placeholder is {user}, as a whole segment")
    return "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in seg)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A path rule ready to match: who may read and write what it covers."""

    index: int
    pattern: str
    regex: re.Pattern[str] = field(compare=False)
    read: frozenset[str]
    write: frozenset[str]

    def who(self, access: str) -> frozenset[str]:
        return self.read if access == "read" else self.write

    def summary(self, access: str) -> str:
        """``admin only``, ``owner only``, ``nobody`` or ``read: a, b``."""
        who = sorted(self.who(access))
        if not who:
            return f"nobody may {access}"
        if len(who) == 1:
            return f"{who[0]} only"
        return f"{access}: {', '.join(who)}"


@dataclass(frozen=True, slots=True)
class _RoleSet:
    """What one combination of roles grants (cached: deployments have few combinations)."""

    roles: frozenset[str]  # the defined ones
    unknown_roles: frozenset[str]
    scopes: frozenset[str]
    grantor: Mapping[str, str]  # scope -> the first role (sorted) granting it
    gated: frozenset[str]  # terminals:* scopes a role has but [terminals] withholds
    kernelspecs: Mapping[str, str]  # kernelspec (or "*") -> the first role allowing it


@dataclass(frozen=True, slots=True)
class _Resolved:
    """One principal's effective groups and role set (cached)."""

    groups: frozenset[str]
    roles: frozenset[str]
    unknown_roles: frozenset[str]
    scopes: frozenset[str]
    grantor: Mapping[str, str]
    gated: frozenset[str]
    kernelspecs: Mapping[str, str]


class Decider:
    """The policy's tables compiled for fast decisions.

    Built once per policy (see :class:`~jupyter_secure.policy.Policy`). The
    caches map a principal to its groups and roles, and a combination of
    roles to what it grants; they are memos (dropping them changes no
    answer), bounded, and safe under threads because a lost race computes
    the same value twice.
    """

    def __init__(
        self,
        *,
        role_scopes: Mapping[str, frozenset[str]],
        group_roles: Mapping[str, frozenset[str]],
        member_groups: Mapping[str, frozenset[str]],
        user_roles: Mapping[str, frozenset[str]],
        kernelspecs: Mapping[str, frozenset[str]],
        terminal_roles: frozenset[str],
        rules: tuple[CompiledRule, ...],
    ) -> None:
        self.role_scopes = role_scopes
        self.group_roles = group_roles
        self.member_groups = member_groups
        self.user_roles = user_roles
        self.kernelspecs = kernelspecs
        self.terminal_roles = terminal_roles
        self.rules = rules
        self._cache: dict[Principal, _Resolved] = {}
        self._sets: dict[frozenset[str], _RoleSet] = {}

    def resolve(self, who: Principal) -> _Resolved:
        """The principal's groups, roles and what they grant; memoised per principal."""
        hit = self._cache.get(who)
        if hit is not None:
            return hit
        groups = who.groups | self.member_groups.get(who.name, _EMPTY)
        roles = who.roles | self.user_roles.get(who.name, _EMPTY)
        for g in groups:
            roles |= self.group_roles.get(g, _EMPTY)
        rs = self._sets.get(roles)
        if rs is None:
            rs = self._role_set(roles)
        resolved = _Resolved(
            groups, rs.roles, rs.unknown_roles, rs.scopes, rs.grantor, rs.gated, rs.kernelspecs
        )
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[who] = resolved
        return resolved

    def _role_set(self, roles: frozenset[str]) -> _RoleSet:
        known = sorted(r for r in roles if r in self.role_scopes)
        grantor: dict[str, str] = {}
        gated: set[str] = set()
        specs: dict[str, str] = {}
        for role in known:
            scopes = self.role_scopes[role]
            if role not in self.terminal_roles:
                gated |= scopes & _TERMINALS
                scopes = scopes - _TERMINALS
            for s in scopes:
                grantor.setdefault(s, role)
            for k in self.kernelspecs.get(role, _EMPTY):
                specs.setdefault(k, role)
        rs = _RoleSet(
            roles=frozenset(known),
            unknown_roles=roles - set(known),
            scopes=frozenset(grantor),
            grantor=grantor,
            gated=frozenset(gated - grantor.keys()),
            kernelspecs=specs,
        )
        if len(self._sets) >= _CACHE_MAX:
            self._sets.clear()
        self._sets[roles] = rs
        return rs

    def decide(
        self,
        who: Principal,
        scope: str,
        *,
        path: str | None = None,
        owner: str | None = None,
        kernelspec: str | None = None,
        trace: list[str] | None = None,
    ) -> Decision:
        """See the module docstring; ``trace`` collects each step for ``explain``."""
        if scope not in SCOPES:
            return Decision(False, scope, f"unknown scope {scope!r}: denied")
        r = self.resolve(who)
        role = r.grantor.get(scope)
        if role is None:
            return Decision(False, scope, self._why_not_granted(r, scope))
        rule = f"role {role} grants {scope}"
        steps = trace if trace is not None else []
        steps.append(rule)
        if owner is not None and owner != who.name:
            got = _check_owner(r, scope, owner)
            if isinstance(got, Decision):
                return got
            rule = got
            steps.append(got)
        if kernelspec is not None:
            got = _check_kernelspec(r, scope, kernelspec)
            if isinstance(got, Decision):
                return got
            steps.append(got)
        if path is not None:
            got = self._check_path(who, r, scope, path, steps)
            if isinstance(got, Decision):
                return got
            rule = f"{rule}; {got}"
        return Decision(True, scope, rule)

    def _why_not_granted(self, r: _Resolved, scope: str) -> str:
        if scope in r.gated:
            listed = ", ".join(sorted(self.terminal_roles)) or "no role"
            return f"[terminals] allows {listed}; not {', '.join(sorted(r.roles))}"
        why = f"default deny: no role grants {scope}"
        if r.unknown_roles:
            why += f" (unknown roles ignored: {', '.join(sorted(r.unknown_roles))})"
        return why

    def _check_path(
        self, who: Principal, r: _Resolved, scope: str, path: str, steps: list[str]
    ) -> Decision | str:
        """The first matching rule decides; a denial, or the text of the rule that allowed."""
        norm, reason = normalise_path(path)
        if norm is None:
            return Decision(False, scope, f"path refused: {reason}")
        access = "read" if scope.endswith(":read") else "write"
        for pr in self.rules:
            m = pr.regex.fullmatch(norm)
            if m is None:
                steps.append(f"path rule #{pr.index} {pr.pattern} does not match")
                continue
            by = _path_grant(who, r, pr.who(access), m)
            if by is None:
                return Decision(
                    False, scope, f"path rule #{pr.index} {pr.pattern} ({pr.summary(access)})"
                )
            steps.append(f"path rule #{pr.index} {pr.pattern} matches; lets {by} {access}")
            return f"path rule #{pr.index} {pr.pattern} lets {by} {access}"
        return Decision(False, scope, f"default deny: no path rule matches {norm!r}")


def _check_owner(r: _Resolved, scope: str, owner: str) -> Decision | str:
    """Someone else's object needs the resource's ``admin`` scope."""
    admin = owner_scope(scope)
    admin_role = r.grantor.get(admin) if admin else None
    if admin_role is None:
        need = f"no role grants {admin}" if admin else "no scope allows that"
        return Decision(False, scope, f"owner: the {_thing(scope)} belongs to {owner}; {need}")
    return f"role {admin_role} grants {admin} ({owner}'s {_thing(scope)})"


def _check_kernelspec(r: _Resolved, scope: str, kernelspec: str) -> Decision | str:
    spec_role = r.kernelspecs.get(kernelspec) or r.kernelspecs.get(ANY_KERNELSPEC)
    if spec_role is None:
        allowed = ", ".join(sorted(r.kernelspecs)) or "none"
        return Decision(
            False,
            scope,
            f"kernelspec {kernelspec!r} is not allowed for roles "
            f"{', '.join(sorted(r.roles))} (allowed: {allowed})",
        )
    if kernelspec not in r.kernelspecs:
        return f"[kernelspecs] lets role {spec_role} start any kernelspec, so {kernelspec!r}"
    return f"[kernelspecs] lets role {spec_role} start {kernelspec!r}"


def _path_grant(
    who: Principal, r: _Resolved, allowed: frozenset[str], m: re.Match[str]
) -> str | None:
    """Which entry of a rule's list lets ``who`` in (``owner``, ``role x``, ``group g``)."""
    if OWNER in allowed and "user" in m.re.groupindex and m.group("user") == who.name:
        return OWNER
    roles = r.roles & allowed
    if roles:
        return f"role {min(roles)}"
    for g in sorted(r.groups):
        if GROUP_PREFIX + g in allowed:
            return f"group {g}"
    return None


def _thing(scope: str) -> str:
    """``kernels:execute`` → ``kernel``: the object a scope acts on, for messages."""
    resource = resource_of(scope)
    return resource[:-1] if resource.endswith("s") else resource
