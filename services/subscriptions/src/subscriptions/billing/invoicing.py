"""A new invoice, and what its payment changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bos_common.events import (
    SubscriptionRenewedV1,
)
from subscriptions.billing.amounts import build_invoice
from subscriptions.billing.outcome import Outcome, Policy, notice
from subscriptions.billing.schedule import after_period
from subscriptions.rows import Changes, Invoice, Subscription


def issue_invoice(
    sub: Subscription,
    *,
    now: datetime,
    policy: Policy,
    reason: str,
    anchor: datetime,
    period_start: datetime,
    period_end_: datetime | None,
) -> Outcome:
    invoice = build_invoice(
        sub, now=now, reason=reason, period_start=period_start, period_end_=period_end_
    )
    updates: Changes = {
        "billing_anchor": anchor,
        "latest_invoice_id": invoice.id,
        "pending_invoice_id": invoice.id,
        "next_action": "await_payment",
        "next_action_at": now + policy.result_timeout,
    }
    if sub.coupon and sub.discount_start is None:
        updates["discount_start"] = period_start
    out = Outcome(updates=updates, new_invoice=invoice)
    if invoice.status == "paid":
        # Nothing to collect (a 100% discount): the period advances at once.
        paid = on_paid(
            replace(sub, **updates),
            replace(invoice, status="open"),
            now=now,
            amount=0,
            payment_id=None,
            payment_intent_id=None,
            attempt=1,
            paid_at=now,
        )
        out.updates.update(paid.updates)
        out.events.extend(paid.events)
        out.notices.extend(paid.notices)
        out.became_paid_active = paid.became_paid_active
    return out


def on_paid(
    sub: Subscription,
    inv: Invoice,
    *,
    now: datetime,
    amount: int,
    payment_id: str | None,
    payment_intent_id: str | None,
    attempt: int,
    paid_at: datetime,
) -> Outcome:
    """Checkout charged the invoice: the period advances, dunning stops."""
    out = Outcome()
    if inv.status == "paid":
        return out  # already recorded
    out.attempt = {
        "invoice_id": inv.id,
        "attempt": attempt,
        "org_id": inv.org_id,
        "customer_id": inv.customer_id,
        "status": "succeeded",
        "amount": amount,
        "currency": inv.currency,
        "payment_id": payment_id,
        "failure_code": None,
        "failure_message": None,
        "created_at": paid_at,
    }
    out.invoice_updates = {
        "amount_paid": amount,
        "paid_at": paid_at,
        "payment_id": payment_id,
        "payment_intent_id": payment_intent_id,
        "next_payment_attempt": None,
        "updated_at": now,
    }
    if inv.status in ("void", "uncollectible") or sub.status == "canceled":
        # The charge raced a cancellation: recorded, the subscription stays ended
        # (invoice.voided.v1 already told checkout to refund it).
        return out
    out.invoice_updates["status"] = "paid"
    new_end = inv.period_end
    updates: Changes = {
        "status": "active",
        "pending_invoice_id": None,
        "past_due_since": None,
        "hard_declined": False,
    }
    cur_end = sub.current_period_end
    if cur_end is None or new_end is None or new_end > cur_end:
        updates["current_period_start"] = inv.period_start
        updates["current_period_end"] = new_end
    merged = replace(sub, **updates)
    nxt, at = after_period(merged)
    updates["next_action"], updates["next_action_at"] = nxt, at
    out.updates = updates
    converted = inv.billing_reason == "trial_conversion"
    out.became_paid_active = sub.status in ("trialing", "incomplete") and not sub.is_free
    out.events.append(
        SubscriptionRenewedV1(
            subscription_id=sub.id,
            customer_id=sub.customer_id,
            product_id=sub.product_id,
            invoice_id=inv.id,
            amount_paid=amount,
            currency=inv.currency,
            current_period_start=merged.current_period_start,
            current_period_end=merged.current_period_end,
            trial_converted=converted,
        )
    )
    if converted:
        out.notices.append(
            notice(
                "trial_converted",
                inv.id,
                sub,
                invoice_id=inv.id,
                amount_paid=amount,
                current_period_end=new_end,
            )
        )
    if amount > 0:
        out.notices.append(
            notice(
                "invoice_paid",
                inv.id,
                sub,
                invoice_id=inv.id,
                amount_paid=amount,
                number=inv.number,
            )
        )
    return out
