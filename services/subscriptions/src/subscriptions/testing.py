"""Helpers for the subscriptions tests (and the e2e tests that drive this service): event
builders, signed identities, and readers of what the service published."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from bos_common.auth import IDENTITY_HEADER, Identity, sign_identity
from bos_common.events import (
    AppliedCoupon,
    CheckoutCompletedV1,
    Envelope,
    Event,
    InvoicePaidV1,
    InvoicePaymentFailedV1,
    PriceSnapshot,
)
from subscriptions.models import outbox
from subscriptions.rows import Invoice, Subscription


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def price(
    *,
    amount: int = 5000,
    currency: str = "usd",
    interval: str | None = "month",
    type_: str = "recurring",
    trial_days: int = 0,
    setup_fee: int = 0,
    product_id: str | None = None,
    features: list[str] | None = None,
    name: str = "Pro",
) -> PriceSnapshot:
    return PriceSnapshot(
        price_id=uid("price"),
        product_id=product_id or uid("prod"),
        product_name=name,
        amount=amount,
        currency=currency,
        type=type_,
        interval=interval,
        trial_days=trial_days,
        setup_fee=setup_fee,
        features=features if features is not None else ["feature_a", "feature_b"],
    )


def checkout_completed(
    price_: PriceSnapshot,
    *,
    completed_at: datetime,
    customer_id: str | None = None,
    email: str | None = None,
    trial_days: int | None = None,
    coupon: AppliedCoupon | None = None,
    card_fingerprint: str | None = "fp_default",
    metadata: dict[str, str] | None = None,
    external_user_id: str | None = None,
    checkout_id: str | None = None,
) -> CheckoutCompletedV1:
    # The figures as checkout computes them: subtotal/discount/total are the plan's (the
    # setup fee apart); it charges (0 if trial else total) + setup_fee.
    is_free = price_.amount == 0 and price_.setup_fee == 0
    trial = price_.trial_days if trial_days is None else trial_days
    trial = 0 if is_free else trial
    discount = 0
    if coupon is not None:
        if coupon.percent_off is not None:
            discount = round(price_.amount * coupon.percent_off / 100)
        elif coupon.amount_off is not None:
            discount = min(price_.amount, coupon.amount_off)
    subtotal = price_.amount
    total = subtotal - discount
    paid = ((0 if trial else total) + price_.setup_fee) > 0
    return CheckoutCompletedV1(
        checkout_id=checkout_id or uid("cs"),
        customer_id=customer_id or uid("cus"),
        customer_email=email or f"{uuid.uuid4().hex[:10]}@example.com",
        customer_name="Ada",
        external_user_id=external_user_id,
        price=price_,
        coupon=coupon,
        amount_subtotal=subtotal,
        amount_discount=discount,
        amount_total=total,
        is_free=is_free,
        trial_days=trial,
        payment_id=uid("pay") if paid else None,
        payment_intent_id=uid("pi") if paid else None,
        setup_intent_id=uid("seti") if (trial and not paid) else None,
        stripe_customer_id=None if is_free else uid("cus_stripe"),
        payment_method_id=None if is_free else uid("pm"),
        card_fingerprint=None if is_free else card_fingerprint,
        metadata=metadata or {},
        completed_at=completed_at,
    )


def coupon(
    *,
    percent_off: float | None = None,
    amount_off: int | None = None,
    duration: str = "once",
    months: int | None = None,
) -> AppliedCoupon:
    return AppliedCoupon(
        coupon_id=uid("coupon"),
        code="SAVE",
        percent_off=percent_off,
        amount_off=amount_off,
        currency="usd" if amount_off else None,
        duration=duration,
        duration_in_months=months,
    )


def subscription_row(**changes: Any) -> Subscription:
    """A subscription for the billing unit tests: "sub_1", an active monthly USD 50.00 plan
    of "cus_1" since 2026-01-31 (renewing on 2026-02-28), with `changes` applied."""
    start, end = datetime(2026, 1, 31, 15, tzinfo=UTC), datetime(2026, 2, 28, 15, tzinfo=UTC)
    base = Subscription(
        id="sub_1",
        org_id="org_1",
        customer_id="cus_1",
        customer_email="a@example.com",
        customer_name=None,
        external_user_id=None,
        checkout_id="co_1",
        product_id="prod_1",
        product_name="Pro",
        price_id="price_1",
        price_type="recurring",
        interval="month",
        amount=5000,
        currency="usd",
        is_free=False,
        features=[],
        metadata={},
        status="active",
        billing_anchor=start,
        current_period_start=start,
        current_period_end=end,
        trial_start=None,
        trial_end=None,
        trial_reminder_for=None,
        cancel_at_period_end=False,
        canceled_at=None,
        ended_at=None,
        cancel_reason=None,
        coupon=None,
        discount_start=None,
        stripe_customer_id=None,
        payment_method_id=None,
        card_fingerprint=None,
        payment_method_updated_at=None,
        latest_invoice_id=None,
        pending_invoice_id=None,
        past_due_since=None,
        hard_declined=False,
        next_action="renew",
        next_action_at=end,
        created_at=start,
        updated_at=start,
    )
    return dataclasses.replace(base, **changes)


def invoice_row(**changes: Any) -> Invoice:
    """An invoice for the billing and rendering unit tests: an open first invoice of
    "sub_1" (USD 50.00, one line, a month from 2026-01-31), with `changes` applied."""
    start, end = datetime(2026, 1, 31, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC)
    base = Invoice(
        id="inv_1",
        org_id="org_1",
        number="ORG1-000001",
        subscription_id="sub_1",
        customer_id="cus_1",
        customer_email="a@example.com",
        customer_name=None,
        status="open",
        billing_reason="subscription_cycle",
        currency="usd",
        subtotal=5000,
        discount_amount=0,
        tax=0,
        total=5000,
        amount_due=5000,
        amount_paid=0,
        lines=[
            {
                "type": "subscription",
                "description": "Pro (Jan 31, 2026 - Feb 28, 2026)",
                "quantity": 1,
                "unit_amount": 5000,
                "amount": 5000,
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
            }
        ],
        discount=None,
        period_start=start,
        period_end=end,
        attempt_count=1,
        next_payment_attempt=None,
        payment_id=None,
        payment_intent_id=None,
        paid_at=None,
        voided_at=None,
        last_failure_code=None,
        last_failure_message=None,
        created_at=start,
        updated_at=start,
    )
    return dataclasses.replace(base, **changes)


def invoice_paid(
    inv: dict[str, Any], *, paid_at: datetime, attempt: int | None = None
) -> InvoicePaidV1:
    return InvoicePaidV1(
        invoice_id=inv["invoice_id"],
        subscription_id=inv["subscription_id"],
        customer_id=inv["customer_id"],
        attempt=attempt or inv["attempt"],
        payment_id=uid("pay"),
        payment_intent_id=uid("pi"),
        amount=inv["amount_due"],
        currency=inv["currency"],
        paid_at=paid_at,
    )


def invoice_failed(
    inv: dict[str, Any],
    *,
    failed_at: datetime,
    attempt: int | None = None,
    failure_code: str = "card_declined",
    decline_code: str | None = "insufficient_funds",
    hard_decline: bool | None = None,
) -> InvoicePaymentFailedV1:
    return InvoicePaymentFailedV1(
        invoice_id=inv["invoice_id"],
        subscription_id=inv["subscription_id"],
        customer_id=inv["customer_id"],
        attempt=attempt or inv["attempt"],
        payment_id=uid("pay"),
        payment_intent_id=uid("pi"),
        amount=inv["amount_due"],
        currency=inv["currency"],
        failure_code=failure_code,
        decline_code=decline_code,
        failure_message="Your card was declined.",
        hard_decline=hard_decline,
        failed_at=failed_at,
    )


def envelope(event: Event, org_id: str, producer: str = "checkout") -> Envelope:
    return Envelope.wrap(event, producer=producer, org_id=org_id)


def identity_headers(
    principal_type: str,
    secret: str,
    *,
    org_id: str | None = None,
    customer_id: str | None = None,
    external_user_id: str | None = None,
    principal_id: str = "key_test",
) -> dict[str, str]:
    identity = Identity(
        principal_type=principal_type,  # type: ignore[arg-type, unused-ignore]
        principal_id=principal_id,
        org_id=org_id,
        customer_id=customer_id,
        external_user_id=external_user_id,
    )
    return {IDENTITY_HEADER: sign_identity(identity, secret)}


async def published(db: Any, org_id: str, event_type: str | None = None) -> list[dict[str, Any]]:
    """The `data` of events this service wrote to its outbox for `org_id`, oldest first."""
    async with db.transaction() as session:
        stmt = (
            select(outbox.c.event_type, outbox.c.envelope)
            .where(outbox.c.org_id == org_id)
            .order_by(outbox.c.id)
        )
        if event_type:
            stmt = stmt.where(outbox.c.event_type == event_type)
        rows = (await session.execute(stmt)).all()
    return [{"event_type": r.event_type, **r.envelope["data"]} for r in rows]
