"""Plan 14.6 (replay attack prevention) end to end: a captured request sent again must never
charge, subscribe or act twice. Three things can be captured: a client's API call (confirm,
create), a Stripe webhook delivery, and the gateway's signed identity header on the internal
network."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bos_common.auth import IDENTITY_HEADER, Identity, sign_identity

sys.path.insert(0, str(Path(__file__).parent))
from merchant import Merchant, intents_of, unique  # noqa: E402

pytestmark = pytest.mark.e2e


async def subscriptions_of(merchant: Merchant, customer_id: str) -> list[dict[str, Any]]:
    r = await merchant.get("/v1/subscriptions", customer_id=customer_id)
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


async def test_14_6_a_replayed_confirm_never_charges_twice(merchant: Merchant) -> None:
    checkout = await merchant.checkout((await merchant.price(3100))["id"])
    pm, key = await merchant.card(), unique("captured")
    first = await merchant.confirm(checkout["id"], pm, key=key)
    assert first.status_code == 200, first.text
    done = await merchant.wait_status(checkout["id"], "complete")

    # The captured request, sent again as is (same key): the first answer, byte for byte.
    replayed = await merchant.confirm(checkout["id"], pm, key=key)
    assert (replayed.status_code, replayed.content) == (200, first.content)
    assert replayed.headers.get("idempotent-replayed") == "true"
    # Sent again under a new key, or with none: refused, the checkout is no longer open.
    for again in (
        await merchant.confirm(checkout["id"], pm, key=unique("other")),
        await merchant.confirm(checkout["id"], pm),
    ):
        assert again.status_code == 409, again.text
        assert again.json()["error"]["type"] == "conflict"
    # Same key, different body: not a replay, refused.
    reused = await merchant.confirm(checkout["id"], await merchant.card(), key=key)
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"

    assert len(await intents_of(merchant.sim, checkout["id"])) == 1
    assert [s["id"] for s in await subscriptions_of(merchant, done["customer"]["id"])] == [
        done["subscription_id"]
    ]
    final = (await merchant.get(f"/v1/checkout-sessions/{checkout['id']}")).json()
    assert final["payment"]["id"] == done["payment"]["id"] and final["status"] == "complete"


async def test_14_6_a_replayed_checkout_creation_returns_the_same_checkout(
    merchant: Merchant,
) -> None:
    price = await merchant.price(3100)
    body = {"price_id": price["id"], "customer": {"email": f"{unique('r')}@example.com"}}
    key = unique("create")
    first = await merchant.post("/v1/checkout-sessions", body, **{"Idempotency-Key": key})
    again = await merchant.post("/v1/checkout-sessions", body, **{"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"


# --- a captured Stripe webhook ----------------------------------------------------------------


def stripe_signature(payload: bytes, timestamp: int) -> str:
    """Stripe's scheme (t=..,v1=HMAC-SHA256(secret, "t.payload")) with the secret the stack
    gave its simulator: what was on the wire when the delivery was captured at `timestamp`."""
    secret = os.environ.get("STRIPE_WEBHOOK_SECRETS", "whsec_bos_dev_simulator").split(",")[0]
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


async def delivered_event(sim: httpx.AsyncClient, type_: str, intent_id: str) -> dict[str, Any]:
    events = (await sim.get("/_sim/events", params={"type": type_, "limit": 100})).json()
    [event] = [e for e in events["data"] if e["data"]["object"]["id"] == intent_id]
    assert event["deliveries"] and event["deliveries"][-1]["status_code"] == 200
    return dict(event)


async def test_14_6_a_replayed_webhook_is_a_harmless_duplicate_and_a_stale_one_is_refused(
    merchant: Merchant,
) -> None:
    checkout = await merchant.checkout((await merchant.price(3300))["id"])
    await merchant.confirm(checkout["id"], await merchant.card(), key=unique("k"))
    done = await merchant.wait_status(checkout["id"], "complete")
    [pi] = await intents_of(merchant.sim, checkout["id"])
    event = await delivered_event(merchant.sim, "payment_intent.succeeded", pi["id"])
    payload = json.dumps(event).encode()

    # Replayed within Stripe's 5-minute signature window: accepted as a duplicate, no effect.
    r = await merchant.gateway.post(
        "/v1/webhooks/stripe",
        content=payload,
        headers={
            "Stripe-Signature": stripe_signature(payload, int(time.time())),
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"received": True, "duplicate": True}
    # Replayed later (captured ten minutes ago): the signature's timestamp is refused.
    stale = await merchant.gateway.post(
        "/v1/webhooks/stripe",
        content=payload,
        headers={
            "Stripe-Signature": stripe_signature(payload, int(time.time()) - 600),
            "Content-Type": "application/json",
        },
    )
    assert stale.status_code == 400
    assert stale.json()["error"]["code"] == "signature_invalid"

    # Nothing happened twice.
    subs = await subscriptions_of(merchant, done["customer"]["id"])
    assert [s["id"] for s in subs] == [done["subscription_id"]]
    after = (await merchant.get(f"/v1/checkout-sessions/{checkout['id']}")).json()
    assert after["payment"] == done["payment"] and after["status"] == "complete"
    assert len(await intents_of(merchant.sim, checkout["id"])) == 1


# --- a captured identity header ---------------------------------------------------------------


async def test_14_6_a_replayed_identity_header_is_refused_or_ignored(
    merchant: Merchant, gateway: httpx.AsyncClient
) -> None:
    checkout = await merchant.checkout((await merchant.price(3500))["id"])
    me = (await merchant.get("/v1/api-keys")).json()["data"][0]
    identity = Identity(principal_type="api_key", principal_id=me["id"], org_id=merchant.org_id)
    secret = os.environ["BOS_INTERNAL_SECRET"]
    path = f"/v1/checkout-sessions/{checkout['id']}/cancel"

    # Captured on the internal network ten minutes ago and replayed at the service itself:
    # the signed header has aged out.
    captured = sign_identity(identity, secret, now=time.time() - 600)
    async with httpx.AsyncClient(base_url=os.environ["CHECKOUT_URL"], timeout=10) as checkout_svc:
        r = await checkout_svc.post(path, headers={IDENTITY_HEADER: captured})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "invalid_identity"

    # Sent through the gateway, even a fresh one is stripped: the caller is anonymous, which
    # the gateway refuses before forwarding (only the hosted page's client secret opens a
    # checkout without credentials) and which sees no customer.
    fresh = {IDENTITY_HEADER: sign_identity(identity, secret)}
    r = await gateway.post(path, headers=fresh)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "authentication_required"
    r = await gateway.get("/v1/customers", headers=fresh)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["type"] == "authentication_error"

    # Neither acted: the checkout is still open.
    assert (await merchant.get(f"/v1/checkout-sessions/{checkout['id']}")).json()[
        "status"
    ] == "open"
