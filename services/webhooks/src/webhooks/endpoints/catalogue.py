"""The public event catalogue: the events merchants may subscribe to, versioned by
`API_VERSION`, and which internal bus event each is made from.

A public event's body is `{id, type, created, api_version, data: {object}}`, where
`object` is what the API's GET of that object returns (fetched when the event is first
delivered), except `payment.refunded`, whose object (a refund) has no GET route and is
built from the internal event's data. Internal events (`<noun>.<verb>.vN`) stay
internal: a new internal version maps to the same public type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from bos_common.events import (
    CheckoutCompletedV1,
    InvoicePaidV1,
    InvoicePaymentFailedV1,
    PaymentRefundedV1,
    SetupSucceededV1,
    SubscriptionCanceledV1,
    SubscriptionCreatedV1,
    SubscriptionEndedV1,
    SubscriptionPastDueV1,
    SubscriptionReactivatedV1,
    SubscriptionRenewedV1,
    SubscriptionTrialExtendedV1,
    SubscriptionTrialWillEndV1,
)

# The version of the public events' shape; a breaking change to a body is a new version.
API_VERSION: Final = "2026-12-01"

# Every public type, in the order the documentation lists them.
PublicEventType = Literal[
    "checkout.completed",
    "subscription.created",
    "subscription.updated",
    "subscription.trial_will_end",
    "subscription.canceled",
    "subscription.reactivated",
    "invoice.paid",
    "invoice.payment_failed",
    "customer.updated",
    "payment.refunded",
]
EVENT_TYPES: Final[tuple[str, ...]] = get_args(PublicEventType)

# What `POST /v1/webhook-endpoints/{id}/test` sends (never subscribed to, always delivered).
TEST_EVENT_TYPE: Final = "webhook_endpoint.test"

ObjectKind = Literal["checkout_session", "subscription", "invoice", "customer", "refund"]


@dataclass(frozen=True)
class Source:
    """How one internal event becomes a public one: its type, and the object it is about
    (the data key holding its id)."""

    public_type: str
    kind: ObjectKind
    id_key: str


SOURCES: Final[dict[str, Source]] = {
    CheckoutCompletedV1.event_type: Source("checkout.completed", "checkout_session", "checkout_id"),
    SubscriptionCreatedV1.event_type: Source(
        "subscription.created", "subscription", "subscription_id"
    ),
    SubscriptionTrialWillEndV1.event_type: Source(
        "subscription.trial_will_end", "subscription", "subscription_id"
    ),
    SubscriptionCanceledV1.event_type: Source(
        "subscription.canceled", "subscription", "subscription_id"
    ),
    SubscriptionReactivatedV1.event_type: Source(
        "subscription.reactivated", "subscription", "subscription_id"
    ),
    SubscriptionEndedV1.event_type: Source(
        "subscription.updated", "subscription", "subscription_id"
    ),
    SubscriptionTrialExtendedV1.event_type: Source(
        "subscription.updated", "subscription", "subscription_id"
    ),
    SubscriptionRenewedV1.event_type: Source(
        "subscription.updated", "subscription", "subscription_id"
    ),
    SubscriptionPastDueV1.event_type: Source(
        "subscription.updated", "subscription", "subscription_id"
    ),
    InvoicePaidV1.event_type: Source("invoice.paid", "invoice", "invoice_id"),
    InvoicePaymentFailedV1.event_type: Source("invoice.payment_failed", "invoice", "invoice_id"),
    # A saved card becomes the customer's default payment method.
    SetupSucceededV1.event_type: Source("customer.updated", "customer", "customer_id"),
    PaymentRefundedV1.event_type: Source("payment.refunded", "refund", "charge_id"),
}

# Which service's public GET returns each kind of object ("checkout" or "subscriptions").
OBJECT_ROUTES: Final[dict[str, tuple[str, str]]] = {
    "checkout_session": ("checkout", "/v1/checkout-sessions/{id}"),
    "customer": ("checkout", "/v1/customers/{id}"),
    "subscription": ("subscriptions", "/v1/subscriptions/{id}"),
    "invoice": ("subscriptions", "/v1/invoices/{id}"),
}


# An object read before the fact its event announces is visible through the API is not
# sent yet: checkout marks a checkout `complete` only once its subscription exists (an
# event after `checkout.completed.v1`). The delivery waits for it, without an attempt, up to
# READY_WAIT_SECONDS after the event, then goes with the object as it is.
READY_WAIT_SECONDS: Final = 300.0


def is_ready(kind: str, obj: dict[str, Any]) -> bool:
    if kind == "checkout_session":
        return obj.get("status") == "complete"
    return True


def source_of(internal_type: str, data: dict[str, Any]) -> tuple[Source, str] | None:
    """The public event an internal one makes, and its object's id; None when it makes
    none (an unknown type, or an event without the object's id, e.g. a card saved for a
    customer BOS does not know)."""
    source = SOURCES.get(internal_type)
    if source is None:
        return None
    object_id = data.get(source.id_key)
    if not isinstance(object_id, str) or not object_id:
        return None
    return source, object_id


def refund_object(data: dict[str, Any]) -> dict[str, Any]:
    """The object of `payment.refunded`, from `payment.refunded.v1`'s data."""
    return {
        "object": "refund",
        "charge_id": data.get("charge_id"),
        "payment_id": data.get("payment_id"),
        "payment_intent_id": data.get("payment_intent_id"),
        "amount_refunded": data.get("amount_refunded"),
        "currency": data.get("currency"),
        "status": data.get("status"),
        "customer_id": data.get("customer_id"),
        "checkout_id": data.get("checkout_id"),
        "invoice_id": data.get("invoice_id"),
    }


def body(event_id: str, event_type: str, created: int, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": event_type,
        "created": created,
        "api_version": API_VERSION,
        "data": {"object": obj},
    }
