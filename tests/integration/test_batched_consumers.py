"""Batched consumption against real Postgres and RabbitMQ (bos_common.bus batches,
bos_common.inbox.idempotent_batch), through a `test_payments` consumer on subscriptions'
runtime (the test's payments ledger), which records every `payment.succeeded.v1`:

- a burst published at once is recorded exactly once per event, in fewer transactions
  than events (events of one batch share their transaction's `now()`);
- a batch whose handler fails on one event leaves nothing behind (no inbox claim, no
  effect), and handled again it records each event once, redeliveries included.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.bus import Bus
from bos_common.events import Envelope, PaymentSucceededV1
from bos_common.inbox import each, idempotent_batch
from bos_common.testing import Infra, eventually, migrate
from subscriptions.app import build_runtime
from subscriptions.models import inbox
from subscriptions.settings import SubscriptionsSettings

pytestmark = pytest.mark.integration

CONSUMER = "subscriptions.test_payments"


@pytest.fixture(scope="module")
async def subscriptions(infra: Infra, payments_ledger: Any) -> AsyncIterator[Any]:
    await migrate(infra.database_url, "subscriptions")
    await payments_ledger.create(infra.database_url)
    runtime = build_runtime(SubscriptionsSettings(**infra.env(), RUN_WORKERS="false"))
    runtime.on_events("test_payments", PaymentSucceededV1.event_type)(payments_ledger.record)
    runtime.payments_ledger = payments_ledger
    await runtime.start()
    await asyncio.wait_for(runtime.bus.wait_connected(), 30)
    await eventually(lambda: _queue_exists(infra, CONSUMER))
    yield runtime
    await runtime.stop()


async def _queue_exists(infra: Infra, name: str) -> bool:
    conn = await aio_pika.connect(infra.amqp_url)
    try:
        await (await conn.channel()).declare_queue(name, passive=True)
        return True
    except aio_pika.exceptions.ChannelClosed:
        return False
    finally:
        await conn.close()


def payment_succeeded(run: str, n: int) -> Envelope:
    event = PaymentSucceededV1(
        stripe_event_id=f"evt_{run}_{n}",
        stripe_created="2026-11-27T00:00:00Z",
        payment_intent_id=f"pi_{run}_{n}",
        amount=1000,
        currency="usd",
        status="succeeded",
    )
    return Envelope.wrap(event, producer="webhooks", org_id="org_batch")


async def recorded(runtime: Any, run: str) -> list[Any]:
    """(payment_intent_id, inbox received_at) of this run's events."""
    ledger = runtime.payments_ledger.table
    async with runtime.db.transaction() as session:
        rows = await session.execute(
            select(ledger.c.payment_intent_id, inbox.c.received_at)
            .join(inbox, inbox.c.event_id == ledger.c.event_id)
            .where(
                ledger.c.payment_intent_id.like(f"pi_{run}_%"),
                inbox.c.consumer == CONSUMER,
            )
        )
        return list(rows)


async def claims(runtime: Any, envelopes: list[Envelope]) -> int:
    async with runtime.db.transaction() as session:
        stmt = select(func.count()).where(
            inbox.c.consumer == CONSUMER,
            inbox.c.event_id.in_([e.event_id for e in envelopes]),
        )
        return int((await session.execute(stmt)).scalar_one())


async def test_a_burst_is_recorded_once_per_event_in_fewer_transactions(
    subscriptions: Any, infra: Infra
) -> None:
    run = uuid.uuid4().hex[:8]
    envelopes = [payment_succeeded(run, n) for n in range(200)]
    bus = Bus(infra.amqp_url, "batch-test")
    await bus.connect()
    try:
        await asyncio.gather(*(bus.publish(e) for e in envelopes))
        for e in envelopes[:20]:
            await bus.publish(e)  # redelivered, as after a relay crash
        rows = await eventually(
            lambda: _at_least(recorded(subscriptions, run), len(envelopes)), timeout=30
        )
        await asyncio.sleep(0.5)  # the redeliveries are handled too
        rows = await recorded(subscriptions, run)
    finally:
        await bus.close()
    intents = [r.payment_intent_id for r in rows]
    assert sorted(intents) == sorted({f"pi_{run}_{n}" for n in range(200)})
    transactions = {r.received_at for r in rows}
    assert len(transactions) < len(envelopes), "events waiting together share a transaction"


async def _at_least(rows_coro: Any, n: int) -> list[Any] | None:
    rows = await rows_coro
    return rows if len(rows) >= n else None


async def test_a_failed_batch_leaves_nothing_and_a_retry_records_each_once(
    subscriptions: Any,
) -> None:
    run = uuid.uuid4().hex[:8]
    envelopes = [payment_succeeded(run, n) for n in range(5)]
    failing = envelopes[3].event_id

    async def fails_on_one(session: AsyncSession, envelope: Envelope) -> None:
        await subscriptions.payments_ledger.record(session, [envelope])
        if envelope.event_id == failing:
            raise RuntimeError("the fourth event's handler fails")

    broken = idempotent_batch(subscriptions.db, inbox, CONSUMER, each(fails_on_one, CONSUMER))
    with pytest.raises(RuntimeError):
        await broken(envelopes)
    assert await recorded(subscriptions, run) == []
    assert await claims(subscriptions, envelopes) == 0

    handle = idempotent_batch(
        subscriptions.db, inbox, CONSUMER, subscriptions.payments_ledger.record
    )
    await handle(envelopes + envelopes[:2])  # an event twice in one batch: once
    await handle(envelopes)  # all of them again: duplicates, nothing new
    assert len(await recorded(subscriptions, run)) == 5
    assert await claims(subscriptions, envelopes) == 5
