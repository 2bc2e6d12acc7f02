"""Coupon evaluation, reservation and redemption (plan 7.1-7.7, catalog side), against
real Postgres (and RabbitMQ for the bus path)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import httpx
import pytest
from sqlalchemy import select

from bos_common.app import ServiceRuntime
from bos_common.bus import ATTEMPT_HEADER
from bos_common.events import AppliedCoupon, CheckoutCompletedV1, Envelope, PriceSnapshot
from bos_common.inbox import each, idempotent
from bos_common.testing import Infra, eventually
from catalog import consumers, service
from catalog.app import build_runtime
from catalog.models import coupon_redemptions, coupons
from catalog.schemas import CouponReserveIn, EvaluationOut
from catalog.settings import CatalogSettings

pytestmark = pytest.mark.integration


def error(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}, body
    return body["error"]


def reason(r: httpx.Response) -> tuple[int, str, str]:
    e = error(r)
    return r.status_code, e["code"], e["message"]


async def product_and_price(merchant: Any, amount: int = 5000, **price: Any) -> tuple[str, str]:
    product = await merchant.product()
    p = await merchant.price(product["id"], amount=amount, **price)
    return product["id"], p["id"]


# --- 7.x ----------------------------------------------------------------------------------------


async def test_7_1_percentage_discount_20_percent_off_100_dollars(merchant: Any) -> None:
    product_id, price_id = await product_and_price(merchant, 10000)
    await merchant.coupon(code="TWENTY", percent_off=20)
    r = await merchant.evaluate(
        code="TWENTY", product_id=product_id, price_id=price_id, amount=10000
    )
    assert r.status_code == 200, r.text
    body = EvaluationOut.model_validate(r.json())
    assert (body.amount_subtotal, body.amount_discount, body.amount_total) == (10000, 2000, 8000)
    assert body.coupon.percent_off == 20.0 and body.coupon.code == "TWENTY"
    AppliedCoupon.model_validate(r.json()["coupon"])


async def test_7_2_fixed_amount_discount_10_dollars_off_50(merchant: Any) -> None:
    product_id, _ = await product_and_price(merchant, 5000)
    await merchant.coupon(code="TEN", amount_off=1000, currency="usd")
    body = (await merchant.evaluate(code="TEN", product_id=product_id, amount=5000)).json()
    assert (body["amount_discount"], body["amount_total"]) == (1000, 4000)


async def test_7_3_invalid_coupon_code(merchant: Any) -> None:
    product_id, _ = await product_and_price(merchant)
    r = await merchant.evaluate(code="INVALID123", product_id=product_id, amount=5000)
    assert reason(r) == (400, "invalid_coupon", "Invalid coupon code")
    assert error(r)["type"] == "invalid_request"


async def test_7_4_expired_coupon(merchant: Any) -> None:
    product_id, _ = await product_and_price(merchant)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    await merchant.coupon(code="YESTERDAY", percent_off=10, expires_at=yesterday)
    r = await merchant.evaluate(code="YESTERDAY", product_id=product_id, amount=5000)
    assert reason(r) == (400, "coupon_expired", "Coupon expired")


async def test_7_5_product_specific_coupon(merchant: Any) -> None:
    a, _ = await product_and_price(merchant)
    b, _ = await product_and_price(merchant)
    await merchant.coupon(code="ONLYA", percent_off=10, product_ids=[a])
    r = await merchant.evaluate(code="ONLYA", product_id=b, amount=5000)
    assert reason(r) == (400, "coupon_not_applicable", "Coupon not valid for this product")
    assert (await merchant.evaluate(code="ONLYA", product_id=a, amount=5000)).status_code == 200


async def test_7_6_first_time_customer_coupon(merchant: Any) -> None:
    product_id, _ = await product_and_price(merchant)
    await merchant.coupon(code="WELCOME", percent_off=20, new_customers_only=True)
    r = await merchant.evaluate(
        code="WELCOME", product_id=product_id, amount=5000, customer_is_new=False
    )
    assert reason(r) == (400, "coupon_new_customers_only", "Coupon for new customers only")
    r = await merchant.evaluate(
        code="WELCOME", product_id=product_id, amount=5000, customer_is_new=True
    )
    assert r.json()["amount_discount"] == 1000


async def test_7_7_coupon_with_trial_discounts_the_price_charged_after_the_trial(
    merchant: Any,
) -> None:
    product_id, price_id = await product_and_price(merchant, 9900, trial_days=14)
    await merchant.coupon(code="PRO20", percent_off=20, duration="forever")
    await merchant.coupon(code="TRIAL30", trial_extension_days=30)
    snap = (await merchant.snapshot(price_id)).json()["snapshot"]
    assert snap["trial_days"] == 14  # the trial stays
    body = (await merchant.evaluate(code="PRO20", product_id=product_id, amount=9900)).json()
    assert (body["amount_discount"], body["amount_total"]) == (1980, 7920)
    assert body["coupon"]["duration"] == "forever" and body["trial_extension_days"] == 0
    body = (await merchant.evaluate(code="trial30", product_id=product_id, amount=9900)).json()
    assert (body["amount_discount"], body["amount_total"]) == (0, 9900)
    assert body["trial_extension_days"] == 30
    assert body["coupon"]["trial_extension_days"] == 30


# --- math edge cases through the endpoint --------------------------------------------------------


async def test_100_percent_off_gives_a_zero_total(merchant: Any) -> None:
    product_id, _ = await product_and_price(merchant, 2900)
    await merchant.coupon(code="FREE", percent_off=100)
    body = (await merchant.evaluate(code="FREE", product_id=product_id, amount=2900)).json()
    assert (body["amount_discount"], body["amount_total"]) == (2900, 0)


async def test_amount_off_larger_than_the_price_stops_at_zero(merchant: Any) -> None:
    product_id, _ = await product_and_price(merchant, 500)
    await merchant.coupon(code="BIG", amount_off=1000, currency="usd")
    body = (await merchant.evaluate(code="BIG", product_id=product_id, amount=500)).json()
    assert (body["amount_discount"], body["amount_total"]) == (500, 0)


async def test_amount_off_in_another_currency_does_not_apply(merchant: Any) -> None:
    product_id, _ = await product_and_price(merchant, 5000, currency="eur")
    await merchant.coupon(code="USD10", amount_off=1000, currency="usd")
    r = await merchant.evaluate(code="USD10", product_id=product_id, amount=5000, currency="eur")
    assert reason(r) == (400, "coupon_not_applicable", "Coupon not valid for this product")


async def test_zero_decimal_currency_jpy(merchant: Any) -> None:
    product_id, _ = await product_and_price(merchant, 2999, currency="jpy")
    await merchant.coupon(code="JP15", percent_off=15)
    await merchant.coupon(code="JP500", amount_off=500, currency="jpy")
    body = (
        await merchant.evaluate(code="JP15", product_id=product_id, amount=2999, currency="jpy")
    ).json()
    assert (body["amount_discount"], body["amount_total"]) == (450, 2549)  # 449.85 -> 450 yen
    body = (
        await merchant.evaluate(code="JP500", product_id=product_id, amount=2999, currency="JPY")
    ).json()
    assert (body["amount_discount"], body["amount_total"]) == (500, 2499)


async def test_percent_discount_rounds_half_up(merchant: Any) -> None:
    product_id, _ = await product_and_price(merchant, 2990)
    await merchant.coupon(code="HALF", percent_off=15)
    body = (await merchant.evaluate(code="HALF", product_id=product_id, amount=2990)).json()
    assert body["amount_discount"] == 449  # 448.5 -> 449


async def test_internal_routes_need_a_service_or_same_org_identity(
    merchant: Any, merchant_factory: Any, http: httpx.AsyncClient
) -> None:
    _, price_id = await product_and_price(merchant)
    path = f"/internal/orgs/{merchant.org_id}/prices/{price_id}/snapshot"
    assert (await http.get(path)).status_code == 401
    assert (await http.get(path, headers=merchant.headers)).status_code == 200  # on behalf of
    other = merchant_factory()
    assert (await http.get(path, headers=other.headers)).status_code == 403
    r = await http.post(f"/internal/demo/{merchant.org_id}", headers=merchant.headers)
    assert r.status_code == 403


# --- reservations and max_redemptions ------------------------------------------------------------


async def test_10_concurrent_redemptions_of_a_max_redemptions_1_coupon_exactly_one_wins(
    merchant: Any,
    runtime: ServiceRuntime,
) -> None:
    product_id, _ = await product_and_price(merchant)
    coupon = await merchant.coupon(code="ONCE", percent_off=50, max_redemptions=1)
    checkouts = [f"cs_{uuid.uuid4().hex[:12]}" for _ in range(10)]

    results = await asyncio.gather(
        *[
            merchant.reserve(code="ONCE", product_id=product_id, amount=5000, checkout_id=cs)
            for cs in checkouts
        ]
    )

    statuses = Counter(r.status_code for r in results)
    assert statuses == {200: 1, 400: 9}, [r.text for r in results]
    assert {error(r)["code"] for r in results if r.status_code == 400} == {"coupon_exhausted"}
    winner = next(cs for cs, r in zip(checkouts, results, strict=True) if r.status_code == 200)
    assert results[checkouts.index(winner)].json()["reservation"]["status"] == "reserved"

    # Evaluating for someone else now says exhausted; for the winner it still applies.
    r = await merchant.evaluate(
        code="ONCE", product_id=product_id, amount=5000, checkout_id="cs_someone_else"
    )
    assert reason(r) == (400, "coupon_exhausted", "Coupon usage limit reached")
    r = await merchant.evaluate(code="ONCE", product_id=product_id, amount=5000, checkout_id=winner)
    assert r.status_code == 200

    # The winner completes: the lease becomes the one redemption.
    handler = idempotent(
        runtime.db,
        runtime.inbox,
        "catalog.redemptions",
        each(consumers.count_redemption, "catalog.redemptions"),
    )
    await handler(completed_envelope(merchant.org_id, r.json()["coupon"], winner, product_id))
    got = (await merchant.get("/v1/coupons/ONCE")).json()
    assert got["times_redeemed"] == 1 and got["valid"] is False
    assert got["id"] == coupon["id"]
    r = await merchant.reserve(
        code="ONCE",
        product_id=product_id,
        amount=5000,
        checkout_id=checkouts[0] if checkouts[0] != winner else checkouts[1],
    )
    assert error(r)["code"] == "coupon_exhausted"


async def test_concurrent_reservations_never_exceed_max_redemptions(
    merchant: Any,
) -> None:
    product_id, _ = await product_and_price(merchant)
    await merchant.coupon(code="THREE", percent_off=10, max_redemptions=3)
    results = await asyncio.gather(
        *[
            merchant.reserve(
                code="THREE", product_id=product_id, amount=5000, checkout_id=f"cs_{i:04d}"
            )
            for i in range(20)
        ]
    )
    assert Counter(r.status_code for r in results) == {200: 3, 400: 17}


async def test_reserve_is_idempotent_per_checkout_and_release_frees_the_slot(
    merchant: Any,
) -> None:
    product_id, _ = await product_and_price(merchant)
    await merchant.coupon(code="ONE", amount_off=500, currency="usd", max_redemptions=1)
    args = dict(code="ONE", product_id=product_id, amount=5000)
    first = await merchant.reserve(**args, checkout_id="cs_a")
    again = await merchant.reserve(**args, checkout_id="cs_a", ttl_seconds=7200)
    assert first.status_code == again.status_code == 200
    assert again.json()["reservation"]["expires_at"] > first.json()["reservation"]["expires_at"]
    assert error(await merchant.reserve(**args, checkout_id="cs_b"))["code"] == "coupon_exhausted"

    r = await merchant.post(
        f"/internal/orgs/{merchant.org_id}/coupons/release",
        {"checkout_id": "cs_a"},
        headers=merchant.service_headers(),
    )
    assert r.status_code == 200 and r.json() == {"released": 1}
    r = await merchant.post(
        f"/internal/orgs/{merchant.org_id}/coupons/release",
        {"checkout_id": "cs_a"},
        headers=merchant.service_headers(),
    )
    assert r.json() == {"released": 0}
    assert (await merchant.reserve(**args, checkout_id="cs_b")).status_code == 200


async def test_a_lapsed_reservation_gives_its_slot_back(
    merchant: Any, runtime: ServiceRuntime
) -> None:
    product_id, _ = await product_and_price(merchant)
    await merchant.coupon(code="LEASE", percent_off=10, max_redemptions=1)
    body = dict(
        code="LEASE",
        product_id=product_id,
        amount=5000,
        currency="usd",
        customer_is_new=True,
        ttl_seconds=60,
    )
    past = datetime.now(UTC) - timedelta(minutes=5)
    async with runtime.db.transaction() as session:
        await service.reserve_coupon(
            session, merchant.org_id, CouponReserveIn(**body, checkout_id="cs_old"), now=past
        )
    # Its lease ended four minutes ago: another checkout may take the slot.
    r = await merchant.reserve(
        **{k: v for k, v in body.items() if k != "ttl_seconds"}, checkout_id="cs_new"
    )
    assert r.status_code == 200, r.text


async def test_reserve_checks_every_rule_first(merchant: Any) -> None:
    product_id, _ = await product_and_price(merchant)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    await merchant.coupon(code="GONE", percent_off=10, expires_at=yesterday)
    r = await merchant.reserve(code="GONE", product_id=product_id, amount=5000, checkout_id="cs_x")
    assert error(r)["code"] == "coupon_expired"
    r = await merchant.reserve(
        code="NOSUCH", product_id=product_id, amount=5000, checkout_id="cs_x"
    )
    assert error(r)["code"] == "invalid_coupon"


# --- redemptions from checkout.completed.v1 ------------------------------------------------------


def completed_envelope(
    org_id: str, coupon: dict[str, Any], checkout_id: str, product_id: str = "prod_x"
) -> Envelope:
    event = CheckoutCompletedV1(
        checkout_id=checkout_id,
        customer_id=f"cus_{uuid.uuid4().hex[:10]}",
        customer_email="new-customer@test.com",
        price=PriceSnapshot(
            price_id="price_x",
            product_id=product_id,
            product_name="P",
            amount=5000,
            currency="usd",
            type="recurring",
            interval="month",
        ),
        coupon=AppliedCoupon.model_validate(coupon),
        amount_subtotal=5000,
        amount_discount=1000,
        amount_total=4000,
        is_free=False,
        completed_at=datetime.now(UTC),
    )
    return Envelope.wrap(event, producer="checkout", org_id=org_id)


async def test_redemptions_are_counted_once_per_event_and_per_checkout(
    merchant: Any, runtime: ServiceRuntime
) -> None:
    product_id, _ = await product_and_price(merchant)
    await merchant.coupon(code="MANY", percent_off=10)
    applied = (await merchant.evaluate(code="MANY", product_id=product_id, amount=5000)).json()[
        "coupon"
    ]
    handler = idempotent(
        runtime.db,
        runtime.inbox,
        "catalog.redemptions",
        each(consumers.count_redemption, "catalog.redemptions"),
    )
    envelopes = [completed_envelope(merchant.org_id, applied, f"cs_{i}") for i in range(10)]
    # Ten completions at once (no lost update) ...
    await asyncio.gather(*[handler(e) for e in envelopes])
    assert (await merchant.get("/v1/coupons/MANY")).json()["times_redeemed"] == 10
    # ... the same events again (redelivery) and a second event for the same checkout
    # (a duplicate publish under a new id) change nothing.
    await asyncio.gather(*[handler(e) for e in envelopes])
    await handler(completed_envelope(merchant.org_id, applied, "cs_0"))
    assert (await merchant.get("/v1/coupons/MANY")).json()["times_redeemed"] == 10


async def test_completion_without_a_slot_is_counted_and_flagged(
    merchant: Any, runtime: ServiceRuntime
) -> None:
    """A checkout that charged without reserving (a caller bug) is still counted (the
    customer paid with the discount), and the metric tells operators."""
    product_id, _ = await product_and_price(merchant)
    await merchant.coupon(code="STRICT", percent_off=10, max_redemptions=1)
    ok = await merchant.reserve(
        code="STRICT", product_id=product_id, amount=5000, checkout_id="cs_winner"
    )
    applied = ok.json()["coupon"]
    before = service.OVER_REDEEMED._value.get()
    async with runtime.db.transaction() as session:
        rogue = completed_envelope(merchant.org_id, applied, "cs_rogue").payload()
        outcome = await service.record_redemption(session, merchant.org_id, rogue)  # type: ignore[arg-type]
    assert outcome.recorded and not outcome.had_slot
    assert service.OVER_REDEEMED._value.get() == before + 1
    async with runtime.db.transaction() as session:
        winner = completed_envelope(merchant.org_id, applied, "cs_winner").payload()
        outcome = await service.record_redemption(session, merchant.org_id, winner)  # type: ignore[arg-type]
    assert outcome.recorded and outcome.had_slot


async def test_event_without_coupon_or_for_unknown_coupon_is_a_no_op(
    merchant: Any, runtime: ServiceRuntime
) -> None:
    envelope = completed_envelope(
        merchant.org_id,
        {"coupon_id": "coupon_unknown", "code": "X", "percent_off": 10.0, "duration": "once"},
        "cs_1",
    )
    handler = idempotent(
        runtime.db,
        runtime.inbox,
        "catalog.redemptions",
        each(consumers.count_redemption, "catalog.redemptions"),
    )
    await handler(envelope)  # logged, not retried forever
    async with runtime.db.transaction() as session:
        rows = (
            await session.execute(
                select(coupon_redemptions).where(
                    coupon_redemptions.c.checkout_id == "cs_1",
                    coupon_redemptions.c.org_id == merchant.org_id,
                )
            )
        ).all()
    assert rows == []


# --- through RabbitMQ ---------------------------------------------------------------------------


@pytest.fixture
async def running(infra: Infra, runtime: ServiceRuntime) -> AsyncIterator[ServiceRuntime]:
    """A second catalog process (same schema) with its consumers on the real broker."""
    del runtime  # the schema is migrated by the session fixture
    rt = build_runtime(CatalogSettings(**infra.env()))  # type: ignore[arg-type]
    rt.relay.poll_interval = 0.2
    await rt.start()
    await asyncio.wait_for(rt.bus.wait_connected(), 30)
    yield rt
    await rt.stop()


async def test_checkout_completed_counts_a_redemption_through_the_bus(
    merchant: Any, running: ServiceRuntime, infra: Infra
) -> None:
    product_id, _ = await product_and_price(merchant)
    await merchant.coupon(code="BUS", percent_off=10, max_redemptions=5)
    r = await merchant.reserve(code="BUS", product_id=product_id, amount=5000, checkout_id="cs_bus")
    envelope = completed_envelope(merchant.org_id, r.json()["coupon"], "cs_bus", product_id)

    # Straight into our queue (not the shared exchange: other services' queues in the test
    # vhost must not receive a fake checkout), exactly as the bus would deliver it, twice.
    conn = await aio_pika.connect(infra.amqp_url)
    try:
        channel = await conn.channel()
        for _ in range(2):
            await channel.default_exchange.publish(
                aio_pika.Message(
                    body=envelope.model_dump_json().encode(),
                    message_id=str(envelope.event_id),
                    type=envelope.event_type,
                    content_type="application/json",
                    headers={ATTEMPT_HEADER: 1},
                ),
                routing_key="catalog.redemptions",
            )
    finally:
        await conn.close()

    async def redeemed() -> int:
        return (await merchant.get("/v1/coupons/BUS")).json()["times_redeemed"]

    assert await eventually(redeemed) == 1
    await asyncio.sleep(0.5)
    assert await redeemed() == 1
    async with running.db.transaction() as session:
        status = (
            await session.execute(
                select(coupon_redemptions.c.status).where(
                    coupon_redemptions.c.checkout_id == "cs_bus",
                    coupon_redemptions.c.coupon_id == r.json()["coupon"]["coupon_id"],
                )
            )
        ).scalar_one()
        times = (
            await session.execute(
                select(coupons.c.times_redeemed).where(
                    coupons.c.code == "BUS", coupons.c.org_id == merchant.org_id
                )
            )
        ).scalar_one()
    assert (status, times) == ("redeemed", 1)
