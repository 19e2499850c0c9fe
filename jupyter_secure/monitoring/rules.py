"""Alarm rules: CloudWatch's alarm semantics over the product's signals.

A rule counts one signal (:data:`~.signals.SIGNALS`) per key (a user, an
address, a dataset, a user on a dataset, or the whole site) in periods of
``period`` seconds, and breaches when a period's value passes either a fixed
``threshold`` or, for an anomaly rule, the upper edge of the key's own
seasonal baseline (``band`` robust deviations above the median of the same
hour of the week). It goes to ALARM when ``datapoints`` of the last
``periods`` periods breach, and back when fewer do. ``missing`` says what a
period without any signal counts as, as CloudWatch's ``TreatMissingData``:
``notBreaching`` (the default for counts: nothing happened), ``breaching``,
``ignore`` (keep the current state: a level such as budget used stays until
a new value says otherwise; with the ``last`` statistic a period's value is
its newest signal) or ``missing`` (INSUFFICIENT_DATA when every
period is empty).

Rules are the built-ins below plus ``[[rule]]`` tables in ``alarms.toml`` in
the state directory; a table with a built-in's name changes or disables it.
The file is checked like the policy: every problem is reported with the
field it is in, and a server will not start with a file it cannot use.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ..errors import InvalidInput
from .signals import SIGNALS

__all__ = [
    "ACTIONS",
    "BUILTIN_RULES",
    "KEYS",
    "Rule",
    "RulesError",
    "load_rules",
    "parse_rules",
]

Comparison = Literal[">", ">=", "<", "<="]
Missing = Literal["notBreaching", "breaching", "ignore", "missing"]
Severity = Literal["info", "warning", "critical"]

#: What a rule may count per: the signal's fields that make up the key.
KEYS: dict[str, tuple[str, ...]] = {
    "site": (),
    "user": ("user",),
    "ip": ("ip",),
    "dataset": ("dataset",),
    "user_dataset": ("user", "dataset"),
}
#: Actions a rule may ask for besides the AlarmRaised record (always written).
ACTIONS: dict[str, str] = {
    "lock": "refuse the user's sign-ins for SignInPolicy.lockout_cooldown (sessions already "
    "open and API tokens go on: add end_sessions, or freeze the account)",
    "end_sessions": "end the user's sign-in sessions and close their connections (API tokens "
    "and kernels go on; not allowed on signals anyone can cause)",
    "webhook": "POST the alarm as JSON to AlarmMonitor.webhook_url",
    "email": "mail the alarm to AlarmMonitor.email_to",
}
_COMPARISONS = (">", ">=", "<", "<=")
_MISSING = ("notBreaching", "breaching", "ignore", "missing")
_SEVERITIES = ("info", "warning", "critical")
_STATISTICS = ("sum", "count", "max", "last")
#: Signals anyone can cause for any user name, without that user's password.
_ANYONE_CAN_CAUSE = frozenset({"signin.failed", "lockout"})
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


class RulesError(InvalidInput):
    """The alarm rules file cannot be used; the message names each bad field."""


@dataclass(frozen=True)
class Rule:
    """One alarm rule (see the module docstring for the semantics)."""

    name: str
    signal: str
    description: str
    why: str = ""
    key: str = "user"
    period: int = 300
    statistic: str = "sum"
    comparison: Comparison = ">="
    threshold: float | None = None
    band: float | None = None
    min_value: float = 0.0
    datapoints: int = 1
    periods: int = 1
    missing: Missing = "notBreaching"
    severity: Severity = "warning"
    actions: tuple[str, ...] = ()
    enabled: bool = True
    #: anomaly rules: weeks of history the baseline needs before the rule can alarm
    min_weeks: int = 2
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def anomaly(self) -> bool:
        return self.band is not None

    @property
    def upward(self) -> bool:
        """Breaching means "too much": the open period may breach before it closes."""
        return self.anomaly or self.comparison in (">", ">=")

    def breaches(self, value: float, upper: float | None = None) -> bool:
        """Whether a period's value breaches (``upper``: an anomaly rule's band edge)."""
        if self.anomaly:
            return upper is not None and value > upper and value >= self.min_value
        limit = float(self.threshold or 0.0)
        return {
            ">": value > limit,
            ">=": value >= limit,
            "<": value < limit,
            "<=": value <= limit,
        }[self.comparison]

    def describe(self) -> str:
        """The rule in one line, for listings and alarm reasons."""
        what = f"{self.statistic} of {self.signal} per {self.key}"
        if self.anomaly:
            test = (
                f"> median + {self.band:g} deviations of the same hour of the week "
                f"(and >= {self.min_value:g})"
            )
        else:
            test = f"{self.comparison} {self.threshold:g}"
        window = f"{self.period}s"
        if self.periods > 1:
            window = f"{self.datapoints} of {self.periods} periods of {self.period}s"
        return f"{what} {test} in {window}"


def _r(**kw: Any) -> Rule:
    return Rule(**kw)


#: The rules every site starts with, each with the reason it exists.
BUILTIN_RULES: tuple[Rule, ...] = (
    _r(
        name="signin-failures-user",
        signal="signin.failed",
        description="A burst of failed sign-ins for one account",
        why="Password guessing against one account shows as many failures in minutes; "
        "the sign-in lockout slows it, this makes sure someone hears about it.",
        key="user",
        period=300,
        threshold=5,
    ),
    _r(
        name="signin-failures-ip",
        signal="signin.failed",
        description="A burst of failed sign-ins from one address",
        why="Password spraying tries a few passwords on many accounts from one place, "
        "staying under every per-account lockout.",
        key="ip",
        period=300,
        threshold=20,
        severity="critical",
    ),
    _r(
        name="mfa-failures",
        signal="mfa.failed",
        description="Repeated wrong second-factor codes",
        why="Someone who has the password but not the phone: the password is "
        "compromised even if the second factor held.",
        key="user",
        period=300,
        threshold=3,
        severity="critical",
    ),
    _r(
        name="lockout",
        signal="lockout",
        description="An account was locked",
        why="A lockout means the failure limit was reached: an attack, or a user who needs help.",
        key="user",
        period=60,
        threshold=1,
        severity="critical",
    ),
    _r(
        name="new-ip",
        signal="signin.new_ip",
        description="Sign-in from a network the user has not used before",
        why="A stolen password with a stolen (or phished) code is used from "
        "somewhere new; a travelling user is the common harmless case.",
        key="user",
        period=60,
        threshold=1,
        severity="info",
    ),
    _r(
        name="off-hours-activity",
        signal="cell",
        description="Unusual amount of code run for this user at this hour of the week",
        why="Misuse of a valid account tends to happen when its owner is not working; "
        "a fixed office-hours rule fits nobody, the user's own weeks do.",
        key="user",
        period=3600,
        band=6.0,
        # Restart & Run All sends a whole notebook (often 50+ cells) at once, and a late
        # night or a day that ends later than usual often starts with one: at 40 this fired
        # 1.6 times a user-week on ordinary work (bench/alarm_bench.py). 200 is more than
        # two Run Alls and an hour of steady work.
        min_value=200,
    ),
    _r(
        name="off-hours-signin",
        signal="signin.ok",
        description="Repeated sign-ins at an hour of the week the user never signs in",
        why="Someone signing in again and again at 3 a.m. on a Sunday to an account used "
        "only on weekdays deserves a look, even with the right password and code.",
        key="user",
        period=3600,
        band=3.0,
        # The band's spread is at least 1, so an hour the user never signs in already needs
        # 4 sign-ins; the floor says so. Alarming on a single sign-in at a new hour (band
        # 0.5, floor 1) gave 0.23 false alarms a user-week on its own (bench/alarm_bench.py
        # --quick): people do sign in at odd hours now and then.
        min_value=4,
        severity="info",
    ),
    _r(
        name="bulk-display",
        signal="rows.displayed",
        description="Far more data shown than this user usually views",
        why="Exfiltration through the screen: paging through a whole table shows as "
        "many more rows displayed than the user's normal work.",
        key="user",
        period=3600,
        band=6.0,
        # A whole table shown once (display.max_rows = None) is ordinary, and at the hours a
        # user works the band is narrow next to it; at 2000 such displays alone were 0.09
        # false alarms a user-week (bench/alarm_bench.py), at 3000 0.04-0.06.
        min_value=3000,
    ),
    _r(
        name="bulk-print",
        signal="lines.printed",
        description="Far more printed than this user usually prints",
        why="print(df.to_string()) or a print in a loop over rows shows a table without "
        "displaying one; logs and progress bars are ordinary, so only a flood counts.",
        key="user",
        period=3600,
        band=6.0,
        min_value=30000,
    ),
    _r(
        name="dp-spend-unusual",
        signal="dp.spend_share",
        description="Far more privacy budget spent in an hour than this user usually spends",
        why="A notebook looping over queries, or someone draining a budget before anyone "
        "notices, spends much faster than its owner's normal work; counted as a share of "
        "the budget, so datasets with different measures compare.",
        key="user",
        period=3600,
        band=6.0,
        min_value=0.3,
        severity="info",
    ),
    _r(
        name="budget-80",
        signal="dp.budget_used",
        description="A privacy budget is at least 80% spent",
        why="Gives the owner (and the instructor) time to plan before queries start being refused.",
        key="user_dataset",
        period=60,
        statistic="last",
        threshold=0.8,
        missing="ignore",
        severity="info",
    ),
    _r(
        name="budget-exhausted",
        signal="dp.budget_used",
        description="A privacy budget is fully spent",
        why="No further private query can be answered for this user on this dataset.",
        key="user_dataset",
        period=60,
        statistic="last",
        threshold=1.0,
        missing="ignore",
    ),
    _r(
        name="dp-probing",
        signal="dp.refused",
        description="Repeated refused private queries",
        why="Many refusals in a short time is how one probes for what a budget or a "
        "schema allows (or a notebook stuck in a loop).",
        key="user",
        period=600,
        threshold=5,
    ),
    _r(
        name="denial-burst",
        signal="denied",
        description="A burst of access denials for one account",
        why="Walking the API for what a role can reach leaves a trail of denials.",
        key="user",
        period=300,
        threshold=10,
    ),
    _r(
        name="config-change",
        signal="config.change",
        description="The policy, a role, an account, a budget, a dataset or a key changed",
        why="Every change to who may do what should be seen by a second person.",
        key="site",
        period=60,
        threshold=1,
        severity="info",
    ),
    _r(
        name="audit-pipeline",
        signal="audit.problem",
        description="The audit trail had a write error, a repair or a failed verification",
        why="The trail is the evidence for everything else; a gap in it is an incident by itself.",
        key="site",
        period=60,
        threshold=1,
        severity="critical",
    ),
    _r(
        name="execution-unreconciled",
        signal="unreconciled",
        description="A kernel ran code the server never forwarded (guard bypass)",
        why="Code that reached the kernel around the channel guard was neither "
        "checked nor recorded: the guard was bypassed.",
        key="user",
        period=60,
        threshold=1,
        severity="critical",
    ),
)

_FIELDS = {
    "name",
    "signal",
    "description",
    "why",
    "key",
    "period",
    "statistic",
    "comparison",
    "threshold",
    "band",
    "min_value",
    "datapoints",
    "periods",
    "missing",
    "severity",
    "actions",
    "enabled",
    "min_weeks",
}


_TEXT = ("name", "signal", "description", "why", "key", "statistic", "comparison", "missing",
         "severity")  # fmt: skip
_WHOLE = {"period": (10, 7 * 86400), "datapoints": (1, 100), "periods": (1, 100),
          "min_weeks": (1, 4)}  # fmt: skip
_NUMBER = ("threshold", "band", "min_value")
_CHOICES: dict[str, tuple[str, ...]] = {
    "key": tuple(KEYS),
    "statistic": _STATISTICS,
    "comparison": _COMPARISONS,
    "missing": _MISSING,
    "severity": _SEVERITIES,
}


def _text_value(name: str, v: Any) -> tuple[Any, str | None]:
    ok = isinstance(v, str) and bool(v.strip())
    return (v.strip() if ok else None), (None if ok else "expected a non-empty string")


def _whole_value(name: str, v: Any) -> tuple[Any, str | None]:
    low, high = _WHOLE[name]
    ok = isinstance(v, int) and not isinstance(v, bool) and low <= v <= high
    return v, (None if ok else f"expected a whole number from {low} to {high}")


def _number_value(name: str, v: Any) -> tuple[Any, str | None]:
    if not isinstance(v, int | float) or isinstance(v, bool) or not abs(v) < 1e15:
        return None, "expected a number"
    if name != "threshold" and v < 0:
        return None, "must not be negative"
    return float(v), None


def _bool_value(name: str, v: Any) -> tuple[Any, str | None]:
    return v, (None if isinstance(v, bool) else "expected true or false")


def _actions_value(name: str, v: Any) -> tuple[Any, str | None]:
    if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
        return None, "expected a list of action names"
    unknown = [a for a in v if a not in ACTIONS]
    if unknown:
        return None, f"unknown action {unknown[0]!r} (known: {', '.join(ACTIONS)})"
    return tuple(dict.fromkeys(v)), None


#: Each field's checker: its value, or why it is refused.
_CHECKS: dict[str, Callable[[str, Any], tuple[Any, str | None]]] = {
    **dict.fromkeys(_TEXT, _text_value),
    **dict.fromkeys(_WHOLE, _whole_value),
    **dict.fromkeys(_NUMBER, _number_value),
    "enabled": _bool_value,
    "actions": _actions_value,
}


def _semantic_problems(rule: Rule) -> list[tuple[str, str]]:
    """What is wrong with a rule whose fields each have the right type."""
    out: list[tuple[str, str]] = []
    if not set(rule.name) <= _NAME_CHARS or len(rule.name) > 64:
        out.append(("name", "use at most 64 lower-case letters, digits, - and _"))
    if rule.signal not in SIGNALS:
        out.append(("signal", f"unknown signal {rule.signal!r} (known: {', '.join(SIGNALS)})"))
    for name, choices in _CHOICES.items():
        if getattr(rule, name) not in choices:
            out.append((name, f"expected one of {', '.join(choices)}"))
    if rule.threshold is not None and rule.band is not None:
        out.append(("band", "give a threshold or a band, not both"))
    if rule.datapoints > rule.periods:
        out.append(("datapoints", f"cannot exceed periods ({rule.periods})"))
    if rule.anomaly:
        if rule.key != "user":
            out.append(("key", "an anomaly rule (band) compares a user with their own weeks: "
                        "key = user"))  # fmt: skip
        if rule.period != 3600:
            out.append(("period", "an anomaly rule (band) counts whole hours: period = 3600"))
        if rule.comparison not in (">", ">="):
            out.append(("comparison", "an anomaly rule (band) alarms on too much, not too little"))
    if rule.signal in _ANYONE_CAN_CAUSE and "end_sessions" in rule.actions:
        out.append(("actions", f"'end_sessions' on {rule.signal} would let anyone who can "
                    "type a user name end that user's sessions"))  # fmt: skip
    if "user" not in KEYS.get(rule.key, ("user",)):
        out += [("actions", f"{a!r} needs a per-user key")
                for a in ("lock", "end_sessions") if a in rule.actions]  # fmt: skip
    return out


def _check_rule(
    raw: Mapping[str, Any], where: str, base: Rule | None
) -> tuple[Rule | None, list[str]]:
    problems: list[str] = []
    values: dict[str, Any] = {}
    for name, v in raw.items():
        if name not in _FIELDS:
            problems.append(f"{where}.{name}: unknown field (known: {', '.join(sorted(_FIELDS))})")
            continue
        value, why = _CHECKS[name](name, v)
        if why is None:
            values[name] = value
        else:
            problems.append(f"{where}.{name}: {why}")
    if problems:
        return None, problems
    if base is None:
        missing = [f for f in ("name", "signal", "description") if f not in values]
        problems += [f"{where}.{f}: required for a new rule" for f in missing]
        if "threshold" not in values and "band" not in values:
            problems.append(f"{where}.threshold: a new rule needs a threshold or a band")
        if problems:
            return None, problems
        rule = Rule(**values)
    else:
        if "threshold" in values:
            values.setdefault("band", None)
        elif "band" in values:
            values["threshold"] = None
        rule = replace(base, **values)
    problems += [f"{where}.{f}: {why}" for f, why in _semantic_problems(rule)]
    return (None if problems else rule), problems


def parse_rules(document: Mapping[str, Any], *, source: str = "alarms.toml") -> list[Rule]:
    """The built-in rules overlaid with ``document`` (a parsed alarms.toml).

    Raises :class:`RulesError` listing every problem, each naming its field.
    """
    problems: list[str] = []
    for table in document:
        if table != "rule":
            problems.append(f"{table}: unknown table (expected [[rule]] tables)")
    tables = document.get("rule", [])
    if not isinstance(tables, list):
        problems.append("rule: expected [[rule]] tables")
        tables = []
    rules = {r.name: r for r in BUILTIN_RULES}
    seen: set[str] = set()
    for i, raw in enumerate(tables):
        name = raw.get("name") if isinstance(raw, Mapping) else None
        where = f"rule[{i}]" + (f" ({name})" if isinstance(name, str) else "")
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: expected a table")
            continue
        if not isinstance(name, str):
            problems.append(f"{where}.name: required")
            continue
        if name in seen:
            problems.append(f"{where}.name: {name!r} appears twice")
            continue
        seen.add(name)
        rule, found = _check_rule(raw, where, rules.get(name))
        problems.extend(found)
        if rule is not None:
            rules[name] = rule
    if problems:
        raise RulesError(source, "alarm rules refused: " + "; ".join(problems))
    return list(rules.values())


def load_rules(path: Path) -> list[Rule]:
    """The rules in effect: the built-ins, overlaid with ``path`` when it exists."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return list(BUILTIN_RULES)
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(str(path), f"cannot be read: {exc}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(str(path), f"not valid TOML: {exc}") from None
    return parse_rules(document, source=path.name)
