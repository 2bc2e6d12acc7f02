"""Plan 11.4, Partial Failure Recovery: the payment succeeded but creating the
subscription failed. The event that creates it is retried (the bus's delayed retry
tiers) until the subscription exists, and the customer is charged once.

The failure is real, not a mock: for the duration of the fault the subscriptions table
refuses this merchant's rows (a CHECK constraint added NOT VALID, so existing rows and
other organizations are untouched), and the subscriptions consumer's transaction fails
on it exactly as it would on any database error."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from merchant import Merchant, intents_of, unique
from replicas import replica_urls

from bos_common.testing import eventually

pytestmark = pytest.mark.e2e

QUEUE = "subscriptions.checkouts"


def _dsn() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.skip("DATABASE_URL of the stack is not set (run `make test`)")
    return url.replace("postgresql+asyncpg://", "postgresql://")


@asynccontextmanager
async def subscriptions_refused_for(org_id: str) -> AsyncIterator[None]:
    """While inside, inserting a subscription for `org_id` violates a constraint."""
    name = f"e2e_11_4_{re.sub(r'[^a-z0-9]', '_', org_id.lower())}"[:63]
    conn = await asyncpg.connect(_dsn())
    try:
        await conn.execute(
            f"ALTER TABLE subscriptions.subscriptions ADD CONSTRAINT {name} "
            f"CHECK (org_id <> '{org_id}') NOT VALID"
        )
        yield
    finally:
        await conn.execute(
            f"ALTER TABLE subscriptions.subscriptions DROP CONSTRAINT IF EXISTS {name}"
        )
        await conn.close()


async def retries() -> float:
    """How many times the subscriptions consumer of checkout.completed.v1 has parked a
    failed message in a retry tier (its Prometheus counter, summed over its processes)."""
    text = ""
    async with httpx.AsyncClient(timeout=5) as client:
        for url in replica_urls("subscriptions"):
            text += (await client.get(f"{url}/metrics")).text + "\n"
    total = 0.0
    for line in text.splitlines():
        if (
            line.startswith("bos_consumer_messages_total{")
            and f'queue="{QUEUE}"' in line
            and 'outcome="retry"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_11_4_failed_subscription_creation_is_retried_until_it_exists_charged_once(
    merchant: Merchant, sim: httpx.AsyncClient
) -> None:
    subscriptions_url = os.environ.get("SUBSCRIPTIONS_URL")
    if not subscriptions_url:
        pytest.skip("SUBSCRIPTIONS_URL of the stack is not set (run `make test`)")
    price = await merchant.price(2900)
    checkout = await merchant.checkout(price["id"])
    before = await retries()

    async with subscriptions_refused_for(merchant.org_id):
        r = await merchant.confirm(checkout["id"], await merchant.card("visa"), key=unique("k"))
        assert r.status_code == 200, r.text

        async def payment_succeeded() -> dict[str, Any] | None:
            body = (await merchant.get(f"/v1/checkout-sessions/{checkout['id']}")).json()
            return body if (body.get("payment") or {}).get("status") == "succeeded" else None

        paid = await eventually(payment_succeeded, timeout=30)

        # The subscription cannot be created: the consumer fails and its message waits in
        # the retry tiers (1 s, then 5 s) instead of being lost or spinning.
        async def retried_twice() -> bool:
            return await retries() >= before + 2

        assert await eventually(retried_twice, timeout=30)
        body = (await merchant.get(f"/v1/checkout-sessions/{checkout['id']}")).json()
        # Checkout reports `complete` only once the subscription exists.
        assert body["status"] == "processing" and body.get("subscription_id") is None
        listed = (
            await merchant.get("/v1/subscriptions", customer_id=paid["customer"]["id"])
        ).json()
        assert listed.get("data", []) == []

    # The fault is gone: the next attempt creates the subscription.
    async def subscribed() -> str | None:
        body = (await merchant.get(f"/v1/checkout-sessions/{checkout['id']}")).json()
        return body.get("subscription_id")

    subscription_id = await eventually(subscribed, timeout=60)
    done = await merchant.wait_status(checkout["id"], "complete")
    assert done["subscription_id"] == subscription_id
    assert done["payment"]["status"] == "succeeded" and done["payment"]["amount"] == 2900
    sub = (await merchant.get(f"/v1/subscriptions/{subscription_id}")).json()
    assert sub["status"] == "active"
    assert (sub["amount"], sub["currency"]) == (2900, "usd")

    # Charged once: one PaymentIntent for this checkout, succeeded, for the price.
    await asyncio.sleep(0.5)
    ours = await intents_of(sim, checkout["id"])
    assert [(p["status"], p["amount_received"]) for p in ours] == [("succeeded", 2900)]
    listed = (await merchant.get("/v1/subscriptions", customer_id=paid["customer"]["id"])).json()
    assert [s["id"] for s in listed["data"]] == [subscription_id]
