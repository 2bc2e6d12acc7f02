"""The scheduler is safe with several replicas: due rows are claimed with FOR UPDATE SKIP
LOCKED, so workers racing over the same due subscriptions invoice each exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from subscriptions import repository, testing
from subscriptions.app import build_runtime
from subscriptions.clock import Clock
from subscriptions.models import invoices, outbox, subscriptions
from subscriptions.scheduler import drain, run_due
from subscriptions.settings import SubscriptionsSettings

pytestmark = pytest.mark.integration


async def seed_due(rt, org_ids: list[str], per_org: int, due_at) -> None:
    """Active monthly subscriptions whose period ends at `due_at` (bulk insert)."""
    rows = []
    for org in org_ids:
        for i in range(per_org):
            rows.append(
                {
                    "id": testing.uid("sub"),
                    "org_id": org,
                    "customer_id": f"cus_{org}_{i}",
                    "customer_email": f"c{i}@example.com",
                    "product_id": "prod_bench",
                    "product_name": "Pro",
                    "price_id": "price_bench",
                    "price_type": "recurring",
                    "interval": "month",
                    "amount": 5000,
                    "currency": "usd",
                    "is_free": False,
                    "features": ["pro"],
                    "metadata": {},
                    "status": "active",
                    "billing_anchor": due_at.replace(month=due_at.month - 1),
                    "current_period_start": due_at.replace(month=due_at.month - 1),
                    "current_period_end": due_at,
                    "cancel_at_period_end": False,
                    "hard_declined": False,
                    "next_action": "renew",
                    "next_action_at": due_at,
                    "stripe_customer_id": "cus_stripe",
                    "payment_method_id": "pm_1",
                    "created_at": due_at,
                    "updated_at": due_at,
                }
            )
    async with rt.db.transaction() as session:
        for i in range(0, len(rows), 2000):
            await session.execute(subscriptions.insert(), rows[i : i + 2000])


async def test_two_workers_racing_invoice_each_due_subscription_exactly_once(rt, infra):
    from datetime import UTC, datetime

    due = datetime(2026, 3, 1, tzinfo=UTC)
    orgs = [testing.uid("org") for _ in range(3)]
    await seed_due(rt, orgs, 400, due)
    rt.clock.set(due)
    # A second replica: its own runtime, engine and connection pool.
    other = build_runtime(SubscriptionsSettings(**infra.env()), clock=Clock(due))
    try:

        async def worker(r):
            handled = 0
            while (n := await run_due(r, limit=50)) > 0:
                handled += n
            return handled

        a, b = await asyncio.gather(worker(rt), worker(other))
    finally:
        await other.db.dispose()
    assert a + b == 1200 and a > 0 and b > 0, (a, b)
    async with rt.db.transaction() as session:
        per_sub = Counter(
            (await session.execute(select(invoices.c.subscription_id))).scalars().all()
        )
        assert len(per_sub) == 1200 and set(per_sub.values()) == {1}
        for org in orgs:
            numbers = sorted(
                (await session.execute(select(invoices.c.number).where(invoices.c.org_id == org)))
                .scalars()
                .all()
            )
            assert [int(n.rsplit("-", 1)[1]) for n in numbers] == list(range(1, 401)), (
                "gap-free, unique numbers per organization"
            )
        events = (
            await session.execute(
                select(func.count()).where(outbox.c.event_type == "invoice.created.v1")
            )
        ).scalar_one()
        assert events == 1200
        # Nothing is due any more until the payment results arrive.
        assert await repository.claim_due(session, due, 10) == []


async def test_scheduler_throughput_smoke(rt):
    """A small version of the 100,000-subscription benchmark (bench_scheduler.py)."""
    from datetime import UTC, datetime

    due = datetime(2026, 4, 1, tzinfo=UTC)
    await seed_due(rt, [testing.uid("org")], 3000, due)
    rt.clock.set(due)
    started = time.perf_counter()
    handled = await drain(rt, limit=1000)
    elapsed = time.perf_counter() - started
    assert handled == 3000
    print(f"\nscheduler: {handled} invoices in {elapsed:.2f}s = {handled / elapsed:.0f}/s")
