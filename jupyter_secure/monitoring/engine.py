"""The alarm engine: signals in, state changes out. No I/O, no clock of its own.

Feed it :class:`~.signals.Signal` values in time order and call
:meth:`AlarmEngine.evaluate` with the current time (every few seconds in the
server, every simulated ten seconds in the replay harness); it returns the
alarms whose state changed. The same code runs in both, which is how
``bench/alarm_bench.py`` can measure what the server will do.

Sooner than CloudWatch: a period still open counts as soon as it breaches an
upward rule (a count can only grow), so a burst alarms within one evaluation
instead of at the end of its period. Falling back to OK waits for closed
periods, as in CloudWatch.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from ..audit.ids import uuid7
from .baseline import Band, KnownNetworks, SeasonalBaseline, address_key
from .rules import KEYS, Rule
from .signals import Signal

__all__ = ["ALARM", "INSUFFICIENT_DATA", "OK", "AlarmEngine", "AlarmState", "Transition"]

#: Characters kept as they are in key values (user and dataset names, addresses).
_SAFE = "@._-()/:"
OK = "OK"
ALARM = "ALARM"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


@dataclass
class AlarmState:
    """Where one rule stands for one key."""

    rule: str
    key: str
    state: str = OK
    since: float = 0.0
    alarm_id: str | None = None
    value: float | None = None
    threshold: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class Transition:
    """A change of state, with what the actions need to know."""

    rule: Rule
    key: str
    parts: dict[str, str]
    state: str
    previous: str
    alarm_id: str
    reason: str
    value: float | None
    threshold: float | None
    t: float

    @property
    def user(self) -> str | None:
        return self.parts.get("user")


@dataclass
class _Series:
    """A rule's period values for one key."""

    parts: dict[str, str]
    values: dict[int, float] = field(default_factory=dict)


def key_text(rule: Rule, parts: dict[str, str]) -> str:
    """``user:alice``, ``user:alice,dataset:patients``, ``ip:192.0.2.7`` or ``site``.

    Values are percent-encoded but for ``:`` (an IPv6 address stays readable); a ``,``
    in one cannot shift the others, and the first ``:`` ends the dimension.
    """
    if not parts:
        return "site"
    return ",".join(f"{dim}:{quote(parts[dim], safe=_SAFE)}" for dim in KEYS[rule.key])


class AlarmEngine:
    """Evaluates alarm rules over signals (see the module docstring)."""

    def __init__(
        self,
        rules: Iterable[Rule],
        *,
        baseline_weeks: int = 4,
        new_id: object = None,
    ) -> None:
        self.rules = [r for r in rules if r.enabled]
        self._by_signal: dict[str, list[Rule]] = defaultdict(list)
        for rule in self.rules:
            self._by_signal[rule.signal].append(rule)
        self._series: dict[str, dict[str, _Series]] = {r.name: {} for r in self.rules}
        self._states: dict[tuple[str, str], AlarmState] = {}
        self.baselines: dict[str, SeasonalBaseline] = {
            r.signal: SeasonalBaseline(weeks=baseline_weeks) for r in self.rules if r.anomaly
        }
        self._bands: dict[tuple[str, str, int], Band | None] = {}
        self._band_hour = -1
        self.networks = KnownNetworks()
        self._last_prune = 0.0

    # -- input ----------------------------------------------------------------------------
    def feed(self, signal: Signal, *, replay: bool = False) -> None:
        """Count one signal (and what it implies: a new network).

        ``replay``: a signal counted before a restart, fed again to rebuild the open
        periods; baselines and networks already hold it (they are persisted).
        """
        if replay:
            self._count_all(signal)
            return
        if (
            signal.name == "signin.ok"
            and signal.user
            and signal.ip
            and self.networks.check(signal.user, signal.ip, signal.t)
        ):
            self.feed(Signal("signin.new_ip", signal.t, user=signal.user, ip=signal.ip))
        baseline = self.baselines.get(signal.name)
        if baseline is not None and signal.user:
            baseline.add(signal.user, signal.t, signal.value)
        self._count_all(signal)

    def _count_all(self, signal: Signal) -> None:
        for rule in self._by_signal.get(signal.name, ()):
            parts: dict[str, str] = {}
            for dim in KEYS[rule.key]:
                v = getattr(signal, dim)
                if not v:
                    break
                parts[dim] = address_key(v) if dim == "ip" else v
            else:
                self._count(rule, parts, signal)

    def _count(self, rule: Rule, parts: dict[str, str], signal: Signal) -> None:
        key = key_text(rule, parts)
        series = self._series[rule.name].get(key)
        if series is None:
            series = self._series[rule.name][key] = _Series(parts)
        start = int(signal.t // rule.period) * rule.period
        old = series.values.get(start)
        if rule.statistic == "count":
            series.values[start] = (old or 0.0) + 1.0
        elif rule.statistic == "last":
            series.values[start] = signal.value
        elif rule.statistic == "max":
            series.values[start] = signal.value if old is None else max(old, signal.value)
        else:
            series.values[start] = (old or 0.0) + signal.value

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, now: float | None = None) -> list[Transition]:
        """Every alarm whose state changed at ``now``."""
        now = time.time() if now is None else now
        hour = int(now // 3600)
        if hour != self._band_hour:
            self._bands.clear()
            self._band_hour = hour
        changes: list[Transition] = []
        for rule in self.rules:
            series = self._series[rule.name]
            keys = set(series)
            keys.update(k for (r, k), s in self._states.items() if r == rule.name)
            for key in keys:
                change = self._evaluate_key(rule, key, series.get(key), now)
                if change is not None:
                    changes.append(change)
            self._forget_quiet(rule, now)
        if now - self._last_prune > 3600:
            self._last_prune = now
            for baseline in self.baselines.values():
                baseline.prune(now)
            self.networks.prune(now)
        return changes

    def _band(self, rule: Rule, user: str, start: float) -> Band | None:
        k = (rule.signal, user, int(start // 3600))
        if k not in self._bands:
            self._bands[k] = self.baselines[rule.signal].band(user, start)
        return self._bands[k]

    def _judge(
        self, rule: Rule, parts: dict[str, str], start: int, value: float | None
    ) -> tuple[str, float | None]:
        """One period: ("breaching" | "ok" | "missing" | "unknown", the threshold used)."""
        upper: float | None = rule.threshold
        if rule.anomaly:
            band = self._band(rule, parts.get("user", ""), start)
            if band is None or band.weeks < rule.min_weeks:
                return "unknown", None
            upper = max(band.upper(rule.band or 0.0), rule.min_value)
        if value is None:
            return "missing", upper
        return ("breaching" if rule.breaches(value, upper) else "ok"), upper

    def _verdicts(
        self, rule: Rule, parts: dict[str, str], values: dict[int, float], now: float
    ) -> list[tuple[str, float | None, float | None]]:
        """The periods to judge at ``now``, newest first: (verdict, value, threshold)."""
        current = int(now // rule.period) * rule.period
        window = [current - rule.period * k for k in range(1, rule.periods + 1)]
        latest = values.get(current)
        verdicts: list[tuple[str, float | None, float | None]] = []
        if latest is not None and (rule.upward or rule.missing == "ignore"):
            # The open period counts once it breaches an upward rule (it can only grow),
            # and for a level (missing = ignore) its newest value is the truth.
            verdict, limit = self._judge(rule, parts, current, latest)
            if verdict == "breaching" or rule.missing == "ignore":
                window = window[: rule.periods - 1]
                verdicts.append((verdict, latest, limit))
        for start in window:
            value = values.get(start)
            verdict, limit = self._judge(rule, parts, start, value)
            verdicts.append((verdict, value, limit))
        return verdicts

    def _evaluate_key(
        self, rule: Rule, key: str, series: _Series | None, now: float
    ) -> Transition | None:
        state = self._states.get((rule.name, key))
        parts = series.parts if series is not None else _parts_of(key)
        verdicts = self._verdicts(rule, parts, series.values if series else {}, now)
        previous = state.state if state is not None else OK
        new, breaching = _decide(rule, verdicts, previous)
        value, limit = _headline(verdicts)
        if state is None:
            if new != ALARM:
                return None  # OK, or not enough data yet: nothing to remember
            state = self._states[(rule.name, key)] = AlarmState(rule.name, key, OK, now)
        if new == previous:
            if new == ALARM:
                state.value, state.threshold = value, limit
            return None
        reason = _reason(rule, new, breaching, len(verdicts), value=value, limit=limit)
        if new == ALARM:
            state.alarm_id = str(uuid7(int(now * 1e9)))
        alarm_id = state.alarm_id or ""
        state.state, state.since, state.value, state.threshold, state.reason = (
            new,
            now,
            value,
            limit,
            reason,
        )
        if new == OK:
            del self._states[(rule.name, key)]
        elif new != ALARM:
            state.alarm_id = None
        return Transition(rule, key, dict(parts), new, previous, alarm_id, reason, value, limit,
                          now)  # fmt: skip

    def _forget_quiet(self, rule: Rule, now: float) -> None:
        """Drop periods no evaluation can reach again, and keys left with none."""
        oldest = int(now // rule.period) * rule.period - rule.period * rule.periods
        series = self._series[rule.name]
        for key in list(series):
            values = series[key].values
            for start in [s for s in values if s < oldest]:
                del values[start]
            if not values and (rule.name, key) not in self._states:
                del series[key]

    # -- reading ---------------------------------------------------------------------------
    def states(self) -> Iterator[AlarmState]:
        """Every alarm not OK (ALARM or INSUFFICIENT_DATA)."""
        return iter(list(self._states.values()))

    def firing(self) -> dict[str, int]:
        """How many alarms are in ALARM, by severity."""
        severity = {r.name: r.severity for r in self.rules}
        out: dict[str, int] = {}
        for s in self._states.values():
            if s.state == ALARM:
                out[severity[s.rule]] = out.get(severity[s.rule], 0) + 1
        return out

    def restore(self, rule: str, key: str, alarm_id: str, since: float, reason: str) -> None:
        """Take back an alarm that was in ALARM when the monitor last stopped."""
        if rule in self._series:
            self._states[(rule, key)] = AlarmState(rule, key, ALARM, since, alarm_id,
                                                   reason=reason)  # fmt: skip


def _decide(
    rule: Rule, verdicts: list[tuple[str, float | None, float | None]], previous: str
) -> tuple[str, int]:
    """The new state from the periods' verdicts (``missing`` applied), and how many breach."""
    fill = {"notBreaching": "ok", "breaching": "breaching"}.get(rule.missing, "")
    judged = [fill if v == "missing" else v for v, _, _ in verdicts]
    breaching = judged.count("breaching")
    if breaching >= rule.datapoints:
        return ALARM, breaching
    if "ok" in judged:
        return OK, breaching
    if rule.missing == "ignore" and all(v == "missing" for v, _, _ in verdicts):
        return previous, breaching
    return INSUFFICIENT_DATA, breaching


def _parts_of(key: str) -> dict[str, str]:
    if key == "site":
        return {}
    parts: dict[str, str] = {}
    for part in key.split(","):
        dim, _, value = part.partition(":")
        parts[dim] = unquote(value)
    return parts


def _headline(
    verdicts: list[tuple[str, float | None, float | None]],
) -> tuple[float | None, float | None]:
    """The value and threshold to report: the first breaching period's, else the newest."""
    for verdict, value, limit in verdicts:
        if verdict == "breaching":
            return value, limit
    for _, value, limit in verdicts:
        if value is not None:
            return value, limit
    return None, (verdicts[0][2] if verdicts else None)


def _reason(
    rule: Rule,
    new: str,
    breaching: int,
    evaluated: int,
    *,
    value: float | None,
    limit: float | None,
) -> str:
    if new == INSUFFICIENT_DATA:
        return f"{rule.name}: not enough data to evaluate ({rule.describe()})"
    shown = "no data" if value is None else f"{value:g}"
    edge = "" if limit is None else f" against {limit:g}"
    if new == ALARM:
        return (
            f"{rule.description}: {breaching} of {evaluated} period(s) breaching "
            f"(latest {shown}{edge}; rule: {rule.describe()})"
        )
    return f"{rule.description}: no longer breaching (latest {shown}{edge})"
