"""checkout.completed.v1 and the invoice results through real RabbitMQ: the same event
delivered twice and the same checkout announced twice give one subscription; the
scheduler's invoice.created.v1 leaves through the outbox relay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from sqlalchemy import func, select

from bos_common.bus import Bus, ConsumerSpec
from bos_common.events import Envelope
from bos_common.testing import Infra, eventually
from subscriptions import testing
from subscriptions.app import build_runtime
from subscriptions.clock import Clock
from subscriptions.models import subscriptions
from subscriptions.scheduler import drain
from subscriptions.settings import SubscriptionsSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def started(infra: Infra, rt) -> AsyncIterator[Any]:
    live = build_runtime(
        SubscriptionsSettings(**infra.env(), RUN_WORKERS="false"), clock=Clock(rt.clock.now())
    )
    live.relay.poll_interval = 0.2
    await live.start()
    await asyncio.wait_for(live.bus.wait_connected(), 30)
    await eventually(lambda: _queue_exists(infra, "subscriptions.checkouts"))
    yield live
    await live.stop()


async def _queue_exists(infra: Infra, name: str) -> bool:
    conn = await aio_pika.connect(infra.amqp_url)
    try:
        channel = await conn.channel()
        await channel.declare_queue(name, passive=True)
        return True
    except aio_pika.exceptions.ChannelClosed:
        return False
    finally:
        await conn.close()


async def _count(rt, customer_id: str) -> int:
    async with rt.db.transaction() as session:
        return int(
            (
                await session.execute(
                    select(func.count()).where(subscriptions.c.customer_id == customer_id)
                )
            ).scalar_one()
        )


async def test_same_checkout_completed_twice_over_the_bus_one_subscription(started, infra):
    org = testing.uid("org")
    event = testing.checkout_completed(testing.price(), completed_at=started.clock.now())
    first = Envelope.wrap(event, producer="checkout", org_id=org)
    second = Envelope.wrap(event, producer="checkout", org_id=org)  # new id, same checkout
    bus = Bus(infra.amqp_url, "checkout-test")
    await bus.connect()
    try:
        await bus.publish(first)
        await bus.publish(first)  # a relay that crashed before marking it sent
        await bus.publish(second)
        await eventually(lambda: _count(started, event.customer_id))
        await asyncio.sleep(1.0)
    finally:
        await bus.close()
    assert await _count(started, event.customer_id) == 1
    created = await testing.published(started.db, org, "subscription.created.v1")
    assert len(created) == 1


async def test_renewal_invoice_reaches_the_bus_and_payment_comes_back(started, infra):
    org = testing.uid("org")
    received: list[Envelope] = []

    async def charge(envelope: Envelope) -> None:
        received.append(envelope)

    bus = Bus(infra.amqp_url, "checkout-test")
    await bus.connect()
    try:
        await bus.consume(
            ConsumerSpec(
                queue=f"test.invoices.{org}", routing_keys=["invoice.created.v1"], handler=charge
            )
        )
        event = testing.checkout_completed(testing.price(), completed_at=started.clock.now())
        await bus.publish(Envelope.wrap(event, producer="checkout", org_id=org))
        await eventually(lambda: _count(started, event.customer_id))
        async with started.db.transaction() as session:
            sub = (
                (
                    await session.execute(
                        select(subscriptions).where(
                            subscriptions.c.customer_id == event.customer_id
                        )
                    )
                )
                .one()
                ._mapping
            )
        started.clock.set(sub["current_period_end"])
        await drain(started)
        await eventually(lambda: _has(received, org))
        env = next(e for e in received if e.org_id == org)
        inv = env.data
        assert inv["subscription_id"] == sub["id"] and inv["amount_due"] == 5000
        await bus.publish(
            Envelope.wrap(
                testing.invoice_paid(inv, paid_at=started.clock.now()),
                producer="checkout",
                org_id=org,
            )
        )

        async def renewed() -> bool:
            return bool(await testing.published(started.db, org, "subscription.renewed.v1"))

        await eventually(renewed)
    finally:
        await bus.close()


async def _has(received: list[Envelope], org: str) -> bool:
    return any(e.org_id == org for e in received)
