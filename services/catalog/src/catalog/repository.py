"""All SQL of the catalog service (SQLAlchemy Core on the tables of models.py).

Every statement is scoped by `org_id`: another organization's row is simply not found.
Functions take an `AsyncSession` (writes, in the request's transaction) or an
`AsyncConnection` (reads, autocommit: one round trip per query); the two hot reads
(listing, snapshot) take the driver connection (`Database.driver_connection`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import Row, and_, func, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from catalog.models import coupon_redemptions, coupons, prices, products

Db = AsyncSession | AsyncConnection


# --------------------------------------------------------------------------- products


async def insert_product(db: Db, **values: Any) -> Row[Any]:
    stmt = insert(products).values(**values).returning(*products.c)
    return (await db.execute(stmt)).one()


async def get_product(db: Db, org_id: str, product_id: str) -> Row[Any] | None:
    stmt = select(products).where(products.c.id == product_id, products.c.org_id == org_id)
    return (await db.execute(stmt)).first()


# The hot reads (listing, snapshot) run raw SQL on the driver connection
# (Database.driver_connection): no statement compilation or row processing per call,
# asyncpg's own prepared-statement cache, JSONB columns fetched as text and embedded
# as-is (`orjson.Fragment`).


# `org_id` is not selected: the caller knows it. schemas.products_out reads these by
# position.
PRODUCT_COLUMNS = (
    "id, name, description, visible, archived_at, features::text AS features, "
    "metadata::text AS metadata, created_at, updated_at"
)


async def list_products(
    conn: asyncpg.Connection,
    org_id: str,
    *,
    limit: int,
    starting_after: str | None,
    active: bool | None,
    visible: bool | None,
) -> list[Any]:
    """Newest first; `limit + 1` rows so the caller knows whether there is more. Each
    filter combination reads one index `(org_id, [active], [visible], id)` backwards
    (keyset pagination: a deep page costs what the first does)."""
    where: list[str] = ["org_id = $1"]
    args: list[Any] = [org_id]
    for column, value in (("active", active), ("visible", visible), ("id <", starting_after)):
        if value is not None:
            args.append(value)
            op = column if column.endswith("<") else f"{column} ="
            where.append(f"{op} ${len(args)}")
    args.append(limit + 1)
    sql = (
        f"SELECT {PRODUCT_COLUMNS} FROM catalog.products WHERE {' AND '.join(where)} "
        f"ORDER BY id DESC LIMIT ${len(args)}"
    )
    return list(await conn.fetch(sql, *args))


async def existing_product_ids(db: Db, org_id: str, ids: Sequence[str]) -> set[str]:
    stmt = select(products.c.id).where(products.c.org_id == org_id, products.c.id.in_(ids))
    return set((await db.execute(stmt)).scalars())


async def update_product(
    db: Db, org_id: str, product_id: str, values: dict[str, Any]
) -> Row[Any] | None:
    stmt = (
        update(products)
        .where(products.c.id == product_id, products.c.org_id == org_id)
        .values(**values, updated_at=func.now())
        .returning(*products.c)
    )
    return (await db.execute(stmt)).first()


async def archive_product(db: Db, org_id: str, product_id: str) -> Row[Any] | None:
    """Archive once (a second archive keeps the first `archived_at`)."""
    stmt = (
        update(products)
        .where(
            products.c.id == product_id,
            products.c.org_id == org_id,
            products.c.archived_at.is_(None),
        )
        .values(archived_at=func.now(), updated_at=func.now())
        .returning(*products.c)
    )
    row = (await db.execute(stmt)).first()
    return row if row is not None else await get_product(db, org_id, product_id)


async def find_demo_products(db: Db, org_id: str, key: str) -> list[Row[Any]]:
    """The organization's products seeded for demo plan `key`, active ones first, newest
    first (a demo product the merchant archived stays, beside its replacement)."""
    stmt = (
        select(products)
        .where(products.c.org_id == org_id, products.c.metadata["demo"].astext == key)
        .order_by(products.c.archived_at.is_not(None), products.c.created_at.desc())
    )
    return list((await db.execute(stmt)).all())


# --------------------------------------------------------------------------- prices


def _monthly_lateral() -> Any:
    """The newest active monthly price of the same product and currency (for annual
    prices' savings); correlated on `prices` as the outer table."""
    m = prices.alias("m")
    return (
        select(m.c.id.label("monthly_id"), m.c.amount.label("monthly_amount"))
        .where(
            prices.c.interval == "year",
            m.c.product_id == prices.c.product_id,
            m.c.currency == prices.c.currency,
            m.c.type == "recurring",
            m.c.interval == "month",
            m.c.deleted_at.is_(None),
        )
        .order_by(m.c.id.desc())
        .limit(1)
        .lateral("monthly")
    )


async def insert_price(db: Db, **values: Any) -> Row[Any]:
    stmt = insert(prices).values(**values).returning(*prices.c)
    return (await db.execute(stmt)).one()


async def get_price(db: Db, org_id: str, price_id: str) -> Row[Any] | None:
    """The price plus `monthly_id`/`monthly_amount` (annual prices only)."""
    lat = _monthly_lateral()
    stmt = (
        select(prices, lat.c.monthly_id, lat.c.monthly_amount)
        .select_from(prices.outerjoin(lat, true()))
        .where(prices.c.id == price_id, prices.c.org_id == org_id)
    )
    return (await db.execute(stmt)).first()


async def list_prices(
    db: Db,
    org_id: str,
    *,
    limit: int,
    starting_after: str | None,
    product_id: str | None,
    active: bool | None,
) -> list[Row[Any]]:
    lat = _monthly_lateral()
    stmt = (
        select(prices, lat.c.monthly_id, lat.c.monthly_amount)
        .select_from(prices.outerjoin(lat, true()))
        .where(prices.c.org_id == org_id)
    )
    if product_id is not None:
        stmt = stmt.where(prices.c.product_id == product_id)
    if active is True:
        stmt = stmt.where(prices.c.deleted_at.is_(None))
    elif active is False:
        stmt = stmt.where(prices.c.deleted_at.is_not(None))
    if starting_after is not None:
        stmt = stmt.where(prices.c.id < starting_after)
    stmt = stmt.order_by(prices.c.id.desc()).limit(limit + 1)
    return list((await db.execute(stmt)).all())


async def soft_delete_price(db: Db, org_id: str, price_id: str) -> bool:
    """True when the price exists (deleted now or before)."""
    stmt = (
        update(prices)
        .where(prices.c.id == price_id, prices.c.org_id == org_id, prices.c.deleted_at.is_(None))
        .values(deleted_at=func.now())
        .returning(prices.c.id)
    )
    if (await db.execute(stmt)).first() is not None:
        return True
    exists = select(prices.c.id).where(prices.c.id == price_id, prices.c.org_id == org_id)
    return (await db.execute(exists)).first() is not None


async def active_prices(db: Db, product_id: str) -> list[Row[Any]]:
    stmt = (
        select(prices)
        .where(prices.c.product_id == product_id, prices.c.deleted_at.is_(None))
        .order_by(prices.c.id.asc())
    )
    return list((await db.execute(stmt)).all())


# Snapshot: price + product + the monthly comparison, one query of primary-key lookups.
SNAPSHOT_SQL = """
SELECT p.id, p.amount, p.currency, p.type, p.interval, p.trial_days, p.setup_fee,
       p.deleted_at, r.id AS product_id, r.name AS product_name, r.description, r.visible,
       r.archived_at, r.features::text AS features, r.metadata::text AS metadata,
       m.id AS monthly_id, m.amount AS monthly_amount
FROM catalog.prices p
JOIN catalog.products r ON r.id = p.product_id AND r.org_id = $1
LEFT JOIN LATERAL (
    SELECT id, amount FROM catalog.prices m
    WHERE p.interval = 'year' AND m.product_id = p.product_id AND m.currency = p.currency
      AND m.type = 'recurring' AND m.interval = 'month' AND m.deleted_at IS NULL
    ORDER BY m.id DESC LIMIT 1
) m ON true
WHERE p.id = $2 AND p.org_id = $1
"""


async def price_snapshot(conn: asyncpg.Connection, org_id: str, price_id: str) -> Any | None:
    return await conn.fetchrow(SNAPSHOT_SQL, org_id, price_id)


# --------------------------------------------------------------------------- coupons


async def insert_coupon(db: Db, **values: Any) -> Row[Any] | None:
    """None when the organization already has this code (any case)."""
    stmt = insert(coupons).values(**values).on_conflict_do_nothing().returning(*coupons.c)
    return (await db.execute(stmt)).first()


async def get_coupon_by_code(
    db: Db, org_id: str, code: str, *, for_update: bool = False
) -> Row[Any] | None:
    stmt = select(coupons).where(
        coupons.c.org_id == org_id, func.upper(coupons.c.code) == func.upper(code)
    )
    if for_update:
        stmt = stmt.with_for_update()
    return (await db.execute(stmt)).first()


async def get_coupon_by_id(
    db: Db, org_id: str | None, coupon_id: str, *, for_update: bool = False
) -> Row[Any] | None:
    stmt = select(coupons).where(coupons.c.id == coupon_id)
    if org_id is not None:
        stmt = stmt.where(coupons.c.org_id == org_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await db.execute(stmt)).first()


async def list_coupons(
    db: Db, org_id: str, *, limit: int, starting_after: str | None
) -> list[Row[Any]]:
    stmt = select(coupons).where(coupons.c.org_id == org_id)
    if starting_after is not None:
        stmt = stmt.where(coupons.c.id < starting_after)
    stmt = stmt.order_by(coupons.c.id.desc()).limit(limit + 1)
    return list((await db.execute(stmt)).all())


async def count_live_reservations(
    db: Db, coupon_id: str, now: datetime, *, exclude_checkout: str | None = None
) -> int:
    r = coupon_redemptions.c
    stmt = select(func.count()).where(
        r.coupon_id == coupon_id, r.status == "reserved", r.expires_at > now
    )
    if exclude_checkout is not None:
        stmt = stmt.where(r.checkout_id != exclude_checkout)
    return int((await db.execute(stmt)).scalar_one())


async def get_redemption(
    db: Db, coupon_id: str, checkout_id: str, *, for_update: bool = False
) -> Row[Any] | None:
    r = coupon_redemptions.c
    stmt = select(coupon_redemptions).where(r.coupon_id == coupon_id, r.checkout_id == checkout_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await db.execute(stmt)).first()


async def upsert_reservation(
    db: Db,
    *,
    coupon_id: str,
    checkout_id: str,
    org_id: str,
    customer_id: str | None,
    expires_at: datetime,
) -> None:
    """Take or renew the lease (a redeemed row stays redeemed)."""
    base = insert(coupon_redemptions).values(
        coupon_id=coupon_id,
        checkout_id=checkout_id,
        org_id=org_id,
        customer_id=customer_id,
        status="reserved",
        expires_at=expires_at,
    )
    stmt = base.on_conflict_do_update(
        index_elements=[coupon_redemptions.c.coupon_id, coupon_redemptions.c.checkout_id],
        set_={
            "status": "reserved",
            "expires_at": expires_at,
            "customer_id": func.coalesce(
                base.excluded.customer_id, coupon_redemptions.c.customer_id
            ),
            "updated_at": func.now(),
        },
        where=coupon_redemptions.c.status != "redeemed",
    )
    await db.execute(stmt)


async def mark_redeemed(
    db: Db,
    *,
    coupon_id: str,
    checkout_id: str,
    org_id: str,
    customer_id: str | None,
    redeemed_at: datetime,
    event_id: uuid.UUID | None,
) -> None:
    base = insert(coupon_redemptions).values(
        coupon_id=coupon_id,
        checkout_id=checkout_id,
        org_id=org_id,
        customer_id=customer_id,
        status="redeemed",
        redeemed_at=redeemed_at,
        event_id=event_id,
    )
    stmt = base.on_conflict_do_update(
        index_elements=[coupon_redemptions.c.coupon_id, coupon_redemptions.c.checkout_id],
        set_={
            "status": "redeemed",
            "redeemed_at": redeemed_at,
            "event_id": event_id,
            "expires_at": None,
            "customer_id": func.coalesce(
                base.excluded.customer_id, coupon_redemptions.c.customer_id
            ),
            "updated_at": func.now(),
        },
    )
    await db.execute(stmt)


async def increment_times_redeemed(db: Db, coupon_id: str) -> None:
    await db.execute(
        update(coupons)
        .where(coupons.c.id == coupon_id)
        .values(times_redeemed=coupons.c.times_redeemed + 1)
    )


async def release_reservations(db: Db, org_id: str, checkout_id: str, coupon_id: str | None) -> int:
    r = coupon_redemptions.c
    conds = [r.org_id == org_id, r.checkout_id == checkout_id, r.status == "reserved"]
    if coupon_id is not None:
        conds.append(r.coupon_id == coupon_id)
    stmt = (
        update(coupon_redemptions)
        .where(and_(*conds))
        .values(status="released", expires_at=None, updated_at=func.now())
        .returning(r.coupon_id)
    )
    return len((await db.execute(stmt)).all())


async def lock_for_seeding(db: Db, org_id: str) -> None:
    """Serialize demo seeding per organization until the transaction ends."""
    await db.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"catalog.demo:{org_id}"))))
