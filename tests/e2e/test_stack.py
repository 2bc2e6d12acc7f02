"""The walking skeleton end to end: processes, gateway, real Postgres and RabbitMQ."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bos_common.testing import eventually

pytestmark = pytest.mark.e2e


def signed(payload: bytes, secret: str, at: int | None = None) -> str:
    """A Stripe-Signature header, computed the way Stripe documents it."""
    t = at or int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def payment_event() -> dict:
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": f"pi_{uuid.uuid4().hex[:24]}",
                "object": "payment_intent",
                "amount": 9900,
                "amount_received": 9900,
                "currency": "usd",
                "status": "succeeded",
                "metadata": {"org_id": "org_e2e"},
            }
        },
    }


async def test_readyz_is_green_through_the_gateway(gateway: httpx.AsyncClient) -> None:
    r = await gateway.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"auth_state": "ok"}
    # The backends are reported apart from the gateway's readiness (bos_common.health).
    details = (await gateway.get("/healthz/details")).json()
    assert set(details["dependencies"]) == {
        "tokens",
        "catalog",
        "checkout",
        "subscriptions",
        "webhooks",
        "rabbitmq",
    }
    assert all(v == "ok" for v in details["dependencies"].values()), details


@pytest.mark.parametrize("path", ["/healthz", "/nowhere", "/v1/products/prod_missing"])
async def test_every_response_carries_a_request_id(gateway: httpx.AsyncClient, path: str) -> None:
    r = await gateway.get(path)
    assert r.headers["x-request-id"]
    mine = await gateway.get(path, headers={"X-Request-Id": "req_from_client_1"})
    assert mine.headers["x-request-id"] == "req_from_client_1"


@pytest.mark.parametrize(
    "path",
    ["/healthz", "/nowhere", "/v1/products/prod_missing", "/v1/products", "/checkout/cs_missing"],
)
async def test_every_response_carries_each_header_once_and_no_server_banner(
    gateway: httpx.AsyncClient, path: str
) -> None:
    """The gateway's own answers, its errors and the services' answers alike: the
    security header once, one Date, one request id, and nothing naming the software."""
    r = await gateway.get(path)
    names = [name.lower() for name, _ in r.headers.multi_items()]
    for header in ("x-content-type-options", "date", "x-request-id"):
        assert names.count(header) == 1, (header, r.headers)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "server" not in names


async def test_unknown_paths_get_a_json_404(gateway: httpx.AsyncClient) -> None:
    r = await gateway.get("/definitely/not/here")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()["error"]
    assert body["type"] == "not_found"
    assert body["request_id"] == r.headers["x-request-id"]


async def test_a_bad_credential_is_a_json_401(gateway: httpx.AsyncClient) -> None:
    r = await gateway.get("/v1/products", headers={"Authorization": "Bearer sk_test_nope"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"


async def test_signed_stripe_event_reaches_checkout_once(
    gateway: httpx.AsyncClient,
) -> None:
    secret = os.environ["STRIPE_WEBHOOK_SECRETS"].split(",")[0]
    event = payment_event()
    payload = json.dumps(event).encode()
    headers = {"Stripe-Signature": signed(payload, secret), "Content-Type": "application/json"}

    first = await gateway.post("/v1/webhooks/stripe", content=payload, headers=headers)
    again = await gateway.post("/v1/webhooks/stripe", content=payload, headers=headers)

    assert first.status_code == 200, first.text
    assert first.json() == {"received": True, "duplicate": False}
    assert again.json() == {"received": True, "duplicate": True}
    engine = create_async_engine(os.environ["DATABASE_URL"])
    pi = event["data"]["object"]["id"]

    async def recorded() -> int:
        # Consumed once by checkout's payments consumer (its inbox), after webhooks
        # published it through its outbox.
        async with engine.connect() as conn:
            return (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM checkout.inbox i JOIN webhooks.outbox o "
                        "ON o.event_id = i.event_id "
                        "WHERE o.envelope->'data'->>'payment_intent_id' = :pi "
                        "AND i.consumer = 'checkout.payments'"
                    ),
                    {"pi": pi},
                )
            ).scalar_one()

    try:
        assert await eventually(recorded) == 1
    finally:
        await engine.dispose()


@pytest.mark.parametrize("signature", [None, "t=1,v1=deadbeef", "garbage"])
async def test_unsigned_or_badly_signed_webhooks_are_refused(
    gateway: httpx.AsyncClient, signature: str | None
) -> None:
    headers = {"Stripe-Signature": signature} if signature else {}
    r = await gateway.post(
        "/v1/webhooks/stripe", content=json.dumps(payment_event()), headers=headers
    )
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request"


async def test_openapi_merges_public_operations_only(gateway: httpx.AsyncClient) -> None:
    doc = (await gateway.get("/openapi.json")).json()
    assert "/v1/webhooks/stripe" in doc["paths"]
    assert not any(p in doc["paths"] for p in ("/healthz", "/readyz", "/metrics"))
    assert (await gateway.get("/docs")).status_code == 200


async def test_metrics_are_exposed_with_route_templates(gateway: httpx.AsyncClient) -> None:
    await gateway.get("/healthz")
    text_ = (await gateway.get("/metrics")).text
    assert "http_request_duration_seconds_bucket{" in text_
    assert 'service="gateway"' in text_
