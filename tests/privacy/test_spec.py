"""Dataset specs: everything DP needs comes from the admin, and every mistake is named."""

from __future__ import annotations

import pytest
from privacy_specs import GOOD, with_change

from jupyter_secure.privacy import SpecError, parse_spec


def test_a_good_spec() -> None:
    spec = parse_spec(GOOD)
    assert spec.columns == ("age", "charges", "sex")
    assert spec.numeric["age"].midpoint == 60
    assert spec.unit.max_rows == 3
    assert str(spec.per_user_budget) == "ρ=0.5"
    one_row = parse_spec(with_change("privacy_unit", {"rows_per_person": 1}))
    assert one_row.unit.id_column is None


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("columns.age.upper", KeyError, "columns.age: numeric columns need lower and upper"),
        ("columns.age.upper", -1, "columns.age.upper: must be greater than lower (0)"),
        ("columns.age.lower", "zero", "columns.age.lower: expected a number"),
        ("columns.age.upper", 1e308, "columns.age.upper: must be a finite number within"),
        ("columns.age.upper", 10**400, "columns.age.upper: must be a finite number within"),
        ("columns.sex.categories", [], "columns.sex.categories: expected a non-empty list"),
        ("columns.sex.categories", ["F", "F"], "listed more than once"),
        ("columns.sex.type", "text", "columns.sex.type: expected numeric or category"),
        ("columns.age.bins", 3, "columns.age.bins: unknown key"),
        ("per_user_budget", "-1", "per_user_budget: must not be negative"),
        ("per_user_budget", 0, "per_user_budget: must be greater than 0"),
        ("dataset_cap", "0.1", "dataset_cap: must be at least per_user_budget"),
        ("measure", "delta", "measure: expected rho or epsilon"),
        ("name", "Patients!", "name: expected lower-case"),
        ("privacy_unit", {"id_column": "patient_id"}, "max_rows_per_person: expected a whole"),
        ("privacy_unit", {}, "privacy_unit: give id_column"),
        ("columns", {}, "columns: describe at least one column"),
        ("extra", 1, "extra: unknown key"),
        ("columns.patient_id", {"type": "category", "categories": ["x"]},
         "the privacy unit's id column is never released"),
    ],
)  # fmt: skip
def test_every_mistake_names_its_field(path: str, value: object, expected: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(with_change(path, value))
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_all_problems_are_reported_at_once() -> None:
    bad = with_change("columns.age.upper", -1)
    bad["dataset_cap"] = "nope"
    with pytest.raises(SpecError) as info:
        parse_spec(bad)
    assert len(info.value.problems) == 2


def test_the_spec_is_held_against_the_data() -> None:
    spec = parse_spec(GOOD)
    spec.check_columns({"patient_id": "string", "age": "numeric", "charges": "numeric",
                        "sex": "string"})  # fmt: skip
    with pytest.raises(SpecError) as info:
        spec.check_columns({"age": "string", "sex": "string", "charges": "numeric"})
    assert "columns.patient_id: no such column in the data" in info.value.problems
    assert "columns.age: is numeric in the spec, string in the data" in info.value.problems
