"""`make chaos`: checkouts at a steady rate through the load balancer of a REPLICAS=2 stack
while replicas are killed, RabbitMQ and Postgres restarted and the simulator misbehaves;
then, after a bounded settling time, the checks of bench.chaos.checks as a table. Exits 1
if any check fails. Run by scripts/chaos.sh, which starts and removes the stack.

    .venv/bin/python -m bench.chaos [--count 1000] [--duration 270] [--settle 90]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import asyncpg
import httpx

from bench.chaos import merchant_hooks, sql
from bench.chaos.checks import Check, latency_rows, run_checks
from bench.chaos.client import Client
from bench.chaos.faults import ROOT, FaultRunner, Schedule
from bench.chaos.flows import TERMINAL, Flows, Outcome, open_shop, pick_flow
from bench.chaos.revocations import Revocation, revocations
from bos_common.db import asyncpg_dsn

SHOPS = 8
CONNECT_SHOPS = 2
DRAIN_SECONDS = 100.0  # after the load, for flows still running


def dead_letters() -> dict[str, int]:
    out = subprocess.run(
        [str(ROOT / "scripts" / "rabbitmq.sh"), "queues"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].endswith(".dlq") and parts[1].isdigit():
            found[parts[0]] = int(parts[1])
    return found


async def settle(conn_dsn: str, ids: list[str], timeout: float) -> float:
    """Wait (bounded) until the run's checkouts are terminal, every outbox is empty and
    every customer e-mail is sent."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            conn = await asyncpg.connect(conn_dsn)
            try:
                rows = await sql.checkouts(conn, ids)
                pending = await sql.outbox_pending(conn)
                mails = await sql.notifications_pending(conn)
            finally:
                await conn.close()
            if (
                all(r["status"] in TERMINAL for r in rows)
                and not any(pending.values())
                and not mails
            ):
                return time.monotonic() - start
        except (OSError, asyncpg.PostgresError):
            pass
        await asyncio.sleep(2)
    return time.monotonic() - start


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    env = os.environ
    dsn = asyncpg_dsn(env["DATABASE_URL"])
    timeout = httpx.Timeout(30.0, connect=5.0)
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=100)
    async with (
        httpx.AsyncClient(base_url=env["GATEWAY_URL"], timeout=timeout, limits=limits) as gateway,
        httpx.AsyncClient(
            base_url=env["STRIPE_API_BASE"],
            timeout=timeout,
            limits=limits,
            headers={"Authorization": f"Bearer {env.get('STRIPE_SECRET_KEY', '')}"},
        ) as sim,
    ):
        shops = [await open_shop(gateway, sim, connect=False) for _ in range(SHOPS)]
        receiver = merchant_hooks.Receiver()
        await receiver.start()
        endpoints = await merchant_hooks.register(shops[0].merchant, receiver)
        connect_shops = [await open_shop(gateway, sim, connect=True) for _ in range(CONNECT_SHOPS)]
        client = Client(gateway, sim)
        flows = Flows(client, shops, connect_shops)
        schedule = Schedule.for_duration(args.duration)
        faults = FaultRunner(schedule, sim, int(env.get("BOS_REPLICAS", "2")), rng)
        t0 = time.time()
        print(f"chaos: {args.count} checkouts over {args.duration:.0f} s, faults on", flush=True)
        fault_task = asyncio.create_task(faults.run(t0))
        revocation_task = asyncio.create_task(
            revocations(
                client,
                shops[0].merchant,
                env["GATEWAY_REPLICA_URLS"].split(","),
                t0 + args.duration,
            )
        )
        tasks: list[asyncio.Task[Outcome]] = []
        interval = args.duration / args.count
        for n in range(args.count):
            await asyncio.sleep(max(0.0, t0 + n * interval - time.time()))
            tasks.append(asyncio.create_task(flows.run(pick_flow(rng), rng)))
            if n % 100 == 99:
                finished = sum(t.done() for t in tasks)
                print(f"  {n + 1} started, {finished} finished, {faults.kills} kills", flush=True)
        _, running = await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
        for t in running:
            t.cancel()
        await asyncio.gather(fault_task, return_exceptions=True)
        await faults.stop()
        revoked: list[Revocation] = await revocation_task
        outcomes = flows.outcomes
        for o in outcomes:
            if not o.ended:
                o.error, o.ended = "cut at the drain limit", time.time()
        load_end = time.time()
        print(
            f"chaos: load over after {load_end - t0:.0f} s ({len(running)} flows cut);"
            " faults off, settling",
            flush=True,
        )
        ids = [o.checkout_id for o in outcomes if o.checkout_id]
        settled = await settle(dsn, ids, args.settle)
        conn = await asyncpg.connect(dsn)
        try:
            await merchant_hooks.settle(conn, endpoints, args.settle)
            checks = await run_checks(
                conn,
                sim,
                outcomes,
                Path(env["BOS_STATE_DIR"]) / "mail",
                dead_letters(),
                revoked,
                set(env["BOS_STRIPE_EVENTS"].split()),
                [(w.start, w.end) for w in faults.windows if w.what.startswith("RabbitMQ")],
            )
            checks += await merchant_hooks.checks(conn, receiver, endpoints)
        finally:
            await conn.close()
            await receiver.stop()
    windows = [(w.start, w.end or load_end) for w in faults.windows]
    lines = report(args, outcomes, len(running), client, faults, checks, windows, settled)
    print("\n".join(lines), flush=True)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "chaos.json").write_text(
        json.dumps(
            {
                "checks": [asdict(c) for c in checks],
                "report": lines,
                "faults": [asdict(w) for w in faults.windows],
                "client_errors": client.errors[:50],
            },
            indent=2,
        )
    )
    return 0 if all(c.passed for c in checks if c.counts) else 1


def report(
    args: argparse.Namespace,
    outcomes: list[Outcome],
    cut: int,
    client: Client,
    faults: FaultRunner,
    checks: list[Check],
    windows: list[tuple[float, float]],
    settled: float,
) -> list[str]:
    by_flow: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_flow.setdefault(o.flow, []).append(o)
    load = os.getloadavg()
    lines = [
        "",
        f"== chaos: {len(outcomes)} checkouts finished of {args.count} ({cut} cut at the"
        f" drain limit), load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}",
        f"faults: {faults.kills} replicas killed (SIGKILL); "
        + "; ".join(sorted({w.what for w in faults.windows if not w.what.startswith("kill")}))
        + "; webhooks duplicated, shuffled, first attempts dropped throughout",
        f"client: {client.retries} retried requests; {client.conflicts_seen} keys answered"
        " 409 idempotency_key_in_use or checkout_in_progress,"
        f" longest {client.longest_conflict_seconds:.1f} s;"
        f" settled in {settled:.0f} s",
        "flows: "
        + ", ".join(
            f"{f} {sum(o.ok for o in os_)}/{len(os_)}" for f, os_ in sorted(by_flow.items())
        ),
        *latency_rows(outcomes, windows),
        "",
        f"{'check':<58} {'result':<6} detail",
    ]
    for c in checks:
        result = ("PASS" if c.passed else "FAIL") if c.counts else ("met" if c.passed else "missed")
        lines.append(f"{c.name:<58} {result:<6} {c.detail}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=270.0, help="seconds of load")
    parser.add_argument("--settle", type=float, default=90.0, help="at most, after the load")
    parser.add_argument("--seed", type=int, default=None)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
