"""Quantiles from a noisy histogram: the interval holds for the noise OpenDP adds."""

from __future__ import annotations

import math
import random

import pytest

from jupyter_secure.privacy.cdf import edges, quantiles, sum_tail


def test_edges_split_the_range_evenly() -> None:
    assert edges(0, 100, 4) == [25, 50, 75]


@pytest.mark.parametrize("distribution", ["Integer Gaussian", "Integer Laplace"])
def test_the_sum_tail_bound_holds_empirically(distribution: str) -> None:
    """P(|sum of j noises| > bound) <= alpha, checked by simulation (conservative)."""
    rng = random.Random(3)
    scale, terms, alpha = 4.0, 16, 0.05
    bound = sum_tail(distribution, scale, terms, alpha)
    over = 0
    trials = 4000
    for _ in range(trials):
        if "Gaussian" in distribution:
            total = sum(round(rng.gauss(0, scale)) for _ in range(terms))
        else:
            total = sum(round(rng.expovariate(1 / scale) - rng.expovariate(1 / scale))
                        for _ in range(terms))  # fmt: skip
        over += abs(total) > bound
    assert over / trials <= alpha
    # and not absurdly loose: within 2.5x of the normal approximation
    normal = 1.96 * scale * math.sqrt(terms) * (math.sqrt(2) if "Laplace" in distribution else 1)
    assert bound < 2.5 * normal


def test_sum_tail_refuses_what_it_cannot_bound() -> None:
    with pytest.raises(ValueError, match="no tail bound"):
        sum_tail("Float Exponential", 1.0, 3, 0.05)
    with pytest.raises(ValueError, match="positive"):
        sum_tail("Integer Gaussian", 0.0, 3, 0.05)
    assert sum_tail("Integer Gaussian", 1.0, 0, 0.05) == 0.0


@pytest.mark.parametrize("distribution", ["Integer Gaussian", "Integer Laplace"])
def test_quantile_intervals_cover_the_truth_at_least_95_percent(distribution: str) -> None:
    """500 noisy histograms of a known sample: the interval holds the true quantile."""
    rng = random.Random(11)
    bins, lower, upper, scale = 64, 0.0, 100.0, 20.0
    values = [min(max(rng.gauss(40, 12), 0), 99.999) for _ in range(5000)]
    width = (upper - lower) / bins
    true_counts = [0] * bins
    for v in values:
        true_counts[int((v - lower) // width)] += 1
    ordered = sorted(values)
    hits = {0.1: 0, 0.5: 0, 0.9: 0}
    runs = 500
    for _ in range(runs):
        if "Gaussian" in distribution:
            noisy = [c + round(rng.gauss(0, scale)) for c in true_counts]
        else:
            noisy = [c + round(rng.expovariate(1 / scale) - rng.expovariate(1 / scale))
                     for c in true_counts]  # fmt: skip
        found = quantiles(noisy, lower, upper, list(hits), distribution=distribution, scale=scale)
        for q, (value, lo, hi) in zip(hits, found, strict=True):
            truth = ordered[math.ceil(q * len(ordered)) - 1]
            assert lo <= value <= hi
            hits[q] += lo <= truth <= hi
    for q, n in hits.items():
        assert n / runs >= 0.95, (q, n / runs)
