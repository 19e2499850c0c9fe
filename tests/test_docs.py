"""Docs that are generated or promised stay true."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).parents[1]
gen = runpy.run_path(str(ROOT / "scripts" / "gen_config_docs.py"))


def test_every_setting_has_help() -> None:
    assert gen["missing_help"]() == []


def test_config_reference_is_current() -> None:
    assert (ROOT / "docs" / "config-reference.md").read_text() == gen["render"](), (
        "run: python scripts/gen_config_docs.py"
    )


def test_audit_event_reference_is_current() -> None:
    assert (ROOT / "docs" / "audit-events.md").read_text() == gen["render_events"](), (
        "run: python scripts/gen_config_docs.py"
    )


def test_readme_has_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "./scripts/demo.sh" in readme
    assert "./scripts/test.sh" in readme


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/test.sh" in ci
