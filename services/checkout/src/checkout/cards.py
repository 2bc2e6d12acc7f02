"""Card updates from the customer portal: a SetupIntent saves the new card off-session;
when it succeeds (at once, or after 3DS through `setup.succeeded.v1`) the card becomes the
customer's default, which renewals then charge.

A process that owns its transactions (the route opens none): the payment row is
committed before Stripe is asked, and Stripe's answer is recorded in a transaction of its
own through the payment state machine."""

from __future__ import annotations

from typing import Any

import stripe

from bos_common.auth import Identity
from bos_common.errors import NotFound, PermissionDenied
from bos_common.ids import new_id
from bos_common.stripe_api import as_dict, is_provider_outage, provider_unavailable
from checkout import (
    customer_repository,
    payment_states,
    repository,
    stripe_creates,
    stripe_params,
)
from checkout.runtime import CheckoutRuntime


async def start_card_update(
    runtime: CheckoutRuntime, identity: Identity, customer_id: str, payment_method: str | None
) -> dict[str, Any]:
    if identity.principal_type == "portal" and identity.customer_id != customer_id:
        raise PermissionDenied("forbidden", "This portal session belongs to another customer.")
    if identity.principal_type not in ("portal", "service", "api_key") or not identity.org_id:
        raise PermissionDenied("forbidden", "This credential cannot update cards.")
    async with runtime.db.transaction() as s:
        customer = await customer_repository.get_customer(s, identity.org_id, customer_id)
        if customer is None:
            raise NotFound("customer_not_found", "Customer not found.")
        payment = await repository.insert_payment(
            s,
            id=new_id("pay"),
            org_id=customer.org_id,
            kind="card_update",
            customer_id=customer.id,
            attempt=1,
            amount=0,
            currency="usd",
            stripe_idempotency_key=f"bos-card-update-{new_id('key')}",
            payment_method_id=payment_method,
        )
    params = stripe_params.setup_intent(
        customer=await stripe_creates.ensure_stripe_customer(runtime, customer),
        payment_method=payment_method,
        metadata={"org_id": customer.org_id, "customer_id": customer.id, "payment_id": payment.id},
    )
    try:
        created = await runtime.stripe.v1.setup_intents.create_async(
            params, {"idempotency_key": payment.stripe_idempotency_key}
        )
    except stripe.StripeError as exc:
        async with runtime.db.transaction() as s:
            await repository.update_payment(
                s,
                payment.id,
                expected=("pending",),
                status="failed",
                error_code=exc.code or "card_error",
                error_message=str(exc.user_message or exc),
            )
        if is_provider_outage(exc):
            raise provider_unavailable() from exc
        error = payment_states.card_error(exc.code, as_dict(exc.error).get("decline_code"))
        return {"status": "failed", "error": error.model_dump()}
    intent = as_dict(created)
    pm_id, fingerprint = payment_states.payment_method_details(intent.get("payment_method"))
    async with runtime.db.transaction() as s:
        updated = await repository.update_payment(
            s,
            payment.id,
            expected=("pending",),
            stripe_intent_id=intent["id"],
            payment_method_id=pm_id,
            card_fingerprint=fingerprint,
            status="pending" if intent["status"] == "succeeded" else "requires_action",
        )
        if intent["status"] == "succeeded" and updated is not None:
            await payment_states.mark_payment_succeeded(runtime, s, updated)
    return {
        "status": intent["status"],
        "setup_intent_id": intent["id"],
        "client_secret": intent.get("client_secret"),
    }
