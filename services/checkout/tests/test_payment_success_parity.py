"""A paid checkout's success is recorded two ways: confirm's single statement
(repository.record_success, the common case) and the payment state machine
(confirm.record_intent -> payment_states.mark_payment_succeeded -> service.fulfil, for
webhooks, recovery and every other state). Both must leave the same payment, checkout,
customer and `checkout.completed.v1`. Real Postgres."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bos_common.ids import new_id
from checkout import confirm, customer_repository, repository
from checkout.models import checkout_sessions, customers, outbox, payments
from checkout.runtime import CheckoutRuntime
from checkout.testing import a_checkout

pytestmark = pytest.mark.integration

STRIPE_CUSTOMER = "cus_stripe_parity"


async def a_started_payment(rt: CheckoutRuntime) -> tuple[Any, str, Any]:
    """(checkout as confirm's phase 1 left it, its pending payment, customer)."""
    checkout_id, _ = await a_checkout(rt, metadata={"order": "42"})
    payment_id = new_id("pay")
    async with rt.db.driver_connection() as conn:
        row = await repository.read_checkout(conn, checkout_id)
        started = await repository.start_payment(
            conn,
            checkout_id=checkout_id,
            seen_updated_at=row.updated_at,
            now=datetime.now(UTC),
            payment_id=payment_id,
            kind="checkout",
            amount=9900,
            currency="usd",
            platform_fee=495,
            destination_account=None,
            connect_mode=None,
            payment_method_id="pm_card_visa",
            intent_traceparent=None,
        )
        assert started is not None
        await customer_repository.set_stripe_customer(conn, row.customer_id, STRIPE_CUSTOMER)
        row = await repository.read_checkout(conn, checkout_id)
    # The payment as confirm's phase 1 hands it on (confirm._begin).
    payment, customer = started
    return row, payment, customer


def an_intent() -> dict[str, Any]:
    return {
        "id": f"pi_{uuid.uuid4().hex[:16]}",
        "object": "payment_intent",
        "status": "succeeded",
        "payment_method": {"id": "pm_card_visa", "card": {"fingerprint": "fp_parity"}},
    }


async def state(rt: CheckoutRuntime, checkout_id: str) -> dict[str, Any]:
    """What a success wrote, with the values that differ by nature between two checkouts
    (ids, times) replaced by whether they are set and consistent."""
    async with rt.db.transaction() as s:
        checkout = (
            await s.execute(select(checkout_sessions).where(checkout_sessions.c.id == checkout_id))
        ).one()
        payment = (
            await s.execute(select(payments).where(payments.c.checkout_id == checkout_id))
        ).one()
        customer = (
            await s.execute(select(customers).where(customers.c.id == checkout.customer_id))
        ).one()
        events = (
            await s.execute(
                select(outbox.c.event_type, outbox.c.org_id, outbox.c.envelope).where(
                    outbox.c.envelope["data"]["checkout_id"].astext == checkout_id
                )
            )
        ).all()
    [event] = events
    data = dict(event.envelope["data"])
    assert data.pop("checkout_id") == checkout.id
    assert data.pop("customer_id") == customer.id
    assert data.pop("customer_email") == customer.email
    assert data.pop("payment_id") == payment.id
    assert data.pop("payment_intent_id") == payment.stripe_intent_id
    assert datetime.fromisoformat(data.pop("completed_at")) == checkout.completed_at
    return {
        "checkout": {
            "status": checkout.status,
            "fulfilled": checkout.completed_at is not None,
            "paid_by_its_payment": checkout.payment_id == payment.id,
            "last_error": checkout.last_error,
            "attempt": checkout.attempt,
        },
        "payment": {
            "status": payment.status,
            "error_code": payment.error_code,
            "error_message": payment.error_message,
            "intent": payment.stripe_intent_id is not None,
            "payment_method_id": payment.payment_method_id,
            "card_fingerprint": payment.card_fingerprint,
        },
        "customer": {
            "default_payment_method_id": customer.default_payment_method_id,
            "card_fingerprint": customer.card_fingerprint,
            "stripe_customer_id": customer.stripe_customer_id,
        },
        "event": {
            "type": event.event_type,
            "org_id": event.org_id,
            "producer": event.envelope["producer"],
            "envelope_org_id": event.envelope["org_id"],
            "data": data,
        },
    }


async def test_4_1_the_success_statement_writes_what_the_state_machine_writes(
    runtime: CheckoutRuntime,
) -> None:
    # The single statement, as confirm runs it when Stripe answers `succeeded`.
    fast, payment, customer = await a_started_payment(runtime)
    assert await confirm._record_success(
        runtime, fast, payment, customer, STRIPE_CUSTOMER, an_intent()
    )

    # The state machine, as a webhook or the recovery sweep runs it.
    general, payment, _ = await a_started_payment(runtime)
    out = await confirm.record_intent(runtime, payment.id, an_intent())
    assert (out.status, out.payment_id) == ("processing", payment.id)

    assert await state(runtime, fast.id) == await state(runtime, general.id)
