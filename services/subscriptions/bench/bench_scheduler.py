"""Benchmark: the billing scheduler with N subscriptions due at the same instant.

    DATABASE_URL=postgresql+asyncpg://... .venv/bin/python \
        services/subscriptions/bench/bench_scheduler.py --subscriptions 100000 --workers 4

Migrates a fresh `subscriptions` schema in that database (it is dropped: use a scratch
database), seeds N active monthly subscriptions across a few organizations whose period ends
at the same instant, then runs `--workers` scheduler replicas (each its own runtime and
connection pool, as separate pods would) until nothing is due. Checks that every
subscription was invoiced exactly once with gap-free numbers per organization and one
invoice.created.v1 each, and prints the throughput as JSON (target >= 2,000 invoices/s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from bos_common.testing import migrate
from subscriptions.app import build_runtime
from subscriptions.clock import Clock
from subscriptions.models import invoices, outbox, subscriptions
from subscriptions.scheduler import run_due
from subscriptions.settings import SubscriptionsSettings

DUE = datetime(2026, 3, 1, tzinfo=UTC)


def settings(url: str) -> SubscriptionsSettings:
    return SubscriptionsSettings(
        DATABASE_URL=url,
        AMQP_URL="amqp://unused/",
        BOS_INTERNAL_SECRET="bench-secret-0123456789",
        LOG_JSON="false",
        LOG_LEVEL="WARNING",
        RUN_WORKERS="false",
        DB_POOL_SIZE="4",
    )


async def seed(url: str, n: int, orgs: int) -> None:
    rt = build_runtime(settings(url))
    start = DUE - timedelta(days=28)
    try:
        rows = []
        for i in range(n):
            org = f"org_bench{i % orgs}"
            rows.append(
                {
                    "id": f"sub_bench{i:08d}",
                    "org_id": org,
                    "customer_id": f"cus_bench{i:08d}",
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
                    "billing_anchor": start,
                    "current_period_start": start,
                    "current_period_end": DUE,
                    "cancel_at_period_end": False,
                    "hard_declined": False,
                    "next_action": "renew",
                    "next_action_at": DUE,
                    "stripe_customer_id": "cus_stripe",
                    "payment_method_id": "pm_1",
                    "created_at": start,
                    "updated_at": start,
                }
            )
        async with rt.db.transaction() as session:
            for i in range(0, n, 5000):
                await session.execute(subscriptions.insert(), rows[i : i + 5000])
        async with rt.db.transaction() as session:
            await session.execute(text("ANALYZE subscriptions.subscriptions"))
    finally:
        await rt.db.dispose()


async def worker(url: str, batch: int) -> int:
    rt = build_runtime(settings(url), clock=Clock(DUE))
    handled = 0
    try:
        while (n := await run_due(rt, limit=batch)) > 0:
            handled += n
    finally:
        await rt.db.dispose()
    return handled


async def verify(url: str, n: int, orgs: int) -> dict[str, object]:
    rt = build_runtime(settings(url))
    try:
        async with rt.db.transaction() as session:
            invoiced = (
                await session.execute(
                    select(func.count(), func.count(func.distinct(invoices.c.subscription_id)))
                )
            ).one()
            events = (
                await session.execute(
                    select(func.count()).where(outbox.c.event_type == "invoice.created.v1")
                )
            ).scalar_one()
            gaps = (
                await session.execute(
                    text(
                        "SELECT count(*) FROM (SELECT org_id, count(*) c, "
                        "max(split_part(number, '-', 2)::int) m FROM subscriptions.invoices "
                        "GROUP BY org_id) x WHERE c <> m"
                    )
                )
            ).scalar_one()
    finally:
        await rt.db.dispose()
    ok = invoiced[0] == invoiced[1] == n and events == n and gaps == 0
    return {
        "invoices": invoiced[0],
        "distinct_subscriptions": invoiced[1],
        "invoice_created_events": events,
        "orgs_with_number_gaps": gaps,
        "exactly_once": ok,
    }


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--orgs", type=int, default=10)
    parser.add_argument("--target", type=float, default=2000.0)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL") or os.environ["IT_DATABASE_URL"]

    await migrate(url, "subscriptions")
    t0 = time.perf_counter()
    await seed(url, args.subscriptions, args.orgs)
    seeded = time.perf_counter() - t0

    t0 = time.perf_counter()
    per_worker = await asyncio.gather(*(worker(url, args.batch) for _ in range(args.workers)))
    elapsed = time.perf_counter() - t0
    result = {
        "benchmark": "subscriptions.scheduler",
        "subscriptions_due": args.subscriptions,
        "workers": args.workers,
        "batch": args.batch,
        "organizations": args.orgs,
        "seed_seconds": round(seeded, 2),
        "seconds": round(elapsed, 2),
        "per_worker": per_worker,
        "invoices_per_second": round(args.subscriptions / elapsed),
        "target_invoices_per_second": args.target,
        **await verify(url, args.subscriptions, args.orgs),
    }
    result["pass"] = bool(result["exactly_once"]) and result["invoices_per_second"] >= args.target  # type: ignore[operator]
    print(json.dumps(result, indent=2))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
