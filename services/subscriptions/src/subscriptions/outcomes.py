"""The one writer of billing's decisions (`billing.Outcome`), for one subscription (API,
consumers) or a batch of them (the scheduler): subscription and invoice changes, the new
invoices (numbered), payment attempts, events (outbox) and emails, in the caller's
transaction. A batch costs a fixed number of statements, whatever its size."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.events import Event, InvoiceCreatedV1
from bos_common.outbox import add_events, copy_events
from subscriptions import billing, repository
from subscriptions.billing import Notice, Outcome
from subscriptions.clock import wall_now
from subscriptions.models import invoices, outbox, subscriptions
from subscriptions.rows import Changes, Invoice, Row, Subscription
from subscriptions.runtime import SubscriptionsRuntime

# Above this many rows, invoices and events are written with COPY (a round trip more
# than an INSERT, far less work per row).
COPY_ABOVE = 1


@dataclass
class Decision:
    """A subscription, its pending invoice (locked, if any) and what billing decided."""

    sub: Subscription
    inv: Invoice | None
    out: Outcome


def invoice_created_event(sub: Subscription, inv: Invoice, number: str) -> InvoiceCreatedV1:
    return InvoiceCreatedV1(
        invoice_id=inv.id,
        number=number,
        subscription_id=sub.id,
        customer_id=sub.customer_id,
        customer_email=sub.customer_email,
        amount_due=inv.amount_due,
        currency=inv.currency,
        attempt=inv.attempt_count,
        idempotency_key=f"{inv.id}:attempt:{inv.attempt_count}",
        billing_reason=inv.billing_reason,
        description=inv.lines[0]["description"] if inv.lines else sub.product_name,
        period_start=inv.period_start,
        period_end=inv.period_end,
        stripe_customer_id=sub.stripe_customer_id,
        payment_method_id=sub.payment_method_id,
        checkout_id=sub.checkout_id,
        created_at=inv.created_at,
    )


def notification_rows(sub: Subscription, notices: list[Notice], now: datetime) -> list[Row]:
    """Email rows for `notices`, stamped with the billing time (`now`) they announce and
    due at once in real time: delivery is operational, never scheduled on the billing
    clock (see `clock.wall_now`)."""
    email = sub.customer_email
    if not email:
        return []
    due = wall_now()
    return [
        {
            "id": uuid.uuid4(),
            "org_id": sub.org_id,
            "kind": n.kind,
            "dedupe_key": n.dedupe_key,
            "to_email": email,
            "context": n.context,
            "invoice_id": n.invoice_id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": due,
            "created_at": now,
        }
        for n in notices
    ]


async def number_invoices(session: AsyncSession, new_invoices: list[Invoice]) -> dict[str, str]:
    """The numbers of `new_invoices`, by invoice id: one reservation per organization, in
    one order everywhere (no deadlock between replicas), late in the transaction (the
    counter row's lock is held to commit)."""
    per_org: dict[str, list[str]] = {}
    for invoice in new_invoices:
        per_org.setdefault(invoice.org_id, []).append(invoice.id)
    numbers: dict[str, str] = {}
    for org_id in sorted(per_org):
        first = await repository.allocate_invoice_numbers(session, org_id, len(per_org[org_id]))
        for i, invoice_id in enumerate(per_org[org_id]):
            numbers[invoice_id] = repository.invoice_number(org_id, first + i)
    return numbers


async def write_outcomes(
    rt: SubscriptionsRuntime,
    session: AsyncSession,
    decisions: Sequence[Decision],
    *,
    now: datetime,
    parked: Sequence[str] = (),
) -> list[Subscription]:
    """Write `decisions`; `parked` are subscriptions whose decision failed (taken off the
    schedule). Returns each decision's subscription as it now is."""
    sub_updates: list[Changes] = [
        {"id": sub_id, "next_action_at": None, "updated_at": now} for sub_id in parked
    ]
    invoice_updates: list[Changes] = []
    attempts: list[Row] = []
    notices: list[Row] = []
    new_invoices: list[Invoice] = []
    merged_subs: list[Subscription] = []
    for d in decisions:
        out = d.out
        if out.updates:
            out.updates["updated_at"] = now
            sub_updates.append({"id": d.sub.id, **out.updates})
        merged = replace(d.sub, **out.updates)
        merged_subs.append(merged)
        if d.inv is not None and out.invoice_updates:
            invoice_updates.append({"id": d.inv.id, **out.invoice_updates})
        if out.attempt is not None:
            attempts.append(out.attempt)
        notices.extend(notification_rows(merged, out.notices, now))
        if out.new_invoice is not None:
            new_invoices.append(out.new_invoice)

    await repository.update_rows(session, subscriptions, sub_updates)
    await repository.update_rows(session, invoices, invoice_updates)
    await repository.insert_attempts(session, attempts)
    await repository.enqueue_notifications(session, notices)
    numbers: dict[str, str] = {}
    if new_invoices:
        # Numbered as they are written (a number set on the row, not a copy of the invoice).
        numbers = await number_invoices(session, new_invoices)
        rows = [i.values() | {"number": numbers[i.id]} for i in new_invoices]
        if len(rows) > COPY_ABOVE:
            await repository.copy_rows(session, invoices, rows)
        else:
            await repository.insert_invoices(session, rows)

    events: list[tuple[Event, str | None]] = []
    for d, merged in zip(decisions, merged_subs, strict=True):
        org_id = d.sub.org_id
        out = d.out
        if out.new_invoice is not None and out.new_invoice.status == "open":
            new = out.new_invoice
            events.append((invoice_created_event(merged, new, numbers[new.id]), org_id))
        if d.inv is not None and out.republish:
            republished = replace(d.inv, **out.invoice_updates)
            assert republished.number is not None, "a written invoice has its number"
            events.append((invoice_created_event(merged, republished, republished.number), org_id))
        events.extend((e, org_id) for e in out.events)
    if len(events) > COPY_ABOVE:
        await copy_events(
            await repository.driver_connection(session), outbox, events, producer=rt.name
        )
    else:
        await add_events(session, outbox, events, producer=rt.name)

    for d, merged in zip(decisions, merged_subs, strict=True):
        if d.out.became_paid_active:
            await end_free_subscriptions(rt, session, merged)
    return merged_subs


async def apply_outcome(
    rt: SubscriptionsRuntime,
    session: AsyncSession,
    sub: Subscription,
    inv: Invoice | None,
    out: Outcome,
) -> Subscription:
    """Write one decision; returns the subscription as it now is."""
    [written] = await write_outcomes(rt, session, [Decision(sub, inv, out)], now=rt.clock.now())
    return written


async def end_free_subscriptions(
    rt: SubscriptionsRuntime, session: AsyncSession, paid: Subscription
) -> None:
    """Free -> paid upgrade (5.2): the customer's free subscriptions in the organization
    end when a paid one starts."""
    now = rt.clock.now()
    free = await repository.live_free_subscriptions(
        session, paid.org_id, paid.customer_id, except_id=paid.id
    )
    decisions = [
        Decision(
            sub, None, billing.cancel(sub, None, now=now, at_period_end=False, reason="upgraded")
        )
        for sub in free
    ]
    if decisions:
        await write_outcomes(rt, session, decisions, now=now)
