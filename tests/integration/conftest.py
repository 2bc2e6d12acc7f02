"""A test consumer's ledger: a set-based handler that records every payment.succeeded.v1
in a table of its own, to show real events crossing the bus (once each) against real
Postgres and RabbitMQ without depending on what a service does with payments."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import Column, MetaData, String, Table, Uuid, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bos_common.events import Envelope, PaymentSucceededV1


class PaymentsLedger:
    """`record` is the handler (register it with `runtime.on_events`); `create` makes its
    table in `schema` (after the schema's migrations, which reset it)."""

    def __init__(self, schema: str) -> None:
        self.table = Table(
            "test_payments_ledger",
            MetaData(schema=schema),
            Column("payment_intent_id", String(255), primary_key=True),
            Column("event_id", Uuid, nullable=False),
        )

    async def create(self, database_url: str) -> None:
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(self.table.metadata.create_all)
        finally:
            await engine.dispose()

    async def record(self, session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
        """One statement for all of them; a payment already recorded is left as it is."""
        rows = []
        for envelope in envelopes:
            event = envelope.payload()
            assert isinstance(event, PaymentSucceededV1)
            rows.append(
                {"payment_intent_id": event.payment_intent_id, "event_id": envelope.event_id}
            )
        await session.execute(insert(self.table).on_conflict_do_nothing(), rows)

    async def count(self, session: AsyncSession, payment_intent_id: str) -> int:
        stmt = select(func.count()).where(self.table.c.payment_intent_id == payment_intent_id)
        return int((await session.execute(stmt)).scalar_one())


@pytest.fixture(scope="session")
def payments_ledger() -> PaymentsLedger:
    return PaymentsLedger("subscriptions")
