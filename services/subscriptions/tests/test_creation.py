"""Plan sections 5 (free products), 6 (trials), 7.7 and 8 (creation): checkout.completed.v1
through the inbox-wrapped consumer, against real Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import literal, select, text

from bos_common.testing import SECRET
from subscriptions import repository, testing
from subscriptions.repository import invoice
from subscriptions.testing import price

pytestmark = pytest.mark.integration


async def test_8_1_basic_subscription_creation_active_linked_and_features_granted(drv):
    p = price(features=["api", "reports"])
    sub = await drv.checkout(p, customer_id="cus_81")
    assert sub["status"] == "active"
    assert sub["customer_id"] == "cus_81"
    assert sub["product_id"] == p.product_id and sub["price_id"] == p.price_id
    r = await drv.client.get(
        "/v1/entitlements", params={"customer_id": "cus_81"}, headers=drv.api()
    )
    assert r.status_code == 200, r.text
    assert r.json()["features"] == ["api", "reports"]
    created = (await drv.events("subscription.created.v1"))[0]
    assert created["subscription_id"] == sub["id"] and created["checkout_id"]
    # The first period was charged by checkout: a paid invoice records it.
    r = await drv.client.get(f"/v1/subscriptions/{sub['id']}/invoices", headers=drv.api())
    [inv] = r.json()["data"]
    assert (
        inv["status"] == "paid"
        and inv["total"] == 5000
        and inv["billing_reason"] == "subscription_create"
    )
    assert await drv.invoices_created() == [], "nothing more to charge"


async def test_8_2_duplicate_subscription_prevention(drv):
    p = price()
    first = await drv.checkout(p, customer_id="cus_82")
    # Checkout asks before creating a session: the product is held.
    r = await drv.client.get(
        "/internal/customers/cus_82/active-products",
        params={"org_id": drv.org},
        headers=testing.identity_headers("service", SECRET, principal_id="checkout"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["product_ids"] == [p.product_id]
    # A second completed checkout for the same product (a race past that check) creates
    # nothing new: it points at the existing subscription.
    again = await drv.checkout(p, customer_id="cus_82")
    assert again["id"] == first["id"]
    r = await drv.client.get(
        "/v1/subscriptions", params={"customer_id": "cus_82"}, headers=drv.api()
    )
    assert len(r.json()["data"]) == 1


async def test_8_3_multiple_product_subscriptions_both_active(drv):
    a = await drv.checkout(price(name="A"), customer_id="cus_83")
    b = await drv.checkout(price(name="B"), customer_id="cus_83")
    assert a["id"] != b["id"]
    assert (await drv.sub(a["id"]))["status"] == "active"
    assert (await drv.sub(b["id"]))["status"] == "active"


async def test_8_4_subscription_metadata_stored_and_retrievable(drv):
    sub = await drv.checkout(metadata={"plan_source": "landing", "team": "42"})
    r = await drv.client.get(f"/v1/subscriptions/{sub['id']}", headers=drv.api())
    assert r.json()["metadata"] == {"plan_source": "landing", "team": "42"}


async def test_8_5_start_date_is_checkout_time_and_billing_cycle_from_it(drv):
    completed = datetime(2026, 1, 31, 15, 0, tzinfo=UTC)  # 3 PM
    drv.at(completed + timedelta(seconds=3))  # processed a moment later
    sub = await drv.checkout(completed_at=completed)
    body = (await drv.client.get(f"/v1/subscriptions/{sub['id']}", headers=drv.api())).json()
    assert body["current_period_start"] == "2026-01-31T15:00:00Z"
    assert body["current_period_end"] == "2026-02-28T15:00:00Z"  # calendar month, clamped
    assert body["interval"] == "month"


async def test_8_6_annual_subscription_next_billing_in_a_year(drv):
    drv.at(datetime(2027, 3, 1, 9, 30, tzinfo=UTC))
    sub = await drv.checkout(price(interval="year", amount=50000))
    assert sub["interval"] == "year"
    assert sub["current_period_end"] == datetime(2028, 3, 1, 9, 30, tzinfo=UTC)
    assert sub["current_period_end"] - sub["current_period_start"] == timedelta(days=366), (
        "2028 is a leap year: next year, same date"
    )
    drv.at(datetime(2026, 3, 1, tzinfo=UTC))
    sub = await drv.checkout(price(interval="year"))
    assert sub["current_period_end"] - sub["current_period_start"] == timedelta(days=365)


async def test_5_1_free_checkout_subscription_without_stripe_and_features(drv):
    sub = await drv.checkout(price(amount=0, features=["basic"]), customer_id="cus_51")
    assert sub["status"] == "active" and sub["is_free"]
    assert sub["stripe_customer_id"] is None and sub["payment_method_id"] is None
    assert sub["next_action_at"] is None and sub["current_period_end"] is None
    ent = (
        await drv.client.get(
            "/v1/entitlements", params={"customer_id": "cus_51"}, headers=drv.api()
        )
    ).json()
    assert ent["features"] == ["basic"]
    r = await drv.client.get("/v1/invoices", params={"customer_id": "cus_51"}, headers=drv.api())
    assert r.json()["data"] == [], "nothing was charged"


async def test_5_2_free_to_paid_upgrade_cancels_free_when_paid_starts(drv):
    free = await drv.checkout(price(amount=0, features=["basic"]), customer_id="cus_52")
    paid = await drv.checkout(price(features=["pro"]), customer_id="cus_52")
    free = await drv.sub(free["id"])
    assert free["status"] == "canceled" and free["cancel_reason"] == "upgraded"
    assert (await drv.sub(paid["id"]))["status"] == "active"
    ent = (
        await drv.client.get(
            "/v1/entitlements", params={"customer_id": "cus_52"}, headers=drv.api()
        )
    ).json()
    assert ent["features"] == ["pro"]
    ended = await drv.events("subscription.ended.v1")
    assert [e["subscription_id"] for e in ended] == [free["id"]]


async def test_5_3_multiple_free_products_both_active(drv):
    a = await drv.checkout(price(amount=0, name="Free A"), customer_id="cus_53")
    b = await drv.checkout(price(amount=0, name="Free B"), customer_id="cus_53")
    assert (await drv.sub(a["id"]))["status"] == "active"
    assert (await drv.sub(b["id"]))["status"] == "active"


async def test_5_4_free_product_with_trial_ignores_trial(drv):
    sub = await drv.checkout(price(amount=0, trial_days=14), trial_days=14)
    assert sub["status"] == "active" and sub["trial_end"] is None


async def test_5_5_resubscribe_canceled_free_reactivates_it(drv):
    p = price(amount=0)
    sub = await drv.checkout(p, customer_id="cus_55")
    r = await drv.client.post(f"/v1/subscriptions/{sub['id']}/cancel", headers=drv.api())
    assert r.json()["status"] == "canceled"
    again = await drv.checkout(p, customer_id="cus_55")
    assert again["id"] == sub["id"] and again["status"] == "active"
    assert again["canceled_at"] is None and again["ended_at"] is None
    created = await drv.events("subscription.created.v1")
    assert created[-1]["reactivated"] is True


async def test_6_1_basic_trial_activation(drv):
    sub = await drv.checkout(
        price(trial_days=14, features=["pro"]), trial_days=14, customer_id="cus_61"
    )
    assert sub["status"] == "trialing"
    assert sub["trial_end"] == drv.now + timedelta(days=14)
    assert await drv.invoices_created() == [], "no immediate charge"
    r = await drv.client.get("/v1/invoices", params={"customer_id": "cus_61"}, headers=drv.api())
    assert r.json()["data"] == []
    ent = (
        await drv.client.get(
            "/v1/entitlements", params={"customer_id": "cus_61"}, headers=drv.api()
        )
    ).json()
    assert ent["features"] == ["pro"]


async def test_6_2_trial_with_setup_fee_charged_now_recurring_after_trial(drv):
    sub = await drv.checkout(
        price(trial_days=7, setup_fee=1500), trial_days=7, customer_id="cus_62"
    )
    assert sub["status"] == "trialing"
    [inv] = (
        await drv.client.get("/v1/invoices", params={"customer_id": "cus_62"}, headers=drv.api())
    ).json()["data"]
    assert inv["status"] == "paid" and inv["total"] == 1500
    assert [line["type"] for line in inv["lines"]] == ["setup_fee"]
    drv.at(sub["trial_end"])
    await drv.run_scheduler()
    [charge] = await drv.invoices_created(sub["id"])
    assert charge["amount_due"] == 5000 and charge["billing_reason"] == "trial_conversion"


async def test_6_6_second_trial_prevented_same_customer(drv):
    p = price(trial_days=14)
    first = await drv.checkout(p, trial_days=14, customer_id="cus_66")
    await drv.client.post(f"/v1/subscriptions/{first['id']}/cancel", headers=drv.api())
    second = await drv.checkout(p, trial_days=14, customer_id="cus_66")
    assert second["status"] == "incomplete" and second["trial_end"] is None
    [charge] = await drv.invoices_created(second["id"])
    assert charge["amount_due"] == 5000, "immediate charge for the first period"
    assert (await drv.events("subscription.created.v1"))[-1]["trial_denied"] is True
    await drv.pay(charge)
    assert (await drv.sub(second["id"]))["status"] == "active"


async def test_6_6_second_trial_prevented_new_email_same_card(drv):
    p = price(trial_days=14)
    await drv.checkout(p, trial_days=14, email="first@example.com", card_fingerprint="fp_same")
    other = await drv.checkout(
        p, trial_days=14, email="second@example.com", card_fingerprint="fp_same"
    )
    assert other["status"] == "incomplete"


async def test_6_6_second_trial_prevented_same_email_new_customer(drv):
    p = price(trial_days=14)
    await drv.checkout(p, trial_days=14, email="Same@Example.com", card_fingerprint="fp_1")
    other = await drv.checkout(p, trial_days=14, email="same@example.com", card_fingerprint="fp_2")
    assert other["status"] == "incomplete"
    async with drv.rt.db.transaction() as session:
        reason = await repository.trial_used(
            session,
            drv.org,
            p.product_id,
            customer_id=None,
            email="same@example.com",
            card_fingerprint=None,
        )
    assert reason == "email"


async def test_6_6_trial_on_another_product_is_allowed(drv):
    await drv.checkout(price(trial_days=14), trial_days=14, customer_id="cus_666")
    other = await drv.checkout(price(trial_days=14), trial_days=14, customer_id="cus_666")
    assert other["status"] == "trialing"


async def test_checkout_completed_twice_creates_one_subscription(drv):
    event = testing.checkout_completed(price(), completed_at=drv.now)
    await drv.deliver(event)
    await drv.deliver(event)  # a new envelope (new event id) for the same checkout
    created = await drv.events("subscription.created.v1")
    assert len(created) == 1
    r = await drv.client.get(
        "/v1/subscriptions", params={"customer_id": event.customer_id}, headers=drv.api()
    )
    assert len(r.json()["data"]) == 1


async def test_8_1_checkout_invoices_are_numbered_in_sequence_with_their_payment(drv):
    """The paid invoice of a checkout is written with the subscription in one statement
    (repository.record_fulfilment): it takes the organization's next number and records
    the checkout's payment as its succeeded attempt."""
    p = price(amount=5000)
    subs = [await drv.checkout(p, customer_id=testing.uid("cus")) for _ in range(2)]
    numbers = []
    for sub in subs:
        r = await drv.client.get(f"/v1/subscriptions/{sub['id']}/invoices", headers=drv.api())
        [inv] = r.json()["data"]
        assert inv["status"] == "paid" and inv["amount_paid"] == 5000
        assert sub["latest_invoice_id"] == inv["id"]
        numbers.append(inv["number"])
        async with drv.rt.db.transaction() as s:
            attempts = (
                await s.execute(
                    text(
                        "SELECT status, amount, payment_id FROM subscriptions.invoice_attempts"
                        " WHERE invoice_id = :i"
                    ),
                    {"i": inv["id"]},
                )
            ).all()
        [(status, amount, payment_id)] = attempts
        assert (status, amount) == ("succeeded", 5000) and payment_id
    prefix = drv.org.removeprefix("org_")[:8].upper()
    assert numbers == [f"{prefix}-000001", f"{prefix}-000002"]
    # The SQL spelling of a number is the Python one, past six digits too.
    for n in (7, 1234567):
        expr = invoice.invoice_number_sql(literal(invoice.invoice_prefix(drv.org)), literal(n))
        async with drv.rt.db.transaction() as s:
            assert (await s.execute(select(expr))).scalar_one() == invoice.invoice_number(
                drv.org, n
            )


async def test_a_created_subscription_writes_its_confirmation_in_the_fulfilment_statement(drv):
    """The customer's confirmation e-mail is part of `repository.record_fulfilment`'s one
    statement: the paid path issues no INSERT of its own for it."""
    from sqlalchemy import event

    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    engine = drv.rt.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        sub = await drv.checkout(price(amount=5000), email="pat@example.com")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert not [s for s in statements if s.lstrip().startswith("INSERT") and "notif" in s]
    [row] = await drv.notifications("checkout_completed")
    assert row["to_email"] == "pat@example.com" and row["status"] == "pending"
    assert row["invoice_id"] == sub["latest_invoice_id"]
    assert row["context"]["subscription_id"] == sub["id"]
