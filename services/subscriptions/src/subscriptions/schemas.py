"""Request and response models (snake_case, prefixed ids, amounts in minor units, times
in ISO-8601 UTC)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from bos_common.fields import JsonInteger
from subscriptions import billing
from subscriptions.rows import Invoice as InvoiceRow
from subscriptions.rows import Row
from subscriptions.rows import Subscription as SubscriptionRow


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CancelRequest(_In):
    at_period_end: StrictBool = False


class PortalCancelRequest(_In):
    at_period_end: StrictBool = True


class ExtendTrialRequest(_In):
    days: Annotated[int, JsonInteger(ge=1, le=365)]


class PortalCardUpdate(_In):
    """`POST /v1/portal/payment-methods`: optionally the card already collected."""

    payment_method: str | None = Field(
        default=None, min_length=3, max_length=255, pattern=r"^[A-Za-z0-9_]+$"
    )


class ClockRequest(_In):
    now: datetime | None = None
    advance_seconds: float | None = None
    reset: bool = False


class Discount(BaseModel):
    coupon_id: str | None = None
    code: str | None = None
    percent_off: float | None = None
    amount_off: int | None = None
    duration: str | None = None
    duration_in_months: int | None = None
    start: datetime | None = None
    end: datetime | None = None


class Subscription(BaseModel):
    id: str
    object: Literal["subscription"] = "subscription"
    status: str
    customer_id: str
    external_user_id: str | None
    product_id: str
    product_name: str
    price_id: str
    interval: str | None
    amount: int
    currency: str
    is_free: bool
    features: list[str]
    current_period_start: datetime
    current_period_end: datetime | None
    trial_start: datetime | None
    trial_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    ended_at: datetime | None
    cancel_reason: str | None
    metadata: dict[str, str]
    discount: Discount | None
    latest_invoice_id: str | None
    checkout_id: str | None
    created_at: datetime


class NextBilling(BaseModel):
    date: datetime
    amount: int
    currency: str


class Plan(BaseModel):
    product_id: str
    product_name: str
    price_id: str
    amount: int
    currency: str
    interval: str | None
    features: list[str]


class PortalSubscription(Subscription):
    plan: Plan
    next_billing: NextBilling | None


class SubscriptionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Subscription]
    has_more: bool


class PortalSubscriptionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PortalSubscription]
    has_more: bool


class InvoiceLine(BaseModel):
    type: str
    description: str
    quantity: int = 1
    unit_amount: int
    amount: int
    period_start: datetime | None = None
    period_end: datetime | None = None


class InvoiceDiscount(BaseModel):
    coupon_id: str | None = None
    code: str | None = None
    percent_off: float | None = None
    amount_off: int | None = None
    duration: str | None = None
    duration_in_months: int | None = None
    amount: int


class PaymentError(BaseModel):
    code: str | None
    message: str | None


class Invoice(BaseModel):
    id: str
    object: Literal["invoice"] = "invoice"
    number: str
    status: str
    subscription_id: str
    customer_id: str
    customer_email: str | None
    customer_name: str | None
    billing_reason: str
    currency: str
    subtotal: int
    discount_amount: int
    discount: InvoiceDiscount | None
    tax: int
    total: int
    amount_due: int
    amount_paid: int
    amount_remaining: int
    lines: list[InvoiceLine]
    period_start: datetime
    period_end: datetime | None
    attempt_count: int
    next_payment_attempt: datetime | None
    paid_at: datetime | None
    voided_at: datetime | None
    last_payment_error: PaymentError | None
    created_at: datetime
    pdf_url: str


class InvoiceList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Invoice]
    has_more: bool


class Payment(BaseModel):
    id: str
    object: Literal["payment_attempt"] = "payment_attempt"
    invoice_id: str
    invoice_number: str
    subscription_id: str
    attempt: int
    status: str
    amount: int
    currency: str
    payment_id: str | None
    failure_code: str | None
    failure_message: str | None
    created_at: datetime


class PaymentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Payment]
    has_more: bool


class Entitlement(BaseModel):
    feature: str
    product_id: str
    subscription_id: str
    status: str
    expires_at: datetime | None


class Entitlements(BaseModel):
    object: Literal["entitlements"] = "entitlements"
    customer_id: str | None
    external_user_id: str | None
    features: list[str]
    data: list[Entitlement]


# --- presenters ------------------------------------------------------------------------------


def discount_of(sub: SubscriptionRow) -> Discount | None:
    coupon = sub.coupon
    if not coupon:
        return None
    start = sub.discount_start
    return Discount(
        coupon_id=coupon.get("coupon_id"),
        code=coupon.get("code"),
        percent_off=coupon.get("percent_off"),
        amount_off=coupon.get("amount_off"),
        duration=coupon.get("duration"),
        duration_in_months=coupon.get("duration_in_months"),
        start=start,
        end=billing.discount_end(coupon, start),
    )


def subscription_out(sub: SubscriptionRow) -> Subscription:
    return Subscription(**_subscription_fields(sub))


def _subscription_fields(sub: SubscriptionRow) -> Row:
    fields: dict[str, Any] = {
        name: getattr(sub, name)
        for name in Subscription.model_fields
        if name not in ("object", "discount")
    }
    fields["features"] = list(sub.features or [])
    fields["metadata"] = dict(sub.metadata or {})
    fields["cancel_at_period_end"] = bool(sub.cancel_at_period_end)
    fields["discount"] = discount_of(sub)
    return fields


def portal_subscription_out(sub: SubscriptionRow, next_billing: Row | None) -> PortalSubscription:
    return PortalSubscription(
        **_subscription_fields(sub),
        plan=Plan(
            product_id=sub.product_id,
            product_name=sub.product_name,
            price_id=sub.price_id,
            amount=sub.amount,
            currency=sub.currency,
            interval=sub.interval,
            features=list(sub.features or []),
        ),
        next_billing=NextBilling(**next_billing) if next_billing else None,
    )


def invoice_out(inv: InvoiceRow, *, pdf_base: str = "/v1/invoices") -> Invoice:
    fields: dict[str, Any] = {
        name: getattr(inv, name)
        for name in Invoice.model_fields
        if name
        not in ("object", "amount_remaining", "last_payment_error", "pdf_url", "lines", "discount")
    }
    remaining = inv.amount_due - inv.amount_paid if inv.status == "open" else 0
    error = (
        PaymentError(code=inv.last_failure_code, message=inv.last_failure_message)
        if inv.last_failure_code or inv.last_failure_message
        else None
    )
    return Invoice(
        **fields,
        amount_remaining=max(0, remaining),
        last_payment_error=error,
        lines=[InvoiceLine(**line) for line in inv.lines],
        discount=InvoiceDiscount(**inv.discount) if inv.discount else None,
        pdf_url=f"{pdf_base}/{inv.id}/pdf",
    )


def payment_out(row: Row) -> Payment:
    return Payment(
        id=f"{row['invoice_id']}:{row['attempt']}",
        invoice_id=row["invoice_id"],
        invoice_number=row["number"],
        subscription_id=row["subscription_id"],
        attempt=row["attempt"],
        status=row["status"],
        amount=row["amount"],
        currency=row["currency"],
        payment_id=row.get("payment_id"),
        failure_code=row.get("failure_code"),
        failure_message=row.get("failure_message"),
        created_at=row["created_at"],
    )
