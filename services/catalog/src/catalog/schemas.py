"""Request and response shapes of the catalog service.

Public (through the gateway; docs/api.md "Catalog"): products, prices, coupons. Responses are
built as plain dicts by the `*_out` functions below (serialized with orjson; the
pydantic `*Out` models document them in the OpenAPI and are checked against them in
the tests). Times are ISO-8601 UTC (`...Z`), amounts integers in minor units.

Internal (the routes, their rules and errors: api.py): `SnapshotOut` (a price snapshot),
`CouponEvaluateIn`, `CouponReserveIn`, `CouponReleaseIn`, `EvaluationOut` and
`ReleaseOut` (coupons), `DemoOut` (the demo data).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import Row

from bos_common.events import AppliedCoupon, PriceSnapshot
from bos_common.fields import (
    PG_INTEGER_MAX,
    JsonDecimal,
    JsonInteger,
    Metadata,
    non_blank_text,
)
from bos_common.ids import id_pattern
from catalog.money import CURRENCIES, MAX_AMOUNT, annual_savings, monthly_equivalent

# --------------------------------------------------------------------------- inputs


def _currency(value: str) -> str:
    # Lower- or upper-case ISO-4217 (`usd`, `USD`), stored lower-case: the schema's enum.
    code = value.lower()
    if code not in CURRENCIES or value not in (code, value.upper()):
        raise ValueError("must be a three-letter ISO-4217 currency code")
    return code


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


CURRENCY_CODES = sorted(CURRENCIES) + sorted(code.upper() for code in CURRENCIES)
Currency = Annotated[
    str, AfterValidator(_currency), Field(json_schema_extra={"enum": CURRENCY_CODES})
]
Name = Annotated[str, non_blank_text(255)]
Feature = Annotated[str, non_blank_text(255)]
Amount = Annotated[int, JsonInteger(ge=0, le=MAX_AMOUNT)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
Code = Annotated[str, StringConstraints(strip_whitespace=True, pattern=CODE_PATTERN)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProductCreate(_In):
    name: Name
    description: Annotated[str | None, Field(max_length=5000)] = None
    visible: StrictBool = True
    features: Annotated[list[Feature], Field(max_length=100)] = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=dict)


class ProductUpdate(_In):
    """Only the fields sent change; `description: null` clears it."""

    # Only `description` may be null (service.update_product refuses null for the others).
    name: Name | SkipJsonSchema[None] = None
    description: Annotated[str | None, Field(max_length=5000)] = None
    visible: StrictBool | SkipJsonSchema[None] = None
    features: Annotated[list[Feature], Field(max_length=100)] | SkipJsonSchema[None] = None
    metadata: Metadata | SkipJsonSchema[None] = None


# service._check_price_shape as the schema states it: a recurring price has an interval,
# a one-time price neither an interval nor trial days.
_PRICE_SHAPE: dict[str, Any] = {
    "anyOf": [
        {
            "properties": {"type": {"const": "recurring"}, "interval": {"enum": ["month", "year"]}},
            "required": ["interval"],
        },
        {
            "properties": {
                "type": {"const": "one_time"},
                "interval": {"type": "null"},
                "trial_days": {"const": 0},
            }
        },
    ]
}
# service._check_coupon_shape as the schema states it: one discount (percent_off, or
# amount_off with its currency, or only trial days), and duration_in_months exactly when
# the duration is "repeating".
_SET: dict[str, Any] = {"type": ["number", "string"]}  # not null
_UNSET: dict[str, Any] = {"type": "null"}
_COUPON_SHAPE: dict[str, Any] = {
    "allOf": [
        {
            "anyOf": [
                {
                    "properties": {"percent_off": _SET, "amount_off": _UNSET, "currency": _UNSET},
                    "required": ["percent_off"],
                },
                {
                    "properties": {"percent_off": _UNSET, "amount_off": _SET, "currency": _SET},
                    "required": ["amount_off", "currency"],
                },
                {
                    "properties": {
                        "percent_off": _UNSET,
                        "amount_off": _UNSET,
                        "currency": _UNSET,
                        "trial_extension_days": {"minimum": 1},
                    },
                    "required": ["trial_extension_days"],
                },
            ]
        },
        {
            "anyOf": [
                {
                    "properties": {"duration": {"const": "repeating"}, "duration_in_months": _SET},
                    "required": ["duration", "duration_in_months"],
                },
                {
                    "properties": {
                        "duration": {"enum": ["once", "forever"]},
                        "duration_in_months": _UNSET,
                    }
                },
            ]
        },
    ]
}


class PriceCreate(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_PRICE_SHAPE)

    product_id: Id
    amount: Amount
    currency: Currency
    type: Literal["recurring", "one_time"]
    interval: Literal["month", "year"] | None = None
    trial_days: Annotated[int, JsonInteger(ge=0, le=730)] = 0
    setup_fee: Amount = 0


class CouponCreate(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_COUPON_SHAPE)

    code: Code
    percent_off: Annotated[Decimal, JsonDecimal(gt=0, le=100, decimal_places=2)] | None = None
    amount_off: Annotated[int, JsonInteger(gt=0, le=MAX_AMOUNT)] | None = None
    currency: Currency | None = None
    duration: Literal["once", "forever", "repeating"] = "once"
    duration_in_months: Annotated[int, JsonInteger(ge=1, le=120)] | None = None
    expires_at: datetime | None = None
    product_ids: Annotated[list[Id], Field(min_length=1, max_length=100)] | None = None
    new_customers_only: StrictBool = False
    max_redemptions: Annotated[int, JsonInteger(ge=1, le=PG_INTEGER_MAX)] | None = None
    trial_extension_days: Annotated[int, JsonInteger(ge=0, le=365)] = 0
    metadata: Metadata = Field(default_factory=dict)

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        return _aware(v)


class ProductListQuery(BaseModel):
    """`GET /v1/products` query parameters."""

    limit: Annotated[int, Field(ge=1, le=100)] = 20
    starting_after: Annotated[str | None, Field(pattern=id_pattern("prod"))] = None
    active: bool | None = None
    visible: bool | None = None


class CouponEvaluateIn(_In):
    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    product_id: Id
    amount: Amount
    currency: Currency
    customer_is_new: bool
    price_id: Id | None = None
    checkout_id: Id | None = None


class CouponReserveIn(CouponEvaluateIn):
    checkout_id: Id  # required here
    customer_id: Id | None = None
    ttl_seconds: Annotated[int, Field(ge=60, le=7 * 86400)] = 3600


class CouponReleaseIn(_In):
    checkout_id: Id
    coupon_id: Id | None = None


# --------------------------------------------------------------------------- outputs
# The dicts the routes return (fast path), and the models that document them.


def _mapping(row: Any) -> Any:
    """Column access by name for a SQLAlchemy Row or an asyncpg Record alike."""
    return row._mapping if isinstance(row, Row) else row


def _raw_json(value: Any) -> Any:
    """A JSONB column fetched as text (hot paths) is embedded in the response as is."""
    return orjson.Fragment(value) if isinstance(value, str) else value


def product_out(row: Any) -> dict[str, Any]:
    r = _mapping(row)
    return {
        "id": r["id"],
        "object": "product",
        "name": r["name"],
        "description": r["description"],
        "active": r["archived_at"] is None,
        "visible": r["visible"],
        "features": _raw_json(r["features"]),
        "metadata": _raw_json(r["metadata"]),
        "archived_at": r["archived_at"],
        "created_at": r["created_at"],
        "updated_at": r["updated_at"],
    }


def products_out(records: list[Any]) -> list[dict[str, Any]]:
    """`product_out` of the listing's asyncpg records (repository.PRODUCT_COLUMNS, read by
    position, cheaper than by name, on the hottest route); the same dicts, which the
    tests check against product_out."""
    return [
        {
            "id": r[0],
            "object": "product",
            "name": r[1],
            "description": r[2],
            "active": r[4] is None,
            "visible": r[3],
            "features": orjson.Fragment(r[5]),
            "metadata": orjson.Fragment(r[6]),
            "archived_at": r[4],
            "created_at": r[7],
            "updated_at": r[8],
        }
        for r in records
    ]


def savings_out(
    amount: int, interval: str | None, monthly_id: str | None, monthly_amount: int | None
) -> dict[str, Any] | None:
    if interval != "year" or monthly_id is None or monthly_amount is None:
        return None
    saved = annual_savings(amount, monthly_amount)
    if saved is None:
        return None
    return {"amount": saved[0], "percent": saved[1], "compared_to_price_id": monthly_id}


def monthly_equivalent_of(amount: int, type_: str, interval: str | None) -> int | None:
    if type_ != "recurring":
        return None
    return monthly_equivalent(amount) if interval == "year" else amount


def price_out(
    row: Any, monthly_id: str | None = None, monthly_amount: int | None = None
) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "price",
        "product_id": row.product_id,
        "active": row.deleted_at is None,
        "amount": row.amount,
        "currency": row.currency,
        "type": row.type,
        "interval": row.interval,
        "trial_days": row.trial_days,
        "setup_fee": row.setup_fee,
        "is_free": row.amount == 0 and row.setup_fee == 0,
        "monthly_equivalent": monthly_equivalent_of(row.amount, row.type, row.interval),
        "savings": savings_out(row.amount, row.interval, monthly_id, monthly_amount),
        "deleted_at": row.deleted_at,
        "created_at": row.created_at,
    }


def percent_out(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def coupon_out(row: Any, *, now: datetime) -> dict[str, Any]:
    expired = row.expires_at is not None and row.expires_at <= now
    exhausted = row.max_redemptions is not None and row.times_redeemed >= row.max_redemptions
    return {
        "id": row.id,
        "object": "coupon",
        "code": row.code,
        "percent_off": percent_out(row.percent_off),
        "amount_off": row.amount_off,
        "currency": row.currency,
        "duration": row.duration,
        "duration_in_months": row.duration_in_months,
        "expires_at": row.expires_at,
        "product_ids": row.product_ids,
        "new_customers_only": row.new_customers_only,
        "max_redemptions": row.max_redemptions,
        "times_redeemed": row.times_redeemed,
        "trial_extension_days": row.trial_extension_days,
        "valid": not expired and not exhausted,
        "metadata": row.metadata,
        "created_at": row.created_at,
    }


def applied_coupon(row: Any) -> AppliedCoupon:
    return AppliedCoupon(
        coupon_id=row.id,
        code=row.code,
        percent_off=percent_out(row.percent_off),
        amount_off=row.amount_off,
        currency=row.currency,
        duration=row.duration,
        duration_in_months=row.duration_in_months,
        trial_extension_days=row.trial_extension_days,
    )


def page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more}


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProductOut(_Out):
    id: str
    object: Literal["product"]
    name: str
    description: str | None
    active: bool
    visible: bool
    features: list[str]
    metadata: dict[str, str]
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SavingsOut(_Out):
    amount: int
    percent: float
    compared_to_price_id: str


class PriceOut(_Out):
    id: str
    object: Literal["price"]
    product_id: str
    active: bool
    amount: int
    currency: str
    type: Literal["recurring", "one_time"]
    interval: Literal["month", "year"] | None
    trial_days: int
    setup_fee: int
    is_free: bool
    monthly_equivalent: int | None
    savings: SavingsOut | None
    deleted_at: datetime | None
    created_at: datetime


class CouponOut(_Out):
    id: str
    object: Literal["coupon"]
    code: str
    percent_off: float | None
    amount_off: int | None
    currency: str | None
    duration: Literal["once", "forever", "repeating"]
    duration_in_months: int | None
    expires_at: datetime | None
    product_ids: list[str] | None
    new_customers_only: bool
    max_redemptions: int | None
    times_redeemed: int
    trial_extension_days: int
    valid: bool
    metadata: dict[str, str]
    created_at: datetime


class ProductList(_Out):
    object: Literal["list"]
    data: list[ProductOut]
    has_more: bool


class PriceList(_Out):
    object: Literal["list"]
    data: list[PriceOut]
    has_more: bool


class CouponList(_Out):
    object: Literal["list"]
    data: list[CouponOut]
    has_more: bool


class SnapshotProduct(_Out):
    id: str
    name: str
    description: str | None
    visible: bool
    active: bool
    metadata: dict[str, str]


class SnapshotOut(_Out):
    snapshot: PriceSnapshot
    product: SnapshotProduct
    monthly_equivalent: int | None
    savings: SavingsOut | None
    available: bool
    reason: Literal["product_not_available", "price_not_available"] | None


class ReservationOut(_Out):
    checkout_id: str
    status: Literal["reserved", "redeemed"]
    expires_at: datetime | None


class EvaluationOut(_Out):
    coupon: AppliedCoupon
    amount_subtotal: int
    amount_discount: int
    amount_total: int
    trial_extension_days: int
    reservation: ReservationOut | None


class ReleaseOut(_Out):
    released: int


class DemoProductOut(_Out):
    product_id: str
    price_id: str


class DemoOut(_Out):
    org_id: str
    created: bool
    # What the merchant had archived or deleted and the seeding made again, one line each.
    restored: list[str] = Field(default_factory=list)
    products: dict[str, DemoProductOut]
    coupons: dict[str, str]


def is_code(value: str) -> bool:
    return re.match(CODE_PATTERN, value) is not None
