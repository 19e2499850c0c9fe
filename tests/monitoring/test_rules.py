"""Alarm rules files: overlays, and refusals that name every bad field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from jupyter_secure.monitoring import metrics
from jupyter_secure.monitoring.prometheus_rules import EXPRESSIONS, prometheus_rules, render
from jupyter_secure.monitoring.rules import BUILTIN_RULES, RulesError, load_rules, parse_rules
from jupyter_secure.monitoring.signals import SIGNALS


def test_every_built_in_rule_says_why_it_exists_and_counts_a_known_signal() -> None:
    names = [r.name for r in BUILTIN_RULES]
    assert len(names) == len(set(names))
    for r in BUILTIN_RULES:
        assert r.why, r.name
        assert r.description, r.name
        assert r.signal in SIGNALS, r.name
        assert parse_rules({"rule": [{"name": r.name}]})  # each one validates


def test_a_file_changes_disables_and_adds_rules() -> None:
    rules = {
        r.name: r
        for r in parse_rules(
            {
                "rule": [
                    {"name": "lockout", "actions": ["webhook", "webhook", "email"]},
                    {"name": "config-change", "enabled": False},
                    {"name": "off-hours-activity", "threshold": 100},
                    {
                        "name": "denials-ip",
                        "signal": "denied",
                        "description": "Denials from one address",
                        "key": "ip",
                        "threshold": 50,
                        "period": 600,
                        "datapoints": 2,
                        "periods": 3,
                    },
                ]
            }
        )
    }
    assert rules["lockout"].actions == ("webhook", "email")
    assert not rules["config-change"].enabled
    assert rules["off-hours-activity"].band is None
    assert rules["off-hours-activity"].threshold == 100
    assert rules["denials-ip"].describe() == "sum of denied per ip >= 50 in 2 of 3 periods of 600s"
    assert len(rules) == len(BUILTIN_RULES) + 1


def test_every_problem_is_reported_with_its_field() -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(
            {
                "rules": [],
                "rule": [
                    {
                        "name": "x",
                        "signal": "nope",
                        "description": "d",
                        "threshold": 1,
                        "key": "room",
                    },
                    {"name": "y", "signal": "denied", "description": "d", "threshold": "5"},
                    {"name": "lockout", "band": 3},
                    {
                        "name": "z",
                        "signal": "denied",
                        "description": "d",
                        "threshold": 1,
                        "key": "site",
                        "actions": ["lock"],
                    },
                    {"name": "w", "signal": "denied", "threshold": 1, "colour": "red"},
                    {
                        "name": "v",
                        "signal": "denied",
                        "description": "d",
                        "threshold": 1,
                        "datapoints": 3,
                        "periods": 2,
                    },
                    {"name": "x", "signal": "denied", "description": "again", "threshold": 1},
                    {"signal": "denied"},
                    {"name": "BAD NAME", "signal": "denied", "description": "d", "threshold": 1},
                    {"name": "signin-failures-user", "actions": ["end_sessions"]},
                ],
            }
        )
    text = str(caught.value)
    for expected in (
        "rules: unknown table",
        "rule[0] (x).signal: unknown signal 'nope'",
        "rule[0] (x).key: expected one of",
        "rule[1] (y).threshold: expected a number",
        "rule[2] (lockout).period: an anomaly rule (band) counts whole hours",
        "rule[3] (z).actions: 'lock' needs a per-user key",
        "rule[4] (w).colour: unknown field",
        "rule[5] (v).datapoints: cannot exceed periods (2)",
        "rule[6] (x).name: 'x' appears twice",
        "rule[7].name: required",
        "rule[8] (BAD NAME).name: use at most 64 lower-case",
        "rule[9] (signin-failures-user).actions: 'end_sessions' on signin.failed would let anyone",
    ):
        assert expected in text, expected
    assert caught.value.field == "alarms.toml"


def test_loading_a_file(tmp_path: Path) -> None:
    path = tmp_path / "alarms.toml"
    assert [r.name for r in load_rules(path)] == [r.name for r in BUILTIN_RULES]
    path.write_text('[[rule]]\nname = "lockout"\nseverity = "info"\n', encoding="utf-8")
    assert next(r for r in load_rules(path) if r.name == "lockout").severity == "info"
    path.write_text("[[rule]\n", encoding="utf-8")
    with pytest.raises(RulesError, match="not valid TOML"):
        load_rules(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(RulesError, match="cannot be read"):
        load_rules(path)


def test_prometheus_rules_use_only_metrics_that_exist() -> None:
    document, skipped = prometheus_rules(BUILTIN_RULES)
    exported = document["groups"][0]["rules"]
    source = Path(metrics.__file__).read_text(encoding="utf-8")
    text = render(BUILTIN_RULES)
    assert yaml.safe_load(text) == document
    for entry in exported:
        assert entry["alert"].startswith("JupyterSecure")
        assert entry["labels"]["severity"] in {"info", "warning", "critical"}
        for name in re.findall(r"jupyter_secure_([a-z_]+)", entry["expr"]):
            known = {f'"{name}"', f'"{name.removesuffix("_total")}"'}
            assert any(k in source for k in known), f"{entry['alert']}: no metric {name}"
    # Per-user history has no Prometheus equivalent: said, not faked.
    assert any(s.startswith("off-hours-activity:") for s in skipped)
    assert any(s.startswith("new-ip:") for s in skipped)
    assert set(EXPRESSIONS) <= set(SIGNALS)
