"""Coupon arithmetic, the one implementation every service uses (catalog evaluates a
coupon for a checkout, subscriptions discounts an invoice): amounts are integers in the
currency's minor unit; a percent discount rounds half-up to one minor unit; a discount
never exceeds the amount it applies to (totals never go below zero)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def percent_discount(amount: int, percent_off: Decimal | float | str) -> int:
    """`percent_off`% of `amount`, rounded half-up to the minor unit, at most `amount`."""
    pct = percent_off if isinstance(percent_off, Decimal) else Decimal(str(percent_off))
    discount = round_half_up(Decimal(amount) * pct / Decimal(100))
    return max(0, min(amount, discount))


def fixed_discount(amount: int, amount_off: int) -> int:
    """A fixed discount never exceeds the amount (totals never go below zero)."""
    return max(0, min(amount, amount_off))


def discount_for(
    amount: int,
    *,
    percent_off: Decimal | float | str | None,
    amount_off: int | None,
) -> int:
    """What a coupon (`percent_off` or `amount_off`) takes off `amount`."""
    if amount <= 0:
        return 0
    if percent_off is not None:
        return percent_discount(amount, percent_off)
    if amount_off is not None:
        return fixed_discount(amount, int(amount_off))
    return 0
