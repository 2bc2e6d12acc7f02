"""The SQL of checkout's customers: one per (organization, email in any case), with
their Stripe customer and default card. Takes a connection; never opens one."""

from __future__ import annotations

from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from checkout.models import checkout_sessions as cs
from checkout.models import customers
from checkout.records import Customer
from checkout.repository import Driver


async def get_customer(session: AsyncSession, org_id: str, customer_id: str) -> Customer | None:
    q = select(customers).where(customers.c.id == customer_id, customers.c.org_id == org_id)
    row = (await session.execute(q)).mappings().first()
    return None if row is None else Customer.from_row(row)


async def list_customers(
    session: AsyncSession,
    org_id: str,
    *,
    email: str | None,
    external_user_id: str | None,
    limit: int,
    starting_after: str | None,
) -> list[Customer]:
    q = select(customers).where(customers.c.org_id == org_id)
    if email is not None:
        q = q.where(func.lower(customers.c.email) == email.lower())
    if external_user_id is not None:
        q = q.where(customers.c.external_user_id == external_user_id)
    if starting_after is not None:
        q = q.where(customers.c.id < starting_after)
    q = q.order_by(customers.c.id.desc()).limit(limit)
    return [Customer.from_row(row) for row in (await session.execute(q)).mappings()]


SET_STRIPE_CUSTOMER_SQL = """
UPDATE checkout.customers SET stripe_customer_id = $2, updated_at = now()
WHERE id = $1 AND stripe_customer_id IS NULL
"""


async def set_stripe_customer(conn: Driver, customer_id: str, stripe_id: str) -> None:
    """One statement, atomic by itself (on a driver connection outside a transaction)."""
    await conn.execute(SET_STRIPE_CUSTOMER_SQL, customer_id, stripe_id)


async def set_default_payment_method(
    session: AsyncSession,
    customer_id: str,
    payment_method_id: str | None,
    fingerprint: str | None,
) -> Customer | None:
    """The customer as updated (saves fulfilment a SELECT)."""
    stmt = (
        update(customers)
        .where(customers.c.id == customer_id)
        .values(
            default_payment_method_id=payment_method_id,
            card_fingerprint=func.coalesce(fingerprint, customers.c.card_fingerprint),
            updated_at=func.now(),
        )
        .returning(*customers.c)
    )
    row = (await session.execute(stmt)).mappings().first()
    return None if row is None else Customer.from_row(row)


async def customer_has_paid_before(session: AsyncSession, customer_id: str) -> bool:
    """A customer is "new" until one of their checkouts completed (coupon rules, 7.6)."""
    q = select(
        exists().where(
            cs.c.customer_id == customer_id,
            cs.c.status.in_(("processing", "complete")),
            cs.c.completed_at.is_not(None),
        )
    )
    return bool((await session.execute(q)).scalar())
