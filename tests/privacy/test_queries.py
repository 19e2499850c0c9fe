"""Queries on a protected dataset: whitelisted, costed before the data, released with noise."""

from __future__ import annotations

import polars as pl
import pytest
from privacy_specs import GOOD, with_change

from jupyter_secure.privacy import Amount, parse_spec
from jupyter_secure.privacy.queries import QueryError, parse_query, plan_query

pytestmark = pytest.mark.timeout(120)

SPEC = parse_spec(GOOD)
N_PEOPLE = 1000


def frame(rows_per_person: int = 1) -> pl.LazyFrame:
    n = N_PEOPLE * rows_per_person
    return pl.LazyFrame(
        {
            "patient_id": [i // rows_per_person for i in range(n)],
            "age": [float(20 + (i % 3) * 20) for i in range(n)],  # 20, 40, 60
            "charges": [1000.0] * n,
            "sex": ["F" if i % 2 else "M" for i in range(n)],
        }
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"kind": "median", "rho": "0.1"}, "kind: expected one of count, sum, mean"),
        ({"kind": "sum", "column": "sex", "rho": "0.1"}, "column: sum needs a numeric column"),
        ({"kind": "count", "column": "age", "rho": "0.1"}, "column: a count takes no column"),
        ({"kind": "count"}, "rho: required"),
        ({"kind": "count", "rho": "-1"}, "rho: must not be negative"),
        ({"kind": "count", "rho": 0}, "rho: must be greater than 0"),
        ({"kind": "count", "epsilon": "1"}, "epsilon: patients is accounted in rho"),
        ({"kind": "count", "rho": "0.1", "user": "bob"}, "user: unknown key"),
        ({"kind": "count", "rho": "0.1",
          "filters": [{"column": "sex", "op": "==", "value": "X"}]},
         "filters[0].value: must be among the public categories of sex"),
        ({"kind": "count", "rho": "0.1",
          "filters": [{"column": "sex", "op": "<", "value": "F"}]}, "filters[0].op"),
        ({"kind": "count", "rho": "0.1",
          "filters": [{"column": "patient_id", "op": "==", "value": 1}]},
         "filters[0].column: 'patient_id' is not a column"),
        ({"kind": "count", "rho": "0.1",
          "filters": [{"column": "age", "op": ">", "value": float("inf")}]},
         "filters[0].value: expected a finite number"),
    ],
)  # fmt: skip
def test_queries_are_whitelisted_and_errors_name_the_field(query: dict, message: str) -> None:
    with pytest.raises(QueryError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_query(query, SPEC)


def test_cost_is_known_before_release_and_never_above_the_allowance() -> None:
    query = parse_query({"kind": "count", "rho": "0.05"}, SPEC)
    plan = plan_query(SPEC, frame(), query)
    assert plan.cost <= Amount.parse("0.05", "rho")
    assert plan.cost >= Amount.parse("0.0499", "rho")
    assert all(scale > 0 for scale in plan.scales.values())  # never noiseless


def test_count_sum_and_mean_release_close_to_the_truth() -> None:
    for kind, column, truth in (("count", None, N_PEOPLE), ("sum", "charges", 1000.0 * N_PEOPLE),
                                ("mean", "age", (20 + 40 + 60) / 3)):  # fmt: skip
        q = {"kind": kind, "rho": "0.5", **({"column": column} if column else {})}
        release = plan_query(SPEC, frame(), parse_query(q, SPEC)).release()
        lo, hi = release.ci
        assert lo <= release.value <= hi
        assert abs(release.value - truth) <= max(hi - lo, 1e-9) * 3, (kind, release)


def test_filters_on_public_predicates() -> None:
    q = {"kind": "count", "rho": "0.5", "filters": [{"column": "sex", "op": "==", "value": "F"}]}
    release = plan_query(SPEC, frame(), parse_query(q, SPEC)).release()
    assert abs(release.value - N_PEOPLE / 2) < 50


def test_rows_beyond_max_rows_per_person_are_left_out() -> None:
    """Five rows per person, three allowed: a count sees at most three per person."""
    release = plan_query(SPEC, frame(rows_per_person=5), parse_query(
        {"kind": "count", "rho": "0.5"}, SPEC)).release()  # fmt: skip
    assert abs(release.value - 3 * N_PEOPLE) < 100


def test_a_plan_releases_once() -> None:
    """OpenDP's compositor refuses a second release: a plan is spent once."""
    plan = plan_query(SPEC, frame(), parse_query({"kind": "count", "rho": "0.01"}, SPEC))
    plan.release()
    with pytest.raises(Exception, match="out of queries"):
        plan.release()


def test_pure_epsilon_datasets_take_epsilon() -> None:
    spec = parse_spec(with_change("measure", "epsilon"))
    plan = plan_query(spec, frame(), parse_query({"kind": "count", "epsilon": "1"}, spec))
    assert plan.cost.measure == "epsilon"
    assert plan.cost <= Amount.parse("1", "epsilon")
