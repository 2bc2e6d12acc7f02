"""A checkout's fulfilment (checkout.completed.v1): reads what the decision
(`billing.fulfil`) needs, then writes its result; a checkout is fulfilled once, however
often its event comes. The paid path is two statements: the claim, and
`repository.record_fulfilment`."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.errors import InvalidRequest
from bos_common.events import CheckoutCompletedV1
from bos_common.outbox import add_events, outbox_row
from subscriptions import billing, repository
from subscriptions.models import outbox
from subscriptions.outcomes import apply_outcome, end_free_subscriptions, notification_rows
from subscriptions.rows import Subscription
from subscriptions.runtime import SubscriptionsRuntime

log = logging.getLogger("bos.subscriptions")


async def fulfil_checkout(
    rt: SubscriptionsRuntime, session: AsyncSession, org_id: str | None, ev: CheckoutCompletedV1
) -> Subscription | None:
    """Create (or, for a canceled free one, reactivate) the subscription a checkout paid
    for; None when the checkout was already fulfilled."""
    if not org_id:
        raise InvalidRequest("org_required", "checkout.completed.v1 without an organization")
    product_id = ev.price.product_id
    claimed, has_live, has_free = await repository.claim_checkout_and_look(
        session, ev.checkout_id, org_id, ev.customer_id, product_id
    )
    if not claimed:
        log.info("checkout %s already fulfilled", ev.checkout_id)
        return None
    live = canceled = used = None
    if has_live:  # already locked by the claim's statement
        live = await repository.live_subscription(
            session, org_id, ev.customer_id, product_id, lock=True
        )
    if live is None and billing.needs_canceled_free(ev):
        canceled = await repository.last_canceled_free(session, org_id, ev.customer_id, product_id)
    if live is None and canceled is None and billing.needs_trial_check(ev):
        used = await repository.trial_used(
            session,
            org_id,
            product_id,
            customer_id=ev.customer_id,
            email=ev.customer_email,
            card_fingerprint=ev.card_fingerprint,
        )
    now = rt.clock.now()
    done = billing.fulfil(
        ev,
        org_id,
        now=now,
        policy=rt.policy,
        live=live,
        canceled_free=canceled,
        trial_used=used,
    )
    sub = done.sub
    if done.kind != "created":
        if done.kind == "duplicate":
            # Checkout refuses this (already_subscribed); a race got through. The checkout
            # points at the subscription the customer has; a paid duplicate needs a refund.
            paid = not billing.is_free_checkout(ev)
            (log.error if paid else log.info)(
                "checkout %s for %s/%s: already subscribed (%s)%s",
                ev.checkout_id,
                ev.customer_id,
                product_id,
                sub.id,
                ": the payment must be refunded" if paid else "",
            )
        else:
            await repository.update_subscription(session, sub.id, done.updates)
        await repository.set_checkout_subscription(session, ev.checkout_id, sub.id, done.kind)
        await add_events(session, outbox, [(done.event, org_id)], producer=rt.name)
        await _confirm(session, sub, done, now)
        return sub

    if done.trial_denied:
        log.info(
            "trial denied for %s on %s (%s already used one)", ev.customer_id, product_id, used
        )
    if done.trial is not None:
        await repository.insert_trial_history(session, done.trial)
    confirmation = (
        notification_rows(sub, [done.confirmation], now) if done.confirmation is not None else []
    )
    await repository.record_fulfilment(
        session,
        sub=sub,
        checkout_id=ev.checkout_id,
        outcome="created",
        events=[outbox_row(done.event, producer=rt.name, org_id=org_id)],
        invoice=done.invoice,
        attempt=done.attempt,
        notification=confirmation[0] if confirmation else None,
    )
    if not done.then.empty:
        sub = await apply_outcome(rt, session, sub, None, done.then)
    if has_free and not sub.is_free and sub.status in ("active", "trialing"):
        await end_free_subscriptions(rt, session, sub)
    return sub


async def _confirm(
    session: AsyncSession, sub: Subscription, done: billing.Fulfilment, now: datetime
) -> None:
    """The customer's confirmation e-mail, in the fulfilment's transaction (a created
    subscription's is part of `repository.record_fulfilment`)."""
    if done.confirmation is not None:
        await repository.enqueue_notifications(
            session, notification_rows(sub, [done.confirmation], now)
        )
