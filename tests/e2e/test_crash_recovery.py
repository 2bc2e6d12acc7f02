"""A process killed (SIGKILL) while money moves: nothing it held stays held.

The confirm's Idempotency-Key and its payment are claimed under leases its process
renews (bos_common.leases): killed, it renews nothing, the client's retry with the same
key runs again within a lease instead of 409 `idempotency_key_in_use` for a minute, and
the payment it left pending is settled against Stripe by the recovery sweep of the
restarted process (checkout.recovery), charged once."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import pytest
from merchant import Merchant, intents_of, unique
from processes import kill, restart_stopped

pytestmark = pytest.mark.e2e

# The leases' default (bos_common.leases.DEFAULT_LEASE, PAYMENT_LEASE_SECONDS), with room
# for a loaded machine: a claim of the dead process answers 409 no longer than this
# after the kill.
LEASE = 6.0
SLACK = 6.0
# Once the process is back: a payment lease, the sweep's interval, the settling and the
# retried confirm, on a loaded machine. Killed after the Stripe customer was recorded but
# before the intent's request reached Stripe, the payment's create is sent again under its
# key (checkout.recovery: REPLAY_CREATE) and settled at once.
ANSWERED_WITHIN = 30.0


# Each Stripe call takes 2.5 s: killed 0.8 s in, the process dies while the Stripe
# customer is created (no PaymentIntent ever: the sweep reopens the checkout and the
# retry charges); 3.6 s in, while the PaymentIntent is created (Stripe still creates and
# charges it: the sweep completes the checkout with it).
@pytest.mark.parametrize("kill_after", [0.8, 3.6], ids=["before_the_intent", "during_the_intent"])
async def test_confirm_killed_mid_charge_is_answered_on_retry_and_charged_once(
    merchant: Merchant, sim: httpx.AsyncClient, kill_after: float
) -> None:
    checkout_url = os.environ.get("CHECKOUT_URL")
    if not checkout_url:
        pytest.skip("CHECKOUT_URL of the stack is not set (run `make test`)")
    checkout = await merchant.checkout((await merchant.price(3100))["id"])
    pm = await merchant.card()
    key = unique("crash")

    assert (await sim.post("/_sim/faults", json={"api_latency_ms": 2500})).status_code == 200
    try:
        first = asyncio.create_task(merchant.confirm(checkout["id"], pm, key=key))

        for _ in range(200):
            body = (await merchant.get(f"/v1/checkout-sessions/{checkout['id']}")).json()
            if body["status"] == "processing":
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(kill_after)
        kill("checkout")
        killed_at = asyncio.get_running_loop().time()
        lost = await first
        assert lost.status_code >= 500, lost.text
    finally:
        await sim.delete("/_sim/faults")

    await restart_stopped(f"{checkout_url}/readyz")
    loop = asyncio.get_running_loop()
    restarted_at = loop.time()

    # The client retries with the same key until it has an answer.
    seen: list[tuple[float, int, str]] = []
    answer: httpx.Response | None = None
    while loop.time() - restarted_at < ANSWERED_WITHIN:
        r = await merchant.confirm(checkout["id"], pm, key=key)
        code = r.json().get("error", {}).get("code", "") if r.status_code >= 400 else ""
        seen.append((round(loop.time() - killed_at, 1), r.status_code, code))
        if r.status_code == 200 or code == "checkout_complete":
            answer = r
            break
        await asyncio.sleep(0.25)
    assert answer is not None, seen[-5:]
    # The dead request's claim on the key lasted a lease, however long the restart took.
    in_use = [t for t, _, code in seen if code == "idempotency_key_in_use"]
    assert not in_use or max(in_use) <= LEASE + SLACK, seen

    done = await merchant.wait_status(checkout["id"], "complete", timeout=40)
    assert done["payment"]["status"] == "succeeded", done
    # Charged once: one PaymentIntent for the checkout, succeeded, for the price.
    await asyncio.sleep(0.5)
    intents: list[dict[str, Any]] = await intents_of(sim, checkout["id"])
    assert [(i["status"], i["amount"]) for i in intents] == [("succeeded", 3100)], intents
