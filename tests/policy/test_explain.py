"""``policy explain`` output, word for word."""

from __future__ import annotations

import textwrap

from jupyter_secure.policy import Principal, default_policy, explain, parse_policy

POLICY = default_policy()
GROUPS = parse_policy(
    textwrap.dedent(
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
        """
    )
)


def test_explain_an_allowed_read_of_ones_own_home() -> None:
    text = explain(
        POLICY, Principal("alice", {"student"}), "contents:read", path="home/alice/a.ipynb"
    )
    assert text == textwrap.dedent(
        """\
        user:     alice
        account:  roles student; groups -
        groups:   -
        roles:    student (account)
        request:  scope contents:read, path 'home/alice/a.ipynb'
          check:  role student grants contents:read
          check:  path rule #1 shared/raw/** does not match
          check:  path rule #2 home/{user}/** matches; lets owner read
        decision: ALLOW — """
    ) + ("role student grants contents:read; path rule #2 home/{user}/** lets owner read")


def test_explain_a_denial_with_unknown_roles_and_groups() -> None:
    who = Principal("alice", {"wizard"}, {"ghosts"})
    text = explain(GROUPS, who, "contents:write", path="courses/101/a.ipynb")
    assert text == textwrap.dedent(
        """\
        user:     alice
        account:  roles wizard; groups ghosts
        groups:   course-101, ghosts
                  group ghosts is not in the policy file: it grants no roles
        roles:    student (group course-101)
                  role wizard is not defined: ignored
        request:  scope contents:write, path 'courses/101/a.ipynb'
          check:  role student grants contents:write
        decision: DENY — path rule #1 courses/101/** (group:staff only)"""
    )


def test_explain_owner_and_kernelspec_steps() -> None:
    text = explain(
        POLICY,
        Principal("root", {"admin"}),
        "kernels:write",
        owner="bob",
        kernelspec="python3",
    )
    assert text.splitlines()[-1] == (
        "decision: ALLOW — role admin grants kernels:admin (bob's kernel)"
    )
    assert text.splitlines()[-5:-1] == [
        "request:  scope kernels:write, owner bob, kernelspec 'python3'",
        "  check:  role admin grants kernels:write",
        "  check:  role admin grants kernels:admin (bob's kernel)",
        "  check:  [kernelspecs] lets role admin start any kernelspec, so 'python3'",
    ]


def test_explain_a_direct_grant_and_an_unknown_scope() -> None:
    text = explain(GROUPS, Principal("dave"), "secure:audit:read")
    assert "roles:    auditor (direct grant in [users])" in text
    assert "          note: dave has a direct grant in [users]" in text
    assert text.endswith("decision: ALLOW — role auditor grants secure:audit:read")
    text = explain(GROUPS, Principal("dave"), "secure:audit:raed")
    assert text.endswith("decision: DENY — unknown scope 'secure:audit:raed': denied")
