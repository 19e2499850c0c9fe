"""Decisions: path rules, traversal, groups, ownership, kernelspecs, terminals, robustness."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_secure.policy import (
    SCOPES,
    Decision,
    Principal,
    compile_pattern,
    default_policy,
    explain,
    normalise_path,
    parse_policy,
)

POLICY = default_policy()
ALICE = Principal("alice", {"student"})
BOB = Principal("bob", {"student"})
ROOT = Principal("root", {"admin"})


def read(who: Principal, path: str) -> Decision:
    return POLICY.decide(who, "contents:read", path=path)


def write(who: Principal, path: str) -> Decision:
    return POLICY.decide(who, "contents:write", path=path)


# -- path rules -------------------------------------------------------------


def test_own_home_is_owner_only() -> None:
    assert read(ALICE, "home/alice/notes.ipynb") == Decision(
        True,
        "contents:read",
        "role student grants contents:read; path rule #2 home/{user}/** lets owner read",
    )
    assert write(ALICE, "/home/alice/deep/er/x.py").allowed
    assert read(ALICE, "home/alice").allowed  # the directory itself
    assert read(BOB, "home/alice/notes.ipynb") == Decision(
        False, "contents:read", "path rule #2 home/{user}/** (owner only)"
    )
    assert not write(BOB, "home/alice/x").allowed
    # Owner only means admins too: they have terminals for emergencies.
    assert read(ROOT, "home/alice/x").rule == "path rule #2 home/{user}/** (owner only)"


def test_raw_data_is_admin_only() -> None:
    for who in (ALICE, Principal("i", {"instructor"}), Principal("a", {"auditor"})):
        d = read(who, "shared/raw/patients.csv")
        assert d == Decision(False, "contents:read", "path rule #1 shared/raw/** (admin only)")
    assert read(ROOT, "shared/raw/patients.csv").rule == (
        "role admin grants contents:read; path rule #1 shared/raw/** lets role admin read"
    )
    assert not read(ALICE, "shared/raw").allowed  # the directory listing too


def test_shared_read_by_all_written_by_staff() -> None:
    viewer = Principal("v", {"viewer"})
    instructor = Principal("i", {"instructor"})
    assert read(viewer, "shared/lecture1.ipynb").allowed
    assert read(ALICE, "shared/lecture1.ipynb").allowed
    assert write(instructor, "shared/lecture1.ipynb").allowed
    assert write(ALICE, "shared/lecture1.ipynb") == Decision(
        False, "contents:write", "path rule #3 shared/** (write: admin, instructor)"
    )
    # A viewer fails earlier, at the role: path rules never widen a role.
    assert write(viewer, "shared/x") == Decision(
        False, "contents:write", "default deny: no role grants contents:write"
    )


def test_root_and_home_listings_and_everything_else() -> None:
    assert read(ALICE, "").allowed
    assert read(ALICE, "/").allowed
    assert read(ALICE, "home").allowed
    assert not write(ALICE, "home").allowed
    assert not write(ALICE, "newdir").allowed
    assert read(ALICE, "etc/passwd") == Decision(
        False, "contents:read", "path rule #6 ** (admin only)"
    )
    assert read(ROOT, "etc/passwd").allowed


@pytest.mark.parametrize(
    "path",
    [
        "home/bob/../alice/x",
        "home/alice/../bob/x",
        "home/alice/../../etc/passwd",
        "../home/alice/x",
        "home/alice/..",
        "shared/../shared/raw/x",
        "home/alice/x/../../../..",
    ],
)
def test_traversal_is_refused_for_everyone(path: str) -> None:
    for who in (ALICE, BOB, ROOT):
        d = read(who, path)
        assert d == Decision(False, "contents:read", "path refused: path contains '..'")


@pytest.mark.parametrize("path", ["home/alice\\..\\bob", "home/alice/x\x00.txt"])
def test_backslash_and_nul_are_refused(path: str) -> None:
    assert read(ALICE, path).rule == "path refused: path contains a backslash or NUL"


def test_dots_and_slashes_are_normalised() -> None:
    assert normalise_path("//home/./alice//x/") == ("home/alice/x", "")
    assert normalise_path("/") == ("", "")
    assert normalise_path("a/../b") == (None, "path contains '..'")
    # "..." and "..x" are ordinary names, not traversal.
    assert normalise_path("home/alice/.../..x") == ("home/alice/.../..x", "")
    assert read(ALICE, "home/alice/...").allowed


def test_first_match_wins() -> None:
    text = """
    [[paths]]
    pattern = "shared/secret/*.csv"
    read = ["admin"]

    [[paths]]
    pattern = "shared/**"
    read = ["student"]

    [[paths]]
    pattern = "shared/secret/**"
    read = ["admin"]
    """
    p = parse_policy(textwrap.dedent(text))
    assert p.decide(ALICE, "contents:read", path="shared/secret/a.csv").rule == (
        "path rule #1 shared/secret/*.csv (admin only)"
    )
    # Rule #3 is shadowed by #2: the order, not the specificity, decides.
    assert p.decide(ALICE, "contents:read", path="shared/secret/a.txt").rule == (
        "role student grants contents:read; path rule #2 shared/** lets role student read"
    )
    assert p.decide(ALICE, "contents:read", path="elsewhere").rule == (
        "default deny: no path rule matches 'elsewhere'"
    )


def test_no_path_rules_denies_every_path() -> None:
    p = parse_policy("paths = []")
    assert p.decide(ROOT, "contents:read", path="x").rule == (
        "default deny: no path rule matches 'x'"
    )
    assert p.decide(ROOT, "contents:read").allowed  # without a path, the role decides


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        (
            "shared/raw/**",
            ["shared/raw", "shared/raw/a", "shared/raw/a/b"],
            ["shared/rawx", "shared"],
        ),
        ("**/*.csv", ["a.csv", "x/y/a.csv"], ["a.csvx", "x/a.txt"]),
        ("a/**/b", ["a/b", "a/x/b", "a/x/y/b"], ["a/xb", "ab"]),
        ("home/{user}/**", ["home/al", "home/al/x"], ["home", "homer/al"]),
        ("data/?.txt", ["data/a.txt"], ["data/ab.txt", "data//.txt"]),
        ("", [""], ["a"]),
        ("**", ["", "a", "a/b"], []),
        ("a+b/(c)", ["a+b/(c)"], ["aab/c"]),
    ],
)
def test_pattern_matching(pattern: str, matches: list[str], misses: list[str]) -> None:
    rx = compile_pattern(pattern)
    for m in matches:
        assert rx.fullmatch(m), m
    for m in misses:
        assert not rx.fullmatch(m), m


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("a/../b", "pattern contains '..'"),
        ("a/**b", "** must be a whole segment (a/**/b)"),
        ("home/{user}/{user}", "{user} may appear once"),
        ("home/{name}", "the only placeholder is {user}, as a whole segment"),
        ("home/x{user}", "the only placeholder is {user}, as a whole segment"),
    ],
)
def test_bad_patterns(pattern: str, message: str) -> None:
    with pytest.raises(
        ValueError,
        match="^"
        + message.replace("*", r"\*")
        .replace("(", r"\(")
        .replace(")", r"\)")
        .replace("{", r"\{")
        .replace("}", r"\}")
        + "$",
    ):
        compile_pattern(pattern)


# -- groups and roles -------------------------------------------------------

GROUPS = textwrap.dedent(
    """
    [groups.course-101]
    members = ["alice"]
    roles = ["student"]

    [groups.staff]
    roles = ["instructor"]

    [users.dave]
    roles = ["auditor"]

    [[paths]]
    pattern = "courses/101/**"
    read = ["group:course-101"]
    write = ["group:staff"]

    [[paths]]
    pattern = "**"
    read = ["admin"]
    """
)


def test_roles_come_from_groups_in_the_file_and_on_the_account() -> None:
    p = parse_policy(GROUPS)
    alice = Principal("alice")  # no roles on the account: the file's group gives them
    assert p.effective_groups(alice) == {"course-101"}
    assert p.effective_roles(alice) == {"student"}
    assert p.decide(alice, "kernels:execute").rule == "role student grants kernels:execute"
    carol = Principal("carol", groups={"staff"})  # the account lists the group
    assert p.effective_roles(carol) == {"instructor"}
    assert p.decide(carol, "secure:budgets:admin").allowed
    dave = Principal("dave")  # a direct grant
    assert p.effective_roles(dave) == {"auditor"}
    nobody = Principal("eve", groups={"not-in-policy"})
    assert p.effective_roles(nobody) == frozenset()
    assert p.effective_scopes(nobody) == frozenset()
    assert p.decide(nobody, "api:read").rule == "default deny: no role grants api:read"


def test_path_rules_by_group() -> None:
    p = parse_policy(GROUPS)
    alice, carol = Principal("alice"), Principal("carol", groups={"staff"})
    assert p.decide(alice, "contents:read", path="courses/101/a").rule == (
        "role student grants contents:read; path rule #1 courses/101/** lets group course-101 read"
    )
    assert p.decide(carol, "contents:write", path="courses/101/a").allowed
    assert p.decide(alice, "contents:write", path="courses/101/a").rule == (
        "path rule #1 courses/101/** (group:staff only)"
    )
    assert not p.decide(carol, "contents:read", path="courses/101/a").allowed


def test_unknown_roles_deny_with_a_rule() -> None:
    who = Principal("x", {"wizard"})
    assert POLICY.decide(who, "contents:read") == Decision(
        False,
        "contents:read",
        "default deny: no role grants contents:read (unknown roles ignored: wizard)",
    )
    # A known role next to an unknown one still works.
    assert POLICY.decide(Principal("x", {"wizard", "viewer"}), "contents:read").allowed


@pytest.mark.parametrize("name", ["contents:reed", "", "contents", "admin", "kernels:admin:x"])
def test_unknown_scopes_deny(name: str) -> None:
    assert POLICY.decide(ROOT, name) == Decision(False, name, f"unknown scope {name!r}: denied")


def test_multiple_roles_union() -> None:
    who = Principal("x", {"viewer", "auditor"})
    assert POLICY.effective_scopes(who) == POLICY.effective_scopes(
        Principal("y", {"viewer"})
    ) | POLICY.effective_scopes(Principal("z", {"auditor"}))
    # The rule names the first granting role in sorted order, deterministically.
    assert POLICY.decide(who, "contents:read").rule == "role auditor grants contents:read"


def test_principal_accepts_any_iterable_and_is_hashable() -> None:
    a = Principal("alice", ["student", "student"], ("g",))
    assert a == Principal("alice", frozenset({"student"}), frozenset({"g"}))
    assert len({a, Principal("alice", {"student"}, {"g"})}) == 1

    class Account:
        name = "alice"
        roles = ("student",)
        groups = ("g",)

    assert Principal.of(Account()) == a


# -- ownership, kernelspecs, terminals --------------------------------------


def test_kernels_and_sessions_of_other_users() -> None:
    for scope in ("kernels:read", "kernels:write", "kernels:execute"):
        assert POLICY.decide(ALICE, scope, owner="alice").allowed
        d = POLICY.decide(ALICE, scope, owner="bob")
        assert d == Decision(
            False, scope, "owner: the kernel belongs to bob; no role grants kernels:admin"
        )
    assert POLICY.decide(ALICE, "sessions:write", owner="bob").rule == (
        "owner: the session belongs to bob; no role grants sessions:admin"
    )
    assert POLICY.decide(ROOT, "kernels:execute", owner="bob") == Decision(
        True, "kernels:execute", "role admin grants kernels:admin (bob's kernel)"
    )
    # A resource without an admin scope: someone else's object is simply denied.
    assert POLICY.decide(ROOT, "terminals:execute", owner="bob").rule == (
        "owner: the terminal belongs to bob; no scope allows that"
    )


def test_kernelspec_and_path_and_owner_together() -> None:
    d = POLICY.decide(
        ALICE, "sessions:write", kernelspec="jupyter-secure", path="home/alice/a.ipynb"
    )
    assert d.allowed
    assert d.rule == (
        "role student grants sessions:write; path rule #2 home/{user}/** lets owner write"
    )
    d = POLICY.decide(ALICE, "sessions:write", kernelspec="python3", path="home/alice/a.ipynb")
    assert not d.allowed
    assert d.rule.startswith("kernelspec 'python3'")


def test_terminals_need_the_role_and_the_terminals_table() -> None:
    text = """
    [roles.ops]
    description = "Operations."
    scopes = ["terminals:read", "terminals:write", "terminals:execute", "api:read"]

    [terminals]
    roles = ["admin"]
    """
    p = parse_policy(textwrap.dedent(text))
    ops = Principal("o", {"ops"})
    assert p.decide(ops, "terminals:execute") == Decision(
        False, "terminals:execute", "[terminals] allows admin; not ops"
    )
    assert "terminals:execute" not in p.effective_scopes(ops)
    assert "api:read" in p.effective_scopes(ops)
    p2 = parse_policy(
        textwrap.dedent(text).replace('roles = ["admin"]', 'roles = ["admin", "ops"]')
    )
    assert p2.decide(ops, "terminals:execute").rule == "role ops grants terminals:execute"
    p3 = parse_policy("[terminals]\nroles = []\n")
    assert p3.decide(ROOT, "terminals:execute").rule == ("[terminals] allows no role; not admin")
    assert p3.decide(ROOT, "kernels:execute").allowed


def test_decisions_are_cached_but_fresh_per_policy() -> None:
    p1 = parse_policy(GROUPS)
    alice = Principal("alice")
    assert p1.decide(alice, "kernels:execute").allowed
    p2 = parse_policy(GROUPS.replace('members = ["alice"]', "members = []"))
    assert not p2.decide(alice, "kernels:execute").allowed  # removal takes effect at once
    assert p1.decide(alice, "kernels:execute").allowed  # the old object is unchanged


def test_the_cache_is_bounded() -> None:
    p = parse_policy("")
    for i in range(5000):
        p.decide(Principal(f"u{i}", {"student"}), "api:read")
    assert len(p._decider._cache) <= 4096


# -- robustness -------------------------------------------------------------

NAMES = st.sampled_from(["alice", "bob", "root", "x"])
ROLES = st.frozensets(
    st.sampled_from(
        ["admin", "instructor", "data_scientist", "student", "auditor", "viewer", "nope"]
    )
)
PATHS = st.lists(
    st.sampled_from(["home", "alice", "bob", "..", ".", "", "shared", "raw", "x", "**", "%2e%2e"]),
    max_size=6,
).map("/".join) | st.text(max_size=30)
SCOPE_NAMES = st.sampled_from(sorted(SCOPES)) | st.text(max_size=20)


REQUESTS = st.tuples(
    NAMES, ROLES, SCOPE_NAMES, st.none() | PATHS, st.none() | NAMES, st.none() | st.text(max_size=8)
)


@settings(max_examples=400, deadline=None)
@given(REQUESTS)
def test_decide_never_raises_and_explain_agrees(
    request: tuple[str, frozenset[str], str, str | None, str | None, str | None],
) -> None:
    name, roles, scope, path, owner, kernelspec = request
    who = Principal(name, roles)
    d = POLICY.decide(who, scope, path=path, owner=owner, kernelspec=kernelspec)
    assert isinstance(d.allowed, bool)
    assert d.rule
    assert d.scope == scope
    if path is not None and ".." in path.split("/"):
        assert not d.allowed
    if d.allowed:
        assert scope in POLICY.effective_scopes(who)
    text = explain(POLICY, who, scope, path=path, owner=owner, kernelspec=kernelspec)
    verdict = "ALLOW" if d.allowed else "DENY"
    assert text.splitlines()[-1] == f"decision: {verdict} — {d.rule}"


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["alice", "bob"]), st.sampled_from(["alice", "bob", "carol"]), PATHS)
def test_nobody_reaches_another_home(me: str, them: str, rest: str) -> None:
    d = read(Principal(me, {"student", "data_scientist", "instructor"}), f"home/{them}/{rest}")
    if d.allowed:
        norm, _ = normalise_path(f"home/{them}/{rest}")
        assert norm is not None
        assert norm == "home" or norm.split("/")[1] == me


def _reference_normalise(path: str) -> str | None:
    if "\\" in path or "\x00" in path:
        return None
    parts = [p for p in path.split("/") if p and p != "."]
    return None if ".." in parts else "/".join(parts)


@settings(max_examples=500, deadline=None)
@given(PATHS | st.text(alphabet="/.ab", max_size=12))
def test_the_fast_path_of_normalise_agrees_with_the_slow_one(path: str) -> None:
    assert normalise_path(path)[0] == _reference_normalise(path)
