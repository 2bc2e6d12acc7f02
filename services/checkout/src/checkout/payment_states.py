"""The payment state machine, shared by confirm, renewals, card updates and the webhook
consumers: Stripe's outcome recorded with conditional updates (a failure never
overrides a success), the effects of a success (fulfilment, a renewal's
`invoice.paid.v1`, a card update's new default card, a held merchant share) and of a
failure (the checkout reopens, a renewal's `invoice.payment_failed.v1`), and Stripe's
decline codes worded for a person.

Works in the caller's transaction; never commits. A success that arrives for a checkout
another payment already fulfilled is refunded, never kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.bus import NotReadyYet
from bos_common.events import InvoicePaidV1, InvoicePaymentFailedV1
from bos_common.ids import new_id
from checkout import (
    connect,
    connect_repository,
    customer_repository,
    funnel,
    repository,
    service,
    stripe_params,
)
from checkout.records import Payment
from checkout.runtime import CheckoutRuntime
from checkout.schemas import ErrorOut

log = logging.getLogger("checkout.payments")

DUPLICATE_REFUNDS = Counter(
    "bos_duplicate_payment_refunds_total",
    "Payments that succeeded for an already fulfilled checkout and were refunded.",
)

# Stripe's codes, worded for a person (docs/api.md "Checkout": confirm errors).
CARD_MESSAGES = {
    "card_declined": "Your card was declined. Try another card.",
    "insufficient_funds": "Insufficient funds",
    "authentication_failed": "Card authentication failed. Try again or use another card.",
    "expired_card": "Your card has expired. Try another card.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again.",
    "invalid_payment_method": "This payment method cannot be used. Try another card.",
}


def card_error(code: str | None, decline_code: str | None) -> ErrorOut:
    """Stripe's error -> the contract's `card_declined`/`insufficient_funds`/..."""
    if decline_code == "insufficient_funds":
        key = "insufficient_funds"
    elif code == "payment_intent_authentication_failure":
        key = "authentication_failed"
    elif code in CARD_MESSAGES:
        key = code
    else:
        key = "card_declined"
    return ErrorOut(code=key, message=CARD_MESSAGES[key])


def payment_method_details(pm: Any) -> tuple[str | None, str | None]:
    """(id, card fingerprint) of an expanded or unexpanded payment method."""
    if pm is None or isinstance(pm, str):
        return pm, None
    card = pm.get("card") or {}
    return pm.get("id"), card.get("fingerprint")


class PaymentNotReady(NotReadyYet):
    """The payment's confirm transaction has not committed yet: retry the event later."""


SUCCEEDED = {"status": "succeeded", "error_code": None, "error_message": None}


async def mark_payment_succeeded(
    runtime: CheckoutRuntime, session: AsyncSession, payment: Payment
) -> None:
    if payment.status in ("succeeded", "refunded"):
        return
    updated = await repository.update_payment(
        session,
        payment.id,
        expected=("pending", "requires_action", "failed", "canceled"),
        **SUCCEEDED,
    )
    if updated is not None:
        await after_success(runtime, session, updated)


async def after_success(runtime: CheckoutRuntime, session: AsyncSession, updated: Payment) -> None:
    """The effects of a payment that has just turned `succeeded` (exactly once: only the
    caller whose guarded UPDATE made the transition gets here)."""
    funnel.payment_succeeded(updated, session)
    if updated.kind == "renewal":
        if updated.connect_mode == "held":
            await _hold_merchant_share(session, updated)
        await publish_paid(runtime, session, updated)
    elif updated.kind == "card_update":
        await customer_repository.set_default_payment_method(
            session, updated.customer_id, updated.payment_method_id, updated.card_fingerprint
        )
    elif updated.checkout_id:
        await _fulfil_or_refund(runtime, session, updated)


async def _fulfil_or_refund(
    runtime: CheckoutRuntime, session: AsyncSession, payment: Payment
) -> None:
    checkout_id = payment.checkout_id
    assert checkout_id is not None  # after_success sends only a checkout's payment here
    # The common case first: the checkout is `processing` and fulfil's guarded UPDATE
    # takes it (no read before it); anything else is sorted out after.
    fulfilled = await service.fulfil(runtime, session, checkout_id, payment=payment)
    if not fulfilled:
        checkout = await repository.get_checkout_by_id(session, checkout_id)
        assert checkout is not None
        if checkout.status == "open":
            # A late success after the checkout had reopened (e.g. 3DS completed after a
            # failure was recorded): the money moved, so the checkout is fulfilled with it.
            await repository.transition(
                session, checkout.id, expected=("open",), status="processing"
            )
            fulfilled = await service.fulfil(runtime, session, checkout.id, payment=payment)
    if fulfilled:
        if payment.connect_mode == "held":
            await _hold_merchant_share(session, payment)
        return
    # Another payment fulfilled this checkout, or it was canceled or expired meanwhile:
    # keeping this money would be a double charge.
    if payment.kind == "checkout":
        await _refund_duplicate(runtime, session, payment)


async def _hold_merchant_share(session: AsyncSession, payment: Payment) -> None:
    """12.2: a payment taken on the platform keeps the merchant's share until the
    connected account is verified; the transfer worker then releases it."""
    await connect_repository.hold_transfer(
        session,
        id=new_id("tr"),
        org_id=payment.org_id,
        payment_id=payment.id,
        destination_account=payment.destination_account,
        amount=payment.net_amount,
        currency=payment.currency,
        available_at=service.utcnow(),
    )


async def _refund_duplicate(
    runtime: CheckoutRuntime, session: AsyncSession, payment: Payment
) -> None:
    log.error("refunding duplicate payment %s of checkout %s", payment.id, payment.checkout_id)
    assert payment.stripe_intent_id is not None  # it succeeded: Stripe's intent is recorded
    await runtime.stripe.v1.refunds.create_async(
        stripe_params.refund(
            payment_intent=payment.stripe_intent_id,
            connect_mode=payment.connect_mode,
            reason="duplicate",
            payment_id=payment.id,
        ),
        {"idempotency_key": f"bos-refund-{payment.id}"},
    )
    await repository.update_payment(session, payment.id, expected=("succeeded",), status="refunded")
    await connect.take_back_held_share(runtime, session, payment)
    DUPLICATE_REFUNDS.inc()


@dataclass(frozen=True)
class StripeDecline:
    """Stripe's own words for a failure, passed on to subscriptions for dunning."""

    code: str | None
    decline_code: str | None
    message: str | None


async def mark_payment_failed(
    runtime: CheckoutRuntime,
    session: AsyncSession,
    payment_id: str,
    error: ErrorOut,
    *,
    intent_id: str | None,
    decline: StripeDecline | None = None,
) -> None:
    """A failure never overrides a success (late `payment_failed`, 9.4); the checkout
    returns to `open` so the customer can retry with another card (4.2, 4.3, 4.5); a
    renewal's failure goes back to subscriptions for dunning."""
    values: dict[str, Any] = {
        "status": "failed",
        "error_code": error.code,
        "error_message": error.message,
    }
    if intent_id:
        values["stripe_intent_id"] = intent_id
    updated = await repository.update_payment(
        session, payment_id, expected=("pending", "requires_action"), **values
    )
    if updated is None:
        return
    funnel.payment_failed(updated, error.code, session)
    if updated.kind == "renewal":
        await publish_failed(runtime, session, updated, decline)
        return
    if not updated.checkout_id:
        return
    await repository.transition(
        session,
        updated.checkout_id,
        expected=("processing",),
        where=(
            repository.cs.c.attempt == updated.attempt,
            repository.cs.c.completed_at.is_(None),
        ),
        status="open",
        last_error={"code": error.code, "message": error.message},
    )


async def publish_paid(runtime: CheckoutRuntime, session: AsyncSession, payment: Payment) -> None:
    await runtime.publish(
        session,
        InvoicePaidV1(
            invoice_id=payment.invoice_id,
            subscription_id=payment.subscription_id,
            customer_id=payment.customer_id,
            attempt=payment.attempt,
            payment_id=payment.id,
            payment_intent_id=payment.stripe_intent_id,
            amount=payment.amount,
            currency=payment.currency,
            paid_at=datetime.now(UTC),
        ),
        org_id=payment.org_id,
    )


async def publish_failed(
    runtime: CheckoutRuntime,
    session: AsyncSession,
    payment: Payment,
    decline: StripeDecline | None,
) -> None:
    await runtime.publish(
        session,
        InvoicePaymentFailedV1(
            invoice_id=payment.invoice_id,
            subscription_id=payment.subscription_id,
            customer_id=payment.customer_id,
            attempt=payment.attempt,
            payment_id=payment.id,
            payment_intent_id=payment.stripe_intent_id,
            amount=payment.amount,
            currency=payment.currency,
            failure_code=decline.code if decline else payment.error_code,
            decline_code=decline.decline_code if decline else None,
            failure_message=decline.message if decline else payment.error_message,
            failed_at=datetime.now(UTC),
        ),
        org_id=payment.org_id,
    )
