"""Privacy loss as exact amounts: integers of a billionth, never floats.

A budget check in floating point once refused a legitimate query:
``1.0 - 0.8 == 0.19999999999999996 < 0.2``. Here every budget, charge and
remainder is a whole number of nano-units (1e-9 of ρ or of ε) held in an
``int``: sums and differences are exact, comparisons mean what they say.

Going in, what people type (``"0.2"``, ``0.2``) is read through ``Decimal``
from its shortest text, so ``0.2`` is exactly 200,000,000 nano-units. What
OpenDP computes (a float ρ from ``map()``) is rounded *up* to the next
nano-unit: the ledger may charge a billionth more than the mechanism spends,
never less. Mixing ρ and ε is an error, never a conversion. Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Literal

__all__ = ["MEASURES", "NANO", "Amount", "AmountError", "Measure"]

Measure = Literal["rho", "epsilon"]
MEASURES: tuple[Measure, ...] = ("rho", "epsilon")
#: Nano-units per unit of ρ or ε.
NANO = 1_000_000_000
_MAX_UNITS = Decimal(10**6)  # no sensible budget or cost is a million


class AmountError(ValueError):
    """A privacy amount was malformed, negative where it may not be, or of another measure."""


def _decimal(value: object, field: str) -> Decimal:
    if isinstance(value, bool):
        raise AmountError(f"{field}: expected a number, not {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AmountError(f"{field}: must be finite, not {value!r}")
        value = repr(value)  # the shortest text that reads back as this float
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise AmountError(f"{field}: {value!r} is not a number") from None
    if not number.is_finite():
        raise AmountError(f"{field}: must be finite, not {value!r}")
    if abs(number) > _MAX_UNITS:
        raise AmountError(f"{field}: {value!r} is out of range")
    return number


@dataclass(frozen=True, order=False)
class Amount:
    """An amount of privacy loss: ``nanos`` billionths of ``measure``."""

    measure: Measure
    nanos: int

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise AmountError(f"measure: expected rho or epsilon, not {self.measure!r}")

    # -- making amounts ------------------------------------------------------------------
    @classmethod
    def parse(
        cls, value: object, measure: Measure, *, field: str = "amount", allow_zero: bool = True
    ) -> Amount:
        """What a person or a spec file gave: exact, must be ≥ 0 and a whole nano-unit."""
        number = _decimal(value, field)
        if number < 0:
            raise AmountError(f"{field}: must not be negative, got {value!r}")
        if number == 0 and not allow_zero:
            raise AmountError(f"{field}: must be greater than 0")
        nanos = number * NANO
        if nanos != nanos.to_integral_value():
            raise AmountError(f"{field}: {value!r} is finer than 1e-9")
        return cls(measure, int(nanos))

    @classmethod
    def cost(cls, value: float, measure: Measure) -> Amount:
        """What a mechanism spends (a float from OpenDP), rounded up to a nano-unit."""
        number = _decimal(value, "cost")
        if number < 0:
            raise AmountError(f"cost: a mechanism cannot spend {value!r}")
        return cls(measure, int((number * NANO).to_integral_value(rounding=ROUND_CEILING)))

    @classmethod
    def zero(cls, measure: Measure) -> Amount:
        return cls(measure, 0)

    # -- arithmetic ----------------------------------------------------------------------
    def _same(self, other: Amount) -> None:
        if not isinstance(other, Amount):
            raise TypeError(f"cannot combine an Amount with {type(other).__name__}")
        if other.measure != self.measure:
            raise AmountError(f"cannot combine {self.measure} with {other.measure}")

    def __add__(self, other: Amount) -> Amount:
        self._same(other)
        return Amount(self.measure, self.nanos + other.nanos)

    def __sub__(self, other: Amount) -> Amount:
        self._same(other)
        return Amount(self.measure, self.nanos - other.nanos)

    def __le__(self, other: Amount) -> bool:
        self._same(other)
        return self.nanos <= other.nanos

    def __lt__(self, other: Amount) -> bool:
        self._same(other)
        return self.nanos < other.nanos

    def __ge__(self, other: Amount) -> bool:
        self._same(other)
        return self.nanos >= other.nanos

    def __gt__(self, other: Amount) -> bool:
        self._same(other)
        return self.nanos > other.nanos

    # -- reading amounts -----------------------------------------------------------------
    @property
    def value(self) -> Decimal:
        """The exact amount in units (``Decimal``), for display and for OpenDP's input."""
        return Decimal(self.nanos) / NANO

    def as_float(self) -> float:
        """Rounded *down*: what to hand a mechanism as its allowance (never more)."""
        exact = (Decimal(self.nanos) / NANO).quantize(Decimal("1e-9"), rounding=ROUND_FLOOR)
        return float(exact)

    def __str__(self) -> str:
        symbol = "ρ" if self.measure == "rho" else "ε"
        text = format(self.value.normalize(), "f")
        return f"{symbol}={text}"
