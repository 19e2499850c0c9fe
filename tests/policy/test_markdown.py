"""The generated role tables reflect the policy they are made from."""

from __future__ import annotations

from jupyter_secure.policy import SCOPES, default_policy, parse_policy, roles_markdown


def test_roles_table_and_matrix() -> None:
    md = roles_markdown(default_policy())
    lines = md.splitlines()
    assert lines[0] == "| role | what it is for | scopes | kernelspecs |"
    assert lines[2].startswith("| `admin` | Runs the server")
    assert lines[2].endswith(f"| {len(SCOPES)} | `*` |")
    assert "| `viewer` |" in md
    assert md.count("\n| `") == 6 + len(SCOPES)
    header = next(line for line in lines if line.startswith("| scope |"))
    assert header == (
        "| scope | `admin` | `instructor` | `data_scientist` | `student` | `auditor` | `viewer` |"
    )
    assert "| `terminals:execute` | ✓ |  |  |  |  |  |" in lines
    assert "| `contents:read` | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ |" in lines


def test_matrix_applies_the_terminals_table() -> None:
    md = roles_markdown(parse_policy("[terminals]\nroles = []\n"))
    assert "| `terminals:execute` |  |  |  |  |  |  |" in md.splitlines()
