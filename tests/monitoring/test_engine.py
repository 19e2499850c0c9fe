"""The alarm engine: CloudWatch's states and periods, early breach, baselines, networks."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_secure.monitoring.baseline import SeasonalBaseline, network_of
from jupyter_secure.monitoring.engine import ALARM, INSUFFICIENT_DATA, OK, AlarmEngine
from jupyter_secure.monitoring.rules import BUILTIN_RULES, Rule
from jupyter_secure.monitoring.signals import Signal

T0 = 1_800_000_000.0 - (1_800_000_000.0 % 3600)  # an hour boundary
WEEK = 7 * 86400


def rule(**kw) -> Rule:  # type: ignore[no-untyped-def]
    base = {"name": "r", "signal": "denied", "description": "test", "key": "user", "period": 60}
    return Rule(**{**base, **kw})


def states(changes) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return [(c.rule.name, c.key, c.state) for c in changes]


def test_a_burst_alarms_within_one_evaluation_not_at_the_end_of_its_period() -> None:
    e = AlarmEngine([rule(threshold=3, period=300)])
    for i in range(3):
        e.feed(Signal("denied", T0 + i, user="mallory"))
    changes = e.evaluate(T0 + 5)  # the 300 s period is still open
    assert states(changes) == [("r", "user:mallory", ALARM)]
    assert changes[0].value == 3
    assert changes[0].threshold == 3
    assert e.evaluate(T0 + 10) == []  # no repeat while it stays in ALARM
    assert states(e.evaluate(T0 + 600)) == [("r", "user:mallory", OK)]


def test_keys_are_counted_apart_and_a_signal_without_the_key_is_not_counted() -> None:
    e = AlarmEngine([rule(threshold=2, key="ip")])
    e.feed(Signal("denied", T0, user="a", ip="10.0.0.1"))
    e.feed(Signal("denied", T0 + 1, user="b", ip="10.0.0.2"))
    e.feed(Signal("denied", T0 + 2, user="c"))  # no address: not counted per address
    assert e.evaluate(T0 + 3) == []
    e.feed(Signal("denied", T0 + 4, user="d", ip="10.0.0.1"))
    assert states(e.evaluate(T0 + 5)) == [("r", "ip:10.0.0.1", ALARM)]


def test_m_of_n_needs_m_breaching_periods() -> None:
    e = AlarmEngine([rule(threshold=1, datapoints=2, periods=3)])
    e.feed(Signal("denied", T0 + 1, user="u"))
    assert e.evaluate(T0 + 61) == []  # one breaching period of three
    e.feed(Signal("denied", T0 + 125, user="u"))
    assert states(e.evaluate(T0 + 126)) == [("r", "user:u", ALARM)]
    assert e.evaluate(T0 + 181) == []  # periods 0 and 2 still in the window
    assert states(e.evaluate(T0 + 250)) == [("r", "user:u", OK)]


@pytest.mark.parametrize(
    ("missing", "after"),
    [("notBreaching", OK), ("breaching", ALARM), ("ignore", ALARM), ("missing", INSUFFICIENT_DATA)],
)
def test_missing_data_policies(missing: str, after: str) -> None:
    e = AlarmEngine([rule(threshold=1, missing=missing)])
    e.feed(Signal("denied", T0 + 1, user="u"))
    assert states(e.evaluate(T0 + 2)) == [("r", "user:u", ALARM)]
    changes = e.evaluate(T0 + 200)  # two empty periods later
    expected = [] if after == ALARM else [("r", "user:u", after)]
    assert states(changes) == expected
    if after == INSUFFICIENT_DATA:
        assert [s.state for s in e.states()] == [INSUFFICIENT_DATA]


def test_a_level_rule_holds_until_a_new_value_says_otherwise() -> None:
    budget = next(r for r in BUILTIN_RULES if r.name == "budget-80")
    e = AlarmEngine([budget])
    e.feed(Signal("dp.budget_used", T0, 0.5, user="u", dataset="d"))
    assert e.evaluate(T0 + 1) == []
    e.feed(Signal("dp.budget_used", T0 + 2, 0.85, user="u", dataset="d"))
    assert states(e.evaluate(T0 + 3)) == [("budget-80", "user:u,dataset:d", ALARM)]
    assert e.evaluate(T0 + 3 * 3600) == []  # hours of silence: still 85 % spent
    e.feed(Signal("dp.budget_used", T0 + 3 * 3600 + 5, 0.0, user="u", dataset="d"))
    assert states(e.evaluate(T0 + 3 * 3600 + 6)) == [("budget-80", "user:u,dataset:d", OK)]


def test_a_less_than_rule_waits_for_the_period_to_close() -> None:
    e = AlarmEngine([rule(threshold=2, comparison="<")])
    e.feed(Signal("denied", T0 + 1, user="u"))
    assert e.evaluate(T0 + 2) == []  # the open period may still reach 2
    assert states(e.evaluate(T0 + 61)) == [("r", "user:u", ALARM)]


def test_alarm_ids_are_kept_until_resolved_and_new_for_the_next_alarm() -> None:
    e = AlarmEngine([rule(threshold=1)])
    e.feed(Signal("denied", T0, user="u"))
    (up,) = e.evaluate(T0 + 1)
    (down,) = e.evaluate(T0 + 200)
    e.feed(Signal("denied", T0 + 300, user="u"))
    (again,) = e.evaluate(T0 + 301)
    assert up.alarm_id == down.alarm_id != again.alarm_id
    assert e.firing() == {"warning": 1}


def test_an_anomaly_rule_compares_a_user_with_their_own_weeks() -> None:
    off_hours = next(r for r in BUILTIN_RULES if r.name == "off-hours-activity")
    e = AlarmEngine([off_hours])
    # Three weeks of a 9-to-5 weekday: ~30 cells an hour from 09:00 to 17:00.
    for week in range(3):
        for day in range(5):
            for hour in range(9, 17):
                start = T0 + week * WEEK + day * 86400 + hour * 3600
                for i in range(30):
                    e.feed(Signal("cell", start + i * 100, user="ann"))
            e.evaluate(T0 + week * WEEK + day * 86400 + 23 * 3600)
    monday = T0 + 3 * WEEK
    # A normal Monday morning: nothing.
    for i in range(35):
        e.feed(Signal("cell", monday + 10 * 3600 + i * 60, user="ann"))
    assert e.evaluate(monday + 10 * 3600 + 35 * 60) == []
    # 3 a.m. on the Tuesday: 60 cells (a Restart & Run All) is not enough on its own ...
    night = monday + 86400 + 3 * 3600
    for i in range(60):
        e.feed(Signal("cell", night + i * 5, user="ann"))
    assert e.evaluate(night + 300) == []
    # ... 250 cells in twenty minutes is.
    for i in range(190):
        e.feed(Signal("cell", night + 300 + i * 5, user="ann"))
    changes = e.evaluate(night + 1250)
    assert states(changes) == [("off-hours-activity", "user:ann", ALARM)]
    assert changes[0].threshold == 200  # the floor: her band at 3 a.m. is far lower


def test_an_anomaly_rule_says_nothing_about_a_user_without_enough_history() -> None:
    off_hours = next(r for r in BUILTIN_RULES if r.name == "off-hours-activity")
    e = AlarmEngine([off_hours])
    for i in range(500):
        e.feed(Signal("cell", T0 + i, user="new"))
    assert e.evaluate(T0 + 600) == []
    assert list(e.states()) == []


def test_a_sign_in_from_a_new_network_is_a_signal_the_first_ever_is_not() -> None:
    new_ip = next(r for r in BUILTIN_RULES if r.name == "new-ip")
    e = AlarmEngine([new_ip])
    e.feed(Signal("signin.ok", T0, user="u", ip="192.0.2.10"))
    assert e.evaluate(T0 + 1) == []
    e.feed(Signal("signin.ok", T0 + 100, user="u", ip="192.0.2.77"))  # same /24
    assert e.evaluate(T0 + 101) == []
    e.feed(Signal("signin.ok", T0 + 200, user="u", ip="203.0.113.5"))
    assert states(e.evaluate(T0 + 201)) == [("new-ip", "user:u", ALARM)]


def test_networks() -> None:
    assert network_of("192.0.2.200") == "192.0.2.0/24"
    assert network_of("::ffff:192.0.2.1") == "192.0.2.0/24"
    assert network_of("2001:db8:1:2::5") == "2001:db8:1::/56"
    assert network_of("not an address") is None


def test_the_baseline_is_median_and_mad_over_the_same_hours() -> None:
    b = SeasonalBaseline(weeks=4)
    for week in range(4):
        for d in (-1, 0, 1):
            b.add("u", T0 + week * WEEK + d * 3600, 10.0 + week)
    band = b.band("u", T0 + 4 * WEEK)
    assert band is not None
    assert band.samples == 12
    assert band.weeks == 4
    assert band.median == 11.5
    assert band.spread == pytest.approx(1.4826)  # MAD 1, scaled
    # Hours before the user's first activity are not samples.
    late = SeasonalBaseline(weeks=4)
    late.add("v", T0 + 3 * WEEK, 5.0)
    band = late.band("v", T0 + 4 * WEEK)
    assert band is not None
    assert band.samples == 2
    assert band.weeks == 1
    assert b.band("nobody", T0) is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3000), st.sampled_from(["a", "b"])), max_size=60),
    st.integers(1, 5),
)
def test_evaluating_more_often_never_changes_when_an_alarm_is_first_raised(
    events: list[tuple[int, str]], threshold: int
) -> None:
    """An open period alarms as soon as it breaches: evaluating every 10 s or every
    second raises each alarm within the same 10 s."""
    first: dict[int, dict[str, float]] = {}
    for step in (1, 10):
        e = AlarmEngine([rule(threshold=threshold)])
        seen: dict[str, float] = {}
        pending = sorted(events)
        for now in range(0, 3200, step):
            while pending and pending[0][0] <= now:
                t, user = pending.pop(0)
                e.feed(Signal("denied", T0 + t, user=user))
            for change in e.evaluate(T0 + now):
                if change.state == ALARM:
                    seen.setdefault(change.key, now)
        first[step] = seen
    assert first[1].keys() == first[10].keys()
    for key, at in first[1].items():
        assert 0 <= first[10][key] - at < 10


def test_disabled_rules_are_not_evaluated() -> None:
    r = replace(rule(threshold=1), enabled=False)
    e = AlarmEngine([r])
    e.feed(Signal("denied", T0, user="u"))
    assert e.evaluate(T0 + 1) == []


def test_an_ipv6_sprayer_rotating_through_its_64_is_one_address() -> None:
    spraying = next(r for r in BUILTIN_RULES if r.name == "signin-failures-ip")
    e = AlarmEngine([spraying])
    for i in range(20):
        e.feed(Signal("signin.failed", T0 + i, user=f"u{i}", ip=f"2001:db8:7:7::{i + 1:x}"))
    assert states(e.evaluate(T0 + 21)) == [("signin-failures-ip", "ip:2001:db8:7:7::/64", ALARM)]


def test_a_comma_or_colon_in_a_name_cannot_shift_a_key() -> None:
    e = AlarmEngine([rule(threshold=1, key="user_dataset", signal="dp.refused")])
    e.feed(Signal("dp.refused", T0, user="a,dataset:x", dataset="d"))
    (change,) = e.evaluate(T0 + 1)
    assert change.key == "user:a%2Cdataset:x,dataset:d"
    assert change.parts == {"user": "a,dataset:x", "dataset": "d"}
    e.restore(change.rule.name, change.key, change.alarm_id, T0, "restored")
    (down,) = e.evaluate(T0 + 200)  # a restored key parses back to the same parts
    assert down.parts == {"user": "a,dataset:x", "dataset": "d"}
