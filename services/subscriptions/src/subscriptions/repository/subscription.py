"""SQL of subscriptions, their checkouts and trial history; the scheduler's claim of due
subscriptions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import orjson
from sqlalchemy import Result, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.pagination import newest_first_page
from subscriptions.models import (
    LIVE_STATUSES,
    invoices,
    subscription_checkouts,
    subscriptions,
    trial_history,
)
from subscriptions.repository.base import all_rows
from subscriptions.rows import Changes, Invoice, Row, Subscription

# --- subscriptions ------------------------------------------------------------------------


def _one(result: Result[Any]) -> Subscription | None:
    row = result.mappings().first()
    return Subscription.from_row(row) if row is not None else None


def _all(result: Result[Any]) -> list[Subscription]:
    return [Subscription.from_row(row) for row in result.mappings()]


async def get_subscription(
    session: AsyncSession,
    sub_id: str,
    *,
    org_id: str | None = None,
    customer_id: str | None = None,
    lock: bool = False,
) -> Subscription | None:
    stmt = select(subscriptions).where(subscriptions.c.id == sub_id)
    if org_id is not None:
        stmt = stmt.where(subscriptions.c.org_id == org_id)
    if customer_id is not None:
        stmt = stmt.where(subscriptions.c.customer_id == customer_id)
    if lock:
        stmt = stmt.with_for_update()
    return _one(await session.execute(stmt))


async def update_subscription(session: AsyncSession, sub_id: str, values: Changes) -> None:
    if values:
        await session.execute(
            update(subscriptions).where(subscriptions.c.id == sub_id).values(**values)
        )


async def live_subscription(
    session: AsyncSession, org_id: str, customer_id: str, product_id: str, *, lock: bool = False
) -> Subscription | None:
    stmt = select(subscriptions).where(
        subscriptions.c.org_id == org_id,
        subscriptions.c.customer_id == customer_id,
        subscriptions.c.product_id == product_id,
        subscriptions.c.status.in_(LIVE_STATUSES),
    )
    if lock:
        stmt = stmt.with_for_update()
    return _one(await session.execute(stmt))


async def last_canceled_free(
    session: AsyncSession, org_id: str, customer_id: str, product_id: str
) -> Subscription | None:
    stmt = (
        select(subscriptions)
        .where(
            subscriptions.c.org_id == org_id,
            subscriptions.c.customer_id == customer_id,
            subscriptions.c.product_id == product_id,
            subscriptions.c.status == "canceled",
            subscriptions.c.is_free.is_(True),
        )
        .order_by(subscriptions.c.ended_at.desc().nulls_last())
        .limit(1)
        .with_for_update()
    )
    return _one(await session.execute(stmt))


async def live_free_subscriptions(
    session: AsyncSession, org_id: str, customer_id: str, *, except_id: str
) -> list[Subscription]:
    stmt = (
        select(subscriptions)
        .where(
            subscriptions.c.org_id == org_id,
            subscriptions.c.customer_id == customer_id,
            subscriptions.c.is_free.is_(True),
            subscriptions.c.status.in_(LIVE_STATUSES),
            subscriptions.c.id != except_id,
        )
        .order_by(subscriptions.c.id)
        .with_for_update()
    )
    return _all(await session.execute(stmt))


async def customer_subscriptions(
    session: AsyncSession,
    org_id: str,
    customer_id: str,
    *,
    statuses: Iterable[str] | None = None,
    lock: bool = False,
) -> list[Subscription]:
    stmt = select(subscriptions).where(
        subscriptions.c.org_id == org_id, subscriptions.c.customer_id == customer_id
    )
    if statuses is not None:
        stmt = stmt.where(subscriptions.c.status.in_(list(statuses)))
    stmt = stmt.order_by(subscriptions.c.created_at.desc(), subscriptions.c.id.desc())
    if lock:
        stmt = stmt.with_for_update()
    return _all(await session.execute(stmt))


async def subscriptions_of_customer_any_org(
    session: AsyncSession, customer_id: str, *, lock: bool = False
) -> list[Subscription]:
    stmt = select(subscriptions).where(subscriptions.c.customer_id == customer_id)
    if lock:
        stmt = stmt.with_for_update()
    return _all(await session.execute(stmt))


async def list_subscriptions(
    session: AsyncSession,
    org_id: str,
    *,
    customer_id: str | None,
    external_user_id: str | None,
    status: str | None,
    limit: int,
    starting_after: str | None,
) -> tuple[list[Subscription], bool]:
    stmt = select(subscriptions).where(subscriptions.c.org_id == org_id)
    if customer_id:
        stmt = stmt.where(subscriptions.c.customer_id == customer_id)
    if external_user_id:
        stmt = stmt.where(subscriptions.c.external_user_id == external_user_id)
    if status:
        stmt = stmt.where(subscriptions.c.status == status)
    rows, more = await newest_first_page(
        session, subscriptions, stmt, org_id, limit, starting_after
    )
    return [Subscription.from_row(row) for row in rows], more


# The entitlements read is the hottest query: plain SQL on the asyncpg connection, which
# prepares each statement once per connection and reuses it. Through SQLAlchemy Core each
# request would pay more CPU than the query itself: the expanding `status IN (...)`
# re-rendered per execution, the cache key, the autobegin and the row mapping.
_ENTITLED = (
    "SELECT id, product_id, status, features, current_period_end, cancel_at_period_end, "
    "past_due_since FROM {table} WHERE org_id = $1 AND {where} "
    "AND status IN ('trialing', 'active', 'past_due')"
)
_TABLE = f"{subscriptions.schema}.{subscriptions.name}"
_ENTITLED_BY = {
    (True, False): _ENTITLED.format(table=_TABLE, where="customer_id = $2"),
    (False, True): _ENTITLED.format(table=_TABLE, where="external_user_id = $2"),
    (True, True): _ENTITLED.format(
        table=_TABLE, where="customer_id = $2 AND external_user_id = $3"
    ),
}


async def entitled_subscriptions(
    conn: asyncpg.Connection,
    org_id: str,
    *,
    customer_id: str | None,
    external_user_id: str | None,
) -> list[Row]:
    """The customer's subscriptions that may grant features (trialing, active, past_due);
    `conn` is the driver connection (`AsyncConnection.get_raw_connection()`)."""
    sql = _ENTITLED_BY[(bool(customer_id), bool(external_user_id))]
    args = [a for a in (customer_id, external_user_id) if a]
    rows = []
    for record in await conn.fetch(sql, org_id, *args):
        row = dict(record)
        if isinstance(row["features"], str | bytes):  # no jsonb codec on this connection
            row["features"] = orjson.loads(row["features"])
        rows.append(row)
    return rows


async def set_checkout_subscription(
    session: AsyncSession, checkout_id: str, subscription_id: str, outcome: str
) -> None:
    await session.execute(
        update(subscription_checkouts)
        .where(subscription_checkouts.c.checkout_id == checkout_id)
        .values(subscription_id=subscription_id, outcome=outcome)
    )


# --- trials ---------------------------------------------------------------------------


async def trial_used(
    session: AsyncSession,
    org_id: str,
    product_id: str,
    *,
    customer_id: str | None,
    email: str | None,
    card_fingerprint: str | None,
) -> str | None:
    """Why this customer cannot have another trial of the product (None: eligible)."""
    checks = []
    if customer_id:
        checks.append(("customer", trial_history.c.customer_id == customer_id))
    if email:
        checks.append(("email", trial_history.c.email == email.strip().lower()))
    if card_fingerprint:
        checks.append(("card", trial_history.c.card_fingerprint == card_fingerprint))
    if not checks:
        return None
    stmt = (
        select(trial_history.c.customer_id, trial_history.c.email, trial_history.c.card_fingerprint)
        .where(
            trial_history.c.org_id == org_id,
            trial_history.c.product_id == product_id,
            or_(*(c for _, c in checks)),
        )
        .limit(1)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    if customer_id and row.customer_id == customer_id:
        return "customer"
    if email and row.email == email.strip().lower():
        return "email"
    return "card"


async def insert_trial_history(session: AsyncSession, values: Row) -> None:
    await session.execute(insert(trial_history).values(**values))


# --- scheduler ---------------------------------------------------------------------------


async def claim_due(
    session: AsyncSession, now: datetime, limit: int
) -> list[tuple[Subscription, Invoice | None]]:
    """Due subscriptions (locked, skipping rows another replica holds) with their pending
    invoice."""
    due = (
        select(subscriptions.c.id)
        .where(subscriptions.c.next_action_at <= now)
        .order_by(subscriptions.c.next_action_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    # Everything the decisions need (not features and metadata: less JSON to decode).
    cols = [c for c in subscriptions.c if c.name not in ("features", "metadata")]
    subs = _all(
        await session.execute(select(*cols).where(subscriptions.c.id.in_(select(due.c.id))))
    )
    pending = [s.pending_invoice_id for s in subs if s.pending_invoice_id]
    by_id: dict[str, Invoice] = {}
    if pending:
        result = await session.execute(
            select(invoices).where(invoices.c.id.in_(pending)).with_for_update()
        )
        for row in result.mappings():
            inv = Invoice.from_row(row)
            by_id[inv.id] = inv
    return [(s, by_id.get(s.pending_invoice_id or "")) for s in subs]


async def live_subscriptions_page(
    session: AsyncSession, after: str | None, limit: int
) -> list[Row]:
    """Live subscriptions of every organization, by id (keyset pages)."""
    t = subscriptions
    stmt = (
        select(t.c.id, t.c.org_id, t.c.customer_id, t.c.product_id, t.c.updated_at)
        .where(t.c.status.in_(LIVE_STATUSES), t.c.id > (after or ""))
        .order_by(t.c.id)
        .limit(limit)
    )
    return [dict(r._mapping) for r in await session.execute(stmt)]


async def active_products(session: AsyncSession, org_id: str | None, customer_id: str) -> list[Row]:
    stmt = select(
        subscriptions.c.id,
        subscriptions.c.org_id,
        subscriptions.c.product_id,
        subscriptions.c.status,
        subscriptions.c.is_free,
    ).where(subscriptions.c.customer_id == customer_id, subscriptions.c.status.in_(LIVE_STATUSES))
    if org_id:
        stmt = stmt.where(subscriptions.c.org_id == org_id)
    return all_rows(await session.execute(stmt))
