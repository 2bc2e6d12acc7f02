"""Amounts of invoices: coupon discounts and their periods, invoice lines and totals."""

from __future__ import annotations

from datetime import datetime

from bos_common.coupons import discount_for
from bos_common.ids import new_id
from subscriptions.periods import add_months
from subscriptions.rows import Invoice, Row, Subscription


def discount_amount(coupon: Row | None, subtotal: int) -> int:
    """What the subscription's coupon (its snapshot, as checkout saw it) takes off
    `subtotal`."""
    if not coupon:
        return 0
    return discount_for(
        subtotal, percent_off=coupon.get("percent_off"), amount_off=coupon.get("amount_off")
    )


def discount_end(coupon: Row | None, discount_start: datetime | None) -> datetime | None:
    if not coupon or discount_start is None or coupon.get("duration") != "repeating":
        return None
    return add_months(discount_start, int(coupon.get("duration_in_months") or 0))


def discount_applies(
    coupon: Row | None, discount_start: datetime | None, period_start: datetime
) -> bool:
    """Whether the coupon discounts the period starting at `period_start`. The discount
    starts with the first paid period (after a trial, 7.7); `once` covers that period
    only, `repeating` the periods starting within its months, `forever` all."""
    if not coupon:
        return False
    if discount_start is None or period_start <= discount_start:
        return discount_start is None or period_start == discount_start
    duration = coupon.get("duration")
    if duration == "forever":
        return True
    if duration == "repeating":
        end = discount_end(coupon, discount_start)
        return end is not None and period_start < end
    return False  # once


def describe_period(start: datetime, end: datetime | None) -> str:
    if end is None:
        return start.strftime("%b %d, %Y")
    return f"{start.strftime('%b %d, %Y')} - {end.strftime('%b %d, %Y')}"


def build_invoice(
    sub: Subscription,
    *,
    now: datetime,
    reason: str,
    period_start: datetime,
    period_end_: datetime | None,
) -> Invoice:
    """A new (open) invoice for one period of `sub`, numbered later."""
    subtotal = int(sub.amount)
    coupon = sub.coupon
    start = sub.discount_start or period_start
    applies = discount_applies(coupon, start, period_start)
    discount = discount_amount(coupon, subtotal) if applies else 0
    tax = 0
    total = subtotal - discount + tax
    lines = [
        {
            "type": "subscription",
            "description": f"{sub.product_name} ({describe_period(period_start, period_end_)})",
            "quantity": 1,
            "unit_amount": subtotal,
            "amount": subtotal,
            "period_start": period_start.isoformat(),
            "period_end": period_end_.isoformat() if period_end_ else None,
        }
    ]
    return Invoice(
        id=new_id("inv"),
        org_id=sub.org_id,
        number=None,
        subscription_id=sub.id,
        customer_id=sub.customer_id,
        customer_email=sub.customer_email,
        customer_name=sub.customer_name,
        status="open" if total > 0 else "paid",
        billing_reason=reason,
        currency=sub.currency,
        subtotal=subtotal,
        discount_amount=discount,
        tax=tax,
        total=total,
        amount_due=total,
        amount_paid=0,
        lines=lines,
        discount=coupon_summary(coupon, discount) if discount else None,
        period_start=period_start,
        period_end=period_end_,
        attempt_count=1,
        next_payment_attempt=None,
        payment_id=None,
        payment_intent_id=None,
        paid_at=now if total <= 0 else None,
        voided_at=None,
        last_failure_code=None,
        last_failure_message=None,
        created_at=now,
        updated_at=now,
    )


def coupon_summary(coupon: Row | None, amount: int) -> Row | None:
    if not coupon:
        return None
    return {
        "coupon_id": coupon.get("coupon_id"),
        "code": coupon.get("code"),
        "percent_off": coupon.get("percent_off"),
        "amount_off": coupon.get("amount_off"),
        "duration": coupon.get("duration"),
        "duration_in_months": coupon.get("duration_in_months"),
        "amount": amount,
    }
