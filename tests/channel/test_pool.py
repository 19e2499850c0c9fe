"""Masking long texts in parallel pieces gives what masking the whole text gives."""

from __future__ import annotations

import asyncio

import pytest
from faker import Faker

from jupyter_secure.channel.pool import OVERLAP, MaskingPool, split_points
from jupyter_secure.masking import MaskingPolicy, mask_text

pytestmark = pytest.mark.timeout(120)


def log_text(n: int = 4000) -> str:
    fake = Faker(["en_US", "de_DE"])
    Faker.seed(7)
    lines = []
    for i in range(n):
        if i % 7 == 0:
            lines.append(f"customer {fake.name()} <{fake.email()}> SSN {fake.ssn()}")
        elif i % 11 == 0:
            lines.append(f"call {fake.phone_number()} about {fake.street_address()}")
        else:
            lines.append(f"order {i:06d} shipped: 3 items, total {i * 1.37:.2f} EUR")
    return "\n".join(lines)


def test_split_points_cover_the_text_after_newlines() -> None:
    text = "line\n" * 1000
    points = split_points(text, 3)
    assert points[0] == 0
    assert points[-1] == len(text)
    assert all(text[p - 1] == "\n" for p in points[1:-1])
    assert split_points("short", 4) == [0, 1, 2, 3, 5]


@pytest.mark.parametrize("role", ["data_scientist", "student", "viewer"])
def test_pieces_mask_exactly_like_the_whole_text(role: str) -> None:
    text = log_text()
    policy = MaskingPolicy().for_role(role, key=b"k" * 32)
    pool = MaskingPool(workers=3, threshold=1024)
    try:
        masked, counts = asyncio.run(pool.mask_text(text, policy))
    finally:
        pool.close()
    whole = mask_text(text, policy)
    assert masked == whole.text
    assert counts == whole.counts
    assert len(text) > 3 * OVERLAP
