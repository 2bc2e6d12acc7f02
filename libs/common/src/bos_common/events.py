"""Integration events: declared once here, versioned, routed by name.

An event's name is its routing key, `<noun>.<past-verb>.v<N>`. A breaking change to a
payload is a new class with a new version; `tests/contract/schemas/` holds the JSON
Schema of every registered event and fails when one changes in place.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

EVENT_NAME = re.compile(r"^[a-z_]+(\.[a-z_]+)+\.v[1-9][0-9]*$")


class Event(BaseModel):
    """Base of every event payload (the envelope's `data`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: ClassVar[str]


_REGISTRY: dict[str, type[Event]] = {}
E = TypeVar("E", bound=type[Event])


def register(cls: E) -> E:
    name = cls.event_type
    if not EVENT_NAME.match(name):
        raise ValueError(f"event name {name!r} must look like noun.past_verb.vN")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"event {name!r} is registered twice")
    _REGISTRY[name] = cls
    return cls


def registry() -> dict[str, type[Event]]:
    return dict(_REGISTRY)


def event_class(event_type: str) -> type[Event]:
    try:
        return _REGISTRY[event_type]
    except KeyError:
        raise LookupError(f"unknown event type {event_type!r}") from None


class Envelope(BaseModel):
    """What travels on the bus. `data` stays a dict so a consumer can receive an event
    type it does not know (and dead-letter or ignore it) without failing to parse."""

    model_config = ConfigDict(frozen=True)

    event_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    producer: str
    traceparent: str | None = None
    org_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    def payload(self) -> Event:
        return event_class(self.event_type).model_validate(self.data)

    @classmethod
    def wrap(
        cls,
        event: Event,
        *,
        producer: str,
        org_id: str | None = None,
        traceparent: str | None = None,
        occurred_at: datetime | None = None,
        event_id: uuid.UUID | None = None,
    ) -> Envelope:
        return cls(
            event_id=event_id or uuid.uuid4(),
            event_type=event.event_type,
            occurred_at=occurred_at or datetime.now(UTC),
            producer=producer,
            traceparent=traceparent,
            org_id=org_id,
            data=event.model_dump(mode="json"),
        )


# --- The events -------------------------------------------------------------------


class StripeObjectEvent(Event):
    """Fields every event translated from a Stripe webhook carries: where it came from,
    Stripe's own time (so consumers can ignore stale transitions) and the BOS ids BOS put
    in the Stripe object's metadata."""

    stripe_event_id: str
    stripe_created: datetime
    stripe_account: str | None = None
    status: str
    checkout_id: str | None = None
    customer_id: str | None = None
    invoice_id: str | None = None
    payment_id: str | None = None


@register
class PaymentSucceededV1(StripeObjectEvent):
    """A Stripe PaymentIntent succeeded (translated by the webhooks service)."""

    event_type: ClassVar[str] = "payment.succeeded.v1"

    payment_intent_id: str
    amount: int
    currency: str
    payment_method_id: str | None = None
    stripe_customer_id: str | None = None


@register
class PaymentFailedV1(StripeObjectEvent):
    event_type: ClassVar[str] = "payment.failed.v1"

    payment_intent_id: str
    amount: int
    currency: str
    failure_code: str | None = None
    decline_code: str | None = None
    failure_message: str | None = None


@register
class PaymentRequiresActionV1(StripeObjectEvent):
    event_type: ClassVar[str] = "payment.requires_action.v1"

    payment_intent_id: str
    amount: int
    currency: str


@register
class PaymentRefundedV1(StripeObjectEvent):
    event_type: ClassVar[str] = "payment.refunded.v1"

    payment_intent_id: str
    charge_id: str
    amount_refunded: int
    currency: str


@register
class SetupSucceededV1(StripeObjectEvent):
    """A SetupIntent saved a card (trials without a setup fee charge nothing)."""

    event_type: ClassVar[str] = "setup.succeeded.v1"

    setup_intent_id: str
    payment_method_id: str | None = None
    stripe_customer_id: str | None = None


@register
class AccountUpdatedV1(Event):
    """A Connect account changed (e.g. verified: charges and payouts enabled)."""

    event_type: ClassVar[str] = "account.updated.v1"

    stripe_event_id: str
    stripe_created: datetime
    account_id: str
    charges_enabled: bool
    payouts_enabled: bool


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every registered event, by event type."""
    return {name: cls.model_json_schema() for name, cls in sorted(_REGISTRY.items())}


class PriceSnapshot(BaseModel):
    """What was bought, frozen at checkout creation (later catalog edits never change it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    price_id: str
    product_id: str
    product_name: str
    amount: int
    currency: str
    type: str  # "recurring" | "one_time"
    interval: str | None = None  # "month" | "year"
    trial_days: int = 0
    setup_fee: int = 0
    features: list[str] = Field(default_factory=list)


class AppliedCoupon(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    coupon_id: str
    code: str
    percent_off: float | None = None
    amount_off: int | None = None
    currency: str | None = None
    duration: str  # "once" | "forever" | "repeating"
    duration_in_months: int | None = None
    trial_extension_days: int = 0


@register
class CheckoutCompletedV1(Event):
    """A checkout was paid (or was free) and must be fulfilled: subscriptions creates the
    subscription, catalog counts the coupon redemption."""

    event_type: ClassVar[str] = "checkout.completed.v1"

    checkout_id: str
    customer_id: str
    customer_email: str
    customer_name: str | None = None
    external_user_id: str | None = None
    price: PriceSnapshot
    coupon: AppliedCoupon | None = None
    amount_subtotal: int
    amount_discount: int
    amount_total: int
    is_free: bool
    trial_days: int = 0
    payment_id: str | None = None
    payment_intent_id: str | None = None
    setup_intent_id: str | None = None
    stripe_customer_id: str | None = None
    payment_method_id: str | None = None
    card_fingerprint: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    completed_at: datetime
