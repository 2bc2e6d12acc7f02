"""Checkout end to end: gateway, every service, real Postgres and RabbitMQ, the Stripe
simulator delivering signed webhooks (plan sections 2, 3, 4, 5, 7, 10, 11, 12)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from merchant import Merchant, intents_of, new_merchant, unique  # noqa: E402

pytestmark = pytest.mark.e2e


async def test_2_1_checkout_carries_the_price_snapshot(merchant: Merchant) -> None:
    price = await merchant.price(5000)
    checkout = await merchant.checkout(price["id"])
    assert checkout["status"] == "open"
    assert (checkout["amount_subtotal"], checkout["amount_total"], checkout["currency"]) == (
        5000,
        5000,
        "usd",
    )
    assert checkout["product"]["features"] == ["feature_a", "feature_b"]
    assert checkout["id"].startswith("cs_") and checkout["url"].startswith("http")


async def test_2_2_and_5_1_free_checkout_completes_without_stripe(merchant: Merchant) -> None:
    price = await merchant.price(0)
    checkout = await merchant.checkout(price["id"])
    assert checkout["is_free"] is True
    r = await merchant.post(f"/v1/checkout-sessions/{checkout['id']}/confirm-free")
    assert r.status_code == 200, r.text
    # Synchronous, as the contract says: complete, and the subscription exists already.
    assert (r.json()["status"], r.json()["checkout_id"]) == ("complete", checkout["id"])
    done = (await merchant.get(f"/v1/checkout-sessions/{checkout['id']}")).json()
    assert done["status"] == "complete"
    assert done["subscription_id"] and done["payment"] is None
    sub = (await merchant.get(f"/v1/subscriptions/{done['subscription_id']}")).json()
    assert sub["status"] == "active" and sub["is_free"] is True
    # A repeat answers the same.
    again = await merchant.post(f"/v1/checkout-sessions/{checkout['id']}/confirm-free")
    assert again.status_code == 200 and again.json()["status"] == "complete"


async def test_2_7_another_orgs_price_is_product_not_found(
    merchant: Merchant, gateway: httpx.AsyncClient, sim: httpx.AsyncClient
) -> None:
    other = await new_merchant(gateway, sim)
    price = await other.price(2900)
    r = await merchant.post(
        "/v1/checkout-sessions", {"price_id": price["id"], "customer": {"email": "a@example.com"}}
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "product_not_found"


async def test_3_5_and_3_6_email_is_validated(merchant: Merchant) -> None:
    price = await merchant.price(2900)
    bad = await merchant.post(
        "/v1/checkout-sessions", {"price_id": price["id"], "customer": {"email": "not-an-email"}}
    )
    missing = await merchant.post(
        "/v1/checkout-sessions", {"price_id": price["id"], "customer": {}}
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_email")
    assert bad.json()["error"]["message"] == "Invalid email"
    assert (missing.status_code, missing.json()["error"]["code"]) == (422, "email_required")


async def test_3_2_same_email_reuses_the_customer(merchant: Merchant) -> None:
    price = await merchant.price(2900)
    email = f"{unique('same')}@example.com"
    first = await merchant.checkout(price["id"], email=email)
    second = await merchant.checkout(price["id"], email=email.upper())
    assert first["customer"]["id"] == second["customer"]["id"]


async def test_4_1_card_payment_ends_in_an_active_subscription(merchant: Merchant) -> None:
    price = await merchant.price(9900)
    checkout = await merchant.checkout(price["id"])
    r = await merchant.confirm(checkout["id"], await merchant.card("visa"), key=unique("k"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("processing", "complete")
    done = await merchant.wait_status(checkout["id"], "complete")
    assert done["payment"]["status"] == "succeeded" and done["payment"]["amount"] == 9900
    sub = (await merchant.get(f"/v1/subscriptions/{done['subscription_id']}")).json()
    assert sub["status"] == "active"
    assert (sub["amount"], sub["currency"], sub["interval"]) == (9900, "usd", "month")


@pytest.mark.parametrize(
    ("card", "code", "message"),
    [
        ("declined", "card_declined", "Your card was declined. Try another card."),
        ("insufficient_funds", "insufficient_funds", "Insufficient funds"),
    ],
)
async def test_4_2_and_4_3_declines_leave_the_checkout_open_for_another_card(
    merchant: Merchant, card: str, code: str, message: str
) -> None:
    price = await merchant.price(2900)
    checkout = await merchant.checkout(price["id"])
    r = await merchant.confirm(checkout["id"], await merchant.card(card))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "failed"
    assert r.json()["error"] == {"code": code, "message": message}
    assert (await merchant.get(f"/v1/checkout-sessions/{checkout['id']}")).json()[
        "status"
    ] == "open"

    retry = await merchant.confirm(checkout["id"], await merchant.card("visa"))
    assert retry.json()["status"] in ("processing", "complete")
    done = await merchant.wait_status(checkout["id"], "complete")
    assert done["subscription_id"]


@pytest.mark.parametrize("outcome", ["success", "failure"])
async def test_4_4_and_4_5_three_d_secure(merchant: Merchant, outcome: str) -> None:
    price = await merchant.price(4900)
    checkout = await merchant.checkout(price["id"])
    r = await merchant.confirm(checkout["id"], await merchant.card("3ds"))
    body = r.json()
    assert body["status"] == "requires_action", body
    secret = body["next_action"]["client_secret"]
    intent = secret.split("_secret_")[0]
    auth = await merchant.sim.post(
        f"/_sim/payment_intents/{intent}/authenticate", json={"outcome": outcome}
    )
    assert auth.status_code == 200, auth.text
    if outcome == "success":
        done = await merchant.wait_status(checkout["id"], "complete")
        assert done["payment"]["status"] == "succeeded"
    else:
        reopened = await merchant.wait_status(checkout["id"], "open")
        assert reopened["payment"]["error"]["code"] == "authentication_failed"


async def test_7_1_percent_coupon_discounts_the_charge(merchant: Merchant) -> None:
    code = unique("TWENTY").upper().replace("-", "")
    r = await merchant.post("/v1/coupons", {"code": code, "percent_off": 20, "duration": "forever"})
    assert r.status_code == 201, r.text
    price = await merchant.price(10_000)
    checkout = await merchant.checkout(price["id"], coupon_code=code)
    assert (checkout["amount_discount"], checkout["amount_total"]) == (2000, 8000)
    await merchant.confirm(checkout["id"], await merchant.card())
    done = await merchant.wait_status(checkout["id"], "complete")
    assert done["payment"]["amount"] == 8000
    again = await merchant.post(f"/v1/checkout-sessions/{checkout['id']}/coupon", {"code": code})
    assert again.status_code in (400, 409)


async def test_7_8_a_second_coupon_is_refused(merchant: Merchant) -> None:
    codes = []
    for _ in range(2):
        code = unique("SAVE").upper().replace("-", "")
        await merchant.post(
            "/v1/coupons", {"code": code, "amount_off": 100, "currency": "usd", "duration": "once"}
        )
        codes.append(code)
    checkout = await merchant.checkout((await merchant.price(2900))["id"], coupon_code=codes[0])
    r = await merchant.post(f"/v1/checkout-sessions/{checkout['id']}/coupon", {"code": codes[1]})
    assert r.status_code == 400
    assert r.json()["error"] == {
        **r.json()["error"],
        "code": "coupon_already_applied",
        "message": "Only one coupon allowed",
    }


async def test_10_1_twenty_concurrent_confirms_make_one_charge(merchant: Merchant) -> None:
    price = await merchant.price(3900)
    checkout = await merchant.checkout(price["id"])
    pm = await merchant.card()
    results = await asyncio.gather(
        *(merchant.confirm(checkout["id"], pm, key=unique("click")) for _ in range(20))
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(200) == 1, statuses
    assert all(s == 409 for s in statuses if s != 200)
    done = await merchant.wait_status(checkout["id"], "complete")
    ours = await intents_of(merchant.sim, checkout["id"])
    assert len(ours) == 1, "exactly one PaymentIntent for the checkout"
    assert done["payment"]["amount"] == 3900


async def test_11_1_retry_with_the_same_key_replays_without_a_second_charge(
    merchant: Merchant,
) -> None:
    checkout = await merchant.checkout((await merchant.price(2500))["id"])
    pm, key = await merchant.card(), unique("retry")
    first = await merchant.confirm(checkout["id"], pm, key=key)
    second = await merchant.confirm(checkout["id"], pm, key=key)
    assert second.status_code == first.status_code == 200
    assert second.content == first.content
    assert second.headers.get("idempotent-replayed") == "true"


async def test_11_3_stripe_outage_is_a_503_and_leaves_the_checkout_open(
    merchant: Merchant,
) -> None:
    checkout = await merchant.checkout((await merchant.price(2500))["id"])
    pm = await merchant.card()
    await merchant.sim.post("/_sim/faults", json={"api_error_rate": 1.0})
    try:
        r = await merchant.confirm(checkout["id"], pm)
    finally:
        await merchant.sim.delete("/_sim/faults")
    assert r.status_code == 503
    assert r.json()["error"]["message"] == "Payment provider unavailable, please retry"
    body = (await merchant.get(f"/v1/checkout-sessions/{checkout['id']}")).json()
    assert body["status"] == "open"
    ok = await merchant.confirm(checkout["id"], pm)
    assert ok.json()["status"] in ("processing", "complete")
    await merchant.wait_status(checkout["id"], "complete")


async def test_12_1_connect_fee_five_percent_of_100_dollars(
    gateway: httpx.AsyncClient, sim: httpx.AsyncClient
) -> None:
    account = (
        await sim.post(
            "/v1/accounts",
            data={"type": "express"},
        )
    ).json()
    await sim.post(f"/_sim/accounts/{account['id']}/verify")
    merchant = await new_merchant(gateway, sim, stripe_account_id=account["id"])
    checkout = await merchant.checkout((await merchant.price(10_000))["id"])
    await merchant.confirm(checkout["id"], await merchant.card())
    done = await merchant.wait_status(checkout["id"], "complete")
    payment = done["payment"]
    assert (payment["amount"], payment["platform_fee"], payment["net_amount"]) == (
        10_000,
        500,
        9_500,
    )
    intents = (
        await sim.get(
            "/v1/payment_intents",
            params={"limit": 100},
        )
    ).json()
    [pi] = [p for p in intents["data"] if p["metadata"].get("checkout_id") == checkout["id"]]
    assert pi["application_fee_amount"] == 500
    assert pi["transfer_data"]["destination"] == account["id"]


async def test_checkout_cancel_then_confirm_is_refused(merchant: Merchant) -> None:
    checkout = await merchant.checkout((await merchant.price(2500))["id"])
    canceled = await merchant.post(f"/v1/checkout-sessions/{checkout['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    r = await merchant.confirm(checkout["id"], await merchant.card())
    assert r.status_code == 409


async def test_unknown_checkout_is_404(merchant: Merchant) -> None:
    r = await merchant.get(f"/v1/checkout-sessions/cs_{uuid.uuid4().hex[:20]}")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"


async def test_a_limited_coupon_is_held_at_confirm_and_never_over_redeemed(
    merchant: Merchant,
) -> None:
    code = unique("ONCE").upper().replace("-", "")
    r = await merchant.post(
        "/v1/coupons",
        {"code": code, "percent_off": 50, "duration": "once", "max_redemptions": 1},
    )
    assert r.status_code == 201, r.text
    price = await merchant.price(4000)
    first, second = [await merchant.checkout(price["id"], coupon_code=code) for _ in range(2)]
    assert first["amount_total"] == second["amount_total"] == 2000

    paid = await merchant.confirm(first["id"], await merchant.card())
    refused = await merchant.confirm(second["id"], await merchant.card())

    assert paid.status_code == 200, paid.text
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "coupon_exhausted"
    body = (await merchant.get(f"/v1/checkout-sessions/{second['id']}")).json()
    assert body["status"] == "open" and body["payment"] is None


async def test_7_2_a_coupon_applied_after_creation_discounts_the_checkout(
    merchant: Merchant,
) -> None:
    code = unique("TEN").upper().replace("-", "")
    r = await merchant.post(
        "/v1/coupons", {"code": code, "amount_off": 1000, "currency": "usd", "duration": "once"}
    )
    assert r.status_code == 201, r.text
    checkout = await merchant.checkout((await merchant.price(5000))["id"])
    applied = await merchant.post(f"/v1/checkout-sessions/{checkout['id']}/coupon", {"code": code})
    assert applied.status_code == 200, applied.text
    assert (applied.json()["amount_discount"], applied.json()["amount_total"]) == (1000, 4000)
    other = await merchant.checkout((await merchant.price(5000))["id"])
    invalid = await merchant.post(
        f"/v1/checkout-sessions/{other['id']}/coupon", {"code": "INVALID123"}
    )
    assert invalid.status_code == 400
    assert invalid.json()["error"]["message"] == "Invalid coupon code"


async def test_10_2_five_simultaneous_sessions_for_one_customer_are_independent(
    merchant: Merchant,
) -> None:
    price = await merchant.price(2900)
    email = f"{unique('five')}@example.com"
    sessions = await asyncio.gather(
        *(merchant.checkout(price["id"], email=email) for _ in range(5))
    )
    assert len({s["id"] for s in sessions}) == 5
    assert len({s["customer"]["id"] for s in sessions}) == 1, "one customer, five sessions"
    assert all(s["status"] == "open" for s in sessions)


async def test_10_3_confirm_racing_cancel_first_wins_the_other_gets_409(
    merchant: Merchant,
) -> None:
    checkout = await merchant.checkout((await merchant.price(2900))["id"])
    pm = await merchant.card()
    confirm, cancel = await asyncio.gather(
        merchant.confirm(checkout["id"], pm),
        merchant.post(f"/v1/checkout-sessions/{checkout['id']}/cancel"),
    )
    assert sorted([confirm.status_code, cancel.status_code]) == [200, 409], (
        confirm.text,
        cancel.text,
    )
    final = (await merchant.get(f"/v1/checkout-sessions/{checkout['id']}")).json()
    if cancel.status_code == 200:
        assert final["status"] == "canceled" and final["payment"] is None
    else:
        assert final["status"] in ("processing", "complete")


async def test_10_4_concurrent_updates_of_one_customer_keep_one_row_last_write_wins(
    merchant: Merchant,
) -> None:
    price = await merchant.price(2900)
    email = f"{unique('upd')}@example.com"
    names = [f"Name {i}" for i in range(8)]
    await asyncio.gather(
        *(
            merchant.post(
                "/v1/checkout-sessions",
                {"price_id": price["id"], "customer": {"email": email, "name": n}},
            )
            for n in names
        )
    )
    found = (await merchant.get("/v1/customers", email=email)).json()["data"]
    assert len(found) == 1
    assert found[0]["name"] in names


async def test_14_1_sql_injection_in_fields_is_data_not_sql(merchant: Merchant) -> None:
    price = await merchant.price(2900)
    evil = "Robert'); DROP TABLE checkout.customers;--"
    r = await merchant.post(
        "/v1/checkout-sessions",
        {
            "price_id": price["id"],
            "customer": {"email": "bobby@example.com", "name": evil},
            "metadata": {"note": evil},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["customer"]["name"] == evil and r.json()["metadata"]["note"] == evil
    bad = await merchant.post(
        "/v1/checkout-sessions", {"price_id": "price_x' OR '1'='1", "customer": {"email": "a@b.co"}}
    )
    assert bad.status_code == 404
    assert (await merchant.get("/v1/customers", email="bobby@example.com")).status_code == 200
