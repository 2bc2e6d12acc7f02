"""Customer portal end to end: a real paid checkout, a portal session minted with the
merchant's API key, and the portal API with that token (plan section 17)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pypdf
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from merchant import Merchant  # noqa: E402

pytestmark = pytest.mark.e2e


async def paid_subscription(merchant: Merchant, amount: int = 4900) -> dict:
    checkout = await merchant.checkout((await merchant.price(amount))["id"])
    r = await merchant.confirm(checkout["id"], await merchant.card())
    assert r.status_code == 200, r.text
    return await merchant.wait_status(checkout["id"], "complete")


async def test_17_portal_shows_plan_invoices_and_pdf_and_cancels(merchant: Merchant) -> None:
    done = await paid_subscription(merchant)
    customer = done["customer"]["id"]
    r = await merchant.post("/v1/portal-sessions", {"customer_id": customer})
    assert r.status_code == 201, r.text
    portal = {"Authorization": f"Bearer {r.json()['token']}"}
    gateway = merchant.gateway

    r = await gateway.get("/v1/portal/subscriptions", headers=portal)
    assert r.status_code == 200, r.text
    [view] = r.json()["data"]
    assert view["id"] == done["subscription_id"]
    assert view["next_billing"]["amount"] == 4900

    [invoice] = (await gateway.get("/v1/portal/invoices", headers=portal)).json()["data"]
    pdf = await gateway.get(f"/v1/portal/invoices/{invoice['id']}/pdf", headers=portal)
    assert pdf.headers["content-type"] == "application/pdf"
    assert invoice["number"] in pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()

    r = await gateway.post(f"/v1/portal/subscriptions/{view['id']}/cancel", headers=portal)
    assert r.status_code == 200 and r.json()["cancel_at_period_end"] is True
    r = await gateway.post(f"/v1/portal/subscriptions/{view['id']}/reactivate", headers=portal)
    assert r.status_code == 200 and r.json()["cancel_at_period_end"] is False


async def test_portal_session_for_another_orgs_customer_is_404(
    merchant: Merchant, gateway, sim
) -> None:
    from merchant import new_merchant

    other = await new_merchant(gateway, sim)
    done = await paid_subscription(other)
    r = await merchant.post("/v1/portal-sessions", {"customer_id": done["customer"]["id"]})
    assert r.status_code == 404


async def test_a_portal_token_cannot_call_merchant_apis(merchant: Merchant) -> None:
    done = await paid_subscription(merchant)
    token = (
        await merchant.post("/v1/portal-sessions", {"customer_id": done["customer"]["id"]})
    ).json()["token"]
    r = await merchant.gateway.get(
        "/v1/subscriptions", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 403
