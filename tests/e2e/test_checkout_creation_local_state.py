"""Checkout creation answers from what checkout keeps locally (a cache of catalog's price
snapshots, a projection of subscription events) without going stale: through the
gateway, with every service, Postgres, RabbitMQ and the Stripe simulator (plan 2.5, 2.8,
8.2, 8.3)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from merchant import Merchant, unique  # noqa: E402

from bos_common.db import asyncpg_dsn  # noqa: E402

pytestmark = pytest.mark.e2e


async def _create(merchant: Merchant, price_id: str, email: str | None = None) -> tuple[int, dict]:
    r = await merchant.post(
        "/v1/checkout-sessions",
        {"price_id": price_id, "customer": {"email": email or f"{unique('c')}@example.com"}},
    )
    return r.status_code, r.json()


async def test_2_5_a_product_archived_after_checkouts_opened_is_refused_at_once(
    merchant: Merchant,
) -> None:
    price = await merchant.price(2900)
    for _ in range(3):  # the snapshot is now cached by checkout
        assert (await _create(merchant, price["id"]))[0] == 201
    r = await merchant.post(f"/v1/products/{price['product_id']}/archive")
    assert r.status_code == 200, r.text
    # The archive's event reaches checkout in milliseconds; the cache is never trusted
    # past SNAPSHOT_CACHE_SECONDS (5 s) anyway. Right after the archive answered:
    status, body = await _create(merchant, price["id"])
    if status == 201:  # the event was still on its way: within the documented window
        status, body = await _eventually_refused(merchant, price["id"])
    assert (status, body["error"]["code"]) == (400, "product_not_available")
    assert body["error"]["message"] == "Product not available"


async def test_2_8_a_price_deleted_after_checkouts_opened_is_refused_at_once(
    merchant: Merchant,
) -> None:
    price = await merchant.price(2900)
    assert (await _create(merchant, price["id"]))[0] == 201
    r = await merchant.gateway.delete(f"/v1/prices/{price['id']}", headers=merchant.auth)
    assert r.status_code == 200, r.text
    status, body = await _create(merchant, price["id"])
    if status == 201:
        status, body = await _eventually_refused(merchant, price["id"])
    assert (status, body["error"]["code"]) == (400, "price_not_available")


async def _eventually_refused(merchant: Merchant, price_id: str) -> tuple[int, dict]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 6.0  # SNAPSHOT_CACHE_SECONDS plus a margin
    while loop.time() < deadline:
        status, body = await _create(merchant, price_id)
        if status != 201:
            return status, body
        await asyncio.sleep(0.05)
    raise AssertionError("a checkout was still created for an unavailable price after 6 s")


async def test_a_product_edit_reaches_new_checkouts(merchant: Merchant) -> None:
    price = await merchant.price(2900)
    status, first = await _create(merchant, price["id"])
    assert status == 201 and first["product"]["features"] == ["feature_a", "feature_b"]
    r = await merchant.gateway.patch(
        f"/v1/products/{price['product_id']}",
        json={"features": ["feature_c"]},
        headers=merchant.auth,
    )
    assert r.status_code == 200, r.text
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 6.0
    while True:
        status, later = await _create(merchant, price["id"])
        assert status == 201
        if later["product"]["features"] == ["feature_c"] or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert later["product"]["features"] == ["feature_c"]
    # The checkout opened before the edit keeps what it was opened with.
    kept = (await merchant.get(f"/v1/checkout-sessions/{first['id']}")).json()
    assert kept["product"]["features"] == ["feature_a", "feature_b"]


async def test_8_2_a_paying_customer_is_already_subscribed_and_8_3_other_products_stay_open(
    merchant: Merchant,
) -> None:
    price = await merchant.price(2900)
    other = await merchant.price(1900)
    email = f"{unique('sub')}@example.com"
    checkout = await merchant.checkout(price["id"], email=email)
    r = await merchant.confirm(checkout["id"], await merchant.card("visa"), key=unique("k"))
    assert r.status_code == 200, r.text
    await merchant.wait_status(checkout["id"], "complete")
    # `complete` is reported in the transaction that recorded the subscription locally:
    # from now on, no wait.
    status, body = await _create(merchant, price["id"], email=email.upper())
    assert (status, body["error"]["code"]) == (409, "already_subscribed")
    assert body["error"]["message"] == "Already subscribed to this product"
    assert (await _create(merchant, other["id"], email=email))[0] == 201


async def test_8_2_after_the_subscription_ends_the_customer_may_subscribe_again(
    merchant: Merchant,
) -> None:
    price = await merchant.price(0)
    email = f"{unique('free')}@example.com"
    checkout = await merchant.checkout(price["id"], email=email)
    assert (
        await merchant.post(f"/v1/checkout-sessions/{checkout['id']}/confirm-free")
    ).status_code == 200
    done = await merchant.wait_status(checkout["id"], "complete")
    assert (await _create(merchant, price["id"], email=email))[0] == 409
    r = await merchant.post(
        f"/v1/subscriptions/{done['subscription_id']}/cancel", {"at_period_end": False}
    )
    assert r.status_code == 200, r.text
    # At once: subscription.ended.v1 may still be on its way to checkout's projection,
    # but a 409 is confirmed with subscriptions first (rule 7).
    assert (await _create(merchant, price["id"], email=email))[0] == 201


async def test_8_2_cancel_then_checkout_again_in_a_tight_loop_is_never_refused(
    merchant: Merchant,
) -> None:
    """50 times: a customer's subscription is canceled and the same customer opens a
    checkout for the same product right away; a trialing one first."""
    trial = await merchant.price(2900, trial_days=14)
    email = f"{unique('trial')}@example.com"
    checkout = await merchant.checkout(trial["id"], email=email)
    r = await merchant.confirm(checkout["id"], await merchant.card("visa"), key=unique("k"))
    assert r.status_code == 200, r.text
    done = await merchant.wait_status(checkout["id"], "complete")
    sub = (await merchant.get(f"/v1/subscriptions/{done['subscription_id']}")).json()
    assert sub["status"] == "trialing", sub
    r = await merchant.post(
        f"/v1/subscriptions/{done['subscription_id']}/cancel", {"at_period_end": False}
    )
    assert r.status_code == 200 and r.json()["status"] == "canceled", r.text
    assert (await _create(merchant, trial["id"], email=email))[0] == 201

    free = await merchant.price(0)
    email = f"{unique('loop')}@example.com"
    refused = []
    for _ in range(50):
        checkout = await merchant.checkout(free["id"], email=email)
        r = await merchant.post(f"/v1/checkout-sessions/{checkout['id']}/confirm-free")
        assert r.status_code == 200, r.text
        done = await merchant.wait_status(checkout["id"], "complete")
        r = await merchant.post(
            f"/v1/subscriptions/{done['subscription_id']}/cancel", {"at_period_end": False}
        )
        assert r.status_code == 200, r.text
        status, body = await _create(merchant, free["id"], email=email)
        if status != 201:
            refused.append((status, body))
        else:
            await merchant.post(f"/v1/checkout-sessions/{body['id']}/cancel")
    assert refused == []


async def test_8_2_a_subscription_older_than_the_projection_blocks_a_second_checkout(
    merchant: Merchant,
) -> None:
    """A database from before checkout projected subscription.* events: the projection
    misses subscriptions that already exist, so 8.2 would let a subscribed customer buy
    again. The backfill (at start, and `python -m checkout backfill`) restores it."""
    price = await merchant.price(0)
    email = f"{unique('old')}@example.com"
    checkout = await merchant.checkout(price["id"], email=email)
    r = await merchant.post(f"/v1/checkout-sessions/{checkout['id']}/confirm-free")
    assert r.status_code == 200, r.text
    await merchant.wait_status(checkout["id"], "complete")
    assert (await _create(merchant, price["id"], email=email))[0] == 409

    # As on a database that predates the projection: this organization's rows were never
    # written.
    conn = await asyncpg.connect(asyncpg_dsn(os.environ["DATABASE_URL"]))
    try:
        await conn.execute(
            "DELETE FROM checkout.customer_subscriptions WHERE org_id = $1", merchant.org_id
        )
    finally:
        await conn.close()
    assert (await _create(merchant, price["id"], email=email))[0] == 201  # the gap

    backfill = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "checkout",
        "backfill",
        "--force",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(backfill.communicate(), 60)
    assert backfill.returncode == 0, err.decode()[-2000:]
    assert b"live subscriptions projected" in out
    status, body = await _create(merchant, price["id"], email=email)
    assert (status, body["error"]["code"]) == (409, "already_subscribed")
