"""Plan section 3 (customer information) and 4.8 (payment method saving) end to end: the
gateway, every service, real Postgres and RabbitMQ, and the Stripe simulator, which is
read back as Stripe itself would be (customers, payment methods, intents)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from bos_common.testing import eventually

sys.path.insert(0, str(Path(__file__).parent))
from billing_clock import billing_clock_ahead  # noqa: E402
from merchant import Merchant, intent_of, unique  # noqa: E402

pytestmark = pytest.mark.e2e


async def stripe_customers(merchant: Merchant, email: str) -> list[dict[str, Any]]:
    r = await merchant.sim.get("/v1/customers", params={"email": email, "limit": 100})
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


async def paid_checkout(merchant: Merchant, price_id: str, email: str, name: str) -> dict[str, Any]:
    r = await merchant.post(
        "/v1/checkout-sessions", {"price_id": price_id, "customer": {"email": email, "name": name}}
    )
    assert r.status_code == 201, r.text
    checkout = r.json()
    confirm = await merchant.confirm(checkout["id"], await merchant.card(), key=unique("k"))
    assert confirm.status_code == 200, confirm.text
    return await merchant.wait_status(checkout["id"], "complete")


async def test_3_1_new_customer_is_created_in_bos_and_on_stripe(merchant: Merchant) -> None:
    email = f"{unique('new-customer')}@example.com"
    assert (await merchant.get("/v1/customers", email=email)).json()["data"] == []
    assert await stripe_customers(merchant, email) == []

    done = await paid_checkout(merchant, (await merchant.price(2900))["id"], email, "Grace Hopper")

    # Customer created in the database, email and name stored as given.
    [customer] = (await merchant.get("/v1/customers", email=email)).json()["data"]
    assert customer["id"].startswith("cus_") and customer["id"] == done["customer"]["id"]
    assert (customer["email"], customer["name"]) == (email, "Grace Hopper")
    assert (await merchant.get(f"/v1/customers/{customer['id']}")).json() == customer
    # Stripe customer created, once, with the same email and name, linked both ways.
    [on_stripe] = await stripe_customers(merchant, email)
    assert (on_stripe["email"], on_stripe["name"]) == (email, "Grace Hopper")
    assert on_stripe["metadata"]["bos_customer_id"] == customer["id"]
    assert on_stripe["metadata"]["org_id"] == merchant.org_id
    assert (await intent_of(merchant.sim, done["id"]))["customer"] == on_stripe["id"]


async def test_3_4_a_later_checkout_with_another_name_updates_the_customer(
    merchant: Merchant,
) -> None:
    price = await merchant.price(2900)
    email = f"{unique('renamed')}@example.com"
    first = await paid_checkout(merchant, price["id"], email, "Old Name")
    customer_id = first["customer"]["id"]
    assert (await merchant.get(f"/v1/customers/{customer_id}")).json()["name"] == "Old Name"

    # The same customer (any case of the email) checks out again under a new name.
    other = await merchant.price(1900)
    r = await merchant.post(
        "/v1/checkout-sessions",
        {"price_id": other["id"], "customer": {"email": email.upper(), "name": "New Name"}},
    )
    assert r.status_code == 201, r.text
    shown = r.json()["customer"]
    assert (shown["id"], shown["email"].lower(), shown["name"]) == (customer_id, email, "New Name")

    updated = (await merchant.get(f"/v1/customers/{customer_id}")).json()
    assert updated["name"] == "New Name" and updated["email"] == email
    assert [c["id"] for c in (await merchant.get("/v1/customers", email=email)).json()["data"]] == [
        customer_id
    ]
    # A checkout that gives no name keeps the stored one.
    r = await merchant.post(
        "/v1/checkout-sessions", {"price_id": other["id"], "customer": {"email": email}}
    )
    assert r.status_code == 201, r.text
    assert (await merchant.get(f"/v1/customers/{customer_id}")).json()["name"] == "New Name"


async def test_4_8_the_paying_card_is_saved_set_as_default_and_used_again(
    merchant: Merchant,
) -> None:
    email = f"{unique('saves-card')}@example.com"
    price = await merchant.price(2900)
    r = await merchant.post(
        "/v1/checkout-sessions",
        {"price_id": price["id"], "customer": {"email": email, "name": "Card Saver"}},
    )
    checkout = r.json()
    customer_id = checkout["customer"]["id"]
    assert (await merchant.get(f"/v1/customers/{customer_id}")).json()[
        "default_payment_method"
    ] is None
    pm = await merchant.card()
    await merchant.confirm(checkout["id"], pm, key=unique("k"))
    done = await merchant.wait_status(checkout["id"], "complete")

    # Saved to the customer on Stripe: the first charge asked for off-session reuse and
    # the card is attached to the customer.
    pi = await intent_of(merchant.sim, done["id"])
    assert pi["setup_future_usage"] == "off_session" and pi["payment_method"] == pm
    saved = await merchant.sim.get(
        "/v1/payment_methods", params={"customer": pi["customer"], "type": "card"}
    )
    assert [m["id"] for m in saved.json()["data"]] == [pm]
    # Set as the customer's default in BOS.
    customer = (await merchant.get(f"/v1/customers/{customer_id}")).json()
    assert customer["default_payment_method"] == pm

    # Available for future payments: the renewal charges it off-session, without the
    # customer, and succeeds.
    sub_path = f"/v1/subscriptions/{done['subscription_id']}"
    before = (await merchant.get(sub_path)).json()
    async with billing_clock_ahead(32 * 86400) as clock:
        await clock.run_scheduler()

        async def renewed() -> dict[str, Any] | None:
            sub = (await merchant.get(sub_path)).json()
            return sub if sub["current_period_end"] != before["current_period_end"] else None

        after = await eventually(renewed, timeout=30)
    assert after["status"] == "active"
    intents = (await merchant.sim.get("/v1/payment_intents", params={"limit": 100})).json()
    renewal = [
        p for p in intents["data"] if p["customer"] == pi["customer"] and p["id"] != pi["id"]
    ]
    assert len(renewal) == 1
    assert (renewal[0]["payment_method"], renewal[0]["status"]) == (pm, "succeeded")
    assert renewal[0]["amount"] == 2900
