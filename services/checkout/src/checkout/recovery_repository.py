"""The SQL of the payment leases (checkout.recovery): renewing the ones this process
holds, and taking over pending payments whose confirm died with its process."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from checkout.models import checkout_sessions as cs
from checkout.models import customers, payments
from checkout.records import OrphanedPayment

RENEW_SQL = (
    "UPDATE checkout.payments SET updated_at = now()"
    " WHERE id = ANY($1::text[]) AND status = 'pending'"
)


async def renew_payment_leases(conn: Any, payment_ids: list[str]) -> None:
    """On a driver connection (`Database.driver_connection()`): one statement."""
    await conn.execute(RENEW_SQL, payment_ids)


async def expire_payment_lease(session: AsyncSession, payment_id: str, lease: timedelta) -> None:
    """Give a taken-over payment up at once (Stripe could not be asked): the next sweep
    may take it again, and a webhook with Stripe's word is not held back meanwhile."""
    await session.execute(
        update(payments)
        .where(payments.c.id == payment_id, payments.c.status == "pending")
        .values(updated_at=func.now() - lease)
    )


async def take_over_orphaned_payments(
    session: AsyncSession, lease: timedelta, limit: int = 50, *, checkout_id: str | None = None
) -> list[OrphanedPayment]:
    """Pending payments of `processing` checkouts (of `checkout_id` only, when given)
    whose lease ran out (no live request is confirming them), taken over: their lease is
    renewed in the same statement, so another replica's sweep skips them (`FOR UPDATE
    SKIP LOCKED`, then a fresh lease). Each with what its intent's create is built from
    (stripe_creates.intent_create) and its customer's Stripe id."""
    of_checkout = () if checkout_id is None else (cs.c.id == checkout_id,)
    orphaned = (
        select(payments.c.id)
        .join(cs, cs.c.id == payments.c.checkout_id)
        .where(
            payments.c.status == "pending",
            payments.c.updated_at < func.now() - lease,
            payments.c.kind.in_(("checkout", "setup")),
            cs.c.status == "processing",
            cs.c.completed_at.is_(None),
            cs.c.attempt == payments.c.attempt,
            *of_checkout,
        )
        .order_by(payments.c.updated_at)
        .limit(limit)
        .with_for_update(of=payments, skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        update(payments)
        .where(payments.c.id.in_(orphaned), payments.c.status == "pending")
        .values(updated_at=func.now())
        .returning(
            payments.c.id,
            payments.c.kind,
            payments.c.org_id,
            payments.c.checkout_id,
            payments.c.customer_id,
            payments.c.attempt,
            payments.c.created_at,
            payments.c.amount,
            payments.c.currency,
            payments.c.platform_fee,
            payments.c.destination_account,
            payments.c.connect_mode,
            payments.c.payment_method_id,
            payments.c.intent_traceparent,
            payments.c.stripe_intent_id,
            payments.c.stripe_idempotency_key,
            select(customers.c.stripe_customer_id)
            .where(customers.c.id == payments.c.customer_id)
            .scalar_subquery()
            .label("stripe_customer_id"),
        )
    )
    return [OrphanedPayment.from_row(row) for row in (await session.execute(stmt)).mappings()]
