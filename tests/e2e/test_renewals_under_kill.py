"""The scheduler with two subscriptions replicas, renewals due at once, one replica
killed (SIGKILL) mid-run and checkout killed after Stripe charged, before its own commit:
each renewal is charged exactly once and every invoice ends paid.

A killed scheduler pass rolls back (its batch is one transaction) and the other replica
takes the rows (`FOR UPDATE SKIP LOCKED`); a renewal charge killed after Stripe took it
is handled again from the broker with the same Stripe idempotency key and the same
parameters (the payment's id is derived from that key), so Stripe replays it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from billing_clock import BillingClock, control
from merchant import Merchant
from processes import ROOT, kill, restart_stopped
from replicas import replica_urls

from bos_common.testing import eventually

pytestmark = pytest.mark.e2e

RENEWALS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _ready(url: str, timeout: float = 60) -> None:
    async with httpx.AsyncClient(timeout=2) as client:

        async def up() -> bool:
            try:
                return (await client.get(f"{url}/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

        assert await eventually(up, timeout=timeout, interval=0.2)


async def test_renewals_with_two_scheduler_replicas_one_killed_are_charged_once(
    merchant: Merchant, sim: httpx.AsyncClient, tmp_path: Path
) -> None:
    replica_a = os.environ.get("SUBSCRIPTIONS_URL")
    checkout_url = os.environ.get("CHECKOUT_URL")
    if not (replica_a and checkout_url and os.environ.get("BOS_TEST_STACK")):
        pytest.skip("needs the local stack of scripts/test.sh")
    price = await merchant.price(1700)
    subscriptions: dict[str, str] = {}  # id -> current_period_end
    for _ in range(RENEWALS):
        checkout = await merchant.checkout(price["id"])
        r = await merchant.confirm(checkout["id"], await merchant.card())
        assert r.status_code == 200, r.text
        done = await merchant.wait_status(checkout["id"], "complete", timeout=40)
        sub = (await merchant.get(f"/v1/subscriptions/{done['subscription_id']}")).json()
        subscriptions[sub["id"]] = sub["current_period_end"]

    # A second subscriptions replica, as services.sh starts one, on its own port.
    port = _free_port()
    replica_b = f"http://127.0.0.1:{port}"
    log = (tmp_path / "subscriptions-b.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        *(str(Path(sys.executable).parent / "uvicorn"), "--host", "127.0.0.1", "--port"),
        *(str(port), "--log-level", "warning", "subscriptions.app:app"),
        cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=log, start_new_session=True,
    )  # fmt: skip
    # The stack's own replicas (their clocks too: with REPLICAS=N, every one) and B.
    stack = BillingClock([control(url) for url in replica_urls("subscriptions")])
    a, b = stack.clients[0], control(replica_b)
    try:
        await _ready(replica_b)
        for clock in (stack, BillingClock([b])):
            await clock.advance(32 * 86400)
        # Checkout's transactions wait on its outbox after Stripe has charged: killed
        # there, its renewal charges are taken at Stripe and never committed at home.
        blocker = await asyncpg.connect(os.environ["DATABASE_URL"].replace("+asyncpg", ""))
        try:
            await blocker.execute("BEGIN; LOCK TABLE checkout.outbox IN EXCLUSIVE MODE")
            runs = asyncio.gather(
                a.request("POST", "/internal/scheduler/run"),
                b.request("POST", "/internal/scheduler/run"),
                return_exceptions=True,
            )
            await asyncio.sleep(0.05)
            os.killpg(proc.pid, signal.SIGKILL)  # replica B, mid-run
            await runs

            async def charged_at_stripe() -> bool:
                logged = (await sim.get("/_sim/requests")).json()["data"]
                return any(
                    r["method"] == "POST"
                    and r["path"] == "/v1/payment_intents"
                    and r["status"] == 200
                    and (r["params"].get("metadata") or {}).get("subscription_id") in subscriptions
                    for r in logged
                )

            assert await eventually(charged_at_stripe, timeout=60, interval=0.2)
            kill("checkout")
        finally:
            await blocker.close()
        await restart_stopped(f"{checkout_url}/readyz")

        async def all_renewed() -> bool:
            for sub_id, period_end in subscriptions.items():
                sub = (await merchant.get(f"/v1/subscriptions/{sub_id}")).json()
                if sub["current_period_end"] == period_end:
                    return False
            return True

        assert await eventually(all_renewed, timeout=45, interval=0.5)
    finally:
        await stack.reset()
        for client in (*stack.clients, b):
            await client.close()
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)
        log.close()

    await asyncio.sleep(1.0)  # any late duplicate would have reached Stripe by now
    intents = (await sim.get("/v1/payment_intents", params={"limit": 100})).json()["data"]
    for sub_id in subscriptions:
        charged: list[dict[str, Any]] = [
            i for i in intents if i["metadata"].get("subscription_id") == sub_id
        ]
        assert [(i["status"], i["amount"]) for i in charged] == [("succeeded", 1700)], charged
        invoices = (await merchant.get(f"/v1/subscriptions/{sub_id}/invoices")).json()["data"]
        assert sorted(i["status"] for i in invoices) == ["paid", "paid"], invoices
