"""Domain logic of the subscriptions service (never commits: the request or consumer scope
does). Decisions live in billing.py; this module loads rows, applies outcomes, and
publishes through the outbox in the caller's transaction."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.errors import Conflict, InvalidRequest, NotFound
from bos_common.events import (
    CheckoutCompletedV1,
    Event,
    InvoiceCreatedV1,
    InvoicePaidV1,
    InvoicePaymentFailedV1,
    SubscriptionCreatedV1,
    SubscriptionReactivatedV1,
    SubscriptionTrialExtendedV1,
)
from bos_common.ids import new_id
from bos_common.outbox import outbox_row
from subscriptions import billing, repository
from subscriptions.billing import Notice, Outcome
from subscriptions.clock import wall_now
from subscriptions.periods import period_end
from subscriptions.runtime import SubscriptionsRuntime

log = logging.getLogger("bos.subscriptions")

Row = dict[str, Any]

SUBSCRIPTION_NOT_FOUND = ("subscription_not_found", "Subscription not found")
INVOICE_NOT_FOUND = ("invoice_not_found", "Invoice not found")


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


# --- writing outcomes -------------------------------------------------------------------


def invoice_created_event(sub: Row, inv: Row) -> InvoiceCreatedV1:
    return InvoiceCreatedV1(
        invoice_id=inv["id"],
        number=inv["number"],
        subscription_id=sub["id"],
        customer_id=sub["customer_id"],
        customer_email=sub.get("customer_email"),
        amount_due=inv["amount_due"],
        currency=inv["currency"],
        attempt=inv["attempt_count"],
        idempotency_key=f"{inv['id']}:attempt:{inv['attempt_count']}",
        billing_reason=inv["billing_reason"],
        description=inv["lines"][0]["description"] if inv["lines"] else sub["product_name"],
        period_start=inv["period_start"],
        period_end=inv.get("period_end"),
        stripe_customer_id=sub.get("stripe_customer_id"),
        payment_method_id=sub.get("payment_method_id"),
        checkout_id=sub.get("checkout_id"),
        created_at=inv["created_at"],
    )


def notification_rows(sub: Row, notices: list[Notice], now: datetime) -> list[Row]:
    """Email rows for `notices`, stamped with the billing time (`now`) they announce and
    due at once in real time: delivery is operational, never scheduled on the billing
    clock (see `clock.wall_now`)."""
    email = sub.get("customer_email")
    if not email:
        return []
    due = wall_now()
    return [
        {
            "id": uuid.uuid4(),
            "org_id": sub["org_id"],
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


async def apply_outcome(
    rt: SubscriptionsRuntime, session: AsyncSession, sub: Row, inv: Row | None, out: Outcome
) -> Row:
    """Write one decision: invoice (numbered), invoice and subscription changes, events,
    emails. Returns the subscription as it now is."""
    now = rt.clock.now()
    events: list[Event] = []
    merged = {**sub, **out.updates}
    if out.new_invoice is not None:
        first = await repository.allocate_invoice_numbers(session, sub["org_id"], 1)
        out.new_invoice["number"] = repository.invoice_number(sub["org_id"], first)
        await repository.insert_invoices(session, [out.new_invoice])
        if out.new_invoice["status"] == "open":
            events.append(invoice_created_event(merged, out.new_invoice))
    if inv is not None and out.invoice_updates:
        await repository.update_invoice(session, inv["id"], out.invoice_updates)
    if inv is not None and out.republish:
        events.append(invoice_created_event(merged, {**inv, **out.invoice_updates}))
    if out.attempt is not None:
        await repository.insert_attempt(session, out.attempt)
    if out.updates:
        out.updates["updated_at"] = now
        await repository.update_subscription(session, sub["id"], out.updates)
    events.extend(out.events)
    await repository.publish_many(session, rt.name, [(e, sub["org_id"]) for e in events])
    await repository.enqueue_notifications(session, notification_rows(merged, out.notices, now))
    if out.became_paid_active:
        await end_free_subscriptions(rt, session, merged)
    return {**merged, "updated_at": now} if out.updates else merged


async def end_free_subscriptions(
    rt: SubscriptionsRuntime, session: AsyncSession, paid: Row
) -> None:
    """Free -> paid upgrade (5.2): the customer's free subscriptions in the organization
    end when a paid one starts."""
    now = rt.clock.now()
    for free in await repository.live_free_subscriptions(
        session, paid["org_id"], paid["customer_id"], except_id=paid["id"]
    ):
        out = billing.cancel(free, None, now=now, at_period_end=False, reason="upgraded")
        await apply_outcome(rt, session, free, None, out)


# --- creation from checkout ---------------------------------------------------------------


def _created_event(
    sub: Row, *, reactivated: bool = False, trial_denied: bool = False
) -> SubscriptionCreatedV1:
    return SubscriptionCreatedV1(
        subscription_id=sub["id"],
        checkout_id=sub.get("checkout_id"),
        customer_id=sub["customer_id"],
        external_user_id=sub.get("external_user_id"),
        product_id=sub["product_id"],
        price_id=sub["price_id"],
        status=sub["status"],
        is_free=sub["is_free"],
        amount=sub["amount"],
        currency=sub["currency"],
        interval=sub.get("interval"),
        current_period_start=sub["current_period_start"],
        current_period_end=sub.get("current_period_end"),
        trial_start=sub.get("trial_start"),
        trial_end=sub.get("trial_end"),
        trial_denied=trial_denied,
        reactivated=reactivated,
        features=list(sub.get("features") or []),
        metadata=dict(sub.get("metadata") or {}),
        created_at=sub["created_at"],
    )


def _checkout_invoice(
    sub: Row,
    ev: CheckoutCompletedV1,
    *,
    now: datetime,
    with_plan: bool,
    period_start: datetime,
    period_end_: datetime | None,
) -> Row | None:
    """The invoice of what checkout already charged. Checkout's figures: `amount_total` is
    the first period after the discount (without the setup fee); it charges
    `(0 if trial_days else amount_total) + setup_fee`, so a trial pays only the fee (6.2)."""
    price = ev.price
    plan = ev.amount_total if with_plan else 0
    discount = ev.amount_discount if with_plan else 0
    total = plan + price.setup_fee
    if total <= 0 or not (ev.payment_id or ev.payment_intent_id):
        return None
    lines: list[Row] = []
    if with_plan:
        lines.append(
            {
                "type": "subscription" if price.type == "recurring" else "one_time",
                "description": (
                    f"{price.product_name} ({billing.describe_period(period_start, period_end_)})"
                    if price.type == "recurring"
                    else price.product_name
                ),
                "quantity": 1,
                "unit_amount": price.amount,
                "amount": price.amount,
                "period_start": period_start.isoformat(),
                "period_end": period_end_.isoformat() if period_end_ else None,
            }
        )
    if price.setup_fee:
        lines.append(
            {
                "type": "setup_fee",
                "description": f"{price.product_name} setup fee",
                "quantity": 1,
                "unit_amount": price.setup_fee,
                "amount": price.setup_fee,
                "period_start": None,
                "period_end": None,
            }
        )
    subtotal = total + discount
    if sum(line["amount"] for line in lines) != subtotal:
        lines = [
            {
                "type": "checkout",
                "description": price.product_name,
                "quantity": 1,
                "unit_amount": subtotal,
                "amount": subtotal,
                "period_start": period_start.isoformat(),
                "period_end": period_end_.isoformat() if period_end_ else None,
            }
        ]
    coupon = ev.coupon.model_dump() if ev.coupon else None
    paid_at = utc(ev.completed_at)
    return {
        "id": new_id("inv"),
        "org_id": sub["org_id"],
        "number": None,
        "subscription_id": sub["id"],
        "customer_id": sub["customer_id"],
        "customer_email": sub.get("customer_email"),
        "customer_name": sub.get("customer_name"),
        "status": "paid",
        "billing_reason": "subscription_create" if price.type == "recurring" else "one_time",
        "currency": sub["currency"],
        "subtotal": subtotal,
        "discount_amount": discount,
        "tax": 0,
        "total": total,
        "amount_due": total,
        "amount_paid": total,
        "lines": lines,
        "discount": billing.coupon_summary(coupon, discount) if discount else None,
        "period_start": period_start,
        "period_end": period_end_,
        "attempt_count": 1,
        "next_payment_attempt": None,
        "payment_id": ev.payment_id,
        "payment_intent_id": ev.payment_intent_id,
        "paid_at": paid_at,
        "voided_at": None,
        "last_failure_code": None,
        "last_failure_message": None,
        "created_at": now,
        "updated_at": now,
    }


async def fulfil_checkout(
    rt: SubscriptionsRuntime, session: AsyncSession, org_id: str | None, ev: CheckoutCompletedV1
) -> Row | None:
    """Create (or, for a canceled free one, reactivate) the subscription a checkout paid
    for. A checkout is fulfilled once, however often its event comes."""
    if not org_id:
        raise InvalidRequest("org_required", "checkout.completed.v1 without an organization")
    price = ev.price
    claimed, has_live, has_free = await repository.claim_checkout_and_look(
        session, ev.checkout_id, org_id, ev.customer_id, price.product_id
    )
    if not claimed:
        log.info("checkout %s already fulfilled", ev.checkout_id)
        return None
    now = rt.clock.now()
    start = utc(ev.completed_at)
    is_free = ev.is_free or (price.amount == 0 and price.setup_fee == 0)

    live = None
    if has_live:  # already locked by the claim's statement
        live = await repository.live_subscription(
            session, org_id, ev.customer_id, price.product_id, lock=True
        )
    if live is not None:
        # Checkout refuses this (already_subscribed); a race got through. Point the checkout
        # at the subscription the customer has; a paid duplicate needs a refund.
        (log.info if is_free else log.error)(
            "checkout %s for %s/%s: already subscribed (%s)%s",
            ev.checkout_id,
            ev.customer_id,
            price.product_id,
            live["id"],
            "" if is_free else ": the payment must be refunded",
        )
        await repository.set_checkout_subscription(session, ev.checkout_id, live["id"], "duplicate")
        await repository.publish_many(
            session, rt.name, [(_created_event({**live, "checkout_id": ev.checkout_id}), org_id)]
        )
        return live

    base: Row = {
        "org_id": org_id,
        "customer_id": ev.customer_id,
        "customer_email": ev.customer_email,
        "customer_name": ev.customer_name,
        "external_user_id": ev.external_user_id,
        "checkout_id": ev.checkout_id,
        "product_id": price.product_id,
        "product_name": price.product_name,
        "price_id": price.price_id,
        "price_type": price.type,
        "interval": price.interval if price.type == "recurring" else None,
        "amount": price.amount,
        "currency": price.currency.lower(),
        "is_free": is_free,
        "features": list(price.features),
        "metadata": dict(ev.metadata),
        "coupon": ev.coupon.model_dump() if ev.coupon and not is_free else None,
        "stripe_customer_id": ev.stripe_customer_id,
        "payment_method_id": ev.payment_method_id,
        "card_fingerprint": ev.card_fingerprint,
        "payment_method_updated_at": start,
        "updated_at": now,
    }

    if is_free:
        canceled = await repository.last_canceled_free(
            session, org_id, ev.customer_id, price.product_id
        )
        if canceled is not None:  # 5.5: resubscribing brings the canceled one back
            updates = {
                **base,
                "status": "active",
                "current_period_start": start,
                "current_period_end": None,
                "billing_anchor": None,
                "trial_start": None,
                "trial_end": None,
                "cancel_at_period_end": False,
                "canceled_at": None,
                "ended_at": None,
                "cancel_reason": None,
                "next_action": None,
                "next_action_at": None,
                "pending_invoice_id": None,
                "past_due_since": None,
            }
            await repository.update_subscription(session, canceled["id"], updates)
            back = {**canceled, **updates}
            await repository.set_checkout_subscription(
                session, ev.checkout_id, back["id"], "reactivated"
            )
            await repository.publish_many(
                session, rt.name, [(_created_event(back, reactivated=True), org_id)]
            )
            return back

    sub: Row = {
        **base,
        "id": new_id("sub"),
        "created_at": now,
        "status": "active",
        "billing_anchor": None,
        "current_period_start": start,
        "current_period_end": None,
        "trial_start": None,
        "trial_end": None,
        "trial_reminder_for": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "ended_at": None,
        "cancel_reason": None,
        "discount_start": None,
        "latest_invoice_id": None,
        "pending_invoice_id": None,
        "past_due_since": None,
        "hard_declined": False,
        "next_action": None,
        "next_action_at": None,
    }
    paid_invoice: Row | None = None
    out = Outcome()
    trial_denied = False
    recurring = price.type == "recurring" and sub["interval"] is not None

    if is_free or not recurring:
        # Free (5.1, a trial is ignored, 5.4) or one-time: features for good, no renewals.
        if not is_free:
            paid_invoice = _checkout_invoice(
                sub, ev, now=now, with_plan=True, period_start=start, period_end_=None
            )
    elif ev.trial_days > 0:
        used = await repository.trial_used(
            session,
            org_id,
            price.product_id,
            customer_id=ev.customer_id,
            email=ev.customer_email,
            card_fingerprint=ev.card_fingerprint,
        )
        if used is None:
            trial_end = start + timedelta(days=ev.trial_days)
            sub.update(
                status="trialing",
                trial_start=start,
                trial_end=trial_end,
                current_period_end=trial_end,
                billing_anchor=trial_end,
            )
            sub["next_action"], sub["next_action_at"] = billing.trial_schedule(sub, now, rt.policy)
            await repository.insert_trial_history(
                session,
                {
                    "org_id": org_id,
                    "product_id": price.product_id,
                    "customer_id": ev.customer_id,
                    "email": ev.customer_email.strip().lower(),
                    "card_fingerprint": ev.card_fingerprint,
                    "subscription_id": sub["id"],
                    "created_at": now,
                },
            )
            # A setup fee was charged at checkout (6.2); the plan is charged at trial end.
            paid_invoice = _checkout_invoice(
                sub, ev, now=now, with_plan=False, period_start=start, period_end_=trial_end
            )
        else:
            # 6.6: this customer, email or card had the trial: no second one, the first
            # period is charged now (checkout took only a card or a setup fee).
            log.info(
                "trial denied for %s on %s (%s already used one)",
                ev.customer_id,
                price.product_id,
                used,
            )
            trial_denied = True
            end = period_end(start, sub["interval"])
            sub.update(status="incomplete", billing_anchor=start, current_period_end=end)
            paid_invoice = _checkout_invoice(
                sub, ev, now=now, with_plan=False, period_start=start, period_end_=end
            )
            out = billing.issue_invoice(
                sub,
                now=now,
                policy=rt.policy,
                reason="subscription_create",
                anchor=start,
                period_start=start,
                period_end_=end,
            )
    else:
        end = period_end(start, sub["interval"])
        sub.update(
            status="active",
            billing_anchor=start,
            current_period_end=end,
            discount_start=start if sub["coupon"] else None,
            next_action="renew",
            next_action_at=end,
        )
        paid_invoice = _checkout_invoice(
            sub, ev, now=now, with_plan=True, period_start=start, period_end_=end
        )

    attempt: Row | None = None
    if paid_invoice is not None:
        sub["latest_invoice_id"] = paid_invoice["id"]
        attempt = {
            "invoice_id": paid_invoice["id"],
            "attempt": 1,
            "org_id": org_id,
            "customer_id": sub["customer_id"],
            "status": "succeeded",
            "amount": paid_invoice["amount_paid"],
            "currency": sub["currency"],
            "payment_id": ev.payment_id,
            "failure_code": None,
            "failure_message": None,
            "created_at": paid_invoice["paid_at"],
        }
    created = _created_event(sub, trial_denied=trial_denied)
    await repository.record_fulfilment(
        session,
        sub=sub,
        checkout_id=ev.checkout_id,
        outcome="created",
        events=[outbox_row(created, producer=rt.name, org_id=org_id)],
        invoice=paid_invoice,
        attempt=attempt,
    )
    if not out.empty:
        sub = await apply_outcome(rt, session, sub, None, out)
    if has_free and not sub["is_free"] and sub["status"] in ("active", "trialing"):
        await end_free_subscriptions(rt, session, sub)
    return sub


# --- lifecycle actions (API key and portal) --------------------------------------------------


async def _locked(
    session: AsyncSession, org_id: str, sub_id: str, customer_id: str | None = None
) -> tuple[Row, Row | None]:
    sub = await repository.get_subscription(
        session, sub_id, org_id=org_id, customer_id=customer_id, lock=True
    )
    if sub is None:
        raise NotFound(*SUBSCRIPTION_NOT_FOUND)
    inv = None
    if sub.get("pending_invoice_id"):
        inv = await repository.get_invoice(session, sub["pending_invoice_id"], lock=True)
    return sub, inv


async def get_subscription(
    session: AsyncSession, org_id: str, sub_id: str, customer_id: str | None = None
) -> Row:
    sub = await repository.get_subscription(session, sub_id, org_id=org_id, customer_id=customer_id)
    if sub is None:
        raise NotFound(*SUBSCRIPTION_NOT_FOUND)
    return sub


async def cancel_subscription(
    rt: SubscriptionsRuntime,
    session: AsyncSession,
    org_id: str,
    sub_id: str,
    *,
    at_period_end: bool,
    customer_id: str | None = None,
) -> Row:
    sub, inv = await _locked(session, org_id, sub_id, customer_id)
    out = billing.cancel(sub, inv, now=rt.clock.now(), at_period_end=at_period_end)
    return await apply_outcome(rt, session, sub, inv, out)


async def reactivate_subscription(
    rt: SubscriptionsRuntime,
    session: AsyncSession,
    org_id: str,
    sub_id: str,
    *,
    customer_id: str | None = None,
) -> Row:
    """Undo a cancel-at-period-end before the period ends (17.4)."""
    sub, _ = await _locked(session, org_id, sub_id, customer_id)
    now = rt.clock.now()
    if sub["status"] == "canceled" or (
        sub.get("cancel_at_period_end") and sub["current_period_end"] <= now
    ):
        raise Conflict(
            "subscription_not_reactivatable",
            "This subscription has ended and cannot be reactivated.",
        )
    if not sub.get("cancel_at_period_end"):
        return sub  # nothing to undo
    updates: Row = {"cancel_at_period_end": False, "canceled_at": None, "cancel_reason": None}
    updates["next_action"], updates["next_action_at"] = billing.after_period({**sub, **updates})
    out = Outcome(updates=updates)
    out.events.append(
        SubscriptionReactivatedV1(
            subscription_id=sub["id"],
            customer_id=sub["customer_id"],
            product_id=sub["product_id"],
            current_period_end=sub.get("current_period_end"),
            reactivated_at=now,
        )
    )
    out.notices.append(
        billing.notice(
            "subscription_reactivated",
            f"{sub['id']}:{now.isoformat()}",
            sub,
            current_period_end=sub.get("current_period_end"),
        )
    )
    return await apply_outcome(rt, session, sub, None, out)


async def extend_trial(
    rt: SubscriptionsRuntime, session: AsyncSession, org_id: str, sub_id: str, days: int
) -> Row:
    sub, inv = await _locked(session, org_id, sub_id)
    now = rt.clock.now()
    if sub["status"] != "trialing":
        raise Conflict("not_trialing", "Only a subscription in trial can have its trial extended.")
    if inv is not None or sub["trial_end"] <= now:
        raise Conflict("trial_ended", "The trial has already ended.")
    previous = sub["trial_end"]
    trial_end = previous + timedelta(days=days)
    updates: Row = {
        "trial_end": trial_end,
        "current_period_end": trial_end,
        "billing_anchor": trial_end,
    }
    updates["next_action"], updates["next_action_at"] = billing.trial_schedule(
        {**sub, **updates}, now, rt.policy
    )
    out = Outcome(updates=updates)
    out.events.append(
        SubscriptionTrialExtendedV1(
            subscription_id=sub["id"],
            customer_id=sub["customer_id"],
            product_id=sub["product_id"],
            days=days,
            previous_trial_end=previous,
            trial_end=trial_end,
        )
    )
    out.notices.append(
        billing.notice(
            "trial_extended",
            f"{sub['id']}:{trial_end.isoformat()}",
            sub,
            days=days,
            trial_end=trial_end,
            previous_trial_end=previous,
        )
    )
    return await apply_outcome(rt, session, sub, None, out)


async def end_trial(
    rt: SubscriptionsRuntime, session: AsyncSession, org_id: str, sub_id: str
) -> Row:
    """Convert now: the trial ends and the first period is invoiced (charged by checkout)."""
    sub, inv = await _locked(session, org_id, sub_id)
    now = rt.clock.now()
    if sub["status"] != "trialing":
        raise Conflict("not_trialing", "Only a subscription in trial can end its trial.")
    if inv is not None:
        return sub  # already converting
    ended = {**sub, "trial_end": now, "current_period_end": now}
    out = billing.issue_invoice(
        ended,
        now=now,
        policy=rt.policy,
        reason="trial_conversion",
        anchor=now,
        period_start=now,
        period_end_=period_end(now, sub["interval"]),
    )
    out.updates = {"trial_end": now, "current_period_end": now, **out.updates}
    return await apply_outcome(rt, session, sub, None, out)


# --- payment results (from checkout) -----------------------------------------------------------


async def _invoice_and_subscription(
    session: AsyncSession, invoice_id: str
) -> tuple[Row, Row] | None:
    peek = await repository.get_invoice(session, invoice_id)
    if peek is None:
        return None
    sub = await repository.get_subscription(session, peek["subscription_id"], lock=True)
    inv = await repository.get_invoice(session, invoice_id, lock=True)
    assert sub is not None and inv is not None
    return sub, inv


async def invoice_paid(rt: SubscriptionsRuntime, session: AsyncSession, ev: InvoicePaidV1) -> None:
    found = await _invoice_and_subscription(session, ev.invoice_id)
    if found is None:
        log.warning("invoice.paid for unknown invoice %s", ev.invoice_id)
        return
    sub, inv = found
    if inv["status"] in ("void", "uncollectible"):
        log.error(
            "invoice %s was paid after it was voided: checkout must refund payment %s",
            inv["id"],
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
        if sub["status"] == "canceled":
            continue
        seen = sub.get("payment_method_updated_at")
        if seen is not None and utc(at) <= seen:
            continue  # an older card update arriving late
        updates: Row = {
            "payment_method_id": payment_method_id,
            "payment_method_updated_at": utc(at),
            "updated_at": now,
        }
        if stripe_customer_id:
            updates["stripe_customer_id"] = stripe_customer_id
        if (
            sub["status"] in ("past_due", "incomplete")
            and sub.get("pending_invoice_id")
            and sub.get("next_action") in ("retry_payment", "dunning_exhausted")
        ):
            updates.update(next_action="retry_payment", next_action_at=now, hard_declined=False)
        await repository.update_subscription(session, sub["id"], updates)
        changed += 1
    return changed


# --- reads ---------------------------------------------------------------------------------------


def is_entitled(sub: Row, now: datetime, grace: timedelta) -> bool:
    status = sub["status"]
    if status == "trialing":
        return True
    if status == "active":
        end = sub.get("current_period_end")
        return not (sub.get("cancel_at_period_end") and end is not None and end <= now)
    if status == "past_due":
        since = sub.get("past_due_since")
        return since is None or since + grace > now
    return False


async def entitlements(
    rt: SubscriptionsRuntime,
    conn: asyncpg.Connection,
    org_id: str,
    *,
    customer_id: str | None,
    external_user_id: str | None,
) -> Row:
    if not customer_id and not external_user_id:
        raise InvalidRequest(
            "parameter_missing", "customer_id or external_user_id is required.", param="customer_id"
        )
    now = rt.clock.now()
    grace = timedelta(days=rt.policy.grace_days)
    data: list[Row] = []
    features: set[str] = set()
    for sub in await repository.entitled_subscriptions(
        conn, org_id, customer_id=customer_id, external_user_id=external_user_id
    ):
        if not is_entitled(sub, now, grace):
            continue
        expires = sub["current_period_end"] if sub.get("cancel_at_period_end") else None
        for feature in sub.get("features") or []:
            features.add(feature)
            data.append(
                {
                    "feature": feature,
                    "product_id": sub["product_id"],
                    "subscription_id": sub["id"],
                    "status": sub["status"],
                    "expires_at": expires,
                }
            )
    return {
        "object": "entitlements",
        "customer_id": customer_id,
        "external_user_id": external_user_id,
        "features": sorted(features),
        "data": data,
    }


def next_billing(sub: Row, inv: Row | None) -> Row | None:
    """When and how much the customer pays next (17.2); None when nothing is due."""
    if (
        sub["status"] == "canceled"
        or sub.get("cancel_at_period_end")
        or sub["is_free"]
        or sub.get("interval") is None
    ):
        return None
    if inv is not None and inv["status"] == "open":
        return {
            "date": inv.get("next_payment_attempt") or inv["created_at"],
            "amount": inv["amount_due"],
            "currency": inv["currency"],
        }
    start = sub["trial_end"] if sub["status"] == "trialing" else sub.get("current_period_end")
    if start is None:
        return None
    coupon = sub.get("coupon")
    applies = billing.discount_applies(coupon, sub.get("discount_start") or start, start)
    amount = sub["amount"] - (billing.discount_amount(coupon, sub["amount"]) if applies else 0)
    return {"date": start, "amount": amount, "currency": sub["currency"]}
