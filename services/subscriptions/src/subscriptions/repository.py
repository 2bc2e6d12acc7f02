"""All SQL of the subscriptions service."""

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from subscriptions.models import payments_received


async def insert_payment_received(session: AsyncSession, **values: object) -> None:
    await session.execute(insert(payments_received).values(**values).on_conflict_do_nothing())


async def count_payments_received(session: AsyncSession, payment_intent_id: str) -> int:
    stmt = select(func.count()).where(payments_received.c.payment_intent_id == payment_intent_id)
    return int((await session.execute(stmt)).scalar_one())
