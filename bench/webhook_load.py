"""Webhook intake under sustained load (issue 7's benchmark), against a running stack.

An open-loop generator sends signed `payment_intent.succeeded` events at a fixed rate
through the gateway (a closed loop would slow down with the server and hide queueing),
then checks that every event was stored once and published, that the outbox drained,
and how long each took from delivery to the consumer's commit (checkout's inbox row).

    .venv/bin/python bench/webhook_load.py --rate 500 --duration 60

Needs GATEWAY_URL, STRIPE_WEBHOOK_SECRETS and DATABASE_URL (scripts/lib.sh `stack_env`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg


def signed(payload: bytes, secret: str) -> str:
    t = int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(run: str, n: int) -> dict:
    return {
        "id": f"evt_{run}_{n:07d}",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": f"pi_{run}_{n:07d}",
                "object": "payment_intent",
                "amount": 1000,
                "amount_received": 1000,
                "currency": "usd",
                "status": "succeeded",
                "metadata": {"org_id": "org_bench"},
            }
        },
    }


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def main() -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--out", default="bench/results/webhooks.json")
    args = ap.parse_args()
    gateway = os.environ["GATEWAY_URL"]
    secret = os.environ["STRIPE_WEBHOOK_SECRETS"].split(",")[0]
    dsn = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    run = uuid.uuid4().hex[:8]
    total = int(args.rate * args.duration)
    latencies: list[float] = []
    sent_at: dict[str, float] = {}
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def send(n: int) -> None:
            body = json.dumps(event(run, n)).encode()
            headers = {"Stripe-Signature": signed(body, secret), "Content-Type": "application/json"}
            started = time.perf_counter()
            sent_at[f"evt_{run}_{n:07d}"] = time.time()
            try:
                async with http.post(
                    f"{gateway}/v1/webhooks/stripe", data=body, headers=headers
                ) as resp:
                    await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
            except aiohttp.ClientError:
                statuses[0] = statuses.get(0, 0) + 1
            latencies.append((time.perf_counter() - started) * 1000)

        begin = time.perf_counter()
        tasks = []
        for n in range(total):
            delay = begin + n / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(n)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - begin

    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            stored = await conn.fetchval(
                "SELECT count(*) FROM webhooks.stripe_events WHERE id LIKE $1", f"evt_{run}_%"
            )
            unpublished = await conn.fetchval(
                "SELECT count(*) FROM webhooks.outbox WHERE published_at IS NULL"
            )
            consumed = await conn.fetch(
                "SELECT o.envelope->'data'->>'stripe_event_id' AS evt, i.received_at "
                "FROM webhooks.outbox o JOIN checkout.inbox i ON i.event_id = o.event_id "
                "WHERE o.envelope->'data'->>'stripe_event_id' LIKE $1",
                f"evt_{run}_%",
            )
            if stored == total and unpublished == 0 and len(consumed) == total:
                break
            await asyncio.sleep(1)
    finally:
        await conn.close()
    lags = [(row["received_at"].timestamp() - sent_at[row["evt"]]) * 1000 for row in consumed]
    result = {
        "scenario": "webhook_intake_load",
        "at": datetime.now(UTC).isoformat(),
        "rate_target": args.rate,
        "duration_s": args.duration,
        "sent": total,
        "achieved_rate": round(total / elapsed, 1),
        "statuses": statuses,
        "stored": stored,
        "outbox_unpublished_after": unpublished,
        "consumed_by_checkout": len(consumed),
        "intake_ms": {
            "p50": round(pct(latencies, 50), 2),
            "p95": round(pct(latencies, 95), 2),
            "p99": round(pct(latencies, 99), 2),
            "mean": round(statistics.mean(latencies), 2),
        },
        "delivery_to_consumer_commit_ms": {
            "p50": round(pct(lags, 50), 1),
            "p95": round(pct(lags, 95), 1),
            "p99": round(pct(lags, 99), 1),
        },
        "targets": {"intake_p95_ms": 50, "lag_p95_ms": 200},
        "loadavg": os.getloadavg(),
        "out": args.out,
    }
    return result


def cli() -> int:
    result = asyncio.run(main())
    out = Path(result.pop("out"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
