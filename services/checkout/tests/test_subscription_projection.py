"""Checkout's own record of its customers' subscriptions, fed by subscription.created.v1
and subscription.ended.v1 through its inbox, against real Postgres and RabbitMQ: the
"already subscribed" check of creation (plan 8.2) is a local query on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bos_common.events import Envelope, SubscriptionCreatedV1, SubscriptionEndedV1
from bos_common.ids import new_id
from bos_common.testing import eventually
from checkout import customer_repository, projection_repository, repository
from checkout.models import checkout_sessions, customer_subscriptions
from checkout.runtime import CheckoutRuntime

pytestmark = pytest.mark.integration


def created(sub: str, customer: str, product: str, at: datetime) -> Envelope:
    return Envelope.wrap(
        SubscriptionCreatedV1(
            subscription_id=sub,
            customer_id=customer,
            product_id=product,
            price_id="price_1",
            status="active",
            is_free=False,
            amount=2900,
            currency="usd",
            interval="month",
            current_period_start=at,
            created_at=at,
        ),
        producer="subscriptions",
        org_id="org_t",
        occurred_at=at,
    )


def ended(sub: str, customer: str, product: str, at: datetime) -> Envelope:
    return Envelope.wrap(
        SubscriptionEndedV1(
            subscription_id=sub,
            customer_id=customer,
            product_id=product,
            reason="requested",
            ended_at=at,
        ),
        producer="subscriptions",
        org_id="org_t",
        occurred_at=at,
    )


async def subscribed(rt: CheckoutRuntime, customer: str, product: str) -> bool:
    async with rt.db.transaction() as s:
        return await projection_repository.is_subscribed(s, customer, product)


async def settle(rt: CheckoutRuntime, *envelopes: Envelope) -> None:
    """Publish and wait until checkout's inbox recorded every one of them."""
    for envelope in envelopes:
        await rt.bus.publish(envelope)

    async def all_seen() -> bool:
        async with rt.db.transaction() as s:
            ids = {e.event_id for e in envelopes}
            rows = await s.execute(rt.inbox.select().where(rt.inbox.c.event_id.in_(ids)))
            return len(rows.all()) == len(ids)

    await eventually(all_seen)


async def test_8_2_a_live_subscription_makes_the_customer_already_subscribed(
    runtime: CheckoutRuntime,
) -> None:
    customer, product, other = new_id("cus"), new_id("prod"), new_id("prod")
    assert not await subscribed(runtime, customer, product)
    await settle(runtime, created(new_id("sub"), customer, product, datetime.now(UTC)))
    assert await subscribed(runtime, customer, product)
    # 8.3: another product is still open to them.
    assert not await subscribed(runtime, customer, other)


async def test_8_2_an_ended_subscription_lets_the_customer_subscribe_again(
    runtime: CheckoutRuntime,
) -> None:
    customer, product, sub = new_id("cus"), new_id("prod"), new_id("sub")
    now = datetime.now(UTC)
    await settle(runtime, created(sub, customer, product, now))
    await settle(runtime, ended(sub, customer, product, now + timedelta(seconds=1)))
    assert not await subscribed(runtime, customer, product)


async def test_an_end_delivered_before_its_creation_is_not_undone(
    runtime: CheckoutRuntime,
) -> None:
    customer, product, sub = new_id("cus"), new_id("prod"), new_id("sub")
    now = datetime.now(UTC)
    await settle(runtime, ended(sub, customer, product, now + timedelta(seconds=1)))
    await settle(runtime, created(sub, customer, product, now))
    assert not await subscribed(runtime, customer, product)


async def test_5_5_a_reactivated_free_subscription_is_live_again(
    runtime: CheckoutRuntime,
) -> None:
    customer, product, sub = new_id("cus"), new_id("prod"), new_id("sub")
    now = datetime.now(UTC)
    await settle(runtime, created(sub, customer, product, now))
    await settle(runtime, ended(sub, customer, product, now + timedelta(seconds=1)))
    # subscriptions brings the same subscription back (same id) with a later event.
    await settle(runtime, created(sub, customer, product, now + timedelta(seconds=2)))
    assert await subscribed(runtime, customer, product)


async def _create(rt: CheckoutRuntime, email: str, product: str, name: str | None) -> Any:
    """(already subscribed, the checkout's customer id and name)."""
    async with rt.db.driver_connection() as conn:
        subscribed, row = await repository.create_checkout(
            conn,
            customer_id=new_id("cus"),
            org_id="org_t",
            email=email,
            name=name,
            external_user_id=None,
            checkout_id=new_id("cs"),
            product_id=product,
            client_secret_hash="0" * 64,
            price_id="price_1",
            price_json='{"price_id": "price_1"}',
            currency="usd",
            amount_subtotal=2900,
            amount_discount=0,
            amount_total=2900,
            setup_fee=0,
            is_free=False,
            trial_days=0,
            coupon_json=None,
            metadata_json="{}",
            success_url=None,
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
    if row is None:
        return subscribed, None, None
    return subscribed, row.customer_id, row.customer_name


async def _customer(rt: CheckoutRuntime, customer_id: str) -> Any:
    async with rt.db.transaction() as s:
        return await customer_repository.get_customer(s, "org_t", customer_id)


async def test_8_2_creation_in_one_statement_refuses_a_subscribed_customer_untouched(
    runtime: CheckoutRuntime,
) -> None:
    product, email = new_id("prod"), f"{new_id('e')}@example.com"
    subscribed, customer_id, name = await _create(runtime, email, product, "First")
    assert (subscribed, name) == (False, "First") and customer_id
    # 3.2/3.4: the same email in another case is the same customer; a new name sticks.
    again = await _create(runtime, email.upper(), product, "Second")
    assert again == (False, customer_id, "Second")
    # No name given: the checkout takes the customer's.
    assert await _create(runtime, email, product, None) == (False, customer_id, "Second")
    await settle(runtime, created(new_id("sub"), customer_id, product, datetime.now(UTC)))
    refused = await _create(runtime, email, product, "Third")
    assert refused == (True, None, None)
    # The refused request changed nothing.
    assert (await _customer(runtime, customer_id)).name == "Second"
    # 8.3: another product is still for sale to them.
    assert (await _create(runtime, email, new_id("prod"), None))[0] is False


async def test_8_2_the_buyer_read_before_a_coupon(runtime: CheckoutRuntime) -> None:
    """repository.buyer: what a coupon's evaluation is given before anything is written
    (already subscribed: 409 first; a customer with a completed checkout is not new)."""
    product, email = new_id("prod"), f"{new_id('e')}@example.com"

    async def buyer() -> tuple[bool, bool]:
        async with runtime.db.driver_connection() as conn:
            return await repository.buyer(conn, "org_t", email.upper(), product)

    assert await buyer() == (False, False)  # no such customer yet
    _, customer_id, _ = await _create(runtime, email, product, "Ada")
    assert await buyer() == (False, False)
    await settle(runtime, created(new_id("sub"), customer_id, product, datetime.now(UTC)))
    assert await buyer() == (True, False)
    async with runtime.db.transaction() as s:
        await s.execute(
            update(checkout_sessions)
            .where(checkout_sessions.c.customer_id == customer_id)
            .values(status="complete", completed_at=datetime.now(UTC))
        )
    assert await buyer() == (True, True)


async def test_a_backfill_page_follows_the_newest_wins_rule(runtime: CheckoutRuntime) -> None:
    """projection_repository.project_live_subscriptions: a page read before an end that
    was recorded since leaves the end; an older row it knows of is brought up to date."""
    customer, product = new_id("cus"), new_id("prod")
    ended_sub, stale_sub = new_id("sub"), new_id("sub")
    now = datetime.now(UTC)
    await settle(
        runtime,
        created(ended_sub, customer, product, now - timedelta(seconds=2)),
        ended(ended_sub, customer, product, now),
        ended(stale_sub, customer, product, now - timedelta(seconds=5)),
    )
    page = [
        {
            "subscription_id": sub,
            "org_id": "org_t",
            "customer_id": customer,
            "product_id": product,
            "as_of": now - timedelta(seconds=1),
        }
        for sub in (ended_sub, stale_sub)
    ]
    async with runtime.db.transaction() as s:
        await projection_repository.project_live_subscriptions(s, page)
        live = dict(
            (
                await s.execute(
                    select(
                        customer_subscriptions.c.subscription_id, customer_subscriptions.c.live
                    ).where(customer_subscriptions.c.customer_id == customer)
                )
            ).all()
        )
    assert live == {ended_sub: False, stale_sub: True}
