"""Customer portal end to end: a real paid checkout, a portal session minted with the
merchant's API key, and the portal API with that token (plan section 17)."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pypdf
import pytest

from bos_common.testing import eventually

sys.path.insert(0, str(Path(__file__).parent))
from merchant import Merchant, sent_mails, unique  # noqa: E402

pytestmark = pytest.mark.e2e


async def paid_subscription(
    merchant: Merchant, amount: int = 4900, email: str | None = None
) -> dict:
    checkout = await merchant.checkout((await merchant.price(amount))["id"], email=email)
    r = await merchant.confirm(checkout["id"], await merchant.card())
    assert r.status_code == 200, r.text
    return await merchant.wait_status(checkout["id"], "complete")


async def mails(to: str, kind: str) -> list[EmailMessage]:
    """For eventually(): the emails so far (merchant.sent_mails)."""
    return sent_mails(to, kind)


async def test_17_1_portal_session_is_short_lived_scoped_and_reads_the_customer(
    merchant: Merchant,
) -> None:
    done = await paid_subscription(merchant)
    before = datetime.now(UTC)
    r = await merchant.post("/v1/portal-sessions", {"customer_id": done["customer"]["id"]})
    assert r.status_code == 201, r.text
    session = r.json()
    assert session["id"] and session["token"] and session["url"]
    # Limited validity: it expires, and within a day.
    expires = datetime.fromisoformat(session["expires_at"].replace("Z", "+00:00"))
    assert before < expires <= before + timedelta(days=1)
    # The customer's data is readable with it, and only the customer's.
    portal = {"Authorization": f"Bearer {session['token']}"}
    r = await merchant.gateway.get("/v1/portal/subscriptions", headers=portal)
    assert r.status_code == 200, r.text
    assert [s["id"] for s in r.json()["data"]] == [done["subscription_id"]]
    # A forged or altered token is refused.
    forged = {"Authorization": f"Bearer {session['token'][:-4]}AAAA"}
    assert (
        await merchant.gateway.get("/v1/portal/subscriptions", headers=forged)
    ).status_code == 401


async def test_17_portal_shows_plan_invoices_and_pdf_and_cancels(merchant: Merchant) -> None:
    customer_email = f"{unique('portal')}@example.com"
    done = await paid_subscription(merchant, email=customer_email)
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
    # 17.4: a confirmation email for the cancellation (at period end), then for the
    # reactivation.
    [canceled] = await eventually(
        lambda: mails(customer_email, "subscription_canceled"), timeout=30
    )
    assert view["product_name"] in canceled["Subject"]
    r = await gateway.post(f"/v1/portal/subscriptions/{view['id']}/reactivate", headers=portal)
    assert r.status_code == 200 and r.json()["cancel_at_period_end"] is False
    await eventually(lambda: mails(customer_email, "subscription_reactivated"), timeout=30)


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
