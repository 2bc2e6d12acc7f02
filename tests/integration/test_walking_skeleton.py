"""Walking skeleton: one real event crosses the bus.

webhooks records a Stripe `payment_intent.succeeded` and writes `payment.succeeded.v1`
through its outbox; a consumer on subscriptions' runtime (the test's payments ledger)
consumes it through the inbox and records it. Against
real Postgres and RabbitMQ: delivered twice -> one effect; RabbitMQ stopped and
restarted mid-test -> the event still arrives, once; a handler that always raises ->
the message lands in the DLQ after the configured attempts, never loops.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from sqlalchemy import func, select

from bos_common.bus import ATTEMPT_HEADER, EXCHANGE, Bus, ConsumerSpec, RetryPolicy
from bos_common.events import Envelope, PaymentSucceededV1
from bos_common.inbox import DUPLICATES
from bos_common.testing import Infra, eventually, migrate
from subscriptions.app import build_runtime as build_subscriptions
from subscriptions.models import inbox as subscriptions_inbox
from subscriptions.settings import SubscriptionsSettings
from webhooks import service as webhooks_service
from webhooks.app import build_runtime as build_webhooks
from webhooks.models import outbox as webhooks_outbox
from webhooks.settings import WebhooksSettings

pytestmark = pytest.mark.integration


def stripe_payment_succeeded(amount: int = 5000) -> dict[str, Any]:
    pi = f"pi_{uuid.uuid4().hex[:24]}"
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "account": None,
        "data": {
            "object": {
                "id": pi,
                "object": "payment_intent",
                "amount": amount,
                "amount_received": amount,
                "currency": "usd",
                "status": "succeeded",
                "metadata": {"org_id": "org_test", "checkout_id": "cs_test"},
            }
        },
    }


@pytest.fixture(scope="module")
async def runtimes(infra: Infra, payments_ledger: Any) -> AsyncIterator[tuple[Any, Any]]:
    await migrate(infra.database_url, "webhooks", "subscriptions")
    await payments_ledger.create(infra.database_url)
    env = infra.env()
    webhooks = build_webhooks(
        WebhooksSettings(
            **env,
            STRIPE_WEBHOOK_SECRETS="whsec_test",
            STRIPE_SECRET_KEY="sk_test_unused",
            TOKENS_URL="http://127.0.0.1:9",
        )
    )
    subscriptions = build_subscriptions(SubscriptionsSettings(**env))
    subscriptions.on_events("test_payments", PaymentSucceededV1.event_type)(payments_ledger.record)
    subscriptions.payments_ledger = payments_ledger
    # Fast polling so the restart case does not wait on the default interval.
    webhooks.relay.poll_interval = 0.2
    await webhooks.start()
    await subscriptions.start()
    await asyncio.wait_for(webhooks.bus.wait_connected(), 30)
    await asyncio.wait_for(subscriptions.bus.wait_connected(), 30)
    # Consumers are declared right after connect; give them that moment.
    await eventually(lambda: _queue_exists(infra, "subscriptions.test_payments"))
    yield webhooks, subscriptions
    await subscriptions.stop()
    await webhooks.stop()


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


async def ingest(webhooks: Any, stripe_event: dict[str, Any]) -> None:
    async with webhooks.db.transaction() as session:
        assert await webhooks_service.ingest(webhooks, session, stripe_event)


async def payments_recorded(subscriptions: Any, payment_intent_id: str) -> int:
    async with subscriptions.db.transaction() as session:
        return int(await subscriptions.payments_ledger.count(session, payment_intent_id))


async def outbox_envelope(webhooks: Any, stripe_event_id: str) -> tuple[Envelope, bool]:
    async with webhooks.db.transaction() as session:
        row = (
            await session.execute(
                select(webhooks_outbox.c.envelope, webhooks_outbox.c.published_at).where(
                    webhooks_outbox.c.envelope["data"]["stripe_event_id"].astext == stripe_event_id
                )
            )
        ).one()
    return Envelope.model_validate(row.envelope), row.published_at is not None


async def test_payment_succeeded_crosses_the_bus_once(runtimes: tuple[Any, Any]) -> None:
    webhooks, subscriptions = runtimes
    stripe_event = stripe_payment_succeeded()
    pi = stripe_event["data"]["object"]["id"]

    await ingest(webhooks, stripe_event)

    assert await eventually(lambda: payments_recorded(subscriptions, pi)) == 1

    # Marked sent once the broker's confirm is back, which may come after the consumer
    # has already taken the message.
    async def published() -> Envelope | None:
        envelope, sent = await outbox_envelope(webhooks, stripe_event["id"])
        return envelope if sent else None

    envelope = await eventually(published)
    assert envelope.event_type == "payment.succeeded.v1"
    assert envelope.producer == "webhooks"
    assert envelope.org_id == "org_test"


async def test_event_delivered_twice_has_one_effect(runtimes: tuple[Any, Any]) -> None:
    webhooks, subscriptions = runtimes
    stripe_event = stripe_payment_succeeded()
    pi = stripe_event["data"]["object"]["id"]
    await ingest(webhooks, stripe_event)
    await eventually(lambda: payments_recorded(subscriptions, pi))
    envelope, _ = await outbox_envelope(webhooks, stripe_event["id"])
    duplicates = DUPLICATES.labels("subscriptions.test_payments")
    before = duplicates._value.get()

    # The same envelope again, as a relay crash between confirm and update would send it.
    await webhooks.bus.publish(envelope)

    await eventually(lambda: _gt(duplicates._value.get(), before))
    assert await payments_recorded(subscriptions, pi) == 1
    async with subscriptions.db.transaction() as session:
        seen = (
            await session.execute(
                select(func.count()).where(subscriptions_inbox.c.event_id == envelope.event_id)
            )
        ).scalar_one()
    assert seen == 1


async def _gt(a: float, b: float) -> bool:
    return a > b


async def test_event_survives_a_rabbitmq_restart(infra: Infra, runtimes: tuple[Any, Any]) -> None:
    webhooks, subscriptions = runtimes
    stripe_event = stripe_payment_succeeded()
    pi = stripe_event["data"]["object"]["id"]

    infra.rabbitmq("stop")
    try:
        # The business transaction commits while the broker is down: the event waits in
        # the outbox instead of being lost.
        await ingest(webhooks, stripe_event)
        await asyncio.sleep(1.0)
        _, published = await outbox_envelope(webhooks, stripe_event["id"])
        assert not published
        assert await payments_recorded(subscriptions, pi) == 0
    finally:
        infra.rabbitmq("start")

    assert await eventually(lambda: payments_recorded(subscriptions, pi), timeout=60) == 1
    await asyncio.sleep(0.5)
    assert await payments_recorded(subscriptions, pi) == 1


async def test_poison_message_lands_in_dlq_after_max_attempts(infra: Infra) -> None:
    queue = f"skeleton.poison.{uuid.uuid4().hex[:8]}"
    event_type = f"skeleton.poisoned_{uuid.uuid4().hex[:8]}.v1"
    calls: list[int] = []

    async def always_fails(envelope: Envelope) -> None:
        calls.append(1)
        raise RuntimeError("this handler always fails")

    bus = Bus(infra.amqp_url, "skeleton-test")
    await bus.connect()
    try:
        spec = ConsumerSpec(
            queue=queue,
            routing_keys=[event_type],
            handler=always_fails,
            retry=RetryPolicy(delays_ms=(50, 100), max_attempts=3),
        )
        await bus.consume(spec)
        envelope = Envelope(
            event_id=uuid.uuid4(),
            event_type=event_type,
            occurred_at="2026-11-27T00:00:00Z",
            producer="test",
        )
        await bus.publish(envelope)

        dead = await eventually(lambda: _get_one(infra, f"{queue}.dlq"), timeout=20)
        assert Envelope.model_validate_json(dead.body).event_id == envelope.event_id
        assert dead.headers[ATTEMPT_HEADER] == 4  # three attempts made, none left
        assert "this handler always fails" in dead.headers["x-bos-last-error"]
        await asyncio.sleep(0.5)
        assert len(calls) == 3, "exactly max_attempts handler calls, then no more"
    finally:
        await bus.close()


async def _get_one(infra: Infra, queue: str) -> aio_pika.abc.AbstractIncomingMessage | None:
    conn = await aio_pika.connect(infra.amqp_url)
    try:
        channel = await conn.channel()
        q = await channel.get_queue(queue)
        message = await q.get(fail=False, no_ack=True)
        return message
    finally:
        await conn.close()


async def test_the_retired_payments_queue_is_deleted_on_connect(infra: Infra) -> None:
    """subscriptions no longer consumes payment.succeeded.v1: the queue it had (still
    bound in an existing deployment) is deleted when its bus connects."""
    conn = await aio_pika.connect(infra.amqp_url)
    try:
        channel = await conn.channel()
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(
            "subscriptions.payments", durable=True, arguments={"x-queue-type": "quorum"}
        )
        await queue.bind(exchange, routing_key="payment.succeeded.v1")
    finally:
        await conn.close()
    runtime = build_subscriptions(SubscriptionsSettings(**infra.env(), RUN_WORKERS="false"))
    await runtime.start()
    try:
        await asyncio.wait_for(runtime.bus.wait_connected(), 30)
        assert not await _queue_exists(infra, "subscriptions.payments")
    finally:
        await runtime.stop()
