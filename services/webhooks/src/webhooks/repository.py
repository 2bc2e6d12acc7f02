"""All SQL of the webhooks service."""

from datetime import datetime
from typing import Any

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
