"""The outbox relay against real Postgres and RabbitMQ: rows are published as stored with
publisher confirms and marked only after the confirm, a row the broker did not confirm
stays pending with its error, a wake-up in process (OutboxRelay.wake) or a NOTIFY
(add_event) relays at once, and two relays never publish a row twice."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import aio_pika
import pytest
from sqlalchemy import insert, select, text

from bos_common.bus import EXCHANGE, Bus
from bos_common.db import Database, make_metadata
from bos_common.events import Event
from bos_common.outbox import OutboxRelay, add_event, outbox_table
from bos_common.testing import Infra, eventually

pytestmark = pytest.mark.integration

SCHEMA = "outbox_relay_test"
ROUTING_KEY = f"outboxtest{uuid.uuid4().hex[:8]}.probed.v1"
metadata = make_metadata(SCHEMA)
outbox = outbox_table(metadata)


class ProbedV1(Event):
    event_type: ClassVar[str] = ROUTING_KEY
    n: int


@pytest.fixture(scope="module")
async def db(infra: Infra) -> AsyncIterator[Database]:
    database = Database(infra.database_url, SCHEMA)
    async with database.engine.begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        await conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        await conn.run_sync(metadata.create_all)
    yield database
    async with database.engine.begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    await database.dispose()


@pytest.fixture
async def bus(infra: Infra) -> AsyncIterator[Bus]:
    bus = Bus(infra.amqp_url, "outbox-test")
    await bus.connect()
    yield bus
    await bus.close()


class Received:
    """What a queue bound to the test's routing key got."""

    def __init__(self) -> None:
        self.messages: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def at_least(self, n: int) -> bool:
        return len(self.messages) >= n

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(m.body) for m in self.messages]


@pytest.fixture
async def received(infra: Infra, bus: Bus) -> AsyncIterator[Received]:
    connection = await aio_pika.connect(infra.amqp_url)
    channel = await connection.channel()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(EXCHANGE, routing_key=ROUTING_KEY)
    got = Received()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        got.messages.append(message)
        await message.ack()

    await queue.consume(on_message)
    yield got
    await connection.close()


@pytest.fixture(autouse=True)
async def empty_outbox(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(outbox.delete())


async def write(db: Database, *ns: int) -> None:
    async with db.transaction() as session:
        for n in ns:
            await add_event(session, outbox, ProbedV1(n=n), producer="outbox-test")


async def rows(db: Database) -> list[Any]:
    async with db.transaction() as session:
        return list((await session.execute(select(outbox).order_by(outbox.c.id))).all())


def relay(db: Database, bus: Bus, **options: Any) -> OutboxRelay:
    return OutboxRelay(db, outbox, bus, service="outbox-test", **options)


async def test_pending_rows_are_published_as_stored_and_marked_after_the_confirm(
    db: Database, bus: Bus, received: Received
) -> None:
    await write(db, 1, 2, 3)
    stored = await rows(db)
    assert all(r.published_at is None for r in stored)

    assert await relay(db, bus, batch_size=2).publish_pending() == 2
    assert [r.published_at is not None for r in await rows(db)] == [True, True, False]
    assert await relay(db, bus, batch_size=2).publish_pending() == 1
    assert await relay(db, bus).publish_pending() == 0

    await eventually(lambda: received.at_least(3))
    assert received.bodies() == [r.envelope for r in stored], "in order, the stored JSON"
    for message, row in zip(received.messages, stored, strict=True):
        assert message.message_id == str(row.event_id)
        assert message.type == ROUTING_KEY
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert all(r.published_at is not None and r.attempts == 0 for r in await rows(db))


async def test_a_batch_of_publishes_is_handed_to_the_connection_together(
    bus: Bus, received: Received
) -> None:
    """The relay's publishes of a batch do not wait in turn for each one's frames to be
    written out (a message per turn or more of the event loop, however busy the loop is):
    they go to the connection's writer together, as many as its frame buffer holds, and
    each waits only for its confirm."""
    await bus.publish_raw(str(uuid.uuid4()), ROUTING_KEY, b"{}")  # the channel is open
    channel = bus._publish_underlay
    assert channel is not None
    first = channel.delivery_tag
    publishes = asyncio.gather(
        *(bus.publish_raw(str(uuid.uuid4()), ROUTING_KEY, b"{}") for _ in range(50))
    )
    await asyncio.sleep(0)  # one turn of the loop: each publish has run until it waits
    assert channel.delivery_tag - first > 1
    await publishes  # and every one was confirmed
    await eventually(lambda: received.at_least(51))


class FlakyBus:
    """The real bus, except that the broker refuses every second message."""

    def __init__(self, bus: Bus) -> None:
        self.bus, self.calls = bus, 0

    async def publish_raw(self, event_id: str, event_type: str, body: bytes, **kw: Any) -> None:
        self.calls += 1
        if self.calls % 2 == 0:
            raise ConnectionError("nack from the broker")
        await self.bus.publish_raw(event_id, event_type, body, **kw)


async def test_a_row_the_broker_did_not_confirm_stays_pending_with_its_error(
    db: Database, bus: Bus, received: Received
) -> None:
    await write(db, 1, 2, 3, 4)
    flaky = relay(db, bus)
    flaky.bus = FlakyBus(bus)  # type: ignore[assignment]
    with pytest.raises(ConnectionError, match="2 outbox rows not confirmed"):
        await flaky.publish_pending()
    after = await rows(db)
    assert [r.published_at is not None for r in after] == [True, False, True, False]
    assert [r.attempts for r in after] == [0, 1, 0, 1]
    assert [r.last_error for r in after] == [
        None,
        "nack from the broker",
        None,
        "nack from the broker",
    ]

    assert await relay(db, bus).publish_pending() == 2, "published on the next pass"
    assert all(r.published_at is not None for r in await rows(db))
    await eventually(lambda: received.at_least(4))
    assert sorted(b["data"]["n"] for b in received.bodies()) == [1, 2, 3, 4]


async def _running(r: OutboxRelay) -> asyncio.Task[None]:
    task = asyncio.create_task(r.run())
    # The first pass (nothing pending) is done and the relay sleeps on its wake-up.
    await asyncio.sleep(0.3)
    return task


async def test_a_wake_up_in_process_relays_at_once(
    db: Database, bus: Bus, received: Received
) -> None:
    r = relay(db, bus, poll_interval=60)
    task = await _running(r)
    try:
        async with db.driver_connection() as conn:  # a hot writer: no NOTIFY
            await conn.execute(
                f"INSERT INTO {SCHEMA}.outbox (event_id, event_type, envelope)"
                " VALUES ($1, $2, $3::jsonb)",
                uuid.uuid4(),
                ROUTING_KEY,
                json.dumps({"data": {"n": 7}}),
            )
        r.wake()
        await eventually(lambda: received.at_least(1), timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await r.close()
    assert received.bodies() == [{"data": {"n": 7}}]


async def test_notify_of_add_event_relays_at_once(
    db: Database, bus: Bus, received: Received
) -> None:
    r = relay(db, bus, poll_interval=60)
    task = await _running(r)
    try:
        await write(db, 8)
        await eventually(lambda: received.at_least(1), timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await r.close()
    assert [b["data"]["n"] for b in received.bodies()] == [8]


async def test_two_relays_never_publish_a_row_twice(
    db: Database, bus: Bus, received: Received
) -> None:
    async with db.transaction() as session:
        await session.execute(
            insert(outbox),
            [
                {
                    "event_id": uuid.uuid4(),
                    "event_type": ROUTING_KEY,
                    "envelope": {"data": {"n": n}},
                }
                for n in range(200)
            ],
        )
    a, b = relay(db, bus, batch_size=7), relay(db, bus, batch_size=7)

    async def drain(r: OutboxRelay) -> int:
        total = 0
        while n := await r.publish_pending():
            total += n
        return total

    counts = await asyncio.gather(drain(a), drain(b), drain(a), drain(b))
    assert sum(counts) == 200
    await eventually(lambda: received.at_least(200))
    await asyncio.sleep(0.3)
    assert sorted(b["data"]["n"] for b in received.bodies()) == list(range(200))
