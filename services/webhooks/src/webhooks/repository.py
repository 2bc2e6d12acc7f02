"""All SQL of the webhooks service."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from webhooks.models import stripe_events


async def insert_stripe_event(
    session: AsyncSession,
    *,
    event_id: str,
    type_: str,
    account: str | None,
    created: datetime,
    payload: dict[str, Any],
) -> bool:
    """Store the raw event; False when this Stripe id was already stored."""
    result = await session.execute(
        insert(stripe_events)
        .values(id=event_id, type=type_, account=account, created=created, payload=payload)
        .on_conflict_do_nothing()
        .returning(stripe_events.c.id)
    )
    return result.first() is not None


async def known_event_ids(session: AsyncSession, ids: list[str]) -> set[str]:
    rows = await session.execute(select(stripe_events.c.id).where(stripe_events.c.id.in_(ids)))
    return {row.id for row in rows}
