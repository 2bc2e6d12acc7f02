"""Plan 14.2 (XSS prevention) in Chromium against the whole stack: hostile product names,
features, customer names and metadata are stored as data, returned as JSON data and shown
on the hosted checkout page and in the customer portal as text: nothing runs, no element is
injected, and the strict CSP is never even tested by an injected script."""

from __future__ import annotations

from typing import Any

import pytest
from browserkit import Bos, enter_card, hosted_url
from test_portal_page import open_portal

pytestmark = pytest.mark.browser

# Each payload would, if it reached the DOM as HTML, set window.__xss or open a dialog.
SCRIPT = "<script>window.__xss='script';alert(1)</script>"
IMG = "<img src=x onerror=\"window.__xss='img';alert(2)\">"
SVG = "\"><svg/onload=window.__xss='svg'>"
PRODUCT = f"Pro {SCRIPT}{IMG}"
FEATURE = f"feat {SVG}"
CUSTOMER = f"Mallory {IMG}{SVG}"
METADATA = {"note": SCRIPT, "html": IMG}


def watch(page: Any) -> list[str]:
    """Dialogs the page tries to open (alert/confirm/prompt), dismissed and recorded."""
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


def assert_inert(page: Any, dialogs: list[str]) -> None:
    page.wait_for_timeout(300)  # let an onerror/onload handler fire, if any got in
    assert dialogs == []
    assert page.evaluate("() => window.__xss") is None
    # No element of the payloads made it into the document.
    injected = page.evaluate(
        """() => [...document.querySelectorAll('*')].filter((e) =>
             e.hasAttribute('onerror') || e.hasAttribute('onload') ||
             (e.tagName === 'SCRIPT' && e.textContent.includes('__xss'))).length"""
    )
    assert injected == 0
    assert page.evaluate("() => window.__csp") == []


def hostile_checkout(bos: Bos) -> dict[str, Any]:
    product = bos.post("/v1/products", {"name": PRODUCT, "features": [FEATURE]})
    assert product.status_code == 201, product.text
    # The API answers JSON, with the payload as data (never HTML, never escaped away).
    assert product.headers["content-type"].startswith("application/json")
    assert product.json()["name"] == PRODUCT and product.json()["features"] == [FEATURE]
    price = bos.price(2900, product_id=product.json()["id"])
    checkout = bos.checkout(
        price["id"],
        customer={"email": f"mallory-{price['id'][-8:].lower()}@example.com", "name": CUSTOMER},
        metadata=METADATA,
    )
    assert checkout["product"]["name"] == PRODUCT
    assert checkout["customer"]["name"] == CUSTOMER and checkout["metadata"] == METADATA
    return checkout


def test_14_2_hostile_names_render_as_text_on_the_checkout_page(
    page: Any, bos: Bos, shot: Any
) -> None:
    checkout = hostile_checkout(bos)
    r = bos.gateway.get(f"/v1/checkout-sessions/{checkout['id']}", headers=bos.auth)
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["metadata"] == METADATA

    dialogs = watch(page)
    page.goto(hosted_url(checkout))
    page.locator("#submit:not([disabled])").wait_for()
    assert page.locator("h1").inner_text() == PRODUCT  # shown literally, as text
    assert PRODUCT in page.locator("#lines").inner_text()
    assert page.get_by_label("Name on card").input_value() == CUSTOMER
    assert PRODUCT in page.title()
    assert_inert(page, dialogs)
    shot(page, "hostile")

    enter_card(page, "visa")
    page.locator("#submit").click()
    page.locator("#done-title").wait_for(timeout=25_000)
    assert PRODUCT in page.locator("#done-text").inner_text()
    assert_inert(page, dialogs)
    assert bos.checkout_status(checkout["id"])["status"] == "complete"


def test_14_2_hostile_names_render_as_text_in_the_portal(page: Any, bos: Bos) -> None:
    checkout = hostile_checkout(bos)
    done = bos.pay(checkout["id"])
    sub = bos.get(f"/v1/subscriptions/{done['subscription_id']}").json()
    assert sub["metadata"] == METADATA
    portal = bos.post("/v1/portal-sessions", {"customer_id": done["customer"]["id"]})
    assert portal.status_code == 201, portal.text

    dialogs = watch(page)
    open_portal(page, portal.json()["url"])
    plan = page.get_by_role("article", name=PRODUCT)
    assert plan.count() == 1
    assert_inert(page, dialogs)


def test_14_2_a_hostile_checkout_id_in_the_url_is_not_reflected(page: Any, bos: Bos) -> None:
    dialogs = watch(page)
    base = str(bos.gateway.base_url).rstrip("/")
    response = page.goto(f"{base}/checkout/cs_%3Cimg%20src=x%20onerror=alert(1)%3E")
    assert response is not None and response.status == 404
    assert "<img" not in response.text() and "onerror" not in response.text()
    assert page.locator("h1").inner_text() == "Checkout not found"
    assert_inert(page, dialogs)
