"""The customer portal page (`GET /portal`, plan section 17) in Chromium: a customer who paid
through a real checkout opens the portal link the merchant created for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browserkit import (
    Bos,
    card_fields,
    challenge,
    enter_card,
    no_horizontal_scroll,
    run_axe,
    small_targets,
    unique,
)

pytestmark = pytest.mark.browser


def paid_customer(bos: Bos, amount: int = 4900, name: str | None = None) -> dict[str, Any]:
    """A customer with an active paid subscription (checkout confirmed with a card), and a
    portal session for them."""
    plan = name or unique("Pro")
    checkout = bos.checkout(bos.price(amount, name=plan)["id"])
    done = bos.pay(checkout["id"])
    session = bos.post("/v1/portal-sessions", {"customer_id": done["customer"]["id"]})
    assert session.status_code == 201, session.text
    sub = bos.get(f"/v1/subscriptions/{done['subscription_id']}").json()
    return {"plan": plan, "checkout": done, "portal": session.json(), "subscription": sub}


def open_portal(page: Any, url: str) -> None:
    page.goto(url)
    page.locator("main[aria-busy=false]").wait_for()


def long_date(page: Any, iso: str) -> str:
    return str(
        page.evaluate(
            "(d) => new Date(d).toLocaleDateString(undefined, {year:'numeric', month:'long',"
            " day:'numeric'})",
            iso,
        )
    )


def test_17_2_plan_next_billing_date_and_payment_history(page: Any, bos: Bos, shot: Any) -> None:
    customer = paid_customer(bos, 4900)
    open_portal(page, customer["portal"]["url"])
    assert "#token=" not in page.url and "token" not in page.url  # dropped from the address bar
    plan = page.get_by_role("article", name=customer["plan"])
    assert plan.get_by_text("Active").count() == 1
    assert "$49.00 / month" in plan.inner_text()
    next_date = long_date(page, customer["subscription"]["current_period_end"])
    assert f"Next billing date\n{next_date} · $49.00" in plan.inner_text()
    history = page.get_by_role("table", name="Payment history")
    rows = history.locator("tbody tr")
    assert rows.count() == 1
    assert rows.first.inner_text().split("\t")[2:] == ["$49.00", "Paid"]
    invoices = page.get_by_role("table", name="Invoices")
    assert invoices.locator("tbody tr").count() == 1
    assert "Paid" in invoices.inner_text()
    shot(page, "overview")


def test_17_4_cancel_at_period_end_with_confirmation_then_reactivate(
    page: Any, bos: Bos, shot: Any
) -> None:
    customer = paid_customer(bos)
    sub_id = customer["subscription"]["id"]
    open_portal(page, customer["portal"]["url"])
    cancel = page.get_by_role("button", name="Cancel subscription")
    cancel.click()
    dialog = page.get_by_role("dialog", name=f"Cancel {customer['plan']}?")
    dialog.wait_for()
    end = long_date(page, customer["subscription"]["current_period_end"])
    assert f"You keep access until {end}" in dialog.inner_text()
    # The safe choice has the focus; Escape keeps the subscription.
    assert page.evaluate("() => document.activeElement.textContent") == "Keep subscription"
    shot(page, "confirm")
    page.keyboard.press("Escape")
    assert dialog.count() == 0 or dialog.is_hidden()
    assert page.evaluate("() => document.activeElement.textContent") == "Cancel subscription"
    assert bos.get(f"/v1/subscriptions/{sub_id}").json()["cancel_at_period_end"] is False
    cancel.click()
    dialog.get_by_role("button", name="Cancel at period end").click()
    page.get_by_text(f"Cancels {end}").wait_for()
    sub = bos.get(f"/v1/subscriptions/{sub_id}").json()
    assert sub["cancel_at_period_end"] is True and sub["status"] == "active"
    assert page.get_by_role("status").first.inner_text() == f"Your subscription will end on {end}."
    shot(page, "canceling")
    page.get_by_role("button", name="Reactivate").click()
    page.get_by_role("button", name="Cancel subscription").wait_for()
    assert bos.get(f"/v1/subscriptions/{sub_id}").json()["cancel_at_period_end"] is False


def test_17_5_invoice_pdf_download(page: Any, bos: Bos, tmp_path: Path) -> None:
    customer = paid_customer(bos)
    open_portal(page, customer["portal"]["url"])
    invoices = bos.get(f"/v1/subscriptions/{customer['subscription']['id']}/invoices").json()
    number = invoices["data"][0]["number"]
    with page.expect_download() as info:
        page.get_by_role("button", name=f"Download invoice {number} (PDF)").click()
    download = info.value
    assert download.suggested_filename == f"invoice-{number}.pdf"
    path = tmp_path / "invoice.pdf"
    download.save_as(str(path))
    data = path.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")  # the whole file
    assert number.encode() in data


@pytest.mark.parametrize(
    "card", ["5555 5555 5555 4444", "4000 0025 0000 3155"], ids=["mastercard", "3ds"]
)
def test_17_3_update_card(page: Any, bos: Bos, shot: Any, card: str) -> None:
    customer = paid_customer(bos)
    open_portal(page, customer["portal"]["url"])
    page.get_by_role("button", name="Update card").click()
    enter_card(page, card)
    shot(page, "card-form")
    page.get_by_role("button", name="Save card").click()
    if card.startswith("4000"):
        challenge(page).get_by_role("button", name="Complete").click()
    status = page.locator("#card-status")
    status.filter(has_text="Your card was updated").wait_for()
    # The new card is saved on the customer's Stripe customer.
    email = customer["checkout"]["customer"]["email"]
    stripe_customer = bos.sim.get("/v1/customers", params={"email": email}).json()["data"][0]
    methods = bos.sim.get(
        "/v1/payment_methods", params={"customer": stripe_customer["id"], "type": "card"}
    ).json()["data"]
    assert card.replace(" ", "")[-4:] in [m["card"]["last4"] for m in methods]


def test_17_3_declined_card_update_says_so(page: Any, bos: Bos) -> None:
    customer = paid_customer(bos)
    open_portal(page, customer["portal"]["url"])
    page.get_by_role("button", name="Update card").click()
    enter_card(page, "declined")
    page.get_by_role("button", name="Save card").click()
    error = page.locator("#card-error")
    error.filter(has_text="declined").wait_for()
    assert error.inner_text() == "Your card was declined. Try another card."


def test_17_1_invalid_link_explains(page: Any, gateway_url: str) -> None:
    page.goto(f"{gateway_url}/portal#token=bos_session_forged.signature")
    alert = page.get_by_role("alert").filter(has_text="billing link")
    alert.wait_for()
    assert alert.inner_text() == "This billing link is no longer valid. Ask for a new link."


def test_16_4_portal_axe_and_mobile(context_factory: Any, bos: Bos, axe: Path, shot: Any) -> None:
    customer = paid_customer(bos)
    page = context_factory(bypass_csp=True).new_page()
    open_portal(page, customer["portal"]["url"])
    assert run_axe(page, axe) == []
    page.get_by_role("button", name="Cancel subscription").click()
    page.get_by_role("dialog").wait_for()
    assert run_axe(page, axe) == []
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Update card").click()
    card_fields(page).get_by_label("Card number").wait_for()
    assert run_axe(page, axe) == []
    mobile = context_factory(
        viewport={"width": 375, "height": 667}, has_touch=True, is_mobile=True
    ).new_page()
    token_url = bos.post(
        "/v1/portal-sessions", {"customer_id": customer["checkout"]["customer"]["id"]}
    ).json()["url"]
    open_portal(mobile, token_url)
    sizes = no_horizontal_scroll(mobile)
    assert sizes["body"] <= sizes["view"], sizes
    assert small_targets(mobile) == []
    shot(mobile, "mobile")


def test_portal_page_has_a_strict_csp(page: Any, bos: Bos) -> None:
    customer = paid_customer(bos)
    response = page.goto(customer["portal"]["url"])
    page.locator("main[aria-busy=false]").wait_for()
    meta = page.locator("meta[http-equiv=Content-Security-Policy]").get_attribute("content")
    policy = meta + "; " + response.headers.get("content-security-policy", "")
    assert "default-src 'none'" in policy and "'unsafe-inline'" not in policy
    assert page.evaluate("() => window.__csp") == []
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__pwned = 1';"
        " document.body.appendChild(s); }"
    )
    assert page.evaluate("() => window.__pwned") is None
