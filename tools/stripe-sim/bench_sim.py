"""Benchmark of the Stripe simulator: PaymentIntent create + confirm from concurrent clients.

    .venv/bin/python tools/stripe-sim/bench_sim.py --out bench/results/stripe_sim.json

Scenarios (each on a fresh simulator subprocess):
- ``empty``: nothing stored;
- ``preloaded``: ``--preload`` objects already stored (customers, payment methods, intents,
  charges, balance transactions, events), built with the simulator's own handlers and loaded
  from a state file, to show lookups do not slow down as the store grows;
- ``webhooks``: empty store, one webhook endpoint receiving every event (delivery work
  competes with the API on the same event loop).

Each operation is ``POST /v1/payment_intents`` then ``POST /v1/payment_intents/{id}/confirm``
(form-encoded, Idempotency-Key on both, like the SDK). Latencies are per operation (both
calls) and per request. The machine may be shared, so the simulator's own CPU time per
operation (from /proc) is reported too: it does not depend on what else is running.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

from stripe_sim import config as sim_config
from stripe_sim.forms import Params
from stripe_sim.resources import customers, payment_intents
from stripe_sim.sim import Ctx, Sim
from stripe_sim.testing import free_port, start_simulator

API_KEY = "sk_test_bench"
WARMUP_OPERATIONS = 40
HEADERS = {"Authorization": f"Bearer {API_KEY}"}
#: card payments confirmed server-side without a return_url (as Stripe requires since 2023-08-16)
CARDS_ONLY = {"enabled": "true", "allow_redirects": "never"}


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50) * 1000, 2),
        "p95": round(percentile(values, 95) * 1000, 2),
        "p99": round(percentile(values, 99) * 1000, 2),
        "max": round(max(values) * 1000, 2),
        "mean": round(statistics.fmean(values) * 1000, 2),
    }


# -- preloading ------------------------------------------------------------------------------


def build_state(path: Path, objects: int) -> int:
    """Fill a state file with at least ``objects`` objects made by the real handlers."""
    sim = Sim(sim_config.Config(state_file=str(path)))
    ctx = Ctx(request_id="req_preload", base_url="http://127.0.0.1")
    i = 0
    while sim.store.count() < objects:
        customer = customers.create(sim, ctx, Params({"email": f"pre{i}@example.com"}))
        params = {
            "amount": str(1000 + i % 5000),
            "currency": "usd",
            "customer": customer["id"],
            "payment_method": "pm_card_visa",
            "setup_future_usage": "off_session",
            "confirm": "true",
            "automatic_payment_methods": CARDS_ONLY,
            "metadata": {"order": str(i)},
        }
        payment_intents.create(sim, ctx, Params(params))
        i += 1
    sim.save()
    return sim.store.count()


# -- load ------------------------------------------------------------------------------------


async def one_operation(
    session: aiohttp.ClientSession, base: str, request_latencies: list[float]
) -> None:
    started = time.perf_counter()
    async with session.post(
        f"{base}/v1/payment_intents",
        data={
            "amount": "2000",
            "currency": "usd",
            "metadata[bench]": "1",
            "automatic_payment_methods[enabled]": "true",
            "automatic_payment_methods[allow_redirects]": "never",
        },
        headers={**HEADERS, "Idempotency-Key": str(uuid.uuid4())},
    ) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"create failed: {response.status} {body[:200]!r}")
    middle = time.perf_counter()
    intent = orjson.loads(body)["id"]
    async with session.post(
        f"{base}/v1/payment_intents/{intent}/confirm",
        data={"payment_method": "pm_card_visa"},
        headers={**HEADERS, "Idempotency-Key": str(uuid.uuid4())},
    ) as response:
        body = await response.read()
        if response.status != 200 or orjson.loads(body)["status"] != "succeeded":
            raise RuntimeError(f"confirm failed: {response.status} {body[:200]!r}")
    request_latencies.extend((middle - started, time.perf_counter() - middle))


async def run_load(base: str, operations: int, concurrency: int) -> dict[str, Any]:
    op_latencies: list[float] = []
    request_latencies: list[float] = []
    remaining = operations

    async def client() -> None:
        nonlocal remaining
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                await one_operation(session, base, request_latencies)
                op_latencies.append(time.perf_counter() - started)

    warm = aiohttp.TCPConnector(limit=4)
    async with aiohttp.ClientSession(connector=warm) as session:
        await asyncio.gather(*(one_operation(session, base, []) for _ in range(WARMUP_OPERATIONS)))
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    duration = time.perf_counter() - started
    return {
        "operations": len(op_latencies),
        "requests": len(request_latencies),
        "concurrency": concurrency,
        "duration_s": round(duration, 3),
        "operations_per_s": round(len(op_latencies) / duration, 1),
        "requests_per_s": round(len(request_latencies) / duration, 1),
        "operation_latency_ms": summary_ms(op_latencies),
        "request_latency_ms": summary_ms(request_latencies),
    }


def wait_deliveries(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while stats(base)["pending_webhook_deliveries"] and time.monotonic() < deadline:
        time.sleep(0.1)


def stats(base: str) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{base}/_sim/stats", timeout=30).json()
    return data


SINK_CODE = """
import sys
from aiohttp import web
count = 0
async def hook(request):
    global count
    await request.read()
    count += 1
    return web.Response(status=200)
async def total(request):
    return web.Response(text=str(count))
app = web.Application()
app.router.add_post("/hook", hook)
app.router.add_get("/count", total)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


@contextmanager
def webhook_sink() -> Iterator[str]:
    """A separate process with an aiohttp endpoint that answers 200 and counts deliveries."""
    import subprocess

    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SINK_CODE, str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"{base}/count", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def scenario(
    name: str,
    operations: int,
    concurrency: int,
    *,
    state_file: Path | None = None,
    endpoints: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    env = {"STRIPE_SIM_SNAPSHOT_INTERVAL": "0", "STRIPE_SIM_LOG_LEVEL": "warning"}
    started = time.perf_counter()
    with start_simulator(
        webhook_endpoints=endpoints or [], state_file=state_file, extra_env=env, start_timeout=300
    ) as sim:
        startup = time.perf_counter() - started
        before = stats(sim.base_url)["objects"]
        cpu_before = sim.cpu_seconds()
        result = asyncio.run(run_load(sim.base_url, operations, concurrency))
        if endpoints:  # let the deliveries the load triggered finish (they use CPU too)
            wait_deliveries(sim.base_url)
        cpu_used = sim.cpu_seconds() - cpu_before
        after = stats(sim.base_url)
    ops = result["operations"] + WARMUP_OPERATIONS
    result.update(
        scenario=name,
        startup_s=round(startup, 2),
        objects_before=before,
        objects_after=after["objects"],
        pending_webhook_deliveries_after=after["pending_webhook_deliveries"],
        server_cpu_s=round(cpu_used, 3),
        server_cpu_ms_per_operation=round(cpu_used * 1000 / ops, 3),
        server_cpu_bound_operations_per_s=round(ops / cpu_used, 1) if cpu_used else None,
    )
    print(
        f"{name:>10}: {result['operations_per_s']:7.1f} ops/s "
        f"({result['requests_per_s']:.0f} req/s), op p50 "
        f"{result['operation_latency_ms']['p50']} ms, p95 {result['operation_latency_ms']['p95']} "
        f"ms, p99 {result['operation_latency_ms']['p99']} ms; server CPU "
        f"{result['server_cpu_ms_per_operation']} ms/op; objects {before} -> {after['objects']}",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="bench/results/stripe_sim.json")
    parser.add_argument("--operations", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--preload", type=int, default=100_000)
    parser.add_argument("--skip-webhooks", action="store_true")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "benchmark": "stripe-sim PaymentIntent create+confirm",
        "host": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "scenarios": [],
    }
    results["scenarios"].append(scenario("empty", args.operations, args.concurrency))
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "preloaded.json"
        started = time.perf_counter()
        count = build_state(state, args.preload)
        print(
            f"preloaded {count} objects in {time.perf_counter() - started:.1f} s "
            f"({state.stat().st_size / 1e6:.0f} MB state file)",
            flush=True,
        )
        results["scenarios"].append(
            scenario("preloaded", args.operations, args.concurrency, state_file=state)
        )
    if not args.skip_webhooks:
        with webhook_sink() as sink:
            result = scenario(
                "webhooks",
                args.operations,
                args.concurrency,
                endpoints=[(f"{sink}/hook", "whsec_bench")],
            )
            result["webhooks_received"] = int(httpx.get(f"{sink}/count", timeout=5).text)
            results["scenarios"].append(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
