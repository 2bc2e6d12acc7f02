"""The row types of the service's data.

`Subscription`, `Invoice` and `Notification`: rows, typed (built once, by the repository,
from the SQL result, or by billing for a new one). `Changes`: what a decision changes in a
row (column name to new value). `Row`: any other record as a dict (a projection of a few
columns, a payment attempt, an event's or a response's fields)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

Row = dict[str, Any]
# The changed columns of a row, column name to new value (an UPDATE's SET).
Changes = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription: what a customer bought, its periods, trial, cancellation and
    billing state. `features` and `metadata` are None when not read (the scheduler's claim
    leaves them out: its decisions never use them)."""

    id: str
    org_id: str
    customer_id: str
    customer_email: str | None
    customer_name: str | None
    external_user_id: str | None
    checkout_id: str | None
    product_id: str
    product_name: str
    price_id: str
    price_type: str  # recurring | one_time
    interval: str | None  # month | year | None (one-time, free)
    amount: int
    currency: str
    is_free: bool
    features: list[str] | None
    metadata: dict[str, Any] | None
    status: str  # incomplete | trialing | active | past_due | canceled
    billing_anchor: datetime | None
    current_period_start: datetime
    current_period_end: datetime | None
    trial_start: datetime | None
    trial_end: datetime | None
    trial_reminder_for: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    ended_at: datetime | None
    cancel_reason: str | None
    coupon: dict[str, Any] | None
    discount_start: datetime | None
    stripe_customer_id: str | None
    payment_method_id: str | None
    card_fingerprint: str | None
    payment_method_updated_at: datetime | None
    latest_invoice_id: str | None
    pending_invoice_id: str | None
    past_due_since: datetime | None
    hard_declined: bool
    next_action: str | None
    next_action_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Subscription:
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            customer_id=row["customer_id"],
            customer_email=row["customer_email"],
            customer_name=row["customer_name"],
            external_user_id=row["external_user_id"],
            checkout_id=row["checkout_id"],
            product_id=row["product_id"],
            product_name=row["product_name"],
            price_id=row["price_id"],
            price_type=row["price_type"],
            interval=row["interval"],
            amount=row["amount"],
            currency=row["currency"],
            is_free=row["is_free"],
            features=row.get("features"),
            metadata=row.get("metadata"),
            status=row["status"],
            billing_anchor=row["billing_anchor"],
            current_period_start=row["current_period_start"],
            current_period_end=row["current_period_end"],
            trial_start=row["trial_start"],
            trial_end=row["trial_end"],
            trial_reminder_for=row["trial_reminder_for"],
            cancel_at_period_end=row["cancel_at_period_end"],
            canceled_at=row["canceled_at"],
            ended_at=row["ended_at"],
            cancel_reason=row["cancel_reason"],
            coupon=row["coupon"],
            discount_start=row["discount_start"],
            stripe_customer_id=row["stripe_customer_id"],
            payment_method_id=row["payment_method_id"],
            card_fingerprint=row["card_fingerprint"],
            payment_method_updated_at=row["payment_method_updated_at"],
            latest_invoice_id=row["latest_invoice_id"],
            pending_invoice_id=row["pending_invoice_id"],
            past_due_since=row["past_due_since"],
            hard_declined=row["hard_declined"],
            next_action=row["next_action"],
            next_action_at=row["next_action_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def values(self) -> dict[str, Any]:
        """Column name to value, for an INSERT."""
        return {name: getattr(self, name) for name in SUBSCRIPTION_COLUMNS}


SUBSCRIPTION_COLUMNS = tuple(f.name for f in fields(Subscription))


@dataclass(frozen=True, slots=True)
class Invoice:
    """An invoice: what is billed for one period (or a checkout), its payment state.
    `number` is None on a new invoice (billing's): its writer numbers the row it inserts."""

    id: str
    org_id: str
    number: str | None
    subscription_id: str
    customer_id: str
    customer_email: str | None
    customer_name: str | None
    status: str  # open | paid | void | uncollectible
    billing_reason: str
    currency: str
    subtotal: int
    discount_amount: int
    tax: int
    total: int
    amount_due: int
    amount_paid: int
    lines: list[dict[str, Any]]
    discount: dict[str, Any] | None
    period_start: datetime
    period_end: datetime | None
    attempt_count: int
    next_payment_attempt: datetime | None
    payment_id: str | None
    payment_intent_id: str | None
    paid_at: datetime | None
    voided_at: datetime | None
    last_failure_code: str | None
    last_failure_message: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Invoice:
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            number=row["number"],
            subscription_id=row["subscription_id"],
            customer_id=row["customer_id"],
            customer_email=row["customer_email"],
            customer_name=row["customer_name"],
            status=row["status"],
            billing_reason=row["billing_reason"],
            currency=row["currency"],
            subtotal=row["subtotal"],
            discount_amount=row["discount_amount"],
            tax=row["tax"],
            total=row["total"],
            amount_due=row["amount_due"],
            amount_paid=row["amount_paid"],
            lines=row["lines"],
            discount=row["discount"],
            period_start=row["period_start"],
            period_end=row["period_end"],
            attempt_count=row["attempt_count"],
            next_payment_attempt=row["next_payment_attempt"],
            payment_id=row["payment_id"],
            payment_intent_id=row["payment_intent_id"],
            paid_at=row["paid_at"],
            voided_at=row["voided_at"],
            last_failure_code=row["last_failure_code"],
            last_failure_message=row["last_failure_message"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def values(self) -> dict[str, Any]:
        """Column name to value, for an INSERT."""
        return {name: getattr(self, name) for name in INVOICE_COLUMNS}


INVOICE_COLUMNS = tuple(f.name for f in fields(Invoice))


@dataclass(frozen=True, slots=True)
class Notification:
    """A customer e-mail to send: its kind, address, template context and delivery state."""

    id: uuid.UUID
    org_id: str
    kind: str
    dedupe_key: str
    to_email: str
    context: dict[str, Any]
    invoice_id: str | None
    status: str  # pending | sent | failed
    attempts: int
    next_attempt_at: datetime
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Notification:
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            kind=row["kind"],
            dedupe_key=row["dedupe_key"],
            to_email=row["to_email"],
            context=row["context"],
            invoice_id=row["invoice_id"],
            status=row["status"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            created_at=row["created_at"],
        )
