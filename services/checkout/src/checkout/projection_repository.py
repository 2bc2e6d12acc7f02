"""The SQL of checkout's projection of its customers' subscriptions
(`customer_subscriptions`, fed by subscription.* events and the backfill): what answers
"already subscribed to this product?" at creation (8.2). Takes a connection; never
opens one.

Every write to it goes through `_project_sql`, so the rule that orders them is written
once: the newest word wins, a row older than the stored one (an event out of order, a
backfill page read before an event) changes nothing; of two of the same instant, the
later write wins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from checkout.models import customer_subscriptions, customers, projection_backfills
from checkout.repository import Driver


def _project_sql(source: str) -> str:
    """The projection's upsert of the rows `source` (a SELECT or VALUES of
    subscription_id, org_id, customer_id, product_id, live, as_of) selects."""
    return f"""
    INSERT INTO checkout.customer_subscriptions AS s
        (subscription_id, org_id, customer_id, product_id, live, as_of)
    {source}
    ON CONFLICT (subscription_id) DO UPDATE
    SET live = EXCLUDED.live, as_of = EXCLUDED.as_of, product_id = EXCLUDED.product_id
    WHERE s.as_of <= EXCLUDED.as_of
    """


PROJECT_ONE_SQL = _project_sql("VALUES ($1, $2, $3, $4, $5, $6)")

PROJECT_MANY_SQL = _project_sql(
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[],"
    " $6::timestamptz[])"
)

# subscription.created.v1: the projection and the checkout's `complete` (only once
# fulfilled: processing with completed_at set) in one statement.
SUBSCRIBED_SQL = f"""
WITH projected AS ({_project_sql("VALUES ($1, $2, $3, $4, true, $5)")}
), completed AS (
    UPDATE checkout.checkout_sessions
    SET status = 'complete', subscription_id = $1, updated_at = now()
    WHERE id = $6 AND status = 'processing' AND completed_at IS NOT NULL
    RETURNING id, is_free
)
-- A free checkout's confirm waits for this (checkout.completion); paid ones notify nobody.
SELECT count(*) AS completed, count(n.notified) AS notified FROM completed
LEFT JOIN LATERAL (
    SELECT true AS notified FROM pg_notify('checkout_completed', completed.id)
    WHERE completed.is_free
) n ON true
"""


async def _driver(session: AsyncSession) -> Driver:
    """The session's own connection at the driver level, inside its transaction."""
    conn = await session.connection()
    return (await conn.get_raw_connection()).driver_connection


async def record_subscription(
    session: AsyncSession,
    *,
    subscription_id: str,
    org_id: str | None,
    customer_id: str,
    product_id: str,
    live: bool,
    as_of: datetime,
) -> None:
    driver = await _driver(session)
    await driver.execute(
        PROJECT_ONE_SQL, subscription_id, org_id, customer_id, product_id, live, as_of
    )


async def record_subscribed(
    session: AsyncSession,
    *,
    subscription_id: str,
    org_id: str | None,
    customer_id: str,
    product_id: str,
    as_of: datetime,
    checkout_id: str | None,
) -> bool:
    """A live subscription, and its checkout (if any) `complete`, in the session's
    transaction: once a checkout reports `complete`, a new checkout for the same
    product already answers 409 (8.2). True when this made the checkout complete."""
    driver = await _driver(session)
    row = await driver.fetchrow(
        SUBSCRIBED_SQL, subscription_id, org_id, customer_id, product_id, as_of, checkout_id
    )
    return bool(row["completed"])


async def project_live_subscriptions(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Live subscriptions as their service reports them now (a backfill page)."""
    if not rows:
        return
    driver = await _driver(session)
    await driver.execute(
        PROJECT_MANY_SQL,
        [r["subscription_id"] for r in rows],
        [r["org_id"] for r in rows],
        [r["customer_id"] for r in rows],
        [r["product_id"] for r in rows],
        [True for _ in rows],
        [r["as_of"] for r in rows],
    )


async def backfilled(session: AsyncSession, name: str) -> bool:
    q = select(exists().where(projection_backfills.c.name == name))
    return bool((await session.execute(q)).scalar())


async def mark_backfilled(session: AsyncSession, name: str) -> None:
    await session.execute(insert(projection_backfills).values(name=name).on_conflict_do_nothing())


async def is_subscribed(session: AsyncSession, customer_id: str, product_id: str) -> bool:
    q = select(
        exists().where(
            customer_subscriptions.c.customer_id == customer_id,
            customer_subscriptions.c.product_id == product_id,
            customer_subscriptions.c.live,
        )
    )
    return bool((await session.execute(q)).scalar())


async def live_projected_subscriptions(
    session: AsyncSession, org_id: str, email: str, product_id: str
) -> tuple[str | None, list[str]]:
    """The customer with this email, and its subscriptions to the product that the
    projection holds live."""
    c, s = customers, customer_subscriptions
    rows = (
        await session.execute(
            select(c.c.id, s.c.subscription_id)
            .select_from(c)
            .outerjoin(s, and_(s.c.customer_id == c.c.id, s.c.product_id == product_id, s.c.live))
            .where(c.c.org_id == org_id, func.lower(c.c.email) == email.lower())
        )
    ).all()
    if not rows:
        return None, []
    return rows[0].id, [r.subscription_id for r in rows if r.subscription_id is not None]


async def end_projected_subscriptions(session: AsyncSession, subscription_ids: list[str]) -> None:
    """Subscriptions the owner no longer holds live, ahead of their `subscription.ended.v1`
    (`as_of` is kept: that event, newer, still applies; ended is final)."""
    await session.execute(
        update(customer_subscriptions)
        .where(customer_subscriptions.c.subscription_id.in_(subscription_ids))
        .values(live=False)
    )
