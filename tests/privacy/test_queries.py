"""Queries on a protected dataset: whitelisted, costed before the data, released with noise."""

from __future__ import annotations

import polars as pl
import pytest
from privacy_specs import GOOD, with_change

from jupyter_secure.privacy import Amount, parse_spec
from jupyter_secure.privacy.queries import MAX_GROUPS, QueryError, parse_query, plan_query, prepare

pytestmark = pytest.mark.timeout(120)

SPEC = parse_spec(GOOD)
N_PEOPLE = 1000


def frame(rows_per_person: int = 1) -> pl.LazyFrame:
    """The prepared rows (as an admin's `dataset add` stores them)."""
    return prepare(SPEC, raw(rows_per_person))


def raw(rows_per_person: int = 1) -> pl.LazyFrame:
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
        ({"kind": "count"}, "rho: give either rho"),
        ({"kind": "count", "rho": "0.1", "accuracy": 5}, "rho: give either rho"),
        ({"kind": "count", "accuracy": -1}, "accuracy: expected a number from"),
        ({"kind": "count", "accuracy": True}, "accuracy: expected a number from"),
        ({"kind": "count", "rho": "0.1", "by": ["age"]}, "by[0]: 'age' is not a category"),
        ({"kind": "count", "rho": "0.1", "by": ["patient_id"]}, "by[0]: 'patient_id'"),
        ({"kind": "count", "rho": "0.1", "by": ["sex", "sex"]}, "by: a column is listed twice"),
        ({"kind": "count", "rho": "0.1", "by": "sex"}, "by: expected a list"),
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
    plan = plan_query(SPEC, query)
    assert plan.cost <= Amount.parse("0.05", "rho")
    assert plan.cost >= Amount.parse("0.0499", "rho")
    assert all(scale > 0 for scale in plan.scales.values())  # never noiseless


def test_count_sum_and_mean_release_close_to_the_truth() -> None:
    for kind, column, truth in (("count", None, N_PEOPLE), ("sum", "charges", 1000.0 * N_PEOPLE),
                                ("mean", "age", (20 + 40 + 60) / 3)):  # fmt: skip
        q = {"kind": kind, "rho": "0.5", **({"column": column} if column else {})}
        release = plan_query(SPEC, parse_query(q, SPEC)).release(frame())
        assert release.ci is not None
        assert release.value is not None
        lo, hi = release.ci
        assert lo <= release.value <= hi
        assert abs(release.value - truth) <= max(hi - lo, 1e-9) * 3, (kind, release)


def test_filters_on_public_predicates() -> None:
    q = {"kind": "count", "rho": "0.5", "filters": [{"column": "sex", "op": "==", "value": "F"}]}
    release = plan_query(SPEC, parse_query(q, SPEC)).release(frame())
    assert release.value is not None
    assert abs(release.value - N_PEOPLE / 2) < 50


def test_rows_beyond_max_rows_per_person_are_left_out() -> None:
    """Five rows per person, three allowed: a count sees at most three per person."""
    release = plan_query(SPEC, parse_query({"kind": "count", "rho": "0.5"}, SPEC)).release(
        frame(rows_per_person=5)
    )
    assert release.value is not None
    assert abs(release.value - 3 * N_PEOPLE) < 100
    assert "patient_id" not in frame().collect_schema()  # the id is never kept


def test_a_plan_releases_once() -> None:
    """A plan is spent once: a second release would spend the allowance again."""
    plan = plan_query(SPEC, parse_query({"kind": "count", "rho": "0.01"}, SPEC))
    plan.release(frame())
    with pytest.raises(RuntimeError, match="released once"):
        plan.release(frame())


def test_pure_epsilon_datasets_take_epsilon() -> None:
    spec = parse_spec(with_change("measure", "epsilon"))
    plan = plan_query(spec, parse_query({"kind": "count", "epsilon": "1"}, spec))
    assert plan.cost.measure == "epsilon"
    assert plan.cost <= Amount.parse("1", "epsilon")


def test_planning_takes_a_few_privacy_map_checks_not_a_bisection() -> None:
    """The cost lands just under the allowance (within 1e-5 relative): solved, not searched."""
    for allowance in ("0.001", "0.05", "2"):
        q = parse_query({"kind": "mean", "column": "age", "rho": allowance}, SPEC)
        plan = plan_query(SPEC, q)
        budget = Amount.parse(allowance, "rho")
        assert plan.cost <= budget
        assert budget.nanos - plan.cost.nanos <= budget.nanos * 1e-5 + 1


def test_grouped_queries_answer_every_public_key_and_only_those() -> None:
    """A key with no rows is answered (noisy); a value outside the public set never appears."""
    data = pl.LazyFrame(
        {"age": [30.0] * 500 + [99.0], "charges": [1.0] * 501, "sex": ["F"] * 500 + ["Q"]}
    )
    q = parse_query({"kind": "count", "by": ["sex"], "rho": "0.5"}, SPEC)
    release = plan_query(SPEC, q).release(prepare(parse_spec(with_change(
        "privacy_unit", {"rows_per_person": 1})), data))  # fmt: skip
    assert release.groups is not None
    assert release.value is None
    keys = [g.key["sex"] for g in release.groups]
    assert keys == ["F", "M"]  # the public set, in its order; "Q" is never a key
    f, m = release.groups
    assert abs(f.value - 500) < 20
    assert abs(m.value) < 20
    assert f.ci[0] <= f.value <= f.ci[1]


def test_grouped_means_per_key() -> None:
    q = parse_query({"kind": "mean", "column": "age", "by": ["sex"], "rho": "1"}, SPEC)
    release = plan_query(SPEC, q).release(frame())
    assert release.groups is not None
    for g in release.groups:
        assert abs(g.value - 40) < 5, g


def test_too_many_groups_are_refused() -> None:
    cats = [f"c{i}" for i in range(MAX_GROUPS // 2 + 1)]
    two = with_change("columns.sex.categories", cats)
    two["columns"]["site"] = {"type": "category", "categories": ["a", "b", "c"]}
    spec2 = parse_spec(two)
    parse_query({"kind": "count", "by": ["sex"], "rho": "1"}, spec2)  # 5,001 groups: fine
    with pytest.raises(QueryError, match="by: 15003 groups; at most 10000"):
        parse_query({"kind": "count", "by": ["sex", "site"], "rho": "1"}, spec2)


@pytest.mark.parametrize("measure", ["rho", "epsilon"])
def test_accuracy_is_bought_at_the_cheapest_cost(measure: str) -> None:
    """Asking for ±X buys an allowance whose interval is within X, and not much more."""
    spec = parse_spec(with_change("measure", measure))
    plan = plan_query(spec, parse_query({"kind": "count", "accuracy": 25}, spec))
    assert plan.half_width is not None
    assert plan.half_width <= 25
    cheaper = Amount(plan.cost.measure, int(plan.cost.nanos * 0.9))
    looser = plan_query(spec, parse_query({"kind": "count", measure: str(cheaper.value)}, spec))
    assert looser.half_width is not None
    assert looser.half_width > 25
    sum_plan = plan_query(
        spec, parse_query({"kind": "sum", "column": "age", "accuracy": 500}, spec)
    )
    assert sum_plan.half_width is not None
    assert sum_plan.half_width <= 500
    with pytest.raises(QueryError, match="accuracy: a mean"):
        plan_query(spec, parse_query({"kind": "mean", "column": "age", "accuracy": 1}, spec))


def test_quantiles_come_from_one_noisy_histogram_with_intervals() -> None:
    q = parse_query({"kind": "quantile", "column": "age", "q": [0.1, 0.5, 0.9], "rho": "1"}, SPEC)
    plan = plan_query(SPEC, q)
    assert plan.cost <= Amount.parse("1", "rho")
    release = plan.release(frame())  # ages are 20, 40 and 60, a third each
    assert release.groups is not None
    values = {g.key["q"]: g for g in release.groups}
    for key, truth in (("0.1", 20), ("0.5", 40), ("0.9", 60)):
        g = values[key]
        assert g.ci[0] <= g.value <= g.ci[1]
        assert g.ci[0] <= truth <= g.ci[1] + 120 / 128, (key, g)
    one = plan_query(SPEC, parse_query({"kind": "quantile", "column": "age", "q": 0.5,
                                        "rho": "1"}, SPEC)).release(frame())  # fmt: skip
    assert one.value is not None
    assert one.ci is not None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"kind": "quantile", "column": "age", "rho": "1"}, "q: give one quantile"),
        ({"kind": "quantile", "column": "age", "q": 1, "rho": "1"}, "q: expected numbers"),
        ({"kind": "quantile", "column": "age", "q": [0.5] * 10, "rho": "1"}, "q: give one"),
        ({"kind": "quantile", "column": "age", "q": True, "rho": "1"}, "q: expected numbers"),
        ({"kind": "count", "q": 0.5, "rho": "1"}, "q: only a quantile query takes q"),
        ({"kind": "quantile", "column": "sex", "q": 0.5, "rho": "1"}, "column: quantile needs"),
        ({"kind": "quantile", "column": "age", "q": 0.5, "rho": "1", "by": ["sex"]},
         "by: quantiles are not grouped"),
    ],
)  # fmt: skip
def test_quantile_queries_are_checked(query: dict, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(query, SPEC)


def test_a_quantile_cannot_be_bought_by_accuracy() -> None:
    q = parse_query({"kind": "quantile", "column": "age", "q": 0.5, "accuracy": 1}, SPEC)
    with pytest.raises(QueryError, match="accuracy: a quantile's interval depends on the data"):
        plan_query(SPEC, q)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"kind": "count", "rho": "0.1", "filters": [{"column": ["age"], "op": ">", "value": 1}]},
         "filters[0]: column and op must be text"),
        ({"kind": "sum", "column": {"a": 1}, "rho": "0.1"}, "column: expected a column name"),
        ({"kind": "count", "rho": "0.1", "by": [["sex"]]}, "by[0]"),
        ({"kind": "count", "rho": "0.1", "filters": [{"column": "age", "op": ">",
                                                      "value": 10**400}]},
         "filters[0].value: expected a finite number"),
        ({"kind": "count", "accuracy": 10**400}, "accuracy: expected a number from"),
        ({"kind": "count", "accuracy": 1e-200}, "accuracy: expected a number from"),
        ({"kind": "count", "rho": "0.000000999"}, "rho: at least ρ=0.000001 per query"),
        ({"kind": "count", "rho": "0.1", "filters": [{"column": "sex", "op": "in",
                                                      "value": ["F", 1]}]},
         "filters[0].value: must be among the public categories"),
    ],
)  # fmt: skip
def test_hostile_shapes_are_query_errors_not_crashes(query: dict, message: str) -> None:
    with pytest.raises(QueryError, match=message.replace("[", r"\[").replace("]", r"\]")):
        plan_query(SPEC, parse_query(query, SPEC))


def test_in_filters_work() -> None:
    q = {"kind": "count", "rho": "1",
         "filters": [{"column": "sex", "op": "in", "value": ["F", "M"]}]}  # fmt: skip
    release = plan_query(SPEC, parse_query(q, SPEC)).release(frame())
    assert release.value is not None
    assert abs(release.value - N_PEOPLE) < 30
