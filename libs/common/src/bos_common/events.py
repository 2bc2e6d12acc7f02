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


# --- tokens: organizations, API keys, session tokens --------------------------------


@register
class SessionTokenRevokedV1(Event):
    """A session or portal token was revoked: every gateway replica adds `token_id` to its
    revocation set (kept until `expires_at`, after which the token is refused anyway)."""

    event_type: ClassVar[str] = "session_token.revoked.v1"

    token_id: str  # sess_... or ps_... (the token's `jti`)
    org_id: str
    scope: str  # "session" | "portal"
    external_user_id: str | None = None
    customer_id: str | None = None
    expires_at: datetime
    revoked_at: datetime


@register
class ApiKeyRevokedV1(Event):
    """An API key was revoked: gateways drop it from their resolution caches at once."""

    event_type: ClassVar[str] = "api_key.revoked.v1"

    key_id: str
    org_id: str
    revoked_at: datetime


class PayoutSchedule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    interval: str  # "manual" | "daily" | "weekly" | "monthly"
    weekly_anchor: str | None = None  # "monday".."sunday" when weekly
    monthly_anchor: int | None = None  # 1..31 when monthly
    delay_days: int | None = None


@register
class OrganizationUpdatedV1(Event):
    """An organization's settings as they are now, emitted when it is created and after
    every change. `version` grows with each change: a consumer keeps the highest it has
    seen and ignores an older one arriving late."""

    event_type: ClassVar[str] = "organization.updated.v1"

    org_id: str
    version: int
    name: str
    platform_fee_bps: int
    allowed_origins: list[str] = Field(default_factory=list)
    stripe_account_id: str | None = None
    payout_schedule: PayoutSchedule
    # Per-organization rate-limit overrides, e.g. {"api_key": "200/second"}; absent keys
    # use the deployment's defaults.
    rate_limits: dict[str, str] = Field(default_factory=dict)
    updated_at: datetime


# --- Subscriptions and invoices (subscriptions service; invoice.paid/payment_failed come from
# checkout, which charges the invoices subscriptions issues) -------------------------------


@register
class SubscriptionCreatedV1(Event):
    """A subscription exists for a completed checkout (checkout marks itself complete with
    `subscription_id`). `reactivated` is true when a canceled free subscription to the same
    product came back instead of a new one (5.5)."""

    event_type: ClassVar[str] = "subscription.created.v1"

    subscription_id: str
    checkout_id: str | None = None
    customer_id: str
    external_user_id: str | None = None
    product_id: str
    price_id: str
    status: str  # "active" | "trialing" | "incomplete"
    is_free: bool
    amount: int
    currency: str
    interval: str | None = None
    current_period_start: datetime
    current_period_end: datetime | None = None
    trial_start: datetime | None = None
    trial_end: datetime | None = None
    trial_denied: bool = False  # a trial was asked for but this customer/email/card had one
    reactivated: bool = False
    features: list[str] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    created_at: datetime


@register
class SubscriptionCanceledV1(Event):
    """A cancellation was requested or happened: at once (`ends_at == canceled_at`) or at the
    period end (`at_period_end`, features stay until `ends_at`). Reasons: `requested`,
    `trial_canceled`, `upgraded` (free -> paid), `payment_failed` (dunning exhausted)."""

    event_type: ClassVar[str] = "subscription.canceled.v1"

    subscription_id: str
    customer_id: str
    product_id: str
    reason: str
    at_period_end: bool
    canceled_at: datetime
    ends_at: datetime


@register
class SubscriptionReactivatedV1(Event):
    """A cancel-at-period-end was undone before the period ended."""

    event_type: ClassVar[str] = "subscription.reactivated.v1"

    subscription_id: str
    customer_id: str
    product_id: str
    current_period_end: datetime | None = None
    reactivated_at: datetime


@register
class SubscriptionEndedV1(Event):
    """The subscription is over (status `canceled`): its features are no longer granted."""

    event_type: ClassVar[str] = "subscription.ended.v1"

    subscription_id: str
    customer_id: str
    product_id: str
    reason: str
    ended_at: datetime


@register
class SubscriptionTrialWillEndV1(Event):
    """The trial ends soon: the scheduler's reminder, sent once per trial end (the
    customer's "trial ending" e-mail is decided at the same step)."""

    event_type: ClassVar[str] = "subscription.trial_will_end.v1"

    subscription_id: str
    customer_id: str
    product_id: str
    trial_end: datetime


@register
class SubscriptionTrialExtendedV1(Event):
    event_type: ClassVar[str] = "subscription.trial_extended.v1"

    subscription_id: str
    customer_id: str
    product_id: str
    days: int
    previous_trial_end: datetime
    trial_end: datetime


@register
class SubscriptionRenewedV1(Event):
    """An invoice for a new period was paid and the period advanced (the first one after a
    trial has `trial_converted`)."""

    event_type: ClassVar[str] = "subscription.renewed.v1"

    subscription_id: str
    customer_id: str
    product_id: str
    invoice_id: str
    amount_paid: int
    currency: str
    current_period_start: datetime
    current_period_end: datetime | None = None
    trial_converted: bool = False


@register
class SubscriptionPastDueV1(Event):
    """An invoice payment failed: features continue within the grace period while dunning
    retries (`next_attempt_at` is null when retrying stopped, e.g. a hard decline)."""

    event_type: ClassVar[str] = "subscription.past_due.v1"

    subscription_id: str
    customer_id: str
    product_id: str
    invoice_id: str
    attempt: int
    next_attempt_at: datetime | None = None
    failure_code: str | None = None


@register
class InvoiceCreatedV1(Event):
    """An open invoice to charge off-session: checkout charges `amount_due` to the customer's
    saved card (its default payment method, else `payment_method_id`) with
    `idempotency_key`, which is per attempt, and answers with invoice.paid.v1 or
    invoice.payment_failed.v1 carrying the same `attempt`. A dunning retry re-publishes the
    same invoice with the next attempt; a lost answer is asked again with the same attempt
    and key (so a charge that happened is never repeated). Invoices paid at checkout or
    with nothing to pay are not announced."""

    event_type: ClassVar[str] = "invoice.created.v1"

    invoice_id: str
    number: str
    subscription_id: str
    customer_id: str
    customer_email: str | None = None
    amount_due: int
    currency: str
    attempt: int
    idempotency_key: str
    billing_reason: str  # "subscription_cycle" | "trial_conversion" | "subscription_create"
    description: str
    period_start: datetime
    period_end: datetime | None = None
    stripe_customer_id: str | None = None
    payment_method_id: str | None = None
    checkout_id: str | None = None
    created_at: datetime


@register
class InvoicePaidV1(Event):
    """Checkout charged an invoice (produced by checkout)."""

    event_type: ClassVar[str] = "invoice.paid.v1"

    invoice_id: str
    subscription_id: str
    customer_id: str | None = None
    attempt: int = 1
    payment_id: str | None = None
    payment_intent_id: str | None = None
    amount: int
    currency: str
    paid_at: datetime


@register
class InvoicePaymentFailedV1(Event):
    """Checkout could not charge an invoice (produced by checkout). `failure_code` and
    `decline_code` are Stripe's; `hard_decline` says retrying cannot succeed (stolen card,
    closed account, authentication required off-session...): when null, subscriptions
    decides from the codes."""

    event_type: ClassVar[str] = "invoice.payment_failed.v1"

    invoice_id: str
    subscription_id: str
    customer_id: str | None = None
    attempt: int = 1
    payment_id: str | None = None
    payment_intent_id: str | None = None
    amount: int
    currency: str
    failure_code: str | None = None
    decline_code: str | None = None
    failure_message: str | None = None
    hard_decline: bool | None = None
    failed_at: datetime


@register
class InvoiceVoidedV1(Event):
    """An open invoice will never be collected (its subscription was canceled): checkout must
    not charge it, and refunds it if a charge raced the cancellation."""

    event_type: ClassVar[str] = "invoice.voided.v1"

    invoice_id: str
    subscription_id: str
    customer_id: str
    voided_at: datetime


# --- Catalog: products and prices (catalog service) -------------------------------------


@register
class ProductUpdatedV1(Event):
    """A product changed (updated or archived): price snapshots cached from it may be
    stale. A consumer caching snapshots (checkout) drops this product's at once."""

    event_type: ClassVar[str] = "product.updated.v1"

    product_id: str
    name: str
    visible: bool
    active: bool  # false once archived: none of its prices can be bought any more
    features: list[str] = Field(default_factory=list)
    updated_at: datetime


@register
class PriceDeletedV1(Event):
    """A price was deleted (soft): it can no longer be bought; past checkouts keep it."""

    event_type: ClassVar[str] = "price.deleted.v1"

    price_id: str
    product_id: str
    deleted_at: datetime
