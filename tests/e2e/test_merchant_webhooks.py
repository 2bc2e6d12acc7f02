"""Webhooks to merchants end to end: a merchant registers an endpoint (a receiver this test
runs on 127.0.0.1), a customer pays, and the receiver gets signed events it verifies with
the `standardwebhooks` library; retries keep the event's id, a rotated secret verifies with
either secret during the overlap, a disabled endpoint gets nothing."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from bos_common.db import asyncpg_dsn

sys.path.insert(0, str(Path(__file__).parent))
from billing_clock import billing_clock_ahead  # noqa: E402
from merchant import Merchant, new_merchant, sent_mails, unique  # noqa: E402

pytestmark = pytest.mark.e2e

# The ports this file's receivers listen on.
PORTS = iter(range(19530, 19540))


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def verified(self, secret: str) -> dict[str, Any]:
        return dict(Webhook(secret).verify(self.body, self.headers))


@dataclass
class Receiver:
    """Records every request; answers the statuses of `answers` in turn, then 200."""

    url: str
    answers: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(Received(headers, await request.read()))
        self.arrived.set()
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status, text="ok" if status == 200 else "boom")

    def of_type(self, type_: str, secret: str) -> list[dict[str, Any]]:
        return [r.verified(secret) for r in self.requests if _type(r) == type_]

    async def wait_for(
        self, check: Callable[[], bool], timeout: float = 30.0, what: str = "requests"
    ) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not check():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"the receiver never got {what}: {self.requests}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), timeout=min(remaining, 0.5))
            except TimeoutError:
                pass


def _type(r: Received) -> str:
    import json

    return str(json.loads(r.body)["type"])


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Any]]:
    runners: list[web.AppRunner] = []

    async def start(answers: list[int] | None = None) -> Receiver:
        port = next(PORTS)
        receiver = Receiver(f"http://127.0.0.1:{port}/hooks", list(answers or []))
        app = web.Application()
        app.router.add_post("/hooks", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return receiver

    yield start
    for runner in runners:
        await runner.cleanup()


async def register(merchant: Merchant, url: str, **body: Any) -> dict[str, Any]:
    r = await merchant.post("/v1/webhook-endpoints", {"url": url, **body})
    assert r.status_code == 201, r.text
    endpoint = r.json()
    assert endpoint["secret"].startswith("whsec_") and endpoint["status"] == "enabled"
    return dict(endpoint)


async def pay(merchant: Merchant, amount: int = 2500) -> dict[str, Any]:
    price = await merchant.price(amount)
    checkout = await merchant.checkout(price["id"])
    r = await merchant.confirm(checkout["id"], await merchant.card("visa"))
    assert r.status_code == 200, r.text
    return await merchant.wait_status(checkout["id"], "complete")


async def test_a_payment_delivers_checkout_completed_and_subscription_created(
    merchant: Merchant, receivers: Callable[..., Any]
) -> None:
    receiver = await receivers()
    endpoint = await register(
        merchant,
        receiver.url,
        event_types=["checkout.completed", "subscription.created"],
        description="orders",
    )
    secret = endpoint["secret"]
    # The secret is shown once.
    shown = (await merchant.get(f"/v1/webhook-endpoints/{endpoint['id']}")).json()
    assert "secret" not in shown and shown["event_types"] == [
        "checkout.completed",
        "subscription.created",
    ]
    done = await pay(merchant)
    await receiver.wait_for(
        lambda: (
            {_type(r) for r in receiver.requests} >= {"checkout.completed", "subscription.created"}
        ),
        what="checkout.completed and subscription.created",
    )
    [completed] = receiver.of_type("checkout.completed", secret)
    [created] = receiver.of_type("subscription.created", secret)
    for event in (completed, created):
        assert event["id"].startswith("evt_") and event["api_version"]
        assert isinstance(event["created"], int)
    checkout = (await merchant.get(f"/v1/checkout-sessions/{done['id']}")).json()
    subscription = (await merchant.get(f"/v1/subscriptions/{done['subscription_id']}")).json()
    assert created["data"]["object"] == subscription
    assert completed["data"]["object"] == checkout
    # Another event type the endpoint did not subscribe to never came.
    assert {_type(r) for r in receiver.requests} == {"checkout.completed", "subscription.created"}
    listed = (await merchant.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")).json()
    assert {d["event_type"] for d in listed["data"]} == {
        "checkout.completed",
        "subscription.created",
    }
    for delivery in listed["data"]:
        assert delivery["status"] == "succeeded" and delivery["attempts"] == 1
        assert delivery["last_status_code"] == 200 and delivery["next_attempt_at"] is None


async def test_a_failing_receiver_gets_the_event_again_with_the_same_id(
    merchant: Merchant, receivers: Callable[..., Any]
) -> None:
    receiver = await receivers(answers=[500, 500])
    endpoint = await register(merchant, receiver.url, event_types=["checkout.completed"])
    await pay(merchant)
    await receiver.wait_for(lambda: len(receiver.requests) >= 3, what="three attempts")
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(ids) == 1 and len(receiver.requests) == 3
    for r in receiver.requests:
        assert r.verified(endpoint["secret"])["type"] == "checkout.completed"
    path = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"

    async def settled() -> dict[str, Any]:
        for _ in range(50):
            [delivery] = (await merchant.get(path)).json()["data"]
            if delivery["status"] == "succeeded":
                return dict(delivery)
            await asyncio.sleep(0.1)
        raise AssertionError(delivery)

    delivery = await settled()
    assert (delivery["attempts"], delivery["last_status_code"]) == (3, 200)
    # Delivered again on demand, with the same id.
    r = await merchant.post(f"/v1/webhook-deliveries/{delivery['id']}/retry")
    assert r.status_code == 200 and r.json()["status"] == "pending"
    await receiver.wait_for(lambda: len(receiver.requests) >= 4, what="the manual retry")
    assert receiver.requests[3].headers["webhook-id"] in ids


async def test_a_rotated_secret_verifies_with_either_secret_during_the_overlap(
    merchant: Merchant, receivers: Callable[..., Any]
) -> None:
    receiver = await receivers()
    endpoint = await register(merchant, receiver.url)
    r = await merchant.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["secret"] != endpoint["secret"] and rotated["previous_secret_expires_at"]
    r = await merchant.post(f"/v1/webhook-endpoints/{endpoint['id']}/test")
    assert r.status_code == 201, r.text
    await receiver.wait_for(lambda: len(receiver.requests) >= 1, what="the test event")
    [received] = receiver.requests
    assert received.verified(endpoint["secret"])["type"] == "webhook_endpoint.test"
    assert received.verified(rotated["secret"])["type"] == "webhook_endpoint.test"


async def test_a_trial_ending_soon_delivers_subscription_trial_will_end_once(
    merchant: Merchant, receivers: Callable[..., Any]
) -> None:
    receiver = await receivers()
    endpoint = await register(merchant, receiver.url, event_types=["subscription.trial_will_end"])
    price = await merchant.price(2900, trial_days=14)
    checkout = await merchant.checkout(price["id"])
    r = await merchant.confirm(checkout["id"], await merchant.card("visa"))
    assert r.status_code == 200, r.text
    done = await merchant.wait_status(checkout["id"], "complete")
    sub_path = f"/v1/subscriptions/{done['subscription_id']}"
    assert (await merchant.get(sub_path)).json()["status"] == "trialing"
    # Past the reminder (3 days before the trial's end), before the end itself.
    async with billing_clock_ahead(12 * 86400) as clock:
        await clock.run_scheduler()
        await receiver.wait_for(lambda: len(receiver.requests) >= 1, what="trial_will_end")
        # Once: a second pass of the scheduler does not remind again.
        await clock.run_scheduler()
    await asyncio.sleep(1.0)
    [event] = receiver.of_type("subscription.trial_will_end", endpoint["secret"])
    assert len(receiver.requests) == 1
    subscription = (await merchant.get(sub_path)).json()
    assert event["data"]["object"] == subscription and subscription["status"] == "trialing"


async def test_a_disabled_endpoint_gets_nothing(
    merchant: Merchant, receivers: Callable[..., Any]
) -> None:
    enabled, disabled = await receivers(), await receivers()
    await register(merchant, enabled.url, event_types=["checkout.completed"])
    off = await register(merchant, disabled.url, event_types=["checkout.completed"])
    r = await merchant.gateway.patch(
        f"/v1/webhook-endpoints/{off['id']}", json={"status": "disabled"}, headers=merchant.auth
    )
    assert r.status_code == 200 and r.json()["status"] == "disabled", r.text
    await pay(merchant)
    await enabled.wait_for(lambda: len(enabled.requests) >= 1, what="checkout.completed")
    # The enabled endpoint's delivery came; the disabled one's would have come with it.
    await asyncio.sleep(1.0)
    assert disabled.requests == []


async def test_an_endpoint_failing_for_days_is_disabled_and_the_merchant_told(
    gateway: Any, sim: Any, receivers: Callable[..., Any]
) -> None:
    address = f"{unique('ops')}@example.com"
    merchant = await new_merchant(gateway, sim, notification_email=address)
    assert (await merchant.get("/v1/organization")).json()["notification_email"] == address
    receiver = await receivers(answers=[500] * 5)
    endpoint = await register(merchant, receiver.url)
    # As if every delivery had failed for four days (the limit is three).
    conn = await asyncpg.connect(asyncpg_dsn(os.environ["DATABASE_URL"]))
    try:
        await conn.execute(
            "UPDATE webhooks.webhook_endpoints SET failing_since = now() - interval '4 days'"
            " WHERE id = $1",
            endpoint["id"],
        )
    finally:
        await conn.close()
    r = await merchant.post(f"/v1/webhook-endpoints/{endpoint['id']}/test")
    assert r.status_code == 201, r.text
    await receiver.wait_for(lambda: len(receiver.requests) >= 1, what="the test event")
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    shown: dict[str, Any] = {}
    for _ in range(100):
        shown = (await merchant.get(path)).json()
        if shown["status"] == "disabled":
            break
        await asyncio.sleep(0.1)
    assert shown["status"] == "disabled", shown
    assert shown["disabled_at"] and "every delivery failed since" in shown["disabled_reason"]
    mails: list[Any] = []
    for _ in range(100):
        mails = sent_mails(address, "webhook_endpoint_disabled")
        if mails:
            break
        await asyncio.sleep(0.1)
    [mail] = mails
    assert endpoint["id"] in mail.get_content() and receiver.url in mail.get_content()
    # Enabled again by the merchant: the notice is gone with the failure.
    r = await merchant.gateway.patch(path, json={"status": "enabled"}, headers=merchant.auth)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["disabled_at"], r.json()["disabled_reason"]) == (
        "enabled",
        None,
        None,
    )


async def test_validation_and_isolation(merchant: Merchant, gateway: Any, sim: Any) -> None:
    r = await merchant.post(
        "/v1/webhook-endpoints", {"url": "https://example.com/h", "event_types": ["nope.nope"]}
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["type"] == "invalid_request"
    r = await merchant.post("/v1/webhook-endpoints", {"url": "ftp://example.com/h"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "url_invalid", r.text
    endpoint = await register(merchant, "https://example.com/h")
    other = await new_merchant(gateway, sim)
    for method, path in [
        ("GET", f"/v1/webhook-endpoints/{endpoint['id']}"),
        ("DELETE", f"/v1/webhook-endpoints/{endpoint['id']}"),
        ("POST", f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret"),
        ("GET", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"),
    ]:
        r = await gateway.request(method, path, headers=other.auth)
        assert r.status_code == 404, (method, path, r.text)
    listed = (await merchant.get("/v1/webhook-endpoints", limit=1)).json()
    assert [e["id"] for e in listed["data"]] == [endpoint["id"]]
    r = await gateway.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=merchant.auth)
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert (await merchant.get(f"/v1/webhook-endpoints/{endpoint['id']}")).status_code == 404
    # Without credentials: 401 at the gateway.
    assert (await gateway.get("/v1/webhook-endpoints")).status_code == 401
