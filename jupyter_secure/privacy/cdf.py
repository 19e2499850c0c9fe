"""Quantiles from a noisy histogram, with intervals that hold for the noise actually used.

A quantile query releases one noisy count per bin of a numeric column (public,
equal-width bins over the spec's bounds; one histogram costs what one count
costs, since each row falls in one bin). Everything after that is
post-processing, so any number of quantiles come from the same release for
free, and their 95 % intervals follow from the noise alone:

* the noisy cumulative count up to bin ``j`` is off by the sum of ``j``
  independent noises; a Chernoff bound on that sum (sub-Gaussian for OpenDP's
  discrete Gaussian, the exact moment generating function for its discrete
  Laplace) gives a tail ``e_j``, and a union bound over all ``K`` edges makes
  every ``|C_j - T_j| <= e_j`` hold together with probability ≥ 95 %;
* then an edge with ``C_j + e_j < q (C_K - e_K)`` is surely below the true
  q-quantile and one with ``C_j - e_j >= q (C_K + e_K)`` surely above it: the
  interval is between the last of the first kind and the first of the second.

The point estimate interpolates within the bin where the (non-negative)
cumulative counts cross ``q``. Pure: standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["QuantileEstimate", "edges", "quantiles", "sum_tail"]

_GRID = 400


class QuantileEstimate(tuple[float, float, float]):
    """(value, ci_low, ci_high)."""

    __slots__ = ()


def edges(lower: float, upper: float, bins: int) -> list[float]:
    """The ``bins - 1`` inner edges of equal-width bins over ``[lower, upper]``."""
    width = (upper - lower) / bins
    return [lower + width * i for i in range(1, bins)]


def _log_mgf_discrete_laplace(lam: float, scale: float) -> float:
    p = math.exp(-1.0 / scale)
    return 2 * math.log1p(-p) - math.log1p(-p * math.exp(lam)) - math.log1p(-p * math.exp(-lam))


def sum_tail(distribution: str, scale: float, terms: int, alpha: float) -> float:
    """A bound ``t`` with ``P(|sum of terms noises| > t) <= alpha``.

    ``distribution`` is OpenDP's name ("Integer Gaussian", "Integer Laplace",
    or their "Float" forms). The Gaussian forms are sub-Gaussian with the scale
    as parameter (the discrete Gaussian's tails are at most the continuous
    one's); the
    Laplace forms use the discrete Laplace's exact moment generating function,
    which bounds the continuous one's at the same scale from above.
    """
    if terms <= 0:
        return 0.0
    if scale <= 0:
        raise ValueError("a noise scale must be positive")
    log_target = math.log(alpha / 2)
    if "Gaussian" in distribution:
        return scale * math.sqrt(2 * terms * -log_target)
    if "Laplace" not in distribution:
        raise ValueError(f"no tail bound for {distribution!r}")
    # Chernoff: P(S >= t) <= exp(terms * log_mgf(lam) - lam * t), lam in (0, 1/scale).
    best = math.inf
    for i in range(1, _GRID):
        lam = (i / _GRID) / scale
        try:
            log_mgf = _log_mgf_discrete_laplace(lam, scale)
        except ValueError:  # pragma: no cover - lam < 1/scale keeps p*e^lam < 1
            continue
        t = (terms * log_mgf - log_target) / lam
        best = min(best, t)
    return best


def quantiles(
    counts: Sequence[float],
    lower: float,
    upper: float,
    qs: Sequence[float],
    *,
    distribution: str,
    scale: float,
    alpha: float = 0.05,
) -> list[QuantileEstimate]:
    """Estimate each q-quantile and its ``1 - alpha`` interval from noisy bin counts."""
    bins = len(counts)
    width = (upper - lower) / bins
    inner = edges(lower, upper, bins)
    # Cumulative noisy counts through each bin, and their simultaneous error bounds.
    raw, running = [], 0.0
    for c in counts:
        running += c
        raw.append(running)
    err = [sum_tail(distribution, scale, j + 1, alpha / bins) for j in range(bins)]
    n_lo, n_hi = raw[-1] - err[-1], raw[-1] + err[-1]
    # The estimate uses counts clipped at zero (a monotone cumulative).
    clipped, running = [], 0.0
    for c in counts:
        running += max(c, 0.0)
        clipped.append(running)
    total = clipped[-1]
    out: list[QuantileEstimate] = []
    for q in qs:
        target = q * total
        j = next((i for i, v in enumerate(clipped) if v >= target and v > 0), bins - 1)
        before = clipped[j - 1] if j > 0 else 0.0
        inside = clipped[j] - before
        frac = (target - before) / inside if inside > 0 else 0.5
        value = lower + width * (j + min(max(frac, 0.0), 1.0))
        lo, hi = lower, upper
        for i, edge in enumerate(inner):
            if raw[i] + err[i] < q * n_lo:
                lo = edge  # surely below the quantile
            if raw[i] - err[i] >= q * n_hi:
                hi = edge  # surely at or above it
                break
        out.append(QuantileEstimate((value, min(lo, value), max(hi, value))))
    return out
