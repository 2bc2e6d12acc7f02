"""Domain logic of the catalog: products, prices, coupons, snapshots and redemptions.

Never commits: the request (or the consumer) scope does. Every lookup is scoped to the
caller's organization, so another organization's object is "not found", never
"forbidden".

Coupon redemptions and `max_redemptions`: a slot is *reserved* for a checkout right
before it charges (`reserve_coupon`, under a row lock on the coupon, so concurrent
reserves of the last slot have exactly one winner), turned into a *redemption* by
`checkout.completed.v1` (`record_redemption`, idempotent per (coupon, checkout)), or
*released* when the checkout is canceled, expires or fails. Slots in use = redeemed +
live (unexpired) reservations; a lease that was never released lapses on its own.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import orjson
from prometheus_client import Counter
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.coupons import discount_for
from bos_common.errors import Conflict, InvalidRequest, NotFound, ValidationFailed
from bos_common.events import CheckoutCompletedV1, PriceDeletedV1, ProductUpdatedV1
from bos_common.ids import looks_like, new_id
from bos_common.outbox import add_event
from catalog import repository as repo
from catalog.models import outbox
from catalog.repository import Db
from catalog.schemas import (
    CouponCreate,
    CouponEvaluateIn,
    CouponReserveIn,
    PriceCreate,
    ProductCreate,
    ProductUpdate,
    applied_coupon,
    monthly_equivalent_of,
    savings_out,
)

log = logging.getLogger("catalog.service")

OVER_REDEEMED = Counter(
    "catalog_coupon_redemptions_without_slot_total",
    "Completed checkouts that used a coupon without holding a reservation while the coupon "
    "had no slot left (a caller skipped or outlived its reservation).",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


# Errors of the contract (docs/api.md "Checkout"): code and message are fixed.
def product_not_found() -> NotFound:
    return NotFound("product_not_found", "Product not found")


def product_not_available() -> InvalidRequest:
    return InvalidRequest("product_not_available", "Product not available")


def price_not_available() -> InvalidRequest:
    return InvalidRequest("price_not_available", "Price not available")


COUPON_ERRORS = {
    "invalid_coupon": "Invalid coupon code",
    "coupon_expired": "Coupon expired",
    "coupon_not_applicable": "Coupon not valid for this product",
    "coupon_new_customers_only": "Coupon for new customers only",
    "coupon_exhausted": "Coupon usage limit reached",
}


def coupon_error(code: str) -> InvalidRequest:
    return InvalidRequest(code, COUPON_ERRORS[code], param="coupon_code")


def _cursor(value: str | None, prefix: str) -> str | None:
    if value is None:
        return None
    if not looks_like(value, prefix):
        raise ValidationFailed(
            "parameter_invalid", f"starting_after must be a {prefix}_ id.", param="starting_after"
        )
    return value


def _page(rows: list[Any], limit: int) -> tuple[list[Any], bool]:
    return rows[:limit], len(rows) > limit


# --------------------------------------------------------------------------- products


async def create_product(session: AsyncSession, org_id: str, body: ProductCreate) -> Row[Any]:
    return await repo.insert_product(
        session,
        id=new_id("prod"),
        org_id=org_id,
        name=body.name,
        description=body.description,
        visible=body.visible,
        features=body.features,
        metadata=body.metadata,
    )


async def get_product(db: Db, org_id: str, product_id: str) -> Row[Any]:
    row = await repo.get_product(db, org_id, product_id) if looks_like(product_id, "prod") else None
    if row is None:
        raise product_not_found()
    return row


async def list_products(
    conn: asyncpg.Connection,
    org_id: str,
    *,
    limit: int,
    starting_after: str | None,
    active: bool | None,
    visible: bool | None,
) -> tuple[list[Any], bool]:
    rows = await repo.list_products(
        conn,
        org_id,
        limit=limit,
        starting_after=_cursor(starting_after, "prod"),
        active=active,
        visible=visible,
    )
    return _page(rows, limit)


async def update_product(
    session: AsyncSession, producer: str, org_id: str, product_id: str, body: ProductUpdate
) -> Row[Any]:
    changes = body.model_dump(exclude_unset=True)
    for field in ("name", "visible", "features", "metadata"):
        if field in changes and changes[field] is None:
            raise ValidationFailed("parameter_invalid", f"{field} cannot be null.", param=field)
    if not looks_like(product_id, "prod"):
        raise product_not_found()
    row = (
        await repo.update_product(session, org_id, product_id, changes)
        if changes
        else await repo.get_product(session, org_id, product_id)
    )
    if row is None:
        raise product_not_found()
    if changes:
        await _product_updated(session, producer, row)
    return row


async def archive_product(
    session: AsyncSession, producer: str, org_id: str, product_id: str
) -> Row[Any]:
    row = (
        await repo.archive_product(session, org_id, product_id)
        if looks_like(product_id, "prod")
        else None
    )
    if row is None:
        raise product_not_found()
    await _product_updated(session, producer, row)
    return row


async def _product_updated(session: AsyncSession, producer: str, row: Row[Any]) -> None:
    """Tell whoever caches price snapshots (checkout) that this product's are stale, in
    the transaction of the change (outbox)."""
    event = ProductUpdatedV1(
        product_id=row.id,
        name=row.name,
        visible=row.visible,
        active=row.archived_at is None,
        features=list(row.features or []),
        updated_at=row.updated_at,
    )
    await add_event(session, outbox, event, producer=producer, org_id=row.org_id)


# --------------------------------------------------------------------------- prices


def _check_price_shape(body: PriceCreate) -> None:
    if body.type == "recurring" and body.interval is None:
        raise ValidationFailed(
            "parameter_missing", "Missing required parameter: interval.", param="interval"
        )
    if body.type == "one_time":
        if body.interval is not None:
            raise ValidationFailed(
                "parameter_invalid",
                "interval is only allowed on recurring prices.",
                param="interval",
            )
        if body.trial_days:
            raise ValidationFailed(
                "parameter_invalid",
                "trial_days is only allowed on recurring prices.",
                param="trial_days",
            )


async def create_price(session: AsyncSession, org_id: str, body: PriceCreate) -> Row[Any]:
    _check_price_shape(body)
    product = await get_product(session, org_id, body.product_id)
    if product.archived_at is not None:
        raise product_not_available()
    price_id = new_id("price")
    await repo.insert_price(
        session,
        id=price_id,
        org_id=org_id,
        product_id=product.id,
        amount=body.amount,
        currency=body.currency,
        type=body.type,
        interval=body.interval,
        trial_days=body.trial_days,
        setup_fee=body.setup_fee,
    )
    return await get_price(session, org_id, price_id)


async def get_price(db: Db, org_id: str, price_id: str) -> Row[Any]:
    row = await repo.get_price(db, org_id, price_id) if looks_like(price_id, "price") else None
    if row is None:
        raise NotFound("price_not_found", "Price not found")
    return row


async def list_prices(
    db: Db,
    org_id: str,
    *,
    limit: int,
    starting_after: str | None,
    product_id: str | None,
    active: bool | None,
) -> tuple[list[Row[Any]], bool]:
    if product_id is not None and not looks_like(product_id, "prod"):
        return [], False
    rows = await repo.list_prices(
        db,
        org_id,
        limit=limit,
        starting_after=_cursor(starting_after, "price"),
        product_id=product_id,
        active=active,
    )
    return _page(rows, limit)


async def delete_price(
    session: AsyncSession, producer: str, org_id: str, price_id: str
) -> Row[Any]:
    """Soft delete: the price stays readable (and in past checkouts) but cannot be bought."""
    found = looks_like(price_id, "price") and await repo.soft_delete_price(
        session, org_id, price_id
    )
    if not found:
        raise NotFound("price_not_found", "Price not found")
    row = await get_price(session, org_id, price_id)
    event = PriceDeletedV1(price_id=row.id, product_id=row.product_id, deleted_at=row.deleted_at)
    await add_event(session, outbox, event, producer=producer, org_id=org_id)
    return row


# --------------------------------------------------------------------------- snapshot


async def price_snapshot(
    conn: asyncpg.Connection, org_id: str, price_id: str, *, include_unavailable: bool = False
) -> dict[str, Any]:
    """What checkout freezes when it opens a session (see schemas.py for the shape)."""
    row = (
        await repo.price_snapshot(conn, org_id, price_id) if looks_like(price_id, "price") else None
    )
    if row is None:
        raise product_not_found()
    reason: str | None = None
    if row["archived_at"] is not None:
        reason = "product_not_available"
    elif row["deleted_at"] is not None:
        reason = "price_not_available"
    if reason is not None and not include_unavailable:
        raise (
            product_not_available()
            if reason == "product_not_available"
            else (price_not_available())
        )
    amount, type_, interval = row["amount"], row["type"], row["interval"]
    return {
        "snapshot": {
            "price_id": row["id"],
            "product_id": row["product_id"],
            "product_name": row["product_name"],
            "amount": amount,
            "currency": row["currency"],
            "type": type_,
            "interval": interval,
            "trial_days": row["trial_days"],
            "setup_fee": row["setup_fee"],
            "features": orjson.Fragment(row["features"]),
        },
        "product": {
            "id": row["product_id"],
            "name": row["product_name"],
            "description": row["description"],
            "visible": row["visible"],
            "active": row["archived_at"] is None,
            "metadata": orjson.Fragment(row["metadata"]),
        },
        "monthly_equivalent": monthly_equivalent_of(amount, type_, interval),
        "savings": savings_out(amount, interval, row["monthly_id"], row["monthly_amount"]),
        "available": reason is None,
        "reason": reason,
    }


# --------------------------------------------------------------------------- coupons


def _check_coupon_shape(body: CouponCreate) -> None:
    def bad(code: str, message: str, param: str) -> ValidationFailed:
        return ValidationFailed(code, message, param=param)

    if body.percent_off is not None and body.amount_off is not None:
        raise bad(
            "parameter_invalid", "Use either percent_off or amount_off, not both.", "amount_off"
        )
    if body.amount_off is not None and body.currency is None:
        raise bad("parameter_missing", "Missing required parameter: currency.", "currency")
    if body.amount_off is None and body.currency is not None:
        raise bad("parameter_invalid", "currency is only allowed with amount_off.", "currency")
    if body.percent_off is None and body.amount_off is None and not body.trial_extension_days:
        raise bad(
            "parameter_missing",
            "A coupon needs percent_off, amount_off or trial_extension_days.",
            "percent_off",
        )
    if body.duration == "repeating" and body.duration_in_months is None:
        raise bad(
            "parameter_missing",
            "Missing required parameter: duration_in_months.",
            "duration_in_months",
        )
    if body.duration != "repeating" and body.duration_in_months is not None:
        raise bad(
            "parameter_invalid",
            "duration_in_months is only allowed with duration 'repeating'.",
            "duration_in_months",
        )


async def create_coupon(session: AsyncSession, org_id: str, body: CouponCreate) -> Row[Any]:
    _check_coupon_shape(body)
    product_ids: list[str] | None = None
    if body.product_ids is not None:
        product_ids = list(dict.fromkeys(body.product_ids))
        if not product_ids:
            raise ValidationFailed(
                "parameter_invalid", "product_ids cannot be empty.", param="product_ids"
            )
        valid = [p for p in product_ids if looks_like(p, "prod")]
        found = await repo.existing_product_ids(session, org_id, valid) if valid else set()
        if len(found) != len(product_ids):
            raise NotFound("product_not_found", "Product not found", param="product_ids")
    row = await repo.insert_coupon(
        session,
        id=new_id("coupon"),
        org_id=org_id,
        code=body.code,
        percent_off=body.percent_off,
        amount_off=body.amount_off,
        currency=body.currency,
        duration=body.duration,
        duration_in_months=body.duration_in_months,
        expires_at=body.expires_at,
        product_ids=product_ids,
        new_customers_only=body.new_customers_only,
        max_redemptions=body.max_redemptions,
        trial_extension_days=body.trial_extension_days,
        metadata=body.metadata,
    )
    if row is None:
        raise Conflict("coupon_code_taken", "A coupon with this code already exists.", param="code")
    return row


async def get_coupon(db: Db, org_id: str, code: str) -> Row[Any]:
    row = await repo.get_coupon_by_code(db, org_id, code) if 0 < len(code) <= 64 else None
    if row is None:
        raise NotFound("coupon_not_found", "Coupon not found")
    return row


async def list_coupons(
    db: Db, org_id: str, *, limit: int, starting_after: str | None
) -> tuple[list[Row[Any]], bool]:
    rows = await repo.list_coupons(
        db, org_id, limit=limit, starting_after=_cursor(starting_after, "coupon")
    )
    return _page(rows, limit)


def check_coupon_rules(
    coupon: Row[Any] | None,
    *,
    now: datetime,
    product_id: str,
    currency: str,
    customer_is_new: bool,
) -> Row[Any]:
    """The coupon if it applies to this purchase, else the exact reason (in the
    contract's order: unknown, expired, product/currency, new customers only)."""
    if coupon is None:
        raise coupon_error("invalid_coupon")
    if coupon.expires_at is not None and coupon.expires_at <= now:
        raise coupon_error("coupon_expired")
    if coupon.product_ids is not None and product_id not in coupon.product_ids:
        raise coupon_error("coupon_not_applicable")
    if coupon.amount_off is not None and coupon.currency != currency:
        raise coupon_error("coupon_not_applicable")
    if coupon.new_customers_only and not customer_is_new:
        raise coupon_error("coupon_new_customers_only")
    return coupon


async def _slots_left(db: Db, coupon: Row[Any], now: datetime, checkout_id: str | None) -> bool:
    if coupon.max_redemptions is None:
        return True
    if coupon.times_redeemed >= coupon.max_redemptions:
        return False
    live = await repo.count_live_reservations(db, coupon.id, now, exclude_checkout=checkout_id)
    return coupon.times_redeemed + live < coupon.max_redemptions


def _evaluation(coupon: Row[Any], amount: int) -> dict[str, Any]:
    discount = discount_for(amount, percent_off=coupon.percent_off, amount_off=coupon.amount_off)
    return {
        "coupon": applied_coupon(coupon).model_dump(),
        "amount_subtotal": amount,
        "amount_discount": discount,
        "amount_total": max(0, amount - discount),
        "trial_extension_days": coupon.trial_extension_days,
        "reservation": None,
    }


async def evaluate_coupon(
    db: Db, org_id: str, body: CouponEvaluateIn, *, now: datetime | None = None
) -> dict[str, Any]:
    now = now or utcnow()
    code = body.code
    found = await repo.get_coupon_by_code(db, org_id, code) if len(code) <= 64 else None
    coupon = check_coupon_rules(
        found,
        now=now,
        product_id=body.product_id,
        currency=body.currency,
        customer_is_new=body.customer_is_new,
    )
    if not await _slots_left(db, coupon, now, body.checkout_id):
        raise coupon_error("coupon_exhausted")
    return _evaluation(coupon, body.amount)


async def reserve_coupon(
    session: AsyncSession, org_id: str, body: CouponReserveIn, *, now: datetime | None = None
) -> dict[str, Any]:
    """Evaluate and hold one slot for `body.checkout_id` (idempotent; renews the lease).

    The coupon row is locked (`FOR UPDATE`) for the rest of the transaction, so the
    count of slots in use cannot change between the check and the insert: with one slot
    left and N concurrent reserves, exactly one wins."""
    now = now or utcnow()
    found = (
        await repo.get_coupon_by_code(session, org_id, body.code, for_update=True)
        if len(body.code) <= 64
        else None
    )
    coupon = check_coupon_rules(
        found,
        now=now,
        product_id=body.product_id,
        currency=body.currency,
        customer_is_new=body.customer_is_new,
    )
    result = _evaluation(coupon, body.amount)
    existing = await repo.get_redemption(session, coupon.id, body.checkout_id)
    if existing is not None and existing.status == "redeemed":
        result["reservation"] = {
            "checkout_id": body.checkout_id,
            "status": "redeemed",
            "expires_at": None,
        }
        return result
    if not await _slots_left(session, coupon, now, body.checkout_id):
        raise coupon_error("coupon_exhausted")
    expires_at = now + timedelta(seconds=body.ttl_seconds)
    await repo.upsert_reservation(
        session,
        coupon_id=coupon.id,
        checkout_id=body.checkout_id,
        org_id=org_id,
        customer_id=body.customer_id,
        expires_at=expires_at,
    )
    result["reservation"] = {
        "checkout_id": body.checkout_id,
        "status": "reserved",
        "expires_at": expires_at,
    }
    return result


async def release_coupon(
    session: AsyncSession, org_id: str, checkout_id: str, coupon_id: str | None
) -> int:
    return await repo.release_reservations(session, org_id, checkout_id, coupon_id)


@dataclass(frozen=True)
class RedemptionOutcome:
    recorded: bool
    had_slot: bool


async def record_redemption(
    session: AsyncSession,
    org_id: str | None,
    event: CheckoutCompletedV1,
    *,
    event_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> RedemptionOutcome:
    """Count the coupon of a completed checkout once (a repeated or late event is a no-op).

    A checkout that reserved converts its lease. One that did not (or whose lease lapsed)
    still counts (the customer has paid with the discount: the count must stay true) and,
    if the coupon had no slot left, is logged and counted in a metric as a caller bug."""
    if event.coupon is None:
        return RedemptionOutcome(recorded=False, had_slot=True)
    now = now or utcnow()
    coupon = await repo.get_coupon_by_id(session, org_id, event.coupon.coupon_id, for_update=True)
    if coupon is None:
        log.warning(
            "redemption_for_unknown_coupon coupon_id=%s checkout_id=%s org_id=%s",
            event.coupon.coupon_id,
            event.checkout_id,
            org_id,
        )
        return RedemptionOutcome(recorded=False, had_slot=False)
    existing = await repo.get_redemption(session, coupon.id, event.checkout_id, for_update=True)
    if existing is not None and existing.status == "redeemed":
        return RedemptionOutcome(recorded=False, had_slot=True)
    held = (
        existing is not None
        and existing.status == "reserved"
        and existing.expires_at is not None
        and existing.expires_at > now
    )
    had_slot = held or await _slots_left(session, coupon, now, event.checkout_id)
    if not had_slot:
        OVER_REDEEMED.inc()
        log.error(
            "coupon_redeemed_without_slot coupon_id=%s checkout_id=%s times_redeemed=%s max=%s",
            coupon.id,
            event.checkout_id,
            coupon.times_redeemed,
            coupon.max_redemptions,
        )
    await repo.mark_redeemed(
        session,
        coupon_id=coupon.id,
        checkout_id=event.checkout_id,
        org_id=coupon.org_id,
        customer_id=event.customer_id,
        redeemed_at=event.completed_at,
        event_id=event_id,
    )
    await repo.increment_times_redeemed(session, coupon.id)
    return RedemptionOutcome(recorded=True, had_slot=had_slot)
