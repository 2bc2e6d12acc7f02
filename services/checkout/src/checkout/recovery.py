"""What to do with a confirm whose request is gone (its process, or its database
connection, died between the payment row and Stripe's answer): the rules, pure, tested
without a database.

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

# How long after its confirm began a payment's create is still sent again. A create that
# Stripe has no intent for this long after never reached it (Stripe answers in seconds):
# the customer is not charged for a payment they left long ago, and the replay stays well
# within the 24 hours Stripe keeps an idempotency key.
REPLAY_CREATE_WITHIN = timedelta(hours=1)


class Resolution(StrEnum):
    # Stripe took the money: the checkout completes (the success path of a confirm).
    FULFIL = "fulfil"
    # 3-D Secure pending: kept for the customer, who completes it on the page.
    AWAIT_CUSTOMER = "await_customer"
    # Declined, or canceled at Stripe: back to `open` with the decline, for another card.
    DECLINED = "declined"
    # The intent was never asked for (no Stripe customer yet): the checkout reopens.
    NOT_CHARGED = "not_charged"
    # Stripe is still deciding (`processing`), or the intent's create is still executing
    # at Stripe: its webhook or the next look settles it.
    WAIT = "wait"
    # Stripe has no intent for the payment, but its create may have been sent: that very
    # create is sent again, under the payment's idempotency key and with the same
    # parameters. Stripe answers a finished one with its saved response, one still
    # executing with 409 `idempotency_key_in_use`, and performs one that never reached it
    # (the customer asked to pay: the payment rolls forward).
    REPLAY_CREATE = "replay_create"


@dataclass(frozen=True)
class Outcome:
    resolution: Resolution
    # Stripe's intent when one exists: what record_intent settles the payment with.
    intent: dict[str, Any] | None


def decide(intent: dict[str, Any] | None, *, customer_at_stripe: bool, age: timedelta) -> Outcome:
    """`intent`: the payment's intent as Stripe has it (None: Stripe has none for it, or
    none was answered by a replay); `customer_at_stripe`: the customer's Stripe id was
    recorded (confirm records it before it asks for the intent, so without it no intent
    was ever asked for); `age`: how long ago the payment's confirm began."""
    if intent is None:
        if customer_at_stripe and age < REPLAY_CREATE_WITHIN:
            return Outcome(Resolution.REPLAY_CREATE, None)
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


def decide_replay_refusal(
    http_status: int | None, error_type: str | None, code: str | None
) -> Resolution | None:
    """Stripe refused the replayed create (its error's status, type and code): its first
    create is still executing (409 `idempotency_key_in_use`: look again shortly), or the
    create was declined (402 `card_error`) or its payment method refused (400
    `invalid_request_error`), as it would have been for the confirm. None: anything else
    (Stripe unreachable or failing, a key reused with other parameters: an
    `idempotency_error`), nothing decided: the payment stays pending for a later round."""
    if http_status == 409 and code == "idempotency_key_in_use":
        return Resolution.WAIT
    if (http_status, error_type) in ((402, "card_error"), (400, "invalid_request_error")):
        return Resolution.DECLINED
    return None


def intent_of_payment(intents: list[dict[str, Any]], payment_id: str) -> dict[str, Any] | None:
    """The intent confirm created for `payment_id` (its metadata names it), if any."""
    for intent in intents:
        metadata = intent.get("metadata") or {}
        if metadata.get("payment_id") == payment_id:
            return intent
    return None
