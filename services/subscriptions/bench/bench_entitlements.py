"""Benchmark: `GET /v1/entitlements` latency at the service (in-process ASGI, so it is the
service's share of the gateway's p95 < 10 ms budget; the gateway run is in bench/).

    IT_DATABASE_URL=postgresql+asyncpg://... .venv/bin/python \
        services/subscriptions/bench/bench_entitlements.py --customers 20000 --requests 2000

Drops and migrates the `subscriptions` schema of that (scratch) database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time

import httpx

from bos_common.testing import SECRET, migrate
from subscriptions.app import build_runtime, create_app
from subscriptions.models import subscriptions
from subscriptions.settings import SubscriptionsSettings
from subscriptions.testing import identity_headers

sys.path.insert(0, os.path.dirname(__file__))
from bench_scheduler import DUE  # noqa: E402


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL") or os.environ["IT_DATABASE_URL"]
    await migrate(url, "subscriptions")
    rt = build_runtime(
        SubscriptionsSettings(
            DATABASE_URL=url,
            AMQP_URL="amqp://unused/",
            BOS_INTERNAL_SECRET=SECRET,
            LOG_JSON="false",
            LOG_LEVEL="WARNING",
            RUN_WORKERS="false",
        )
    )
    org = "org_bench"
    rows = [
        {
            "id": f"sub_e{i:08d}",
            "org_id": org,
            "customer_id": f"cus_e{i // 2:08d}",
            "product_id": f"prod_{i % 2}",
            "product_name": "Pro",
            "price_id": "price_1",
            "price_type": "recurring",
            "interval": "month",
            "amount": 5000,
            "currency": "usd",
            "is_free": False,
            "features": ["a", "b", "c"],
            "metadata": {},
            "status": "active",
            "current_period_start": DUE,
            "current_period_end": DUE.replace(year=2099),
            "cancel_at_period_end": False,
            "hard_declined": False,
            "created_at": DUE,
            "updated_at": DUE,
        }
        for i in range(args.customers * 2)
    ]
    async with rt.db.transaction() as session:
        for i in range(0, len(rows), 5000):
            await session.execute(subscriptions.insert(), rows[i : i + 5000])
    app = create_app(rt)
    headers = identity_headers("api_key", SECRET, org_id=org)
    latencies: list[float] = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://s"
    ) as client:

        async def one() -> None:
            cus = f"cus_e{random.randrange(args.customers):08d}"
            t = time.perf_counter()
            r = await client.get("/v1/entitlements", params={"customer_id": cus}, headers=headers)
            latencies.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200 and r.json()["features"] == ["a", "b", "c"]

        for _ in range(50):
            await one()
        latencies.clear()
        sem = asyncio.Semaphore(args.concurrency)

        async def bounded() -> None:
            async with sem:
                await one()

        started = time.perf_counter()
        await asyncio.gather(*(bounded() for _ in range(args.requests)))
        elapsed = time.perf_counter() - started
    await rt.db.dispose()
    q = statistics.quantiles(latencies, n=100)
    result = {
        "benchmark": "subscriptions.entitlements (service, in-process)",
        "requests": args.requests,
        "concurrency": args.concurrency,
        "p50_ms": round(q[49], 2),
        "p95_ms": round(q[94], 2),
        "p99_ms": round(q[98], 2),
        "requests_per_second": round(args.requests / elapsed),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
