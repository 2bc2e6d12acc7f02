"""Payment results (from checkout's renewals and the portal's card updates): an invoice
paid or failed, a new default card. Decisions live in `billing`; `outcomes` writes them."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.events import InvoicePaidV1, InvoicePaymentFailedV1
from subscriptions import billing, repository
from subscriptions.clock import utc
from subscriptions.outcomes import apply_outcome
from subscriptions.rows import Changes, Invoice, Subscription
from subscriptions.runtime import SubscriptionsRuntime

log = logging.getLogger("bos.subscriptions")


async def _invoice_and_subscription(
    session: AsyncSession, invoice_id: str
) -> tuple[Subscription, Invoice] | None:
    peek = await repository.get_invoice(session, invoice_id)
    if peek is None:
        return None
    sub = await repository.get_subscription(session, peek.subscription_id, lock=True)
    inv = await repository.get_invoice(session, invoice_id, lock=True)
    assert sub is not None and inv is not None
    return sub, inv


async def invoice_paid(rt: SubscriptionsRuntime, session: AsyncSession, ev: InvoicePaidV1) -> None:
    found = await _invoice_and_subscription(session, ev.invoice_id)
    if found is None:
        log.warning("invoice.paid for unknown invoice %s", ev.invoice_id)
        return
    sub, inv = found
    if inv.status in ("void", "uncollectible"):
        log.error(
            "invoice %s was paid after it was voided: checkout must refund payment %s",
            inv.id,
            ev.payment_id,
        )
    out = billing.on_paid(
        sub,
        inv,
        now=rt.clock.now(),
        amount=ev.amount,
        payment_id=ev.payment_id,
        payment_intent_id=ev.payment_intent_id,
        attempt=ev.attempt,
        paid_at=utc(ev.paid_at),
    )
    await apply_outcome(rt, session, sub, inv, out)


async def invoice_payment_failed(
    rt: SubscriptionsRuntime, session: AsyncSession, ev: InvoicePaymentFailedV1
) -> None:
    found = await _invoice_and_subscription(session, ev.invoice_id)
    if found is None:
        log.warning("invoice.payment_failed for unknown invoice %s", ev.invoice_id)
        return
    sub, inv = found
    out = billing.on_payment_failed(
        sub,
        inv,
        now=rt.clock.now(),
        policy=rt.policy,
        attempt=ev.attempt,
        payment_id=ev.payment_id,
        amount=ev.amount,
        failure_code=ev.failure_code,
        decline_code=ev.decline_code,
        failure_message=ev.failure_message,
        hard_decline=ev.hard_decline,
        failed_at=utc(ev.failed_at),
    )
    await apply_outcome(rt, session, sub, inv, out)


async def payment_method_updated(
    rt: SubscriptionsRuntime,
    session: AsyncSession,
    org_id: str | None,
    customer_id: str,
    payment_method_id: str,
    stripe_customer_id: str | None,
    at: datetime,
) -> int:
    """A new default card (17.3): later charges use it, and an unpaid subscription is
    retried at once (a hard decline waits for exactly this)."""
    now = rt.clock.now()
    subs = (
        await repository.customer_subscriptions(session, org_id, customer_id, lock=True)
        if org_id
        else await repository.subscriptions_of_customer_any_org(session, customer_id, lock=True)
    )
    changed = 0
    for sub in subs:
        if sub.status == "canceled":
            continue
        seen = sub.payment_method_updated_at
        if seen is not None and utc(at) <= seen:
            continue  # an older card update arriving late
        updates: Changes = {
            "payment_method_id": payment_method_id,
            "payment_method_updated_at": utc(at),
            "updated_at": now,
        }
        if stripe_customer_id:
            updates["stripe_customer_id"] = stripe_customer_id
        if (
            sub.status in ("past_due", "incomplete")
            and sub.pending_invoice_id
            and sub.next_action in ("retry_payment", "dunning_exhausted")
        ):
            updates.update(next_action="retry_payment", next_action_at=now, hard_declined=False)
        await repository.update_subscription(session, sub.id, updates)
        changed += 1
    return changed
