"""Request and response shapes of the checkout API (docs/api.md "Checkout")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from bos_common.fields import Metadata, document_required

MAX_METADATA_KEYS = 50


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# email-validator (service.normalize_email) refuses special-use domains (RFC 6761) as
# undeliverable; the schema says so. A documentation pattern only (look-ahead).
EMAIL_DOMAIN_PATTERN = r"^(?!.*\.(?:arpa|invalid|local|localhost|onion|test)\.?$)"


class CustomerIn(Strict):
    # Required, but checked by service.normalize_email (the contract's 422 `email_required`
    # and `invalid_email`, not a generic validation error); the schema says so.
    model_config = ConfigDict(json_schema_extra=document_required("email"))

    email: Annotated[str, Field(max_length=320)] | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra={"format": "email", "pattern": EMAIL_DOMAIN_PATTERN}
    )
    name: str | None = Field(default=None, max_length=200)


class CreateCheckoutSession(Strict):
    model_config = ConfigDict(json_schema_extra=document_required("customer"))

    price_id: str = Field(min_length=1, max_length=64)
    customer: CustomerIn = Field(default_factory=CustomerIn)
    coupon_code: str | None = Field(default=None, min_length=1, max_length=64)
    metadata: Metadata = Field(default_factory=dict)
    success_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://")


class ApplyCoupon(Strict):
    code: str = Field(min_length=1, max_length=64)


# A Stripe object id (`pm_...`): ASCII letters, digits and underscores.
STRIPE_ID_PATTERN = r"^[A-Za-z0-9_]+$"


class Confirm(Strict):
    payment_method: str = Field(min_length=3, max_length=255, pattern=STRIPE_ID_PATTERN)


class ProductOut(BaseModel):
    id: str
    name: str
    features: list[str]


class TrialOut(BaseModel):
    days: int
    ends_at: datetime


class CustomerOut(BaseModel):
    id: str | None
    email: str
    name: str | None


class PaymentOut(BaseModel):
    id: str
    status: str
    amount: int
    currency: str
    platform_fee: int
    net_amount: int
    error: dict[str, str] | None = None


class CheckoutSessionOut(BaseModel):
    id: str
    object: Literal["checkout_session"] = "checkout_session"
    status: str
    price_id: str
    product: ProductOut
    currency: str
    interval: str | None
    amount_subtotal: int
    amount_discount: int
    amount_total: int
    setup_fee: int
    is_free: bool
    trial: TrialOut | None
    coupon: dict[str, Any] | None
    customer: CustomerOut
    metadata: dict[str, str]
    url: str
    success_url: str | None
    expires_at: datetime
    subscription_id: str | None
    payment: PaymentOut | None
    client_secret: str | None = Field(
        default=None, description="Shown once, at creation: authorizes the hosted page."
    )


class NextAction(BaseModel):
    type: Literal["use_stripe_sdk"] = "use_stripe_sdk"
    client_secret: str


class ErrorOut(BaseModel):
    code: str
    message: str


class ConfirmOut(BaseModel):
    status: Literal["processing", "requires_action", "complete", "failed"]
    checkout_id: str
    payment_id: str | None = None
    next_action: NextAction | None = None
    error: ErrorOut | None = None


class CustomerRecord(BaseModel):
    id: str
    object: Literal["customer"] = "customer"
    email: str
    name: str | None
    external_user_id: str | None
    # 4.8: the card that paid last, saved for renewals (a Stripe PaymentMethod id).
    default_payment_method: str | None = Field(
        default=None, validation_alias="default_payment_method_id"
    )
    created_at: datetime


class CustomerList(BaseModel):
    data: list[CustomerRecord]
    has_more: bool


class PayoutScheduleState(BaseModel):
    """The organization's payout schedule and what Stripe answered when BOS applied it to
    the connected account: `pending` until it has been applied, `refused` (with Stripe's
    error) when the platform may not change that account's payout settings."""

    schedule: dict[str, Any]
    status: Literal["pending", "applied", "refused"]
    error: ErrorOut | None = None
    updated_at: datetime | None = None


class ConnectedAccountOut(BaseModel):
    id: str
    object: Literal["connected_account"] = "connected_account"
    # As Stripe last reported them; None when Stripe cannot say (unknown account).
    charges_enabled: bool | None
    payouts_enabled: bool | None
    payout_schedule: PayoutScheduleState
