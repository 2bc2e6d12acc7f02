"""Trials ending, renewals, dunning and cancellation, driven with the injected clock through
the scheduler and the invoice.paid/payment_failed consumers, against real Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from subscriptions import testing
from subscriptions.models import invoices
from subscriptions.testing import coupon, price

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)


async def test_6_3_trial_end_conversion_charges_first_period_and_notifies(drv):
    sub = await drv.checkout(price(trial_days=14), trial_days=14, customer_id="cus_63")
    drv.at(sub["trial_end"] - 3 * DAY)
    await drv.run_scheduler()
    kinds = sorted(n["kind"] for n in await drv.notifications())
    assert kinds == ["checkout_completed", "trial_ending"]  # the confirmation, the reminder
    assert await drv.invoices_created() == []

    drv.at(sub["trial_end"])
    await drv.run_scheduler()
    [inv] = await drv.invoices_created(sub["id"])
    assert inv["billing_reason"] == "trial_conversion" and inv["amount_due"] == 5000
    assert inv["attempt"] == 1 and inv["idempotency_key"] == f"{inv['invoice_id']}:attempt:1"
    assert inv["stripe_customer_id"] and inv["payment_method_id"], "what checkout charges"
    assert inv["period_start"] == sub["trial_end"].isoformat().replace("+00:00", "Z")

    await drv.pay(inv)
    after = await drv.sub(sub["id"])
    assert after["status"] == "active"
    assert after["current_period_start"] == sub["trial_end"]
    assert after["current_period_end"] == datetime(2026, 3, 14, 15, 0, tzinfo=UTC)
    renewed = (await drv.events("subscription.renewed.v1"))[-1]
    assert renewed["trial_converted"] is True
    kinds = [n["kind"] for n in await drv.notifications()]
    assert "trial_converted" in kinds and "invoice_paid" in kinds


async def test_6_4_cancel_during_trial_is_immediate_never_charged_features_off(drv):
    sub = await drv.checkout(
        price(trial_days=14, features=["pro"]), trial_days=14, customer_id="cus_64"
    )
    drv.at(drv.now + 2 * DAY)
    r = await drv.client.post(
        f"/v1/subscriptions/{sub['id']}/cancel", json={"at_period_end": True}, headers=drv.api()
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "canceled", "a trial ends at once even when asked at period end"
    assert body["ended_at"] == body["canceled_at"]
    ent = (
        await drv.client.get(
            "/v1/entitlements", params={"customer_id": "cus_64"}, headers=drv.api()
        )
    ).json()
    assert ent["features"] == []
    drv.at(sub["trial_end"] + 40 * DAY)
    await drv.run_scheduler()
    assert await drv.invoices_created() == [], "never charged"
    canceled = (await drv.events("subscription.canceled.v1"))[-1]
    assert canceled["at_period_end"] is False


async def test_6_5_extend_trial_by_7_days_new_end_no_charge_notification(drv):
    sub = await drv.checkout(price(trial_days=14), trial_days=14)
    drv.at(sub["trial_end"] - 3 * DAY)  # 3 days left
    r = await drv.client.post(
        f"/v1/subscriptions/{sub['id']}/extend-trial", json={"days": 7}, headers=drv.api()
    )
    assert r.status_code == 200, r.text
    new_end = sub["trial_end"] + 7 * DAY
    assert r.json()["trial_end"] == new_end.isoformat().replace("+00:00", "Z")
    [ext] = await drv.events("subscription.trial_extended.v1")
    assert ext["days"] == 7
    assert [n["kind"] for n in await drv.notifications("trial_extended")] == ["trial_extended"]
    drv.at(sub["trial_end"] + DAY)  # the old end has passed
    await drv.run_scheduler()
    assert await drv.invoices_created() == [], "no charge yet"
    drv.at(new_end)
    await drv.run_scheduler()
    assert len(await drv.invoices_created(sub["id"])) == 1


async def test_extend_trial_refused_when_not_trialing(drv):
    sub = await drv.checkout()
    r = await drv.client.post(
        f"/v1/subscriptions/{sub['id']}/extend-trial", json={"days": 7}, headers=drv.api()
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_trialing"
    r = await drv.client.post(
        f"/v1/subscriptions/{sub['id']}/extend-trial", json={"days": 0}, headers=drv.api()
    )
    assert r.status_code == 422


async def test_end_trial_converts_now(drv):
    sub = await drv.checkout(price(trial_days=14), trial_days=14)
    drv.at(drv.now + 2 * DAY)
    r = await drv.client.post(f"/v1/subscriptions/{sub['id']}/end-trial", headers=drv.api())
    assert r.status_code == 200, r.text
    assert r.json()["trial_end"] == drv.now.isoformat().replace("+00:00", "Z")
    [inv] = await drv.invoices_created(sub["id"])
    assert inv["billing_reason"] == "trial_conversion"
    await drv.pay(inv)
    after = await drv.sub(sub["id"])
    assert after["status"] == "active" and after["current_period_start"] == drv.now
    # Calling it again is harmless.
    r = await drv.client.post(f"/v1/subscriptions/{sub['id']}/end-trial", headers=drv.api())
    assert r.status_code == 409


async def test_7_7_coupon_with_trial_discount_applies_after_trial(drv):
    c = coupon(percent_off=20, duration="once")
    sub = await drv.checkout(price(trial_days=14, amount=10000), trial_days=14, coupon=c)
    assert sub["status"] == "trialing"
    drv.at(sub["trial_end"])
    await drv.run_scheduler()
    [first] = await drv.invoices_created(sub["id"])
    assert first["amount_due"] == 8000, "the discount starts with the first paid period"
    await drv.pay(first)
    drv.at((await drv.sub(sub["id"]))["current_period_end"])
    await drv.run_scheduler()
    second = (await drv.invoices_created(sub["id"]))[-1]
    assert second["amount_due"] == 10000, "a `once` coupon covers one period"


async def test_repeating_coupon_expires_after_its_months(drv):
    c = coupon(amount_off=1000, duration="repeating", months=3)
    sub = await drv.checkout(price(amount=5000), coupon=c)  # first month discounted at checkout
    amounts = []
    for _ in range(4):
        drv.at((await drv.sub(sub["id"]))["current_period_end"])
        await drv.run_scheduler()
        inv = (await drv.invoices_created(sub["id"]))[-1]
        amounts.append(inv["amount_due"])
        await drv.pay(inv)
    assert amounts == [4000, 4000, 5000, 5000], "3 discounted months: checkout's + 2 renewals"


async def test_forever_coupon_discounts_every_renewal(drv):
    sub = await drv.checkout(price(amount=5000), coupon=coupon(percent_off=10, duration="forever"))
    for _ in range(2):
        drv.at((await drv.sub(sub["id"]))["current_period_end"])
        await drv.run_scheduler()
        inv = (await drv.invoices_created(sub["id"]))[-1]
        assert inv["amount_due"] == 4500
        await drv.pay(inv)


async def test_renewal_paid_advances_period_calendar_correct(drv):
    sub = await drv.checkout()  # Jan 31 15:00
    ends = []
    for _ in range(3):
        drv.at((await drv.sub(sub["id"]))["current_period_end"])
        await drv.run_scheduler()
        inv = (await drv.invoices_created(sub["id"]))[-1]
        assert inv["billing_reason"] == "subscription_cycle"
        before = await drv.sub(sub["id"])
        assert before["current_period_end"] == drv.now, "the period advances only when paid"
        await drv.pay(inv)
        ends.append((await drv.sub(sub["id"]))["current_period_end"])
    assert ends == [
        datetime(2026, 3, 31, 15, tzinfo=UTC),
        datetime(2026, 4, 30, 15, tzinfo=UTC),
        datetime(2026, 5, 31, 15, tzinfo=UTC),
    ]
    numbers = [i["number"] for i in await drv.invoices_created(sub["id"])]
    assert len(set(numbers)) == 3
    # A repeated invoice.paid changes nothing.
    last = (await drv.invoices_created(sub["id"]))[-1]
    await drv.pay(last)
    assert (await drv.sub(sub["id"]))["current_period_end"] == ends[-1]


async def test_dunning_retries_at_1_3_5_days_then_cancels(drv):
    sub = await drv.checkout(price(features=["pro"]), customer_id="cus_dun")
    start = sub["current_period_end"]
    drv.at(start)
    await drv.run_scheduler()
    [inv] = await drv.invoices_created(sub["id"])
    await drv.fail(inv)
    s = await drv.sub(sub["id"])
    assert s["status"] == "past_due" and s["next_action_at"] == start + DAY
    ent = (
        await drv.client.get(
            "/v1/entitlements", params={"customer_id": "cus_dun"}, headers=drv.api()
        )
    ).json()
    assert ent["features"] == ["pro"], "past_due within grace keeps the features"
    [past_due] = await drv.events("subscription.past_due.v1")
    assert past_due["next_attempt_at"]

    attempts = []
    for day in (1, 3, 5):
        drv.at(start + day * DAY)
        await drv.run_scheduler()
        retry = (await drv.invoices_created(sub["id"]))[-1]
        attempts.append(retry["attempt"])
        assert retry["invoice_id"] == inv["invoice_id"]
        assert retry["idempotency_key"].endswith(f":{retry['attempt']}")
        await drv.fail(retry)
    assert attempts == [2, 3, 4]
    s = await drv.sub(sub["id"])
    assert s["status"] == "canceled" and s["cancel_reason"] == "payment_failed"
    async with drv.rt.db.transaction() as session:
        status = (
            await session.execute(
                select(invoices.c.status).where(invoices.c.id == inv["invoice_id"])
            )
        ).scalar_one()
    assert status == "uncollectible"
    ent = (
        await drv.client.get(
            "/v1/entitlements", params={"customer_id": "cus_dun"}, headers=drv.api()
        )
    ).json()
    assert ent["features"] == []
    assert len(await drv.notifications("payment_failed")) == 3
    [last] = await drv.notifications("subscription_canceled")
    assert last["context"]["reason"] == "payment_failed"
    drv.at(start + 90 * DAY)
    await drv.run_scheduler()
    assert len(await drv.invoices_created(sub["id"])) == 4, (
        "a canceled subscription is never charged again"
    )


async def test_dunning_recovers_when_a_retry_is_paid(drv):
    sub = await drv.checkout()
    start = sub["current_period_end"]
    drv.at(start)
    await drv.run_scheduler()
    [inv] = await drv.invoices_created(sub["id"])
    await drv.fail(inv)
    drv.at(start + DAY)
    await drv.run_scheduler()
    retry = (await drv.invoices_created(sub["id"]))[-1]
    await drv.pay(retry)
    s = await drv.sub(sub["id"])
    assert s["status"] == "active" and s["past_due_since"] is None
    assert s["current_period_start"] == start
    assert s["next_action"] == "renew"


async def test_hard_decline_stops_retrying_and_card_update_retries_now(drv):
    sub = await drv.checkout(customer_id="cus_hard")
    start = sub["current_period_end"]
    drv.at(start)
    await drv.run_scheduler()
    [inv] = await drv.invoices_created(sub["id"])
    await drv.fail(inv, decline_code="stolen_card")
    s = await drv.sub(sub["id"])
    assert s["status"] == "past_due" and s["hard_declined"]
    assert s["next_action"] == "dunning_exhausted"
    drv.at(start + 5 * DAY)
    await drv.run_scheduler()
    assert len(await drv.invoices_created(sub["id"])) == 1, "no retry on a hard decline"

    # The customer saves a new card (setup.succeeded.v1 from webhooks): retried at once.
    from bos_common.events import Envelope

    env = Envelope(
        event_id=__import__("uuid").uuid4(),
        event_type="setup.succeeded.v1",
        occurred_at=drv.now,
        producer="webhooks",
        org_id=drv.org,
        data={
            "customer_id": "cus_hard",
            "payment_method_id": "pm_new",
            "stripe_customer_id": "cus_stripe_x",
            "stripe_created": drv.now.isoformat(),
        },
    )
    spec = next(s for s in drv.rt.consumers if "setup.succeeded.v1" in s.routing_keys)
    await spec.handler(env)
    await drv.run_scheduler()
    retry = (await drv.invoices_created(sub["id"]))[-1]
    assert retry["attempt"] == 2 and retry["payment_method_id"] == "pm_new"
    await drv.pay(retry)
    assert (await drv.sub(sub["id"]))["status"] == "active"


async def test_hard_decline_cancels_after_grace(drv):
    sub = await drv.checkout()
    start = sub["current_period_end"]
    drv.at(start)
    await drv.run_scheduler()
    [inv] = await drv.invoices_created(sub["id"])
    await drv.fail(inv, failure_code="expired_card", decline_code=None)
    drv.at(start + 7 * DAY)
    await drv.run_scheduler()
    assert (await drv.sub(sub["id"]))["status"] == "canceled"


async def test_stale_failure_after_payment_is_ignored(drv):
    sub = await drv.checkout()
    drv.at(sub["current_period_end"])
    await drv.run_scheduler()
    [inv] = await drv.invoices_created(sub["id"])
    await drv.pay(inv)
    await drv.fail(inv)  # arrives late, out of order
    assert (await drv.sub(sub["id"]))["status"] == "active"


async def test_lost_payment_result_is_asked_again_with_same_key(drv):
    sub = await drv.checkout()
    drv.at(sub["current_period_end"])
    await drv.run_scheduler()
    drv.at(drv.now + timedelta(hours=1))
    await drv.run_scheduler()
    first, again = await drv.invoices_created(sub["id"])
    assert again["invoice_id"] == first["invoice_id"]
    assert again["idempotency_key"] == first["idempotency_key"], "never charged twice"


async def test_cancel_at_period_end_then_reactivate_then_cancel_ends_at_period_end(drv):
    sub = await drv.checkout()
    r = await drv.client.post(
        f"/v1/subscriptions/{sub['id']}/cancel", json={"at_period_end": True}, headers=drv.api()
    )
    body = r.json()
    assert body["status"] == "active" and body["cancel_at_period_end"] is True
    r = await drv.client.post(f"/v1/subscriptions/{sub['id']}/reactivate", headers=drv.api())
    assert r.json()["cancel_at_period_end"] is False
    assert [
        e["event_type"] for e in await drv.events() if e["event_type"].startswith("subscription.re")
    ] == ["subscription.reactivated.v1"]
    await drv.client.post(
        f"/v1/subscriptions/{sub['id']}/cancel", json={"at_period_end": True}, headers=drv.api()
    )
    drv.at(sub["current_period_end"])
    await drv.run_scheduler()
    s = await drv.sub(sub["id"])
    assert s["status"] == "canceled" and s["ended_at"] == sub["current_period_end"]
    assert await drv.invoices_created() == []
    r = await drv.client.post(f"/v1/subscriptions/{sub['id']}/reactivate", headers=drv.api())
    assert r.status_code == 409 and r.json()["error"]["code"] == "subscription_not_reactivatable"


async def test_cancel_is_idempotent_and_voids_an_open_invoice(drv):
    sub = await drv.checkout()
    drv.at(sub["current_period_end"])
    await drv.run_scheduler()
    [inv] = await drv.invoices_created(sub["id"])
    r1 = await drv.client.post(f"/v1/subscriptions/{sub['id']}/cancel", headers=drv.api())
    r2 = await drv.client.post(f"/v1/subscriptions/{sub['id']}/cancel", headers=drv.api())
    assert r1.json()["status"] == r2.json()["status"] == "canceled"
    assert len(await drv.events("subscription.canceled.v1")) == 1
    [voided] = await drv.events("invoice.voided.v1")
    assert voided["invoice_id"] == inv["invoice_id"]
    await drv.pay(inv)  # the charge raced the cancellation
    assert (await drv.sub(sub["id"]))["status"] == "canceled"


async def test_invoice_numbers_are_sequential_per_organization(drv):
    subs = [await drv.checkout() for _ in range(3)]
    async with drv.rt.db.transaction() as session:
        numbers = (
            (
                await session.execute(
                    select(invoices.c.number)
                    .where(invoices.c.org_id == drv.org)
                    .order_by(invoices.c.number)
                )
            )
            .scalars()
            .all()
        )
        count = (await session.execute(select(func.count()).select_from(invoices))).scalar_one()
    assert len(subs) == 3 == count
    assert [int(n.rsplit("-", 1)[1]) for n in numbers] == [1, 2, 3]


async def test_past_due_features_end_after_grace(drv):
    drv.rt.clock.set(drv.now)
    sub = await drv.checkout(price(features=["x"]), customer_id="cus_grace")
    start = sub["current_period_end"]
    drv.at(start)
    await drv.run_scheduler()
    [inv] = await drv.invoices_created(sub["id"])
    await drv.fail(inv, decline_code="stolen_card")
    drv.at(start + 7 * DAY - timedelta(seconds=1))
    ent = (
        await drv.client.get(
            "/v1/entitlements", params={"customer_id": "cus_grace"}, headers=drv.api()
        )
    ).json()
    assert ent["features"] == ["x"]
    drv.at(start + 7 * DAY)
    ent = (
        await drv.client.get(
            "/v1/entitlements", params={"customer_id": "cus_grace"}, headers=drv.api()
        )
    ).json()
    assert ent["features"] == [], "grace over even before the scheduler runs"
    _ = testing
