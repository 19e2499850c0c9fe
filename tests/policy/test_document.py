"""The policy file: loading, defaults, validation errors with lines, digest and diff."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jupyter_secure.errors import SecureError
from jupyter_secure.policy import (
    DEFAULT_PATHS,
    DEFAULT_ROLES,
    Policy,
    PolicyError,
    Principal,
    default_policy,
    default_policy_text,
    load_policy,
    parse_policy,
)


def toml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def errors_of(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(PolicyError) as info:
        parse_policy(toml(text), file="policy.toml")
    return [(p.line, p.field, p.message) for p in info.value.problems]


# -- defaults ---------------------------------------------------------------


def test_the_default_file_loads_and_matches_the_built_in_defaults() -> None:
    p = default_policy()
    assert p.warnings == ()
    assert set(p.roles) == set(DEFAULT_ROLES)
    assert p.paths == DEFAULT_PATHS
    assert [r.pattern for r in p.paths] == [
        "shared/raw/**",
        "home/{user}/**",
        "shared/**",
        "home",
        "",
        "**",
    ]
    assert dict(p.kernelspecs) == {
        "admin": ("*",),
        "instructor": ("jupyter-secure",),
        "data_scientist": ("jupyter-secure",),
        "student": ("jupyter-secure",),
    }
    assert p.terminals == ("admin",)
    # The shipped file and an empty file (every default) are the same policy.
    assert parse_policy("").digest() == p.digest()
    assert p.diff(parse_policy("")) == []


def test_default_text_is_commented_and_init_can_write_it(tmp_path: Path) -> None:
    text = default_policy_text()
    assert text.count("\n#") > 40
    target = tmp_path / "policy.toml"
    target.write_text(text)
    assert load_policy(target).digest() == default_policy().digest()
    assert load_policy(target).source == str(target)


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "missing.toml")
    assert info.value.file == str(tmp_path / "missing.toml")
    assert info.value.line is None
    assert "cannot read" in info.value.message
    assert isinstance(info.value, SecureError)
    assert isinstance(info.value, ValueError)


# -- model ------------------------------------------------------------------

GOOD = toml(
    """
    # a comment
    version = 1

    [roles.ta]
    description = "Teaching assistant."
    scopes = ["api:read", "lab:read", "contents:read", "secure:budgets:read"]

    [roles.student]
    scopes = ["api:read", "lab:read", "contents:read"]

    [groups.course-101]
    description = "Spring term."
    members = ["alice", "bob"]
    roles = ["student"]

    [groups.staff]
    members = ["carol"]
    roles = ["ta", "instructor"]

    [users.dave]
    roles = ["auditor"]
    reason = "External audit SEC-42."

    [[paths]]
    pattern = "/shared/course-101/**"
    read = ["group:course-101", "ta"]
    write = ["ta"]

    [[paths]]
    pattern = "home/{user}/**"
    read = ["owner"]
    write = ["owner"]

    [kernelspecs]
    student = ["jupyter-secure"]
    ta = []

    [terminals]
    roles = []
    """
)


def test_a_custom_policy_is_read_into_the_model() -> None:
    p = parse_policy(GOOD, file="policy.toml")
    assert p.roles["ta"].scopes == ("api:read", "contents:read", "lab:read", "secure:budgets:read")
    # Redefining a built-in role replaces its scopes and keeps its description.
    assert p.roles["student"].scopes == ("api:read", "contents:read", "lab:read")
    assert p.roles["student"].description == DEFAULT_ROLES["student"].description
    # Roles the file does not redefine stay built in.
    assert p.roles["viewer"] == DEFAULT_ROLES["viewer"]
    assert p.groups["staff"].roles == ("instructor", "ta")
    assert p.groups["course-101"].members == ("alice", "bob")
    assert p.users["dave"].reason == "External audit SEC-42."
    assert [r.pattern for r in p.paths] == ["shared/course-101/**", "home/{user}/**"]
    assert p.paths[0].read == ("group:course-101", "ta")
    assert p.terminals == ()
    assert p.group_members("staff") == {"carol"}
    assert p.group_members("nope") == frozenset()


def test_direct_grants_are_flagged() -> None:
    p = parse_policy(GOOD, file="policy.toml")
    assert p.warnings == (
        "policy.toml:20: users.dave: direct grant of auditor to dave; prefer a group "
        "(access reviews and removals work per group)",
        "policy.toml:35: kernelspecs.student: role student cannot start kernels (no "
        "kernels:write); this has no effect",
    )


def test_the_policy_is_immutable() -> None:
    p = parse_policy(GOOD)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.terminals = ("admin",)  # type: ignore[misc]
    with pytest.raises(TypeError):
        p.roles["x"] = DEFAULT_ROLES["admin"]  # type: ignore[index]
    with pytest.raises(TypeError):
        p.groups["x"] = p.groups["staff"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.groups["staff"].members = ()  # type: ignore[misc]


# -- validation -------------------------------------------------------------


def test_misspelt_scope_has_line_field_and_suggestion() -> None:
    text = """
    [roles.helper]
    description = "Helps."
    scopes = [
        "api:read",
        "lab:read",
        "secure:budgts:admin",
    ]
    """
    assert errors_of(text) == [
        (
            6,
            "roles.helper.scopes[2]",
            "unknown scope 'secure:budgts:admin'; did you mean 'secure:budgets:admin'?",
        )
    ]


def test_error_string_names_file_line_and_field() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy('[roles.student]\nscopes = ["kernels:exec"]\n', file="/state/policy.toml")
    err = info.value
    assert (err.file, err.line, err.field) == ("/state/policy.toml", 2, "roles.student.scopes[0]")
    assert str(err) == (
        "/state/policy.toml:2: roles.student.scopes[0]: unknown scope 'kernels:exec'; "
        "did you mean 'kernels:execute'?"
    )


def test_unknown_keys_anywhere_are_errors() -> None:
    text = """
    verison = 1

    [roles.viewer]
    scopes = ["api:read"]
    scope = ["lab:read"]

    [groups.g]
    roles = ["student"]
    member = ["alice"]

    [[paths]]
    pattern = "shared/**"
    read = ["student"]
    wirte = ["admin"]

    [terminals]
    role = ["admin"]
    """
    got = errors_of(text)
    assert got == [
        (
            1,
            "verison",
            "unknown key 'verison'; did you mean 'version'? (allowed: version, roles, groups, "
            "users, paths, kernelspecs, terminals)",
        ),
        (
            5,
            "roles.viewer.scope",
            "unknown key 'scope'; did you mean 'scopes'? (allowed: description, scopes)",
        ),
        (
            9,
            "groups.g.member",
            "unknown key 'member'; did you mean 'members'? (allowed: description, members, roles)",
        ),
        (
            14,
            "paths[0].wirte",
            "unknown key 'wirte'; did you mean 'write'? (allowed: pattern, "
            "read, write, description)",
        ),
        (17, "terminals.role", "unknown key 'role'; did you mean 'roles'? (allowed: roles)"),
    ]


def test_all_errors_are_collected() -> None:
    text = """
    version = 2

    [roles.ta]
    scopes = ["contents:reed", 3]

    [groups.course]
    members = ["Alice"]
    roles = ["studnet"]

    [users.eve]
    roles = ["admn"]

    [[paths]]
    pattern = "shared/**"
    read = ["owner"]

    [[paths]]
    pattern = "a/**b"

    [kernelspecs]
    vewer = ["python3"]
    student = ["bad name"]

    [terminals]
    roles = ["superuser"]
    """
    got = errors_of(text)
    assert got == [
        (1, "version", "unsupported policy version 2 (this server reads 1)"),
        (3, "roles.ta", "a new role needs a description (what it is for)"),
        (4, "roles.ta.scopes[1]", "expected a string, got an integer"),
        (
            4,
            "roles.ta.scopes[0]",
            "unknown scope 'contents:reed'; did you mean 'contents:read'?",
        ),
        (
            7,
            "groups.course.members[0]",
            "'Alice' is not a valid user name: start with a lower-case letter, then up to 63 "
            "of a-z 0-9 . _ -",
        ),
        (8, "groups.course.roles[0]", "unknown role 'studnet'; did you mean 'student'?"),
        (11, "users.eve.roles[0]", "unknown role 'admn'; did you mean 'admin'?"),
        (15, "paths[0].read[0]", "'owner' needs a {user} segment in the pattern"),
        (18, "paths[1].pattern", "rule #2: ** must be a whole segment (a/**/b)"),
        (21, "kernelspecs.vewer", "unknown role 'vewer'; did you mean 'viewer'?"),
        (22, "kernelspecs.student[0]", "'bad name' is not a kernelspec name (or '*')"),
        (25, "terminals.roles[0]", "unknown role 'superuser'"),
    ]


def test_type_errors_and_structure() -> None:
    got = errors_of(
        """
        roles = 3
        paths = {pattern = "x"}

        [groups.g]
        members = "alice"
        """
    )
    assert got == [
        (1, "roles", "expected a table, got an integer"),
        (2, "paths", "expected [[paths]] tables, got a table"),
        (4, "groups.g", "missing 'roles' (what membership grants)"),
        (5, "groups.g.members", "expected a list of strings, got a string"),
    ]


def test_reserved_and_invalid_role_names() -> None:
    got = errors_of(
        """
        [roles.owner]
        description = "x"
        scopes = []

        [roles.Bad]
        description = "x"
        scopes = []
        """
    )
    assert got[0] == (1, "roles.owner", "'owner' is reserved (it means the owner in path rules)")
    assert got[1][:2] == (5, "roles.Bad")
    assert "not a valid role name" in got[1][2]


def test_a_redefined_role_must_list_its_scopes() -> None:
    assert errors_of("[roles.student]\ndescription = 'x'\n") == [
        (1, "roles.student", "missing 'scopes' (a role redefined in the file replaces its scopes)")
    ]


def test_toml_syntax_errors_carry_the_line() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy('[roles.student]\nscopes = ["api:read"\n\n[x]\n', file="p.toml")
    assert info.value.line is not None
    assert info.value.line >= 2
    assert info.value.message.startswith("not valid TOML: ")


def test_warnings_for_things_that_do_nothing() -> None:
    p = parse_policy(
        toml(
            """
            [groups.g]
            roles = ["student", "student"]

            [[paths]]
            pattern = "x/**"
            read = ["group:unknown"]

            [[paths]]
            pattern = "/x/**/"
            read = ["admin"]

            [kernelspecs]
            viewer = ["jupyter-secure"]

            [terminals]
            roles = ["admin", "student"]
            """
        ),
        file="p.toml",
    )
    assert p.warnings == (
        "p.toml:2: groups.g.roles[1]: 'student' is listed twice",
        "p.toml:6: paths[0].read[0]: group 'unknown' is not in [groups]: only accounts list it",
        "p.toml:9: paths[1].pattern: rule #2 never applies: rule #1 has the same pattern",
        "p.toml:13: kernelspecs.viewer: role viewer cannot start kernels (no kernels:write); "
        "this has no effect",
        "p.toml:16: terminals.roles[1]: role student lacks terminals:execute; listing it here "
        "grants nothing",
    )


# -- digest and diff --------------------------------------------------------


def test_digest_ignores_comments_order_and_layout() -> None:
    a = parse_policy(GOOD)
    reordered = GOOD.replace("# a comment\n", "").replace(
        'members = ["alice", "bob"]', 'members = [ "bob",\n  "alice" ]  # two'
    )
    b = parse_policy(reordered)
    assert a.digest() == b.digest()
    assert a == b
    assert hash(a) == hash(b)
    assert a.digest().startswith("sha256:")
    assert len(a.digest()) == 7 + 64
    assert a.digest() != default_policy().digest()


def test_digest_is_stable_across_processes() -> None:
    code = "from jupyter_secure.policy import default_policy; print(default_policy().digest())"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin"},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert runs == {default_policy().digest()}


def test_diff_lines() -> None:
    old = parse_policy(GOOD)
    new_text = (
        GOOD.replace('members = ["alice", "bob"]', 'members = ["alice", "erin"]')
        .replace('"secure:budgets:read"]', '"secure:budgets:read", "secure:audit:read"]')
        .replace('[users.dave]\nroles = ["auditor"]\nreason = "External audit SEC-42."\n', "")
        .replace('read = ["group:course-101", "ta"]', 'read = ["ta"]')
        .replace("[terminals]\nroles = []", '[terminals]\nroles = ["admin"]')
        + '\n[groups.new]\nroles = ["viewer"]\nmembers = ["zoe"]\n'
    )
    new = parse_policy(new_text)
    assert old.diff(new) == [
        "role ta: + scope secure:audit:read",
        "+ group new (roles: viewer; members: zoe)",
        "group course-101: - member bob",
        "group course-101: + member erin",
        "- direct grant to dave",
        "path rule #1: shared/course-101/** read [group:course-101, ta] write [ta] → "
        "shared/course-101/** read [ta] write [ta]",
        "terminals: + role admin",
    ]
    assert new.diff(old)[0] == "role ta: - scope secure:audit:read"
    assert old.diff(old) == []


def test_diff_of_path_rules_added_and_removed() -> None:
    one = parse_policy('[[paths]]\npattern = "**"\nread = ["admin"]\n')
    two = parse_policy(
        '[[paths]]\npattern = "**"\nread = ["admin"]\n\n'
        '[[paths]]\npattern = "x"\nwrite = ["admin"]\n'
    )
    assert one.diff(two) == ["+ path rule #2 x read [-] write [admin]"]
    assert two.diff(one) == ["- path rule #2 x read [-] write [admin]"]
    assert parse_policy("paths = []").diff(one) == ["+ path rule #1 ** read [admin] write [-]"]


def test_a_policy_built_in_code_decides_the_same() -> None:
    direct = Policy(roles=DEFAULT_ROLES, kernelspecs=default_policy().kernelspecs)
    assert direct.digest() == default_policy().digest()
    who = Principal("alice", {"student"})
    assert direct.decide(who, "contents:read", path="home/alice/x") == default_policy().decide(
        who, "contents:read", path="home/alice/x"
    )
