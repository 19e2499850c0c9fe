"""Alarm rules rewritten as Prometheus alerting rules, for teams that run Alertmanager.

Prometheus sees only the metrics (``monitoring/metrics.py``), and those carry
no user names or addresses by design. So a rule kept per user or per address
becomes a site-wide rule over the same signal: it fires on the site's total,
which is what Prometheus can know. Rules that need history per user (the
seasonal baselines, new networks) have no equivalent and are written as
comments saying so, rather than as something that looks the same and is not.

``datapoints`` of ``periods`` maps to ``for:`` only when the two are equal
(every period breaching); otherwise the rule is exported with ``for`` equal
to one period and a note.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from .rules import Rule

__all__ = ["EXPRESSIONS", "prometheus_rules", "render"]

#: signal -> PromQL for its amount over a window ``{w}`` (site-wide).
EXPRESSIONS: dict[str, str] = {
    "signin.failed": 'sum(increase(jupyter_secure_signin_attempts_total{{outcome!="ok"}}[{w}]))',
    "mfa.failed": 'sum(increase(jupyter_secure_mfa_verifications_total{{outcome!="ok"}}[{w}]))',
    "lockout": "sum(increase(jupyter_secure_lockouts_total[{w}]))",
    "denied": 'sum(increase(jupyter_secure_authz_decisions_total{{outcome="deny"}}[{w}]))',
    "cell": 'sum(increase(jupyter_secure_cells_executed_total{{seen_by="server"}}[{w}]))',
    "rows.displayed": "sum(increase(jupyter_secure_output_rows_total[{w}]))",
    "dp.spend": "sum(clamp_min(delta(jupyter_secure_dp_budget_spent[{w}]), 0))",
    "dp.refused": ('sum(increase(jupyter_secure_dp_queries_total{{outcome!~"ok|cached"}}[{w}]))'),
    "dp.budget_used": (
        "max(jupyter_secure_dp_budget_spent / "
        "(jupyter_secure_dp_budget_spent + jupyter_secure_dp_budget_remaining))"
    ),
    "config.change": "sum(increase(jupyter_secure_config_changes_total[{w}]))",
    "audit.problem": "sum(increase(jupyter_secure_audit_write_errors_total[{w}]))",
    "unreconciled": "sum(increase(jupyter_secure_executions_unreconciled_total[{w}]))",
}

_NOT_EXPRESSIBLE = {
    "signin.new_ip": "needs each user's sign-in networks, which metrics do not carry",
}


def _alert_name(rule: Rule) -> str:
    return "JupyterSecure" + "".join(p.capitalize() for p in rule.name.replace("_", "-").split("-"))


def prometheus_rules(rules: Iterable[Rule]) -> tuple[dict[str, Any], list[str]]:
    """The rules file (as a dict) and the rules left out, each with why."""
    exported: list[dict[str, Any]] = []
    skipped: list[str] = []
    for rule in rules:
        if not rule.enabled:
            continue
        if rule.anomaly:
            skipped.append(f"{rule.name}: compares each user with their own weeks; metrics "
                           "carry no user labels")  # fmt: skip
            continue
        if rule.signal in _NOT_EXPRESSIBLE or rule.signal not in EXPRESSIONS:
            why = _NOT_EXPRESSIBLE.get(rule.signal, "no metric counts this signal")
            skipped.append(f"{rule.name}: {why}")
            continue
        window = f"{rule.period}s"
        expr = EXPRESSIONS[rule.signal].format(w=window)
        if rule.signal == "dp.budget_used":
            scope_note = "dataset-wide spend against the dataset's cap (metrics have no users)"
        elif rule.key in {"site", "dataset"}:
            scope_note = "same scope as the jupyter-secure rule"
        else:
            scope_note = f"site-wide total; the jupyter-secure rule counts per {rule.key}"
        threshold = rule.threshold if rule.threshold is not None else 0.0
        entry: dict[str, Any] = {
            "alert": _alert_name(rule),
            "expr": f"{expr} {rule.comparison} {threshold:g}",
            "labels": {"severity": rule.severity, "source": "jupyter-secure", "rule": rule.name},
            "annotations": {
                "summary": rule.description,
                "description": f"{rule.why} ({scope_note})".strip(),
            },
        }
        if rule.datapoints == rule.periods and rule.periods > 1:
            entry["for"] = f"{rule.period * (rule.periods - 1)}s"
        elif rule.periods > 1:
            entry["annotations"]["note"] = (
                f"{rule.datapoints} of {rule.periods} periods has no exact PromQL "
                "equivalent; this fires on any breaching period"
            )
        exported.append(entry)
    return {"groups": [{"name": "jupyter-secure", "rules": exported}]}, skipped


def render(rules: Iterable[Rule]) -> str:
    """The YAML text of a Prometheus rules file, with the left-out rules as comments."""
    document, skipped = prometheus_rules(rules)
    head = [
        "# Prometheus alerting rules equivalent to jupyter-secure's alarm rules",
        "# (written by `jupyter secure alarms export-prometheus`).",
        "# Metrics carry no user names, so per-user rules become site-wide ones.",
    ]
    head += [f"# not exported: {line}" for line in skipped]
    return "\n".join(head) + "\n" + yaml.safe_dump(document, sort_keys=False, width=100)
