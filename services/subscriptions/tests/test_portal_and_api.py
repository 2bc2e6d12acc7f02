"""Customer portal (17.x), invoices and PDFs, entitlements and the API's guards."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pypdf
import pytest

from bos_common.testing import SECRET
from subscriptions import testing
from subscriptions.testing import price

pytestmark = pytest.mark.integration


async def _renew(drv, sub_id: str) -> dict[str, Any]:
    drv.at((await drv.sub(sub_id))["current_period_end"])
    await drv.run_scheduler()
    inv = (await drv.invoices_created(sub_id))[-1]
    await drv.pay(inv)
    return inv


async def test_17_2_portal_shows_plan_next_billing_and_payment_history(drv):
    sub = await drv.checkout(price(amount=2500, name="Team"), customer_id="cus_172")
    await _renew(drv, sub["id"])
    r = await drv.client.get("/v1/portal/subscriptions", headers=drv.portal("cus_172"))
    assert r.status_code == 200, r.text
    [view] = r.json()["data"]
    assert view["plan"]["product_name"] == "Team" and view["plan"]["amount"] == 2500
    assert view["next_billing"]["date"] == view["current_period_end"]
    assert view["next_billing"]["amount"] == 2500
    r = await drv.client.get("/v1/portal/payments", headers=drv.portal("cus_172"))
    payments = r.json()["data"]
    assert [p["status"] for p in payments] == ["succeeded", "succeeded"]
    assert all(p["amount"] == 2500 for p in payments)


async def test_17_2_trialing_next_billing_is_trial_end(drv):
    sub = await drv.checkout(price(trial_days=14), trial_days=14, customer_id="cus_172t")
    [view] = (
        await drv.client.get("/v1/portal/subscriptions", headers=drv.portal("cus_172t"))
    ).json()["data"]
    assert view["next_billing"]["date"] == view["trial_end"]
    assert sub["trial_end"]


async def test_17_4_portal_cancel_at_period_end_confirmation_and_reactivate(drv):
    sub = await drv.checkout(customer_id="cus_174")
    r = await drv.client.post(
        f"/v1/portal/subscriptions/{sub['id']}/cancel", headers=drv.portal("cus_174")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "active" and body["cancel_at_period_end"] is True
    assert body["next_billing"] is None
    [mail] = await drv.notifications("subscription_canceled")
    assert mail["context"]["at_period_end"] is True
    r = await drv.client.post(
        f"/v1/portal/subscriptions/{sub['id']}/reactivate", headers=drv.portal("cus_174")
    )
    assert r.json()["cancel_at_period_end"] is False
    assert len(await drv.notifications("subscription_reactivated")) == 1


async def test_17_5_download_invoice_pdf_with_correct_details(drv):
    sub = await drv.checkout(
        price(amount=123456, name="Enterprise"), customer_id="cus_175", email="buyer@example.com"
    )
    from subscriptions import repository

    async with drv.rt.db.transaction() as session:
        await repository.upsert_organization(session, drv.org, "Acme Tools GmbH", 1, drv.now)
    [inv] = (await drv.client.get("/v1/portal/invoices", headers=drv.portal("cus_175"))).json()[
        "data"
    ]
    r = await drv.client.get(inv["pdf_url"], headers=drv.portal("cus_175"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(r.content)).pages)
    for expected in (
        inv["number"],
        "Acme Tools GmbH",
        "buyer@example.com",
        "Enterprise",
        "$1,234.56",
        "PAID",
        "Tax",
    ):
        assert expected in text, expected
    r = await drv.client.get(
        inv["pdf_url"], params={"locale": "de_DE"}, headers=drv.portal("cus_175")
    )
    text = pypdf.PdfReader(io.BytesIO(r.content)).pages[0].extract_text()
    assert "1.234,56" in text
    r = await drv.client.get(
        inv["pdf_url"], params={"locale": "xx_nope"}, headers=drv.portal("cus_175")
    )
    assert r.status_code == 400
    # Via the API key too.
    r = await drv.client.get(f"/v1/invoices/{inv['id']}/pdf", headers=drv.api())
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert sub


async def test_portal_sees_only_its_customer(drv):
    sub = await drv.checkout(customer_id="cus_mine")
    other = await drv.checkout(customer_id="cus_other")
    r = await drv.client.get(
        f"/v1/portal/subscriptions/{other['id']}", headers=drv.portal("cus_mine")
    )
    assert r.status_code == 404
    r = await drv.client.post(
        f"/v1/portal/subscriptions/{other['id']}/cancel", headers=drv.portal("cus_mine")
    )
    assert r.status_code == 404
    r = await drv.client.get("/v1/portal/subscriptions", headers=drv.portal("cus_mine"))
    assert [s["id"] for s in r.json()["data"]] == [sub["id"]]
    # An API key cannot use portal routes; a portal token cannot use API-key routes.
    r = await drv.client.get("/v1/portal/subscriptions", headers=drv.api())
    assert r.status_code == 403
    r = await drv.client.get(f"/v1/subscriptions/{sub['id']}", headers=drv.portal("cus_mine"))
    assert r.status_code == 403


async def test_other_organization_is_404_and_anonymous_is_401(drv):
    sub = await drv.checkout()
    other = testing.identity_headers("api_key", SECRET, org_id="org_someone_else")
    r = await drv.client.get(f"/v1/subscriptions/{sub['id']}", headers=other)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "subscription_not_found"
    r = await drv.client.post(f"/v1/subscriptions/{sub['id']}/cancel", headers=other)
    assert r.status_code == 404
    assert (await drv.sub(sub["id"]))["status"] == "active"
    r = await drv.client.get(f"/v1/subscriptions/{sub['id']}")
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


async def test_17_3_portal_payment_method_update_goes_to_checkout(drv, monkeypatch):
    calls: list[tuple[str, str, Any, Any]] = []

    class FakeCheckout:
        async def request(self, method, path, *, json=None, params=None, on_behalf_of=None):
            calls.append((method, path, json, on_behalf_of))
            return 201, {"setup_intent_id": "seti_1", "client_secret": "seti_1_secret_x"}

        async def close(self):
            pass

    monkeypatch.setattr(drv.rt, "checkout", FakeCheckout())
    r = await drv.client.post("/v1/portal/payment-methods", json={}, headers=drv.portal("cus_173"))
    assert r.status_code == 200, r.text
    assert r.json()["client_secret"] == "seti_1_secret_x"
    [(method, path, _, who)] = calls
    assert (method, path) == ("POST", "/internal/customers/cus_173/payment-method-updates")
    assert who.customer_id == "cus_173" and who.principal_type == "portal"
    # Once the card is saved (setup.succeeded.v1), later invoices use it.
    sub = await drv.checkout(customer_id="cus_173")
    from bos_common.events import Envelope

    env = Envelope(
        event_id=__import__("uuid").uuid4(),
        event_type="setup.succeeded.v1",
        occurred_at=drv.now,
        producer="webhooks",
        org_id=drv.org,
        data={
            "customer_id": "cus_173",
            "payment_method_id": "pm_fresh",
            "stripe_created": (drv.now + timedelta(minutes=5)).isoformat(),
        },
    )
    spec = next(s for s in drv.rt.consumers if "setup.succeeded.v1" in s.routing_keys)
    await spec.handler(env)
    drv.at(sub["current_period_end"])
    await drv.run_scheduler()
    assert (await drv.invoices_created(sub["id"]))[-1]["payment_method_id"] == "pm_fresh"


async def test_payment_method_update_unavailable_without_checkout(drv):
    r = await drv.client.post("/v1/portal/payment-methods", headers=drv.portal("cus_x"))
    assert r.status_code == 503


async def test_entitlements_by_external_user_and_session_token(drv):
    await drv.checkout(price(features=["a"]), external_user_id="user_123")
    await drv.checkout(price(features=["b"]), external_user_id="user_123")
    r = await drv.client.get(
        "/v1/entitlements", params={"external_user_id": "user_123"}, headers=drv.api()
    )
    assert r.json()["features"] == ["a", "b"]
    session = testing.identity_headers(
        "session", SECRET, org_id=drv.org, external_user_id="user_123", principal_id="sess_1"
    )
    r = await drv.client.get("/v1/entitlements", headers=session)
    assert r.json()["features"] == ["a", "b"]
    r = await drv.client.get(
        "/v1/entitlements", params={"external_user_id": "user_999"}, headers=session
    )
    assert r.status_code == 403
    r = await drv.client.get("/v1/entitlements", headers=drv.api())
    assert r.status_code == 400


async def test_3_3_subscriptions_queryable_by_external_user_id(drv):
    sub = await drv.checkout(external_user_id="user_33")
    r = await drv.client.get(
        "/v1/subscriptions", params={"external_user_id": "user_33"}, headers=drv.api()
    )
    assert [s["id"] for s in r.json()["data"]] == [sub["id"]]


async def test_lists_are_cursor_paginated(drv):
    ids = [(await drv.checkout(customer_id="cus_page"))["id"] for _ in range(1)]
    for _ in range(4):
        drv.at(drv.now + timedelta(seconds=1))
        ids.append((await drv.checkout(price(), customer_id="cus_page"))["id"])
    r = await drv.client.get(
        "/v1/subscriptions", params={"customer_id": "cus_page", "limit": 2}, headers=drv.api()
    )
    page1 = r.json()
    assert page1["has_more"] is True and len(page1["data"]) == 2
    r = await drv.client.get(
        "/v1/subscriptions",
        params={"customer_id": "cus_page", "limit": 10, "starting_after": page1["data"][-1]["id"]},
        headers=drv.api(),
    )
    page2 = r.json()
    assert page2["has_more"] is False
    seen = [s["id"] for s in page1["data"] + page2["data"]]
    assert seen == list(reversed(ids)), "newest first, every item once"
    r = await drv.client.get("/v1/subscriptions", params={"limit": 101}, headers=drv.api())
    assert r.status_code == 422


async def test_idempotency_key_replays_a_cancel(drv):
    sub = await drv.checkout()
    headers = {**drv.api(), "Idempotency-Key": "cancel-1"}
    r1 = await drv.client.post(
        f"/v1/subscriptions/{sub['id']}/cancel", json={"at_period_end": True}, headers=headers
    )
    r2 = await drv.client.post(
        f"/v1/subscriptions/{sub['id']}/cancel", json={"at_period_end": True}, headers=headers
    )
    assert r1.status_code == r2.status_code == 200
    assert r2.headers.get("idempotent-replayed") == "true"
    assert r1.content == r2.content
