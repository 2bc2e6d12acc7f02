"""Creating a checkout session: a process that owns its connections (the route opens
none). A local write plus a cached catalog snapshot: no call to another service or to
Stripe unless a coupon is asked for (catalog evaluates it) or the projection says the
customer already holds the product (subscriptions confirms it first).

The checkout is written by one statement (repository.create_checkout), with or without
a coupon, and the response is built from the row it returns.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson

from bos_common.auth import Identity
from bos_common.events import PriceSnapshot
from bos_common.ids import new_id
from checkout import errors, funnel, projection_repository, repository
from checkout.records import Checkout
from checkout.runtime import CheckoutRuntime
from checkout.schemas import CreateCheckoutSession
from checkout.service import (
    amounts,
    hash_secret,
    new_client_secret,
    normalize_email,
    trial_days,
    utcnow,
)


async def create_checkout(
    runtime: CheckoutRuntime, identity: Identity, body: CreateCheckoutSession
) -> tuple[Checkout, str, PriceSnapshot]:
    """(the checkout as written, its client secret, the price snapshot it was written
    from: already validated, the response is built from it rather than from the row's
    JSON read back)."""
    org_id = identity.org_id
    assert org_id is not None
    email = normalize_email(body.customer.email)
    price = await runtime.snapshots.get(org_id, body.price_id)
    external_user_id = identity.external_user_id if identity.principal_type == "session" else None
    coupon, discount = None, 0
    if body.coupon_code:
        # 8.2 before the coupon: an already subscribed customer hears that, whatever the
        # code; catalog then decides whether the coupon applies, given the customer's
        # newness (7.6).
        async with runtime.db.driver_connection() as conn:
            subscribed, paid_before = await repository.buyer(conn, org_id, email, price.product_id)
        if subscribed and await confirmed_subscribed(runtime, org_id, email, price.product_id):
            raise errors.already_subscribed()
        outcome = await runtime.catalog.evaluate_coupon(
            org_id, body.coupon_code, price, customer_is_new=not paid_before
        )
        coupon, discount = outcome.coupon, outcome.amount_discount
    checkout_id = new_id("cs")
    client_secret = new_client_secret(checkout_id)
    values: dict[str, Any] = dict(
        customer_id=new_id("cus"),
        org_id=org_id,
        email=email,
        name=body.customer.name,
        external_user_id=external_user_id,
        checkout_id=checkout_id,
        product_id=price.product_id,
        client_secret_hash=hash_secret(client_secret),
        price_id=price.price_id,
        price_json=price.model_dump_json(),
        currency=price.currency,
        trial_days=trial_days(price, coupon),
        coupon_json=coupon.model_dump_json() if coupon is not None else None,
        metadata_json=orjson.dumps(body.metadata).decode(),
        success_url=body.success_url,
        expires_at=utcnow() + timedelta(seconds=runtime.settings.checkout_ttl_seconds),
        **amounts(price, discount),
    )
    async with runtime.db.driver_connection() as conn:
        subscribed, row = await repository.create_checkout(conn, **values)
    if subscribed and not await confirmed_subscribed(runtime, org_id, email, price.product_id):
        async with runtime.db.driver_connection() as conn:
            subscribed, row = await repository.create_checkout(conn, **values)
    if subscribed:
        raise errors.already_subscribed()
    assert row is not None
    funnel.checkout_created(row, identity)
    return row, client_secret, price


async def confirmed_subscribed(
    runtime: CheckoutRuntime, org_id: str, email: str, product_id: str
) -> bool:
    """The projection of subscription.* events says this customer holds the product; the
    409 it would cause is confirmed with subscriptions, the owner, first (a
    subscription canceled a moment ago may not have reached the projection).
    Subscriptions the owner no longer holds are ended in the projection at once."""
    async with runtime.db.transaction() as session:
        customer_id, projected = await projection_repository.live_projected_subscriptions(
            session, org_id, email, product_id
        )
        if customer_id is None or not projected:
            return False
        held = await runtime.subscriptions.held_subscription_ids(org_id, customer_id, product_id)
        if held:
            return True
        await projection_repository.end_projected_subscriptions(session, projected)
        return False
