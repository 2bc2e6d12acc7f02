"""The rows of checkout's tables, typed: one frozen record per entity as the repository
reads it (`from_row`, its one constructor from a SQL result: a Core row's mapping or a
driver record), and the projections some statements return instead of a whole row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Checkout:
    """A checkout session (JSONB columns decoded: `price` is a
    bos_common.events.PriceSnapshot's dump, `coupon` an AppliedCoupon's)."""

    id: str
    org_id: str
    status: str
    client_secret_hash: str
    price_id: str
    product_id: str
    price: dict[str, Any]
    currency: str
    amount_subtotal: int
    amount_discount: int
    amount_total: int
    setup_fee: int
    is_free: bool
    trial_days: int
    coupon: dict[str, Any] | None
    customer_id: str
    customer_email: str
    customer_name: str | None
    external_user_id: str | None
    metadata: dict[str, Any]
    success_url: str | None
    attempt: int
    payment_id: str | None
    last_error: dict[str, Any] | None
    subscription_id: str | None
    expires_at: datetime
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Checkout:
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            status=row["status"],
            client_secret_hash=row["client_secret_hash"],
            price_id=row["price_id"],
            product_id=row["product_id"],
            price=row["price"],
            currency=row["currency"],
            amount_subtotal=row["amount_subtotal"],
            amount_discount=row["amount_discount"],
            amount_total=row["amount_total"],
            setup_fee=row["setup_fee"],
            is_free=row["is_free"],
            trial_days=row["trial_days"],
            coupon=row["coupon"],
            customer_id=row["customer_id"],
            customer_email=row["customer_email"],
            customer_name=row["customer_name"],
            external_user_id=row["external_user_id"],
            metadata=row["metadata"],
            success_url=row["success_url"],
            attempt=row["attempt"],
            payment_id=row["payment_id"],
            last_error=row["last_error"],
            subscription_id=row["subscription_id"],
            expires_at=row["expires_at"],
            completed_at=row["completed_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class ExpiredCheckout:
    """A checkout the expiry sweep closed: what giving its coupon back needs."""

    id: str
    org_id: str
    coupon: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> ExpiredCheckout:
        return cls(id=row["id"], org_id=row["org_id"], coupon=row["coupon"])


@dataclass(frozen=True, slots=True)
class Payment:
    """A payment: a checkout's charge (`checkout`, or `setup` for a card saved during a
    trial), a subscription's renewal or a card update."""

    id: str
    org_id: str
    kind: str
    checkout_id: str | None
    invoice_id: str | None
    subscription_id: str | None
    customer_id: str
    attempt: int
    status: str
    amount: int
    currency: str
    platform_fee: int
    net_amount: int
    destination_account: str | None
    connect_mode: str | None
    stripe_intent_id: str | None
    stripe_idempotency_key: str
    payment_method_id: str | None
    intent_traceparent: str | None
    card_fingerprint: str | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Payment:
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            kind=row["kind"],
            checkout_id=row["checkout_id"],
            invoice_id=row["invoice_id"],
            subscription_id=row["subscription_id"],
            customer_id=row["customer_id"],
            attempt=row["attempt"],
            status=row["status"],
            amount=row["amount"],
            currency=row["currency"],
            platform_fee=row["platform_fee"],
            net_amount=row["net_amount"],
            destination_account=row["destination_account"],
            connect_mode=row["connect_mode"],
            stripe_intent_id=row["stripe_intent_id"],
            stripe_idempotency_key=row["stripe_idempotency_key"],
            payment_method_id=row["payment_method_id"],
            intent_traceparent=row["intent_traceparent"],
            card_fingerprint=row["card_fingerprint"],
            error_code=row["error_code"],
            error_message=row["error_message"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class OrphanedPayment:
    """A pending payment taken over from a confirm that died: what its intent's create is
    built from (stripe_creates.intent_create), the intent Stripe gave it if recorded, and
    its customer's Stripe id (None: confirm died before creating the Stripe customer)."""

    id: str
    org_id: str
    kind: str
    checkout_id: str
    customer_id: str
    attempt: int
    amount: int
    currency: str
    platform_fee: int
    destination_account: str | None
    connect_mode: str | None
    payment_method_id: str | None
    intent_traceparent: str | None
    stripe_intent_id: str | None
    stripe_idempotency_key: str
    stripe_customer_id: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> OrphanedPayment:
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            kind=row["kind"],
            checkout_id=row["checkout_id"],
            customer_id=row["customer_id"],
            attempt=row["attempt"],
            amount=row["amount"],
            currency=row["currency"],
            platform_fee=row["platform_fee"],
            destination_account=row["destination_account"],
            connect_mode=row["connect_mode"],
            payment_method_id=row["payment_method_id"],
            intent_traceparent=row["intent_traceparent"],
            stripe_intent_id=row["stripe_intent_id"],
            stripe_idempotency_key=row["stripe_idempotency_key"],
            stripe_customer_id=row["stripe_customer_id"],
            created_at=row["created_at"],
        )


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer: one per organization and email (in any case), with its Stripe customer
    and the card that paid last (its default for renewals)."""

    id: str
    org_id: str
    email: str
    name: str | None
    external_user_id: str | None
    stripe_customer_id: str | None
    default_payment_method_id: str | None
    card_fingerprint: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Customer:
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            email=row["email"],
            name=row["name"],
            external_user_id=row["external_user_id"],
            stripe_customer_id=row["stripe_customer_id"],
            default_payment_method_id=row["default_payment_method_id"],
            card_fingerprint=row["card_fingerprint"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class PayingCustomer:
    """The customer of a payment a confirm starts, as repository.start_payment returns it
    beside the payment (its columns prefixed there): what creating its Stripe customer
    and `checkout.completed.v1` need."""

    id: str
    org_id: str
    email: str
    name: str | None
    external_user_id: str | None
    stripe_customer_id: str | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> PayingCustomer:
        return cls(
            id=row["paying_customer_id"],
            org_id=row["org_id"],
            email=row["customer_email"],
            name=row["customer_name"],
            external_user_id=row["customer_external_user_id"],
            stripe_customer_id=row["stripe_customer_id"],
        )


# A payment whose intent is created by a confirm: the one it started, or one taken over
# from a confirm that died.
ConfirmedPayment = Payment | OrphanedPayment

# A customer as confirm or fulfilment has it: read whole, or with the payment it pays.
BuyingCustomer = Customer | PayingCustomer
