"""Checkout's payment state machine fed by webhook-translated events, against real
Postgres and RabbitMQ (plan 9.4 out of order, 9.3 duplicates, 10.5 parallel)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bos_common.events import (
    Envelope,
    PaymentFailedV1,
    PaymentSucceededV1,
    SubscriptionCreatedV1,
)
from bos_common.ids import new_id
from bos_common.testing import eventually
from checkout import repository
from checkout.models import checkout_sessions, outbox, payments
from checkout.runtime import CheckoutRuntime
from checkout.testing import a_checkout

pytestmark = pytest.mark.integration


async def a_checkout_being_paid(
    rt: CheckoutRuntime, *, payment_status: str = "requires_action", age: timedelta = timedelta(0)
) -> tuple[str, str, str]:
    """A checkout in `processing` with one payment, as confirm leaves it."""
    payment_id, intent = new_id("pay"), f"pi_{uuid.uuid4().hex[:16]}"
    checkout_id, customer = await a_checkout(rt, status="processing", attempt=1)
    async with rt.db.transaction() as s:
        await repository.insert_payment(
            s,
            id=payment_id,
            org_id="org_t",
            kind="checkout",
            checkout_id=checkout_id,
            customer_id=customer.id,
            attempt=1,
            status=payment_status,
            amount=9900,
            currency="usd",
            stripe_intent_id=None if payment_status == "pending" else intent,
            stripe_idempotency_key=f"k-{payment_id}",
            payment_method_id="pm_card_visa",
            created_at=datetime.now(UTC) - age,
            updated_at=datetime.now(UTC) - age,  # the confirm's lease, last renewed then
        )
    return checkout_id, payment_id, intent


def succeeded(
    checkout_id: str, payment_id: str, intent: str, at: datetime | None = None
) -> Envelope:
    return Envelope.wrap(
        PaymentSucceededV1(
            stripe_event_id=f"evt_{uuid.uuid4().hex[:12]}",
            stripe_created=at or datetime.now(UTC),
            status="succeeded",
            checkout_id=checkout_id,
            payment_id=payment_id,
            payment_intent_id=intent,
            amount=9900,
            currency="usd",
            payment_method_id="pm_card_visa",
        ),
        producer="webhooks",
        org_id="org_t",
    )


def failed(checkout_id: str, payment_id: str, intent: str) -> Envelope:
    return Envelope.wrap(
        PaymentFailedV1(
            stripe_event_id=f"evt_{uuid.uuid4().hex[:12]}",
            stripe_created=datetime.now(UTC),
            status="requires_payment_method",
            checkout_id=checkout_id,
            payment_id=payment_id,
            payment_intent_id=intent,
            amount=9900,
            currency="usd",
            failure_code="card_declined",
            decline_code="generic_decline",
        ),
        producer="webhooks",
        org_id="org_t",
    )


async def state(rt: CheckoutRuntime, checkout_id: str, payment_id: str) -> tuple[Any, Any, int]:
    async with rt.db.transaction() as s:
        cs = (
            await s.execute(select(checkout_sessions).where(checkout_sessions.c.id == checkout_id))
        ).one()
        pay = (await s.execute(select(payments).where(payments.c.id == payment_id))).one()
        completed = (
            await s.execute(
                select(func.count()).where(
                    outbox.c.event_type == "checkout.completed.v1",
                    outbox.c.envelope["data"]["checkout_id"].astext == checkout_id,
                )
            )
        ).scalar_one()
    return cs, pay, completed


async def test_9_1_payment_succeeded_fulfils_the_checkout_once(runtime: CheckoutRuntime) -> None:
    cs_id, pay_id, pi = await a_checkout_being_paid(runtime)
    await runtime.bus.publish(succeeded(cs_id, pay_id, pi))

    async def fulfilled() -> bool:
        cs, pay, n = await state(runtime, cs_id, pay_id)
        return cs.completed_at is not None and pay.status == "succeeded" and n == 1

    assert await eventually(fulfilled)


async def test_9_3_the_same_success_twice_fulfils_once(runtime: CheckoutRuntime) -> None:
    cs_id, pay_id, pi = await a_checkout_being_paid(runtime)
    event = succeeded(cs_id, pay_id, pi)
    await runtime.bus.publish(event)
    await runtime.bus.publish(event)
    second = Envelope.wrap(event.payload(), producer="webhooks", org_id="org_t")  # new id
    await runtime.bus.publish(second)
    await eventually(lambda: _completed(runtime, cs_id, pay_id))
    await asyncio.sleep(0.5)
    _, _, completed = await state(runtime, cs_id, pay_id)
    assert completed == 1


async def _completed(rt: CheckoutRuntime, cs_id: str, pay_id: str) -> bool:
    return (await state(rt, cs_id, pay_id))[2] == 1


async def test_9_4_a_late_payment_failed_never_undoes_a_success(runtime: CheckoutRuntime) -> None:
    cs_id, pay_id, pi = await a_checkout_being_paid(runtime)
    await runtime.bus.publish(succeeded(cs_id, pay_id, pi))
    await eventually(lambda: _completed(runtime, cs_id, pay_id))

    await runtime.bus.publish(failed(cs_id, pay_id, pi))
    await asyncio.sleep(1.0)

    cs, pay, completed = await state(runtime, cs_id, pay_id)
    assert pay.status == "succeeded" and cs.status == "processing" and cs.completed_at
    assert completed == 1


async def test_9_4_success_before_the_confirm_committed_is_retried_not_dropped(
    runtime: CheckoutRuntime,
) -> None:
    cs_id, pay_id, pi = await a_checkout_being_paid(runtime, payment_status="pending")
    await runtime.bus.publish(succeeded(cs_id, pay_id, pi))
    await asyncio.sleep(0.5)
    cs, pay, completed = await state(runtime, cs_id, pay_id)
    assert (pay.status, completed) == ("pending", 0), "not applied while confirm is running"

    # The confirm's phase 3 commits now; the bus's retry tier brings the event back.
    async with runtime.db.transaction() as s:
        await s.execute(
            update(payments)
            .where(payments.c.id == pay_id)
            .values(status="requires_action", stripe_intent_id=pi)
        )

    assert await eventually(lambda: _completed(runtime, cs_id, pay_id), timeout=20)
    _, pay, _ = await state(runtime, cs_id, pay_id)
    assert pay.status == "succeeded"


async def test_a_confirm_that_died_after_stripe_is_recovered_from_the_webhook(
    runtime: CheckoutRuntime,
) -> None:
    # Its process died a lease ago (it stopped renewing): seconds, not a minute.
    cs_id, pay_id, pi = await a_checkout_being_paid(
        runtime, payment_status="pending", age=runtime.payment_leases.lease + timedelta(seconds=1)
    )
    await runtime.bus.publish(succeeded(cs_id, pay_id, pi))
    assert await eventually(lambda: _completed(runtime, cs_id, pay_id))
    _, pay, _ = await state(runtime, cs_id, pay_id)
    assert (pay.status, pay.stripe_intent_id) == ("succeeded", pi)


async def test_payment_failed_reopens_the_checkout_for_another_card(
    runtime: CheckoutRuntime,
) -> None:
    cs_id, pay_id, pi = await a_checkout_being_paid(runtime)
    await runtime.bus.publish(failed(cs_id, pay_id, pi))

    async def reopened() -> bool:
        cs, pay, _ = await state(runtime, cs_id, pay_id)
        return cs.status == "open" and pay.status == "failed"

    assert await eventually(reopened)
    cs, pay, _ = await state(runtime, cs_id, pay_id)
    assert cs.last_error["code"] == "card_declined" and pay.error_code == "card_declined"


async def test_10_5_events_for_many_checkouts_process_in_parallel(runtime: CheckoutRuntime) -> None:
    batch = [await a_checkout_being_paid(runtime) for _ in range(20)]
    await asyncio.gather(*(runtime.bus.publish(succeeded(*b)) for b in batch))

    async def all_done() -> bool:
        return all([await _completed(runtime, c, p) for c, p, _ in batch])

    assert await eventually(all_done, timeout=30)


async def test_subscription_created_marks_the_checkout_complete(runtime: CheckoutRuntime) -> None:
    cs_id, pay_id, pi = await a_checkout_being_paid(runtime)
    await runtime.bus.publish(succeeded(cs_id, pay_id, pi))
    await eventually(lambda: _completed(runtime, cs_id, pay_id))
    now = datetime.now(UTC)
    sub = Envelope.wrap(
        SubscriptionCreatedV1(
            subscription_id="sub_1",
            checkout_id=cs_id,
            customer_id="cus_1",
            product_id="prod_1",
            price_id="price_1",
            status="active",
            is_free=False,
            amount=9900,
            currency="usd",
            interval="month",
            current_period_start=now,
            created_at=now,
        ),
        producer="subscriptions",
        org_id="org_t",
    )
    await runtime.bus.publish(sub)

    async def complete() -> bool:
        cs, _, _ = await state(runtime, cs_id, pay_id)
        return cs.status == "complete" and cs.subscription_id == "sub_1"

    assert await eventually(complete)
