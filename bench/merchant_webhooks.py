"""Webhooks to merchants under load (issue 21, "Benchmarks"): an opt-in runner like
bench/webhook_intake.py (it registers no wrk scenario, so a bare `make bench` does not run it).

An organization registers one endpoint: a receiver this runner serves on 127.0.0.1 that
answers 200 after `--receiver-ms` (50 ms). The load is signed Stripe `charge.refunded`
events of that organization sent open-loop to the gateway's intake at `--rate` a second;
each becomes `payment.refunded.v1` on the bus, then a `payment.refunded` delivery (its
object is built from the event, no GET), posted signed to the receiver. Reported: merchant
deliveries a second, and event -> delivery latency (from the intake request leaving the
generator to the delivery reaching the receiver), goal p95 < 1 s at 200 events/s:

    source scripts/lib.sh && stack_env     # a dev-profile stack, your ports
    .venv/bin/python -m bench.merchant_webhooks --rate 200 --duration 30

Writes bench/results/merchant_webhooks.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import uvloop
from aiohttp import web

from bench.webhook_load import percentiles, refund_event, signed
from bos_common.db import asyncpg_dsn
from gateway.upstream import Upstream, UpstreamError

ROOT = Path(__file__).resolve().parents[1]
GOAL_P95_MS = 1000.0

# Where the time goes, per delivery of the run, from the webhooks schema's timestamps (each
# a transaction's start): the relay (the internal event written by the intake -> published
# on the bus), the consumer (published -> its delivery planned), the worker (planned ->
# the attempt's success recorded).
STAGES_SQL = """
SELECT
  percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (
    ORDER BY extract(epoch FROM o.published_at - o.created_at)) AS relay,
  percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (
    ORDER BY extract(epoch FROM d.created_at - o.published_at)) AS consumer,
  percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (
    ORDER BY extract(epoch FROM d.delivered_at - d.created_at)) AS worker
FROM webhooks.webhook_deliveries d
JOIN webhooks.webhook_events ev ON ev.id = d.event_id
JOIN webhooks.outbox o ON o.event_id = ev.source_event_id
WHERE d.org_id = $1 AND d.delivered_at IS NOT NULL
"""


async def stages(org_id: str) -> dict[str, Any]:
    """p50 and p95 in ms of each stage (empty without DATABASE_URL)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        return {}
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        row = await conn.fetchrow(STAGES_SQL, org_id)
    finally:
        await conn.close()
    return {
        stage: {"p50": round(row[stage][0] * 1000, 1), "p95": round(row[stage][1] * 1000, 1)}
        for stage in ("relay", "consumer", "worker")
        if row is not None and row[stage] is not None
    }


class Receiver:
    """The merchant's endpoint: a server on 127.0.0.1:`port` answering 200 after `delay_ms`,
    noting when the first delivery of each charge (the refund's object) arrived."""

    def __init__(self, port: int, delay_ms: float) -> None:
        self.port = port
        self.delay = delay_ms / 1000
        self.arrived: dict[str, float] = {}
        self.first: float | None = None
        self._expected: int | None = None
        self._all = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.json()
        now = time.time()
        if self.first is None:
            self.first = now
        self.arrived.setdefault(body["data"]["object"]["charge_id"], now)
        if self._expected is not None and len(self.arrived) >= self._expected:
            self._all.set()
        await asyncio.sleep(self.delay)
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def wait_for(self, count: int, timeout: float) -> None:
        """Until `count` charges' deliveries arrived, or `timeout` seconds."""
        self._expected = count
        if len(self.arrived) >= count:
            self._all.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all.wait(), timeout=timeout)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def report(self, sent_at: dict[str, float]) -> dict[str, Any]:
        """Deliveries, deliveries a second (first to last arrival) and event -> delivery."""
        lags = [(self.arrived[c] - sent_at[c]) * 1000 for c in self.arrived if c in sent_at]
        span = (max(self.arrived.values()) - self.first) if self.arrived and self.first else 0.0
        return {
            "delivered": len(self.arrived),
            "deliveries_per_s": round(len(self.arrived) / span, 1) if span else None,
            "event_to_delivery_ms": percentiles(lags),
        }


async def register_endpoint(gateway: str, url: str) -> dict[str, Any]:
    """A new organization (its API key in `api_key`) with one endpoint at `url`, subscribed
    to every event type (`event_types` left empty)."""
    admin = os.environ.get("BOS_ADMIN_TOKEN", "bos-dev-admin")
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        r = await client.post(
            "/admin/organizations",
            json={"name": f"bench-{uuid.uuid4().hex[:6]}"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        r.raise_for_status()
        org: dict[str, Any] = r.json()
        key = {"Authorization": f"Bearer {org['api_key']['secret']}"}
        r = await client.post("/v1/webhook-endpoints", json={"url": url}, headers=key)
        r.raise_for_status()
    return org


def delivery_checks(report: dict[str, Any], accepted: int) -> list[dict[str, Any]]:
    p95 = report["event_to_delivery_ms"].get("p95", float("inf"))
    return [
        {
            "name": "all_delivered",
            "measured": report["delivered"],
            "target": accepted,
            "pass": report["delivered"] == accepted,
        },
        {
            "name": "event_to_delivery_p95",
            "measured": p95,
            "target": f"< {GOAL_P95_MS:g} ms",
            "pass": p95 < GOAL_P95_MS,
        },
    ]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    gateway = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080")
    secret = os.environ.get("STRIPE_WEBHOOK_SECRETS", "whsec_bos_dev_simulator").split(",")[0]
    receiver = Receiver(args.receiver_port, args.receiver_ms)
    await receiver.start()
    org = await register_endpoint(gateway, receiver.url)
    run_id = uuid.uuid4().hex[:8]
    total = int(args.rate * args.duration)
    requests = []
    for n in range(total):
        body = json.dumps(refund_event(run_id, n, org["id"])).encode()
        headers = [("stripe-signature", signed(body, secret)), ("content-type", "application/json")]
        requests.append((f"ch_{run_id}_{n:07d}", body, headers))
    url = urlsplit(gateway)
    http = Upstream(url.hostname or "127.0.0.1", url.port or 80, pool_size=1024, drop=frozenset())
    sent_at: dict[str, float] = {}
    statuses: dict[int, int] = {}

    async def send(n: int) -> None:
        charge, body, headers = requests[n]
        sent_at[charge] = time.time()
        try:
            async with asyncio.timeout(30):
                status, _, _ = await http.request("POST", "/v1/webhooks/stripe", headers, body)
        except (UpstreamError, OSError, TimeoutError):
            status = 0
        statuses[status] = statuses.get(status, 0) + 1

    begin = time.perf_counter()
    tasks = []
    for n in range(total):
        delay = begin + n / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(n)))
    await asyncio.gather(*tasks)
    await receiver.wait_for(statuses.get(200, 0), args.drain_timeout)
    http.close()
    await receiver.stop()
    result = {
        "rate_target": args.rate,
        "duration_s": args.duration,
        "receiver_ms": args.receiver_ms,
        "sent": total,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        **receiver.report(sent_at),
        "stages_ms": await stages(org["id"]),
        "loadavg": os.getloadavg(),
    }
    result["checks"] = delivery_checks(result, statuses.get(200, 0))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--receiver-ms", type=float, default=50.0)
    parser.add_argument("--receiver-port", type=int, default=28095)
    parser.add_argument("--drain-timeout", type=float, default=60.0)
    args = parser.parse_args()
    result = uvloop.run(run(args))
    out = ROOT / "bench" / "results" / "merchant_webhooks.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if all(c["pass"] for c in result["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
