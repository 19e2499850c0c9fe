"""The alarm replay harness, small: every injected incident alarms within 60 s.

These check the detectors (the built-in rules through the real engine, fed
records built by the real audit logger), not speed: ``bench/alarm_bench.py``
at its default size measures the false-alarm rate. The second test checks
the harness's shortcut, on which the benchmark's figures rest: evaluating
only where something can change gives exactly the transitions of evaluating
one engine every 10 s.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "alarm_bench.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("alarm_bench", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["alarm_bench"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_injected_incident_alarms_within_60_s(bench: ModuleType) -> None:
    # Off-hours bulk displays are drawn with 2,500-40,000 rows and bulk-display's floor is
    # 3,000 rows an hour, so a draw under 3,000 is missed by design (seeds 7 and 9 of this
    # size have one; the benchmark reports such misses). Seed 3 has none: every incident
    # here must alarm.
    result = bench.run(bench.Config(users=8, weeks=4, seed=3, incidents=2))
    score = bench.score(result, "ours")
    kinds = {inc.kind for inc in result.incidents}
    assert kinds == set(bench.INCIDENT_LABELS)  # one or more of every type
    assert len(result.incidents) == 8
    late = [i for i in score.per_incident if i["latency_s"] is None or i["latency_s"] > 60]
    assert late == []
    assert score.recall == 1.0
    # The records went through signals_from_event: the trail-borne signals are there.
    assert {"signin.ok", "signin.failed", "cell", "dp.refused", "lockout"} <= set(result.signals)


def test_evaluating_where_needed_equals_evaluating_every_10_s(bench: ModuleType) -> None:
    config = bench.Config(users=5, weeks=3, seed=5, incidents=2)
    fast = bench.run(config)
    exact = bench.run(bench.Config(**{**vars(config), "exact": True}))
    assert exact.evaluations["ours"] > 10 * fast.evaluations["ours"]
    for name, transitions in exact.transitions.items():
        assert sorted(fast.transitions[name]) == sorted(transitions), name
    assert sum(1 for t in exact.transitions["ours"] if t[2] == "ALARM") >= 5
