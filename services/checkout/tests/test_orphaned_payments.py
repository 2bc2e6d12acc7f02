"""Payments left pending by a confirm whose process died (checkout.recovery), against
real Postgres: taken over once with two sweeping replicas, and settled."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bos_common.ids import new_id
from bos_common.testing import Infra, migrate
from checkout import recovery_repository, repository, worker
from checkout.app import build_runtime
from checkout.models import checkout_sessions, payments
from checkout.runtime import CheckoutRuntime
from checkout.settings import CheckoutSettings
from checkout.testing import a_checkout

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def runtime(infra: Infra) -> AsyncIterator[CheckoutRuntime]:
    """No background sweep: the tests run it themselves, as two replicas would."""
    await migrate(infra.database_url, "checkout")
    unused = "http://127.0.0.1:9"
    rt = build_runtime(
        CheckoutSettings(
            **infra.env(),
            STRIPE_SECRET_KEY="sk_test_x",
            STRIPE_API_BASE=unused,
            CATALOG_URL=unused,
            TOKENS_URL=unused,
            SUBSCRIPTIONS_URL=unused,
            RECOVERY_SWEEP_SECONDS=3600,
        )
    )
    await rt.start()
    await asyncio.wait_for(rt.bus.wait_connected(), 30)
    yield rt
    await rt.stop()


async def a_confirm_left_pending(rt: CheckoutRuntime, *, renewed_ago: timedelta) -> str:
    """A `processing` checkout whose pending payment's lease was last renewed then."""
    payment_id = new_id("pay")
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
            status="pending",
            amount=9900,
            currency="usd",
            stripe_idempotency_key=f"k-{uuid.uuid4().hex}",
            payment_method_id="pm_card_visa",
            created_at=datetime.now(UTC) - renewed_ago,
            updated_at=datetime.now(UTC) - renewed_ago,
        )
    return payment_id


async def test_two_sweeps_take_each_orphaned_payment_once(runtime: CheckoutRuntime) -> None:
    lease = runtime.payment_leases.lease
    dead = {await a_confirm_left_pending(runtime, renewed_ago=lease * 2) for _ in range(6)}
    alive = await a_confirm_left_pending(runtime, renewed_ago=timedelta(0))

    # Two replicas at once: the second skips what the first holds.
    async with runtime.db.transaction() as first:
        taken_first = await recovery_repository.take_over_orphaned_payments(first, lease, 3)
        async with runtime.db.transaction() as second:
            taken_second = await recovery_repository.take_over_orphaned_payments(second, lease, 100)
    ids_first = {p.id for p in taken_first}
    ids_second = {p.id for p in taken_second}
    assert not ids_first & ids_second
    assert dead <= ids_first | ids_second
    assert alive not in ids_first | ids_second

    # Taken over means leased again: not taken by a third sweep within the lease.
    async with runtime.db.transaction() as third:
        again = await recovery_repository.take_over_orphaned_payments(third, lease, 100)
    assert not {p.id for p in again} & dead


async def test_an_orphan_stripe_never_saw_reopens_its_checkout(runtime: CheckoutRuntime) -> None:
    """Its customer was never created on Stripe, so no intent can exist: nothing was
    charged, and the customer may confirm again."""
    lease = runtime.payment_leases.lease
    dead = await a_confirm_left_pending(runtime, renewed_ago=lease * 2)
    alive = await a_confirm_left_pending(runtime, renewed_ago=timedelta(0))

    for _ in range(20):  # a batch at a time (others' orphans in this database too)
        if not await worker.settle_orphaned_payments_once(runtime):
            break

    async with runtime.db.transaction() as s:
        rows = {
            r.id: r
            for r in (
                await s.execute(
                    select(
                        payments.c.id,
                        payments.c.status,
                        payments.c.error_code,
                        checkout_sessions.c.status.label("checkout_status"),
                    )
                    .join(checkout_sessions, checkout_sessions.c.id == payments.c.checkout_id)
                    .where(payments.c.id.in_([dead, alive]))
                )
            ).all()
        }
    assert (rows[dead].status, rows[dead].error_code) == ("canceled", "payment_interrupted")
    assert rows[dead].checkout_status == "open"
    assert (rows[alive].status, rows[alive].checkout_status) == ("pending", "processing")
