"""The Stripe objects a confirm creates, each under its own idempotency key: the
customer (once per BOS customer) and the payment's intent, built from what the payment
row stores alone, so that the recovery of a confirm that died sends the very same create
again (Stripe refuses a key reused with other parameters)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bos_common.telemetry import TRACEPARENT_METADATA_KEY
from checkout import customer_repository, stripe_params
from checkout.records import BuyingCustomer, ConfirmedPayment
from checkout.runtime import CheckoutRuntime


async def ensure_stripe_customer(runtime: CheckoutRuntime, customer: BuyingCustomer) -> str:
    """Created on Stripe once and reused (3.1, 3.2); the key makes a race harmless."""
    if customer.stripe_customer_id:
        return str(customer.stripe_customer_id)
    created = await _stripe_post(
        runtime,
        "/v1/customers",
        stripe_params.customer(
            email=customer.email,
            name=customer.name,
            metadata={"bos_customer_id": customer.id, "org_id": customer.org_id},
        ),
        idempotency_key=f"bos-customer-{customer.id}",
    )
    async with runtime.db.driver_connection() as conn:
        await customer_repository.set_stripe_customer(conn, customer.id, created["id"])
    return str(created["id"])


async def _stripe_post(
    runtime: CheckoutRuntime, path: str, params: Mapping[str, Any], *, idempotency_key: str
) -> dict[str, Any]:
    """A POST on the hot path through the SDK's `raw_request`: the same requestor (keys,
    API version, retries, errors raised as stripe.CardError, ...), the answer as the
    plain dict the SDK parsed, without building the StripeObject tree confirm would only
    turn back into dicts."""
    response = await runtime.stripe.raw_request_async(
        "post", path, idempotency_key=idempotency_key, **params
    )
    data: dict[str, Any] = response.data
    return data


def intent_create(payment: ConfirmedPayment, stripe_customer: str) -> tuple[str, Mapping[str, Any]]:
    """The create of `payment`'s intent (path, parameters), from what its row stores alone:
    sent under the payment's idempotency key by its confirm, and replayed byte for byte
    by the recovery of a confirm that died (Stripe refuses a key reused with other
    parameters)."""
    # A confirm's payment always has its checkout and the card it was confirmed with.
    assert payment.checkout_id is not None and payment.payment_method_id is not None
    metadata = {
        "org_id": payment.org_id,
        "checkout_id": payment.checkout_id,
        "customer_id": payment.customer_id,
        "payment_id": payment.id,
    }
    if payment.intent_traceparent:
        metadata[TRACEPARENT_METADATA_KEY] = payment.intent_traceparent
    if payment.kind == "setup":
        # 6.1: a trial without a setup fee saves the card and charges nothing now.
        setup = stripe_params.setup_intent(
            customer=stripe_customer,
            payment_method=payment.payment_method_id,
            metadata=metadata,
        )
        return "/v1/setup_intents", setup
    charge = stripe_params.checkout_payment_intent(
        amount=payment.amount,
        currency=payment.currency,
        customer=stripe_customer,
        payment_method=payment.payment_method_id,
        metadata=metadata,
        application_fee=payment.platform_fee,
        # "held": taken on the platform, its destination paid by a transfer later.
        destination=payment.destination_account if payment.connect_mode == "destination" else None,
    )
    return "/v1/payment_intents", charge


async def create_intent(
    runtime: CheckoutRuntime, payment: ConfirmedPayment, stripe_customer: str
) -> dict[str, Any]:
    """The one create of `payment`'s intent, under its idempotency key (a second send is
    Stripe's replay of the first, never a second charge)."""
    path, params = intent_create(payment, stripe_customer)
    return await _stripe_post(runtime, path, params, idempotency_key=payment.stripe_idempotency_key)
