"""Renewal charges: subscriptions owns billing and announces each invoice to charge
(`invoice.created.v1`); checkout charges the customer's saved card off-session with the
invoice's per-attempt idempotency key and answers `invoice.paid.v1` or
`invoice.payment_failed.v1` with the same attempt.

The whole charge runs in the consumer's transaction, Stripe call included: if the commit
is lost, the redelivered event calls Stripe again with the same key and Stripe replays the
same PaymentIntent, so a renewal is never charged twice.
"""

from __future__ import annotations

import logging

import stripe
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.events import Envelope, InvoiceCreatedV1, InvoiceVoidedV1
from bos_common.ids import derived_id
from bos_common.stripe_api import as_dict, is_provider_outage
from checkout import connect, connect_repository, customer_repository, repository, stripe_params
from checkout.money import platform_fee
from checkout.payment_states import (
    StripeDecline,
    card_error,
    mark_payment_failed,
    mark_payment_succeeded,
    publish_failed,
    publish_paid,
)
from checkout.records import Payment
from checkout.runtime import CheckoutRuntime

log = logging.getLogger("checkout.renewals")


async def on_invoice_created(
    runtime: CheckoutRuntime, session: AsyncSession, envelope: Envelope
) -> None:
    invoice = envelope.payload()
    assert isinstance(invoice, InvoiceCreatedV1)
    org_id = envelope.org_id
    assert org_id is not None
    existing = await repository.get_payment_by_idempotency_key(session, invoice.idempotency_key)
    if existing is not None:
        # The answer to this attempt was lost: say it again, never charge again.
        await _republish(runtime, session, existing)
        return
    if await repository.is_invoice_voided(session, invoice.invoice_id):
        log.info("not charging voided invoice %s", invoice.invoice_id)
        return
    customer = await customer_repository.get_customer(session, org_id, invoice.customer_id)
    stripe_customer = (
        customer.stripe_customer_id if customer else None
    ) or invoice.stripe_customer_id
    payment_method = (
        customer.default_payment_method_id if customer else None
    ) or invoice.payment_method_id
    billing = await runtime.organizations.billing(org_id)
    fee = platform_fee(invoice.amount_due, billing.platform_fee_bps)
    enabled = (
        await connect_repository.account_charges_enabled(session, billing.stripe_account_id)
        if billing.stripe_account_id
        else None
    )
    destination = billing.stripe_account_id if enabled else None
    payment = await repository.insert_payment(
        session,
        # The same id when this event is handled again after a crash rolled back the
        # first try: Stripe may already hold the intent with it in its metadata, and the
        # same idempotency key with other parameters would be refused, not replayed.
        id=derived_id(
            "pay",
            invoice.idempotency_key,
            at_ms=int(envelope.occurred_at.timestamp() * 1000),
        ),
        org_id=org_id,
        kind="renewal",
        invoice_id=invoice.invoice_id,
        subscription_id=invoice.subscription_id,
        customer_id=invoice.customer_id,
        attempt=invoice.attempt,
        amount=invoice.amount_due,
        currency=invoice.currency,
        platform_fee=fee,
        net_amount=invoice.amount_due - fee,
        destination_account=billing.stripe_account_id,
        connect_mode="destination"
        if destination
        else ("held" if billing.stripe_account_id else None),
        stripe_idempotency_key=invoice.idempotency_key,
        payment_method_id=payment_method,
    )
    if not (stripe_customer and payment_method):
        await mark_payment_failed(
            runtime,
            session,
            payment.id,
            card_error("invalid_payment_method", None),
            intent_id=None,
            decline=StripeDecline("no_payment_method", None, "No saved payment method."),
        )
        return
    params = stripe_params.renewal_payment_intent(
        amount=invoice.amount_due,
        currency=invoice.currency,
        customer=stripe_customer,
        payment_method=payment_method,
        metadata={
            "org_id": org_id,
            "invoice_id": invoice.invoice_id,
            "subscription_id": invoice.subscription_id,
            "customer_id": invoice.customer_id,
            "payment_id": payment.id,
        },
        description=invoice.description,
        application_fee=fee,
        destination=destination,
    )
    try:
        created = await runtime.stripe.v1.payment_intents.create_async(
            params, {"idempotency_key": invoice.idempotency_key}
        )
    except stripe.CardError as exc:
        error_obj = as_dict(exc.error)
        decline_code = error_obj.get("decline_code")
        pi = error_obj.get("payment_intent")
        await mark_payment_failed(
            runtime,
            session,
            payment.id,
            card_error(exc.code, decline_code),
            intent_id=pi.get("id") if pi else None,
            decline=StripeDecline(exc.code, decline_code, error_obj.get("message")),
        )
        return
    except stripe.StripeError as exc:
        if is_provider_outage(exc):
            raise  # nothing recorded: the bus retries the whole charge with the same key
        await mark_payment_failed(
            runtime,
            session,
            payment.id,
            card_error("invalid_payment_method", None),
            intent_id=None,
            decline=StripeDecline(exc.code, None, str(exc)),
        )
        return
    intent = as_dict(created)
    updated = await repository.update_payment(
        session, payment.id, expected=("pending",), stripe_intent_id=intent["id"]
    )
    assert updated is not None
    if intent["status"] == "succeeded":
        await mark_payment_succeeded(runtime, session, updated)
    elif intent["status"] != "processing":
        # Off-session needing authentication, or any other dead end: a failure to dun.
        last = intent.get("last_payment_error") or {}
        code = last.get("code") or "authentication_required"
        await mark_payment_failed(
            runtime,
            session,
            payment.id,
            card_error(code, last.get("decline_code")),
            intent_id=None,
            decline=StripeDecline(code, last.get("decline_code"), last.get("message")),
        )


async def on_invoice_voided(
    runtime: CheckoutRuntime, session: AsyncSession, envelope: Envelope
) -> None:
    """Never charge a voided invoice; refund one whose charge raced the cancellation."""
    voided = envelope.payload()
    assert isinstance(voided, InvoiceVoidedV1)
    await repository.void_invoice(session, voided.invoice_id)
    for payment in await repository.succeeded_payments_of_invoice(session, voided.invoice_id):
        assert payment.stripe_intent_id is not None  # it succeeded: its intent is recorded
        await runtime.stripe.v1.refunds.create_async(
            stripe_params.refund(
                payment_intent=payment.stripe_intent_id,
                connect_mode=payment.connect_mode,
                reason="invoice_voided",
                payment_id=payment.id,
            ),
            {"idempotency_key": f"bos-refund-{payment.id}"},
        )
        await repository.update_payment(
            session, payment.id, expected=("succeeded",), status="refunded"
        )
        await connect.take_back_held_share(runtime, session, payment)


async def _republish(runtime: CheckoutRuntime, session: AsyncSession, payment: Payment) -> None:
    if payment.status in ("succeeded", "refunded"):
        await publish_paid(runtime, session, payment)
    elif payment.status == "failed":
        await publish_failed(runtime, session, payment, None)
    # pending / requires_action: the outcome is still to come (webhook), nothing to say yet
