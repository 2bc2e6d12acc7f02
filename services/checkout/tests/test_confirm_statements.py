"""Confirm's single statements on the driver connection (repository.start_payment and
repository.record_success) keep the guards of the transitions they replace: a checkout
or payment not in the expected state is left untouched. Real Postgres."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bos_common.ids import new_id
from bos_common.outbox import outbox_row
from checkout import projection_repository, repository, service
from checkout.models import checkout_sessions, customers, outbox, payments
from checkout.runtime import CheckoutRuntime
from checkout.testing import a_checkout

pytestmark = pytest.mark.integration


async def read(rt: CheckoutRuntime, checkout_id: str) -> Any:
    async with rt.db.driver_connection() as conn:
        return await repository.read_checkout(conn, checkout_id)


async def an_open_checkout(rt: CheckoutRuntime, **values: Any) -> Any:
    checkout_id, _ = await a_checkout(rt, **values)
    return await read(rt, checkout_id)


async def start(rt: CheckoutRuntime, row: Any, **over: Any) -> Any:
    values: dict[str, Any] = {
        "checkout_id": row.id,
        "seen_updated_at": row.updated_at,
        "now": datetime.now(UTC),
        "payment_id": new_id("pay"),
        "kind": "checkout",
        "amount": 9900,
        "currency": "usd",
        "platform_fee": 495,
        "destination_account": None,
        "connect_mode": None,
        "payment_method_id": "pm_card_visa",
        "intent_traceparent": None,
        **over,
    }
    async with rt.db.driver_connection() as conn:
        return await repository.start_payment(conn, **values), values["payment_id"]


async def payments_of(rt: CheckoutRuntime, checkout_id: str) -> list[Any]:
    async with rt.db.transaction() as s:
        q = select(payments).where(payments.c.checkout_id == checkout_id)
        return list((await s.execute(q)).all())


async def test_4_1_start_payment_moves_an_open_checkout_and_keys_the_payment(
    runtime: CheckoutRuntime,
) -> None:
    row = await an_open_checkout(runtime)
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    started, payment_id = await start(runtime, row, intent_traceparent=traceparent)
    assert started is not None
    started_payment, customer = started
    assert started_payment.id == payment_id and started_payment.status == "pending"
    assert started_payment.attempt == 1
    assert started_payment.stripe_idempotency_key == f"bos-{row.id}-a1-pm_card_visa"
    assert customer.id == row.customer_id and customer.email == row.customer_email
    now = await read(runtime, row.id)
    assert now.status == "processing" and now.attempt == 1
    [payment] = await payments_of(runtime, row.id)
    assert (payment.id, payment.status, payment.amount, payment.net_amount) == (
        payment_id,
        "pending",
        9900,
        9405,
    )
    # What a replay of the intent's create needs (checkout.recovery), stored with it.
    assert (payment.payment_method_id, payment.intent_traceparent) == ("pm_card_visa", traceparent)


@pytest.mark.parametrize("status", ["processing", "complete", "canceled", "expired"])
async def test_10_1_start_payment_refuses_a_checkout_that_is_not_open(
    runtime: CheckoutRuntime, status: str
) -> None:
    row = await an_open_checkout(runtime, status=status)
    started, _ = await start(runtime, row)
    assert started is None
    assert (await read(runtime, row.id)).status == status
    assert await payments_of(runtime, row.id) == []


async def test_10_1_start_payment_refuses_a_checkout_changed_since_it_was_read(
    runtime: CheckoutRuntime,
) -> None:
    """Of two confirms that read the same open checkout only the first starts a payment;
    a coupon applied after the read (new amounts) also makes the charge plan stale."""
    row = await an_open_checkout(runtime)
    first, _ = await start(runtime, row)
    second, _ = await start(runtime, row)
    assert first is not None and second is None
    assert len(await payments_of(runtime, row.id)) == 1

    other = await an_open_checkout(runtime)
    async with runtime.db.transaction() as s:
        await repository.transition(s, other.id, expected=("open",), amount_total=5000)
    started, _ = await start(runtime, other)
    assert started is None and await payments_of(runtime, other.id) == []


async def test_10_1_start_payment_refuses_an_expired_checkout(runtime: CheckoutRuntime) -> None:
    row = await an_open_checkout(runtime, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    started, _ = await start(runtime, row)
    assert started is None and await payments_of(runtime, row.id) == []


async def record(rt: CheckoutRuntime, row: Any, payment_id: str) -> bool:
    now = datetime.now(UTC)
    paid = SimpleNamespace(
        id=payment_id,
        stripe_intent_id=f"pi_{uuid.uuid4().hex[:16]}",
        payment_method_id="pm_card_visa",
        card_fingerprint="fp_1",
    )
    buyer = SimpleNamespace(id=row.customer_id, external_user_id=None, stripe_customer_id="cus_s")
    event = outbox_row(
        service.completed_event(row, buyer, paid, now), producer="checkout", org_id=row.org_id
    )
    async with rt.db.driver_connection() as conn:
        return await repository.record_success(
            conn,
            payment_id=payment_id,
            checkout_id=row.id,
            customer_id=row.customer_id,
            stripe_intent_id=paid.stripe_intent_id,
            payment_method_id=paid.payment_method_id,
            card_fingerprint=paid.card_fingerprint,
            completed_at=now,
            event=event,
        )


async def completed_events(rt: CheckoutRuntime, checkout_id: str) -> list[Any]:
    async with rt.db.transaction() as s:
        q = select(outbox.c.envelope).where(
            outbox.c.event_type == "checkout.completed.v1",
            outbox.c.envelope["data"]["checkout_id"].astext == checkout_id,
        )
        return [r.envelope for r in (await s.execute(q)).all()]


async def test_4_1_record_success_fulfils_once_with_the_card_saved(
    runtime: CheckoutRuntime,
) -> None:
    row = await an_open_checkout(runtime)
    _, payment_id = await start(runtime, row)
    row = await read(runtime, row.id)
    assert await record(runtime, row, payment_id) is True
    assert await record(runtime, row, payment_id) is False  # exactly once
    now = await read(runtime, row.id)
    assert now.status == "processing" and now.completed_at and now.payment_id == payment_id
    [payment] = await payments_of(runtime, row.id)
    assert payment.status == "succeeded" and payment.stripe_intent_id.startswith("pi_")
    async with runtime.db.transaction() as s:
        cust = (await s.execute(select(customers).where(customers.c.id == row.customer_id))).one()
    assert (cust.default_payment_method_id, cust.card_fingerprint) == ("pm_card_visa", "fp_1")
    [envelope] = await completed_events(runtime, row.id)
    data = envelope["data"]
    assert data["payment_id"] == payment_id and data["payment_intent_id"] == (
        payment.stripe_intent_id
    )
    assert data["amount_total"] == 9900 and data["stripe_customer_id"] == "cus_s"


@pytest.mark.parametrize("checkout_status", ["open", "complete", "canceled"])
async def test_10_1_record_success_leaves_everything_when_the_checkout_moved_on(
    runtime: CheckoutRuntime, checkout_status: str
) -> None:
    """The general path (record_intent) then decides: fulfil a reopened checkout, or
    refund a duplicate. The statement itself must not have half-succeeded."""
    row = await an_open_checkout(runtime)
    _, payment_id = await start(runtime, row)
    async with runtime.db.transaction() as s:
        await s.execute(
            update(checkout_sessions)
            .where(checkout_sessions.c.id == row.id)
            .values(status=checkout_status)
        )
    assert await record(runtime, row, payment_id) is False
    [payment] = await payments_of(runtime, row.id)
    assert payment.status == "pending" and payment.stripe_intent_id is None
    assert (await read(runtime, row.id)).completed_at is None
    assert await completed_events(runtime, row.id) == []


@pytest.mark.parametrize("payment_status", ["requires_action", "failed", "canceled", "succeeded"])
async def test_10_1_record_success_refuses_a_payment_that_is_not_pending(
    runtime: CheckoutRuntime, payment_status: str
) -> None:
    row = await an_open_checkout(runtime)
    _, payment_id = await start(runtime, row)
    async with runtime.db.transaction() as s:
        await s.execute(
            update(payments).where(payments.c.id == payment_id).values(status=payment_status)
        )
    assert await record(runtime, row, payment_id) is False
    now = await read(runtime, row.id)
    assert now.completed_at is None and now.status == "processing"
    assert await completed_events(runtime, row.id) == []


async def test_10_1_subscribed_completes_only_a_fulfilled_checkout(
    runtime: CheckoutRuntime,
) -> None:
    """projection_repository.record_subscribed: `complete` only once the checkout was fulfilled
    (processing with completed_at); the projection is written either way."""

    async def subscribed(row: Any, sub_id: str) -> Any:
        async with runtime.db.transaction() as s:
            await projection_repository.record_subscribed(
                s,
                subscription_id=sub_id,
                org_id="org_t",
                customer_id=row.customer_id,
                product_id=row.product_id,
                as_of=datetime.now(UTC),
                checkout_id=row.id,
            )
            live = await projection_repository.is_subscribed(s, row.customer_id, row.product_id)
        return await read(runtime, row.id), live

    for status, completed in (("open", None), ("processing", None), ("canceled", None)):
        row = await an_open_checkout(runtime, status=status, completed_at=completed)
        after, live = await subscribed(row, new_id("sub"))
        assert after.status == status and after.subscription_id is None and live

    row = await an_open_checkout(runtime, status="processing", completed_at=datetime.now(UTC))
    sub_id = new_id("sub")
    after, live = await subscribed(row, sub_id)
    assert after.status == "complete" and after.subscription_id == sub_id and live


@pytest.mark.parametrize("status", ["open", "expired", "canceled"])
async def test_a_fulfilled_checkout_is_processing_or_complete_only(
    runtime: CheckoutRuntime, status: str
) -> None:
    """`completed_at` marks fulfilment; the status that goes with it is `processing`
    (until the subscription exists) or `complete`. The schema refuses anything else, so
    no write path can leave a fulfilled checkout open, expired or canceled."""
    fulfilled = await an_open_checkout(runtime, status="processing", completed_at=datetime.now(UTC))
    with pytest.raises(IntegrityError, match="ck_checkout_sessions_fulfilled"):
        async with runtime.db.transaction() as s:
            await s.execute(
                update(checkout_sessions)
                .where(checkout_sessions.c.id == fulfilled.id)
                .values(status=status)
            )
    with pytest.raises(IntegrityError, match="ck_checkout_sessions_fulfilled"):
        await an_open_checkout(runtime, status=status, completed_at=datetime.now(UTC))
    assert (await read(runtime, fulfilled.id)).status == "processing"
