"""A confirm that dies after the customer is recorded at Stripe and before its intent's
answer is recorded (checkout.recovery): the payment's intent create is sent again, under
its idempotency key with the same parameters, and Stripe's idempotency settles it at
once: the create performed now, its saved answer, or 409 while it still executes. Real
Postgres and the Stripe simulator (its idempotency as Stripe documents it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bos_common.auth import Identity
from bos_common.stripe_api import as_dict
from bos_common.testing import Infra, migrate
from checkout import confirm, recovery, recovery_repository, repository, stripe_creates, worker
from checkout.app import build_runtime
from checkout.models import customers
from checkout.runtime import CheckoutRuntime
from checkout.settings import CheckoutSettings
from checkout.testing import Organizations, a_checkout
from stripe_sim.testing import run_simulator

pytestmark = pytest.mark.integration

INTENTS = "/v1/payment_intents"


@pytest.fixture(scope="module")
def sim_base() -> Iterator[str]:
    with run_simulator() as base:
        yield base


@pytest.fixture(scope="module")
async def runtime(infra: Infra, sim_base: str) -> AsyncIterator[CheckoutRuntime]:
    """Stripe is the simulator; no background sweep: the tests run it themselves."""
    await migrate(infra.database_url, "checkout")
    unused = "http://127.0.0.1:9"
    rt = build_runtime(
        CheckoutSettings(
            **infra.env(),
            STRIPE_SECRET_KEY="sk_test_rollforward",
            STRIPE_API_BASE=sim_base,
            CATALOG_URL=unused,
            TOKENS_URL=unused,
            SUBSCRIPTIONS_URL=unused,
            RECOVERY_SWEEP_SECONDS=3600,
        )
    )
    rt.organizations = Organizations()  # type: ignore[assignment]
    await rt.start()
    await asyncio.wait_for(rt.bus.wait_connected(), 30)
    yield rt
    await rt.stop()


@pytest.fixture
async def sim(sim_base: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim_base, timeout=10) as client:
        yield client
        await client.delete("/_sim/faults")


def api_key() -> Identity:
    return Identity(principal_type="api_key", principal_id="key_t", org_id="org_t")


class ProcessDied(BaseException):
    """The confirm's process ends here (nothing after it runs, no `except Exception`)."""


def dying_before_the_intent(
    rt: CheckoutRuntime, monkeypatch: pytest.MonkeyPatch, *, sent: bool
) -> list[asyncio.Task[Any]]:
    """The next intent create kills its confirm: before the request leaves (`sent=False`)
    or once it is on its way to Stripe, which finishes it all the same (`sent=True`: the
    request's task is returned)."""
    real: Callable[..., Awaitable[Any]] = rt.stripe.raw_request_async
    in_flight: list[asyncio.Task[Any]] = []
    died: list[bool] = []

    async def raw_request_async(method: str, path: str, **params: Any) -> Any:
        if path != INTENTS or died:
            return await real(method, path, **params)
        died.append(True)
        if sent:
            in_flight.append(asyncio.create_task(real(method, path, **params)))
        raise ProcessDied

    monkeypatch.setattr(rt.stripe, "raw_request_async", raw_request_async)
    return in_flight


async def a_dead_confirm(rt: CheckoutRuntime) -> tuple[str, Any]:
    """(checkout id, its pending payment) left by a confirm that died after recording
    the Stripe customer, its lease run out."""
    checkout_id, _ = await a_checkout(rt)
    with pytest.raises(ProcessDied):
        await confirm.confirm(rt, api_key(), checkout_id, "pm_card_visa", None)
    async with rt.db.transaction() as s:
        payment = await repository.latest_payment_of_checkout(s, checkout_id)
        assert payment is not None and payment.status == "pending"
        await recovery_repository.expire_payment_lease(s, payment.id, rt.payment_leases.lease)
    return checkout_id, payment


async def stripe_customer_of(rt: CheckoutRuntime, checkout_id: str) -> str:
    async with rt.db.transaction() as s:
        checkout = await repository.get_checkout_by_id(s, checkout_id)
        assert checkout is not None
        customer = await s.scalar(
            select(customers.c.stripe_customer_id).where(customers.c.id == checkout.customer_id)
        )
    assert customer, "the dead confirm recorded its Stripe customer"
    return str(customer)


async def intents_at_stripe(rt: CheckoutRuntime, stripe_customer: str) -> list[dict[str, Any]]:
    page = await rt.stripe.v1.payment_intents.list_async({"customer": stripe_customer})
    return [as_dict(i) for i in page.data]


async def settled(rt: CheckoutRuntime, checkout_id: str, payment_id: str) -> tuple[Any, Any]:
    async with rt.db.transaction() as s:
        checkout = await repository.get_checkout_by_id(s, checkout_id)
        payment = await repository.get_payment(s, payment_id)
    return checkout, payment


async def test_a_create_that_never_reached_stripe_is_performed_by_the_next_sweep(
    runtime: CheckoutRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    dying_before_the_intent(runtime, monkeypatch, sent=False)
    checkout_id, payment = await a_dead_confirm(runtime)
    customer = await stripe_customer_of(runtime, checkout_id)
    assert await intents_at_stripe(runtime, customer) == []

    # One sweep round settles it: no waiting for an intent that may appear.
    for _ in range(20):  # a batch at a time (others' orphans in this database too)
        if not await worker.settle_orphaned_payments_once(runtime):
            break

    checkout, paid = await settled(runtime, checkout_id, payment.id)
    assert paid.status == "succeeded"
    assert checkout.completed_at is not None and checkout.payment_id == payment.id
    [intent] = await intents_at_stripe(runtime, customer)
    assert (intent["id"], intent["status"], intent["amount"]) == (
        paid.stripe_intent_id,
        "succeeded",
        9900,
    )
    assert intent["metadata"]["payment_id"] == payment.id


async def test_the_customers_retry_rolls_the_dead_confirms_payment_forward(
    runtime: CheckoutRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retried confirm, once the dead one's lease ran out, settles that payment (as the
    sweep would) and answers with it, instead of 409 `checkout_in_progress`."""
    dying_before_the_intent(runtime, monkeypatch, sent=False)
    checkout_id, payment = await a_dead_confirm(runtime)
    customer = await stripe_customer_of(runtime, checkout_id)

    out = await confirm.confirm(runtime, api_key(), checkout_id, "pm_card_visa", None)

    assert (out.status, out.payment_id) == ("processing", payment.id)
    checkout, paid = await settled(runtime, checkout_id, payment.id)
    assert paid.status == "succeeded" and checkout.completed_at is not None
    assert len(await intents_at_stripe(runtime, customer)) == 1


async def test_a_create_still_executing_at_stripe_is_waited_for_then_settled_once(
    runtime: CheckoutRuntime, monkeypatch: pytest.MonkeyPatch, sim: httpx.AsyncClient
) -> None:
    """The process died with its create at Stripe: the replay gets 409 while it executes
    (nothing charged twice, the payment waits a round); its answer then settles it."""
    in_flight = dying_before_the_intent(runtime, monkeypatch, sent=True)
    await sim.post("/_sim/faults", json={"api_latency_ms": 1500})
    checkout_id, payment = await a_dead_confirm(runtime)
    customer = await stripe_customer_of(runtime, checkout_id)
    for _ in range(100):
        if (await sim.get("/_sim/stats")).json()["idempotency_keys_executing"]:
            break
        await asyncio.sleep(0.02)
    await sim.delete("/_sim/faults")  # the create executing keeps its latency

    resolution, answer = await confirm.settle_left_payment_of(runtime, checkout_id) or (None, None)
    assert (resolution, answer) == (recovery.Resolution.WAIT, None)
    checkout, waiting = await settled(runtime, checkout_id, payment.id)
    assert (waiting.status, checkout.status) == ("pending", "processing")

    [created] = await asyncio.gather(*in_flight)  # Stripe finishes the dead confirm's create
    async with runtime.db.transaction() as s:
        await recovery_repository.expire_payment_lease(s, payment.id, runtime.payment_leases.lease)
    resolution, _ = await confirm.settle_left_payment_of(runtime, checkout_id) or (None, None)

    assert resolution is recovery.Resolution.FULFIL
    checkout, paid = await settled(runtime, checkout_id, payment.id)
    assert (paid.status, paid.stripe_intent_id) == ("succeeded", created.data["id"])
    assert checkout.completed_at is not None
    assert len(await intents_at_stripe(runtime, customer)) == 1


async def test_the_replayed_create_is_the_confirms_own_request(
    runtime: CheckoutRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create as confirm sent it and as it is rebuilt from the stored payment (its
    sampled traceparent included) are one request to Stripe: the replay gets the first
    one's saved answer, not an `idempotency_error`."""
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    monkeypatch.setattr(confirm, "sampled_traceparent", lambda: traceparent)
    in_flight = dying_before_the_intent(runtime, monkeypatch, sent=True)
    checkout_id, payment = await a_dead_confirm(runtime)
    [first] = await asyncio.gather(*in_flight)
    assert first.data["metadata"]["bos_traceparent"] == traceparent
    async with runtime.db.transaction() as s:
        [taken] = await recovery_repository.take_over_orphaned_payments(
            s, runtime.payment_leases.lease, checkout_id=checkout_id
        )

    replayed = await stripe_creates.create_intent(runtime, taken, taken.stripe_customer_id)

    assert replayed["id"] == first.data["id"]
    assert len(await intents_at_stripe(runtime, taken.stripe_customer_id)) == 1


async def test_the_same_confirm_again_while_3ds_is_pending_gets_the_next_action_again(
    runtime: CheckoutRuntime, sim: httpx.AsyncClient
) -> None:
    """A customer whose confirm's answer was lost (the connection dropped after the intent
    was recorded) sends it again: they get the pending 3-D Secure action again, not 409
    `checkout_in_progress` until the authentication they never saw times out; after a
    failed authentication, the retry's answer is that failure."""
    three_ds = "pm_card_threeDSecure2Required"
    checkout_id, _ = await a_checkout(runtime)
    first = await confirm.confirm(runtime, api_key(), checkout_id, three_ds, None)
    assert first.status == "requires_action" and first.next_action is not None

    again = await confirm.confirm(runtime, api_key(), checkout_id, three_ds, None)

    assert (again.status, again.payment_id) == ("requires_action", first.payment_id)
    assert again.next_action == first.next_action

    intent = first.next_action.client_secret.split("_secret_")[0]
    r = await sim.post(f"/_sim/payment_intents/{intent}/authenticate", json={"outcome": "failure"})
    assert r.status_code == 200, r.text
    failed = await confirm.confirm(runtime, api_key(), checkout_id, three_ds, None)
    assert (failed.status, failed.payment_id) == ("failed", first.payment_id)
    checkout, payment = await settled(runtime, checkout_id, first.payment_id)
    assert (checkout.status, payment.status) == ("open", "failed")
