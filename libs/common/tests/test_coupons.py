"""Coupon arithmetic (bos_common.coupons): half-up rounding, bounded discounts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bos_common.coupons import discount_for, fixed_discount, percent_discount


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [
        (10000, 20, 2000),
        (999, 33.33, 333),
        (4, 12.5, 1),  # 0.5 -> 1: half-up, not banker's rounding
        (2990, "15", 449),  # 448.5 -> 449
        (9900, Decimal(100), 9900),
    ],
)
def test_a_percent_discount_rounds_half_up_to_the_minor_unit(
    amount: int, percent: Decimal | float | str, expected: int
) -> None:
    assert percent_discount(amount, percent) == expected
    assert discount_for(amount, percent_off=percent, amount_off=None) == expected


def test_a_fixed_discount_never_exceeds_the_amount() -> None:
    assert fixed_discount(5000, 1000) == 1000
    assert discount_for(5000, percent_off=None, amount_off=9000) == 5000


def test_nothing_is_taken_off_nothing_or_without_a_discount() -> None:
    assert discount_for(0, percent_off=20, amount_off=None) == 0
    assert discount_for(-5, percent_off=None, amount_off=100) == 0
    assert discount_for(5000, percent_off=None, amount_off=None) == 0
