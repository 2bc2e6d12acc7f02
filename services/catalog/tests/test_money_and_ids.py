"""Unit tests: coupon math, currency rules, time-ordered ids (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bos_common.coupons import discount_for, fixed_discount, percent_discount
from bos_common.errors import InvalidRequest
from bos_common.ids import base62, looks_like, new_id
from catalog.money import annual_savings, monthly_equivalent
from catalog.service import check_coupon_rules

# --- 7.1 / 7.2 and coupon math edge cases -------------------------------------------------


def test_7_1_percentage_discount_20_percent_of_100_dollars_is_80() -> None:
    assert percent_discount(10000, Decimal(20)) == 2000
    assert 10000 - percent_discount(10000, Decimal(20)) == 8000


def test_7_2_fixed_discount_10_dollars_off_50_is_40() -> None:
    assert 5000 - fixed_discount(5000, 1000) == 4000


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [
        (2999, "15", 450),  # 449.85 -> 450
        (2990, "15", 449),  # 448.5 -> 449 (half-up, not banker's 448)
        (1, "50", 1),  # 0.5 -> 1
        (3, "50", 2),  # 1.5 -> 2
        (5, "10", 1),  # 0.5 -> 1
        (4, "10", 0),  # 0.4 -> 0
        (9999, "33.33", 3333),  # 3332.6667 -> 3333
        (2900, "12.5", 363),  # 362.5 -> 363
    ],
)
def test_percent_discount_rounds_half_up_to_the_minor_unit(
    amount: int, percent: str, expected: int
) -> None:
    assert percent_discount(amount, Decimal(percent)) == expected


def test_100_percent_off_makes_the_total_zero() -> None:
    assert discount_for(9900, percent_off=Decimal(100), amount_off=None) == 9900


def test_amount_off_larger_than_the_price_never_goes_below_zero() -> None:
    assert discount_for(500, percent_off=None, amount_off=1000) == 500


def test_zero_amount_has_no_discount() -> None:
    assert discount_for(0, percent_off=Decimal(20), amount_off=None) == 0
    assert discount_for(0, percent_off=None, amount_off=1000) == 0


def test_zero_decimal_currency_jpy_rounds_to_whole_yen() -> None:
    # 2,999 yen at 15% = 449.85 yen -> 450 yen (the minor unit of jpy is the yen).
    assert percent_discount(2999, Decimal(15)) == 450
    assert monthly_equivalent(29900) == 2492  # 2491.67 yen


@given(
    amount=st.integers(min_value=0, max_value=10**11),
    percent=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100), places=2),
)
def test_percent_discount_is_bounded_and_exact(amount: int, percent: Decimal) -> None:
    d = percent_discount(amount, percent)
    assert 0 <= d <= amount
    exact = Decimal(amount) * percent / 100
    assert abs(Decimal(d) - exact) <= Decimal("0.5")


@given(
    amount=st.integers(min_value=0, max_value=10**11),
    off=st.integers(min_value=1, max_value=10**11),
)
def test_fixed_discount_never_takes_a_total_below_zero(amount: int, off: int) -> None:
    d = discount_for(amount, percent_off=None, amount_off=off)
    assert 0 <= d <= amount
    assert amount - d >= 0


# --- 2.4 annual vs monthly ----------------------------------------------------------------


def test_2_4_annual_savings_versus_twelve_monthly_payments() -> None:
    assert monthly_equivalent(50000) == 4167  # 4166.67
    assert annual_savings(50000, 5000) == (10000, 16.67)
    assert annual_savings(60000, 5000) is None  # no saving, none shown
    assert annual_savings(70000, 5000) is None
    assert annual_savings(10000, 0) is None


# --- coupon rules, in the contract's order ---------------------------------------------------

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def coupon(**kw: object) -> SimpleNamespace:
    base = dict(
        id="coupon_1",
        code="X",
        percent_off=Decimal(20),
        amount_off=None,
        currency=None,
        expires_at=None,
        product_ids=None,
        new_customers_only=False,
        max_redemptions=None,
        times_redeemed=0,
    )
    return SimpleNamespace(**{**base, **kw})


def reason(
    c: SimpleNamespace | None, *, product: str = "prod_a", currency: str = "usd", new: bool = True
) -> str | None:
    try:
        check_coupon_rules(
            c,
            now=NOW,
            product_id=product,
            currency=currency,  # type: ignore[arg-type]
            customer_is_new=new,
        )
    except InvalidRequest as exc:
        assert exc.status_code == 400
        return exc.code
    return None


def test_7_3_unknown_code_is_invalid_coupon() -> None:
    assert reason(None) == "invalid_coupon"


def test_7_4_expired_coupon() -> None:
    assert reason(coupon(expires_at=NOW - timedelta(days=1))) == "coupon_expired"
    assert reason(coupon(expires_at=NOW)) == "coupon_expired"
    assert reason(coupon(expires_at=NOW + timedelta(seconds=1))) is None


def test_7_5_product_specific_coupon() -> None:
    assert reason(coupon(product_ids=["prod_a"]), product="prod_b") == "coupon_not_applicable"
    assert reason(coupon(product_ids=["prod_a"]), product="prod_a") is None


def test_amount_off_applies_only_to_its_own_currency() -> None:
    c = coupon(percent_off=None, amount_off=1000, currency="usd")
    assert reason(c, currency="eur") == "coupon_not_applicable"
    assert reason(c, currency="usd") is None
    # A percent coupon works in any currency.
    assert reason(coupon(), currency="jpy") is None


def test_7_6_new_customers_only() -> None:
    assert reason(coupon(new_customers_only=True), new=False) == "coupon_new_customers_only"
    assert reason(coupon(new_customers_only=True), new=True) is None


def test_expiry_is_reported_before_other_reasons() -> None:
    c = coupon(expires_at=NOW - timedelta(days=1), product_ids=["prod_a"], new_customers_only=True)
    assert reason(c, product="prod_b", new=False) == "coupon_expired"


# --- ids ----------------------------------------------------------------------------------------


def test_ids_are_prefixed_and_sort_by_creation_time() -> None:
    a = new_id("prod", now_ms=1_700_000_000_000)
    b = new_id("prod", now_ms=1_700_000_000_001)
    c = new_id("prod", now_ms=2_700_000_000_000)
    assert a.startswith("prod_") and len(a) == 5 + 20
    assert a < b < c  # byte-wise, as COLLATE "C" compares them
    assert looks_like(a, "prod") and not looks_like(a, "price")
    assert not looks_like("prod_../../etc", "prod")
    assert base62(61, 2) == "0z"
