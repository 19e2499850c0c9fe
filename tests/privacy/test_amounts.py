"""Exact privacy amounts: what floats got wrong, and what must never happen."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyter_secure.privacy.amounts import NANO, Amount, AmountError


def rho(x: object) -> Amount:
    return Amount.parse(x, "rho")


def test_the_float_trap_does_not_happen() -> None:
    assert 1.0 - 0.8 < 0.2  # the bug this module exists for
    assert rho("1.0") - rho(0.8) == rho("0.2")
    assert rho(0.2) <= rho(1.0) - rho(0.8)


def test_inputs_are_exact_and_checked() -> None:
    assert rho("0.25").nanos == 250_000_000
    assert rho(1e-9).nanos == 1
    for bad, message in (("-0.1", "negative"), ("abc", "not a number"), ("1e-10", "finer"),
                         (float("nan"), "finite"), (True, "expected a number"),
                         ("1e9", "out of range")):  # fmt: skip
        with pytest.raises(AmountError, match=message):
            Amount.parse(bad, "rho", field="budget")
    with pytest.raises(AmountError, match="budget: must be greater than 0"):
        Amount.parse(0, "rho", field="budget", allow_zero=False)


def test_costs_round_up_and_allowances_round_down() -> None:
    assert Amount.cost(0.1 + 0.2, "rho").nanos == 300_000_001  # 0.30000000000000004
    assert Amount.cost(0.0125, "rho").nanos == 12_500_000
    assert rho("0.3").as_float() <= 0.3


def test_measures_never_mix() -> None:
    with pytest.raises(AmountError, match="cannot combine rho with epsilon"):
        _ = rho(1) + Amount.parse(1, "epsilon")
    with pytest.raises(AmountError, match="measure"):
        Amount("delta", 1)  # type: ignore[arg-type]


def test_display() -> None:
    assert str(rho("0.05")) == "ρ=0.05"
    assert str(Amount.parse("2", "epsilon")) == "ε=2"


@given(
    budget=st.integers(1, 10 * NANO),
    costs=st.lists(st.floats(0, 2, allow_nan=False, allow_infinity=False), max_size=60),
)
def test_charging_within_the_remainder_never_overspends(budget: int, costs: list[float]) -> None:
    total = Amount("rho", budget)
    spent = Amount.zero("rho")
    for c in costs:
        cost = Amount.cost(c, "rho")
        if cost <= total - spent:
            spent = spent + cost
        assert spent <= total
    assert Decimal(spent.nanos) / NANO <= Decimal(budget) / NANO
