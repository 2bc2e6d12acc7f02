"""Request and response shapes of the checkout API (API.md "Checkout")."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_METADATA_KEYS = 50


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerIn(Strict):
    email: str | None = Field(default=None, max_length=320)
    name: str | None = Field(default=None, max_length=200)


class CreateCheckoutSession(Strict):
    price_id: str = Field(min_length=1, max_length=64)
    customer: CustomerIn = Field(default_factory=CustomerIn)
    coupon_code: str | None = Field(default=None, min_length=1, max_length=64)
    metadata: dict[str, str] = Field(default_factory=dict)
    success_url: str | None = Field(default=None, max_length=2048)

    @field_validator("metadata")
    @classmethod
    def _metadata_bounds(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_METADATA_KEYS:
            raise ValueError(f"at most {MAX_METADATA_KEYS} metadata keys")
        if any(len(k) > 40 or len(v) > 500 for k, v in value.items()):
            raise ValueError("metadata keys are at most 40 and values 500 characters")
        return value

    @field_validator("success_url")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("success_url must be an http(s) URL")
        return value


class ApplyCoupon(Strict):
    code: str = Field(min_length=1, max_length=64)


class Confirm(Strict):
    payment_method: str = Field(min_length=3, max_length=255)


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
