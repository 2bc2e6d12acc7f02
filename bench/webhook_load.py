"""Webhook intake under sustained load (issue 7's benchmark), against a running stack.

An open-loop generator sends signed `payment_intent.succeeded` events at a fixed rate
through the gateway (a closed loop would slow down with the server and hide queueing),
samples the webhooks outbox backlog every second while it runs, then checks that every
event was stored once and published, that the outbox drained, and how long each took
from delivery to the consumer's commit (checkout's inbox row).

    .venv/bin/python bench/webhook_load.py --rate 500 --duration 60

Needs GATEWAY_URL, STRIPE_WEBHOOK_SECRETS and DATABASE_URL (scripts/lib.sh `stack_env`).
`bench/webhook_intake.py` runs it with CPU accounting and the issue's checks.
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
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import uvloop

from bos_common.db import asyncpg_dsn
from gateway.upstream import Upstream, UpstreamError


def signed(payload: bytes, secret: str) -> str:
    t = int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(run: str, n: int) -> dict[str, Any]:
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


def refund_event(run: str, n: int, org_id: str) -> dict[str, Any]:
    """A `charge.refunded` of that organization: `payment.refunded.v1`, one merchant
    delivery per subscribed endpoint (its object built from the event, no GET)."""
    return {
        "id": f"evt_{run}_{n:07d}",
        "object": "event",
        "type": "charge.refunded",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": f"ch_{run}_{n:07d}",
                "object": "charge",
                "amount_refunded": 500,
                "currency": "usd",
                "payment_intent": f"pi_{run}_{n:07d}",
                "status": "succeeded",
                "metadata": {"org_id": org_id},
            }
        },
    }


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def percentiles(values: list[float], digits: int = 1) -> dict[str, float]:
    return {f"p{p}": round(pct(values, p), digits) for p in (50, 95, 99)}


BACKLOG_SQL = "SELECT count(*) FROM webhooks.outbox WHERE published_at IS NULL"


async def run_load(
    rate: float,
    duration: float,
    *,
    gateway: str,
    secret: str,
    dsn: str,
    drain_timeout: float = 60.0,
    merchant_org: str | None = None,
    merchant_share: float = 0.0,
) -> dict[str, Any]:
    """Send `rate` signed events a second for `duration` seconds, then wait (up to
    `drain_timeout`) until all are stored, published and consumed; the measurements.
    With `merchant_org`, that share of the events (spread evenly) are `charge.refunded`
    of that organization instead (`refund_event`: each one a merchant delivery, not consumed
    by checkout); when each left is in `merchant_sent_at`, by charge id."""
    dsn = asyncpg_dsn(dsn)
    run = uuid.uuid4().hex[:8]
    total = int(rate * duration)
    latencies: list[float] = []
    late_ms: list[float] = []  # how far behind its schedule each request left (generator)
    sent_at: dict[str, float] = {}
    statuses: dict[int, int] = {}
    backlog: list[tuple[float, int]] = []
    # Bodies and signatures made before the clock starts (a 60 s run is well within the
    # 5-minute signature tolerance): the generator shares the machine with the stack, and
    # its own CPU per request is load the stack does not get.
    requests = []
    refunds: dict[int, str] = {}  # request number -> its charge id
    for n in range(total):
        if merchant_org and int((n + 1) * merchant_share) > int(n * merchant_share):
            refunds[n] = f"ch_{run}_{n:07d}"
            body = json.dumps(refund_event(run, n, merchant_org)).encode()
        else:
            body = json.dumps(event(run, n)).encode()
        headers = [("stripe-signature", signed(body, secret)), ("content-type", "application/json")]
        requests.append((body, headers))
    merchant_sent_at: dict[str, float] = {}
    refunds_accepted = 0
    conn = await asyncpg.connect(dsn)
    # Its own connection: a query in flight on `conn` when the drain checks start would
    # make those fail ("another operation is in progress").
    sampler_conn = await asyncpg.connect(dsn)
    begin = time.perf_counter()

    async def sample_backlog() -> None:
        while True:
            backlog.append(
                (round(time.perf_counter() - begin, 1), await sampler_conn.fetchval(BACKLOG_SQL))
            )
            await asyncio.sleep(1)

    sampler = asyncio.create_task(sample_backlog())
    # The gateway's own pooled HTTP/1.1 client: the generator shares the machine with the
    # stack, and aiohttp's client took about three times its CPU per request.
    url = urlsplit(gateway)
    http = Upstream(url.hostname or "127.0.0.1", url.port or 80, pool_size=1024, drop=frozenset())
    try:

        async def send(n: int, due: float) -> None:
            nonlocal refunds_accepted
            body, headers = requests[n]
            started = time.perf_counter()
            late_ms.append((started - due) * 1000)
            sent_at[f"evt_{run}_{n:07d}"] = time.time()
            if n in refunds:
                merchant_sent_at[refunds[n]] = sent_at[f"evt_{run}_{n:07d}"]
            try:
                async with asyncio.timeout(30):
                    status, _, _ = await http.request("POST", "/v1/webhooks/stripe", headers, body)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200 and n in refunds:
                    refunds_accepted += 1
            except (UpstreamError, OSError, TimeoutError):
                statuses[0] = statuses.get(0, 0) + 1
            latencies.append((time.perf_counter() - started) * 1000)

        tasks = []
        begin = time.perf_counter()
        for n in range(total):
            due = begin + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(n, due)))
        sending = time.perf_counter() - begin
        await asyncio.gather(*tasks)
        answered = time.perf_counter() - begin

        deadline = time.time() + drain_timeout
        while True:
            stored = await conn.fetchval(
                "SELECT count(*) FROM webhooks.stripe_events WHERE id LIKE $1", f"evt_{run}_%"
            )
            unpublished = await conn.fetchval(BACKLOG_SQL)
            consumed = await conn.fetch(
                "SELECT o.envelope->'data'->>'stripe_event_id' AS evt, i.received_at "
                "FROM webhooks.outbox o JOIN checkout.inbox i ON i.event_id = o.event_id "
                "WHERE o.envelope->'data'->>'stripe_event_id' LIKE $1",
                f"evt_{run}_%",
            )
            ok = statuses.get(200, 0)
            if (
                stored >= ok and unpublished == 0 and len(consumed) >= ok - refunds_accepted
            ) or time.time() > deadline:
                break
            await asyncio.sleep(1)
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        http.close()
        await sampler_conn.close()
        await conn.close()
    lags = [(row["received_at"].timestamp() - sent_at[row["evt"]]) * 1000 for row in consumed]
    half = [b for t, b in backlog if t >= duration / 2 and t <= duration]
    return {
        "at": datetime.now(UTC).isoformat(),
        "rate_target": rate,
        "duration_s": duration,
        "sent": total,
        "send_rate": round(total / sending, 1),
        "generator_late_ms": percentiles(late_ms),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "http_503": statuses.get(503, 0),
        "completed_per_s": round(statuses.get(200, 0) / answered, 1),
        "stored": stored,
        "consumed_by_checkout": len(consumed),
        # The payment events among those accepted (what checkout consumes).
        "payments_accepted": statuses.get(200, 0) - refunds_accepted,
        "outbox_unpublished_after": unpublished,
        # [seconds since the first request, unpublished rows]; sampled once a second
        "outbox_backlog": backlog,
        "outbox_backlog_max": max((b for _, b in backlog), default=0),
        "outbox_backlog_second_half_max": max(half, default=0),
        "intake_ms": {
            **percentiles(latencies, 2),
            "mean": round(statistics.mean(latencies), 2) if latencies else None,
        },
        "delivery_to_consumer_commit_ms": percentiles(lags),
        "loadavg": os.getloadavg(),
        **(
            {"merchant_accepted": refunds_accepted, "merchant_sent_at": merchant_sent_at}
            if merchant_org
            else {}
        ),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--out", default="bench/results/webhooks.json")
    args = ap.parse_args()
    result = uvloop.run(
        run_load(
            args.rate,
            args.duration,
            gateway=os.environ["GATEWAY_URL"],
            secret=os.environ["STRIPE_WEBHOOK_SECRETS"].split(",")[0],
            dsn=os.environ["DATABASE_URL"],
        )
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
