"""Idempotent consumer (inbox): `(consumer, event_id)` is inserted with
`ON CONFLICT DO NOTHING` in the same transaction as the handler's side effects, so a
redelivered event finds its row and does nothing; the bus acks only after commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import Counter
from sqlalchemy import Column, DateTime, MetaData, String, Table, Uuid, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.bus import Handler
from bos_common.db import Database
from bos_common.events import Envelope

DUPLICATES = Counter(
    "bos_inbox_duplicates_total", "Events a consumer had already processed.", ["consumer"]
)

SessionHandler = Callable[[AsyncSession, Envelope], Awaitable[None]]


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(200), primary_key=True),
        Column("event_id", Uuid, primary_key=True),
        Column("event_type", String(200), nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


async def claim(session: AsyncSession, table: Table, consumer: str, envelope: Envelope) -> bool:
    """True the first time this consumer sees the event, False on a redelivery."""
    result = await session.execute(
        insert(table)
        .values(consumer=consumer, event_id=envelope.event_id, event_type=envelope.event_type)
        .on_conflict_do_nothing()
        .returning(table.c.event_id)
    )
    return result.first() is not None


def idempotent(db: Database, table: Table, consumer: str, handler: SessionHandler) -> Handler:
    """Wrap a handler so it runs at most once per event, in one transaction."""

    async def handle(envelope: Envelope) -> None:
        async with db.transaction() as session:
            if not await claim(session, table, consumer, envelope):
                DUPLICATES.labels(consumer).inc()
                return
            await handler(session, envelope)

    return handle
