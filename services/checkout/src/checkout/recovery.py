"""What to do with a confirm whose request is gone (its process died between the
payment row and Stripe's answer): the rules, pure, tested without a database.

A confirm holds a lease on its pending payment while it talks to Stripe
(`payments.updated_at`, renewed by the process: bos_common.leases). A checkout still
`processing` whose payment is pending and whose lease ran out has no one to finish it:
the recovery sweep reads what Stripe really did with the payment's intent and settles it
here, the way the confirm itself would have.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

# How long after its confirm began a payment's intent may still appear at Stripe: a
# request sent just before the process died is finished by Stripe all the same. A
# confirm makes two Stripe calls in a row (the customer, then the intent), each given
# up by the client after 20 s (bos_common.stripe_api); the rest is slack.
INTENT_MAY_APPEAR_FOR = timedelta(seconds=45)


class Resolution(StrEnum):
    # Stripe took the money: the checkout completes (the success path of a confirm).
    FULFIL = "fulfil"
    # 3-D Secure pending: kept for the customer, who completes it on the page.
    AWAIT_CUSTOMER = "await_customer"
    # Declined, or canceled at Stripe: back to `open` with the decline, for another card.
    DECLINED = "declined"
    # The intent was never created: nothing charged, the checkout reopens.
    NOT_CHARGED = "not_charged"
    # Stripe is still deciding (`processing`): its webhook settles it; look again later.
    WAIT = "wait"


@dataclass(frozen=True)
class Outcome:
    resolution: Resolution
    # Stripe's intent when one exists: what record_intent settles the payment with.
    intent: dict[str, Any] | None


def decide(intent: dict[str, Any] | None, *, customer_at_stripe: bool, age: timedelta) -> Outcome:
    """`intent`: the payment's intent as Stripe has it (None: Stripe has none for it);
    `customer_at_stripe`: the customer's Stripe id was recorded (confirm records it
    before it asks for the intent, so without it no intent was ever asked for); `age`:
    how long ago the payment's confirm began."""
    if intent is None:
        if customer_at_stripe and age < INTENT_MAY_APPEAR_FOR:
            # The intent may have been asked for just before the process died.
            return Outcome(Resolution.WAIT, None)
        return Outcome(Resolution.NOT_CHARGED, None)
    status = intent.get("status")
    if status == "succeeded":
        return Outcome(Resolution.FULFIL, intent)
    if status in ("requires_action", "requires_confirmation"):
        return Outcome(Resolution.AWAIT_CUSTOMER, intent)
    if status == "processing":
        return Outcome(Resolution.WAIT, intent)
    # requires_payment_method (declined), canceled, or anything else that is not a success.
    return Outcome(Resolution.DECLINED, intent)


def intent_of_payment(intents: list[dict[str, Any]], payment_id: str) -> dict[str, Any] | None:
    """The intent confirm created for `payment_id` (its metadata names it), if any."""
    for intent in intents:
        metadata = intent.get("metadata") or {}
        if metadata.get("payment_id") == payment_id:
            return intent
    return None
