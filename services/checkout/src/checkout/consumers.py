"""Event handlers of the checkout service. Each runs once per event (inbox) in the
transaction that records its effects; raising retries it later through the bus."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.events import (
    AccountUpdatedV1,
    Envelope,
    InvoiceCreatedV1,
    InvoiceVoidedV1,
    OrganizationUpdatedV1,
    PaymentFailedV1,
    PaymentSucceededV1,
    SetupSucceededV1,
    SubscriptionCreatedV1,
    SubscriptionEndedV1,
)
from checkout import (
    connect,
    connect_repository,
    funnel,
    payment_states,
    projection_repository,
    renewals,
    repository,
)
from checkout.records import Payment
from checkout.runtime import CheckoutRuntime

log = logging.getLogger("checkout.consumers")


def _confirm_still_running(payment: Payment, lease: timedelta) -> bool:
    """A pending payment whose lease is fresh: its confirm is still running (it renews
    the lease until Stripe's answer is recorded). Once the lease has run out, the confirm
    died between the Stripe call and its commit: the webhook's word is taken as is."""
    return payment.status == "pending" and datetime.now(UTC) - payment.updated_at < lease


def register(runtime: CheckoutRuntime) -> None:
    async def on_payment_events(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
        events = []
        for envelope in envelopes:
            event = envelope.payload()
            assert isinstance(event, PaymentSucceededV1 | PaymentFailedV1 | SetupSucceededV1)
            intent_id = (
                event.setup_intent_id
                if isinstance(event, SetupSucceededV1)
                else event.payment_intent_id
            )
            events.append((envelope, event, intent_id))
        # The payments of the whole batch in one statement: most events of a busy platform
        # are its connected accounts' own payments, which only need to be recognized.
        known = await repository.get_payments_of(
            session,
            [event.payment_id for _, event, _ in events if event.payment_id],
            [intent_id for _, _, intent_id in events],
        )
        by_id = {payment.id: payment for payment in known}
        by_intent = {p.stripe_intent_id: p for p in known if p.stripe_intent_id}
        handled: set[str] = set()
        for envelope, event, intent_id in events:
            payment = by_id.get(event.payment_id or "") or by_intent.get(intent_id)
            if payment is None:
                # Not an intent BOS created: routine, not news (a busy platform's
                # connected accounts send many of these).
                log.debug("ignoring %s for an intent BOS did not create", envelope.event_type)
                continue
            if payment.id in handled:  # an earlier event of this batch changed it
                reread = await repository.get_payment(session, payment.id)
                assert reread is not None  # payments are never deleted
                payment = reread
            handled.add(payment.id)
            await on_payment_event(session, event, intent_id, payment)

    async def on_payment_event(
        session: AsyncSession,
        event: PaymentSucceededV1 | PaymentFailedV1 | SetupSucceededV1,
        intent_id: str,
        payment: Payment,
    ) -> None:
        if _confirm_still_running(payment, runtime.payment_leases.lease):
            # 9.4: the webhook overtook the confirm's commit; the bus retries it shortly.
            raise payment_states.PaymentNotReady(payment.id)
        if not payment.stripe_intent_id:
            await repository.update_payment(
                session, payment.id, expected=(payment.status,), stripe_intent_id=intent_id
            )
            reread = await repository.get_payment(session, payment.id)
            assert reread is not None  # payments are never deleted
            payment = reread
        if isinstance(event, PaymentFailedV1):
            error = payment_states.card_error(event.failure_code, event.decline_code)
            decline = payment_states.StripeDecline(
                event.failure_code, event.decline_code, event.failure_message
            )
            await payment_states.mark_payment_failed(
                runtime, session, payment.id, error, intent_id=None, decline=decline
            )
        else:
            await payment_states.mark_payment_succeeded(runtime, session, payment)

    async def on_account_updated(session: AsyncSession, envelope: Envelope) -> None:
        event = envelope.payload()
        assert isinstance(event, AccountUpdatedV1)
        await connect_repository.record_account(
            session,
            event.account_id,
            event.charges_enabled,
            event.payouts_enabled,
            event.stripe_created,
        )

    async def on_subscription_created(session: AsyncSession, envelope: Envelope) -> None:
        event = envelope.payload()
        assert isinstance(event, SubscriptionCreatedV1)
        completed = await projection_repository.record_subscribed(
            session,
            subscription_id=event.subscription_id,
            org_id=envelope.org_id,
            customer_id=event.customer_id,
            product_id=event.product_id,
            as_of=envelope.occurred_at,
            checkout_id=event.checkout_id,
        )
        if completed and event.checkout_id:
            funnel.checkout_completed(
                session,
                checkout_id=event.checkout_id,
                org_id=envelope.org_id,
                subscription_id=event.subscription_id,
            )

    async def on_subscription_ended(session: AsyncSession, envelope: Envelope) -> None:
        event = envelope.payload()
        assert isinstance(event, SubscriptionEndedV1)
        await projection_repository.record_subscription(
            session,
            subscription_id=event.subscription_id,
            org_id=envelope.org_id,
            customer_id=event.customer_id,
            product_id=event.product_id,
            live=False,
            as_of=envelope.occurred_at,
        )

    # Batched although one rare branch calls Stripe (refunding a second charge for a
    # checkout already fulfilled): that call carries an idempotency key, so a batch
    # rolled back by another event repeats it harmlessly, and the hot path (recognizing
    # payments, most of them a connected account's own) stays one statement per batch.
    runtime.on_events(
        "payments",
        PaymentSucceededV1.event_type,
        PaymentFailedV1.event_type,
        SetupSucceededV1.event_type,
    )(on_payment_events)
    runtime.on_event("accounts", AccountUpdatedV1.event_type)(on_account_updated)
    runtime.on_event("fulfilment", SubscriptionCreatedV1.event_type)(on_subscription_created)
    runtime.on_event("subscription_ends", SubscriptionEndedV1.event_type)(on_subscription_ended)

    async def on_invoice_created(session: AsyncSession, envelope: Envelope) -> None:
        await renewals.on_invoice_created(runtime, session, envelope)

    async def on_invoice_voided(session: AsyncSession, envelope: Envelope) -> None:
        await renewals.on_invoice_voided(runtime, session, envelope)

    async def on_organization_updated(session: AsyncSession, envelope: Envelope) -> None:
        await connect.on_organization_updated(runtime, session, envelope)

    # Charges a card on Stripe: never in a batch (see ServiceRuntime.on_event).
    runtime.on_event("renewals", InvoiceCreatedV1.event_type, batch=False)(on_invoice_created)
    # Pushes the payout schedule to Stripe when it changes: one event at a time, too.
    runtime.on_event("organizations", OrganizationUpdatedV1.event_type, batch=False)(
        on_organization_updated
    )
    runtime.on_event("invoices_voided", InvoiceVoidedV1.event_type)(on_invoice_voided)
