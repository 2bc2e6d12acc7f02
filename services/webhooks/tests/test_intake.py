"""Webhook intake against real Postgres, RabbitMQ and the Stripe simulator delivering
signed events over HTTP (plan section 9, 11.4 partly, reconciliation)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bos_common.testing import Infra, eventually, migrate, serve_app
from stripe_sim.testing import run_simulator
from webhooks.app import build_runtime, create_app
from webhooks.models import outbox, stripe_events
from webhooks.runtime import WebhooksRuntime
from webhooks.settings import WebhooksSettings
from webhooks.testing import sim_emit, succeeded_intent
from webhooks.worker import reconcile_once

pytestmark = pytest.mark.integration
SECRET = "whsec_intake_test"


@dataclass
class Intake:
    runtime: WebhooksRuntime
    url: str
    sim: httpx.AsyncClient
    endpoint_id: str


@pytest.fixture(scope="module")
def sim_base() -> Iterator[str]:
    with run_simulator() as base:
        yield base


@pytest.fixture(scope="module")
async def intake(infra: Infra, sim_base: str) -> AsyncIterator[Intake]:
    await migrate(infra.database_url, "webhooks")
    settings = WebhooksSettings(
        **infra.env(),
        STRIPE_WEBHOOK_SECRETS=f"whsec_old_rotated,{SECRET}",
        STRIPE_SECRET_KEY="sk_test_intake",
        STRIPE_API_BASE=sim_base,
        TOKENS_URL="http://127.0.0.1:9",  # no connected accounts in these tests
        RECONCILE_INTERVAL_SECONDS="3600",
    )
    runtime = build_runtime(settings)
    async with (
        serve_app(create_app(runtime)) as url,
        httpx.AsyncClient(base_url=sim_base, timeout=10) as sim,
    ):
        endpoint = (
            await sim.post(
                "/_sim/webhook_endpoints",
                json={"url": f"{url}/v1/webhooks/stripe", "secret": SECRET},
            )
        ).json()
        yield Intake(runtime, url, sim, endpoint["id"])
        await sim.delete("/_sim/faults")


async def stored(runtime: WebhooksRuntime, event_id: str) -> int:
    async with runtime.db.transaction() as s:
        q = select(func.count()).where(stripe_events.c.id == event_id)
        return int((await s.execute(q)).scalar_one())


async def outbox_rows(runtime: WebhooksRuntime, event_id: str) -> list[Any]:
    async with runtime.db.transaction() as s:
        q = select(outbox).where(outbox.c.envelope["data"]["stripe_event_id"].astext == event_id)
        return list((await s.execute(q)).all())


async def sim_event(sim: httpx.AsyncClient, type_: str, *, pi: str | None = None) -> dict[str, Any]:
    """The newest simulator event of a type (for one PaymentIntent when given)."""
    events = (await sim.get("/_sim/events", params={"type": type_, "limit": 100})).json()["data"]
    if pi is not None:
        events = [e for e in events if e["data"]["object"].get("id") == pi]
    return events[-1] if events else {}


async def pay(runtime: WebhooksRuntime, card: str = "pm_card_visa") -> str:
    """A real PaymentIntent on the simulator, created the way checkout will."""
    pi = await runtime.stripe.v1.payment_intents.create_async(
        {
            "amount": 9900,
            "currency": "usd",
            "payment_method": card,
            "confirm": True,
            # Cards only (Stripe rule 1): a server-side confirm needs no return_url.
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "metadata": {
                "org_id": "org_it",
                "checkout_id": f"cs_{uuid.uuid4().hex[:12]}",
                "customer_id": "cus_it",
            },
        }
    )
    return pi.id


async def test_9_1_payment_succeeded_webhook_is_stored_and_published(intake: Intake) -> None:
    pi = await pay(intake.runtime)
    event = await eventually(lambda: sim_event(intake.sim, "payment_intent.succeeded", pi=pi))

    assert await eventually(lambda: stored(intake.runtime, event["id"])) == 1
    [row] = await eventually(lambda: outbox_rows(intake.runtime, event["id"]))
    assert row.event_type == "payment.succeeded.v1"
    assert row.envelope["data"]["payment_intent_id"] == pi
    assert row.envelope["org_id"] == "org_it"
    published = await eventually(lambda: _published(intake.runtime, event["id"]), timeout=10)
    assert published


async def _published(runtime: WebhooksRuntime, event_id: str) -> bool:
    rows = await outbox_rows(runtime, event_id)
    return bool(rows) and rows[0].published_at is not None


async def test_9_2_badly_signed_webhook_is_rejected_and_nothing_stored(intake: Intake) -> None:
    event_id = f"evt_forged_{uuid.uuid4().hex[:8]}"
    body = json.dumps(
        {
            "id": event_id,
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "data": {"object": {"id": "pi_x"}},
        }
    )
    async with httpx.AsyncClient(base_url=intake.url) as client:
        bad = await client.post(
            "/v1/webhooks/stripe",
            content=body,
            headers={"Stripe-Signature": f"t={int(time.time())},v1=00"},
        )
        none = await client.post("/v1/webhooks/stripe", content=body)
    assert bad.status_code == none.status_code == 400
    assert await stored(intake.runtime, event_id) == 0


async def test_9_3_duplicate_delivery_has_one_effect(intake: Intake) -> None:
    await intake.sim.post("/_sim/faults", json={"webhook_duplicate": True})
    try:
        pi = await pay(intake.runtime)
        event = await eventually(lambda: sim_event(intake.sim, "payment_intent.succeeded", pi=pi))
        await eventually(lambda: _delivered_ok(intake.sim, event["id"], times=2))
    finally:
        await intake.sim.delete("/_sim/faults")
    assert await stored(intake.runtime, event["id"]) == 1
    assert len(await outbox_rows(intake.runtime, event["id"])) == 1


async def _delivery_statuses(sim: httpx.AsyncClient, event_id: str) -> list[int]:
    """The status codes the simulator's deliveries of `event_id` got, oldest first."""
    events = (await sim.get("/_sim/events", params={"limit": 100})).json()["data"]
    [event] = [e for e in events if e["id"] == event_id] or [{"deliveries": []}]
    return [d["status_code"] for d in event["deliveries"]]


async def _delivered_ok(sim: httpx.AsyncClient, event_id: str, times: int = 1) -> bool:
    return (await _delivery_statuses(sim, event_id)).count(200) >= times


async def test_9_6_unknown_event_type_is_stored_answered_200_and_not_translated(
    intake: Intake,
) -> None:
    emitted = await sim_emit(
        intake.sim, "issuing_card.created", {"id": "ic_1", "object": "issuing.card"}
    )
    await eventually(lambda: _delivered_ok(intake.sim, emitted["id"]))
    assert await stored(intake.runtime, emitted["id"]) == 1
    assert await outbox_rows(intake.runtime, emitted["id"]) == []


async def test_reconciliation_records_an_event_that_was_never_delivered(intake: Intake) -> None:
    await intake.sim.delete(f"/_sim/webhook_endpoints/{intake.endpoint_id}")
    try:
        pi = await pay(intake.runtime)
        event = await eventually(lambda: sim_event(intake.sim, "payment_intent.succeeded", pi=pi))
        await asyncio.sleep(0.3)
        assert await stored(intake.runtime, event["id"]) == 0, "no endpoint: not delivered"

        recorded = await reconcile_once(intake.runtime)

        assert recorded >= 1
        assert await stored(intake.runtime, event["id"]) == 1
        assert len(await outbox_rows(intake.runtime, event["id"])) == 1
        assert await reconcile_once(intake.runtime) == 0, "a second pass finds nothing new"
    finally:
        endpoint = (
            await intake.sim.post(
                "/_sim/webhook_endpoints",
                json={"url": f"{intake.url}/v1/webhooks/stripe", "secret": SECRET},
            )
        ).json()
        intake.endpoint_id = endpoint["id"]


async def test_9_5_database_down_answers_503_and_stripes_retry_succeeds(
    infra: Infra, intake: Intake
) -> None:
    infra.postgres("stop")
    try:
        emitted = await sim_emit(intake.sim, "payment_intent.succeeded", succeeded_intent("org_it"))
        await eventually(lambda: _delivery_failed_with(intake.sim, emitted["id"], 503))
    finally:
        infra.postgres("start")
    assert await eventually(lambda: stored(intake.runtime, emitted["id"]), timeout=60) == 1
    assert len(await outbox_rows(intake.runtime, emitted["id"])) == 1


async def _delivery_failed_with(sim: httpx.AsyncClient, event_id: str, status: int) -> bool:
    return status in await _delivery_statuses(sim, event_id)


async def test_9_1_an_accepted_event_is_published_at_once_not_at_the_next_poll(
    intake: Intake,
) -> None:
    # The intake wakes its own relay (no NOTIFY, see repository.record_event): with the
    # poll a minute away, the event still leaves within a moment.
    relay = intake.runtime.relay
    relay.poll_interval = 60
    await asyncio.sleep(1.5)  # the relay's current wait (1 s poll) is over
    try:
        emitted = await sim_emit(intake.sim, "payment_intent.succeeded", succeeded_intent("org_it"))
        assert await eventually(lambda: _published(intake.runtime, emitted["id"]), timeout=3)
    finally:
        relay.poll_interval = 1.0
        relay.wake()
