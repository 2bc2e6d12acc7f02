"""16.5 browser compatibility: what a customer would notice on the hosted checkout page, the
SDK's embed and the portal, in each of the three engines (Chromium: Chrome and Edge;
Firefox ESR; WebKitGTK: the engine family of Safari), written once over pages.py. Every
text is asserted the same in every engine: where an engine differed, the page was fixed."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from browserkit import Bos, Site, hosted_url, unique
from engines import Driver, wait
from pages import CheckoutPage, PortalPage, ShopPage

pytestmark = pytest.mark.browser


def test_card_payment_shows_success_only_when_the_checkout_is_complete(
    driver: Driver, bos: Bos
) -> None:
    checkout = bos.checkout(bos.price(4900, name="Team plan")["id"])
    page = CheckoutPage(driver).open(checkout)
    assert page.text("h1") == "Team plan"
    assert page.text("#price") == "$49.00 per month"
    assert page.text("#submit") == "Pay $49.00"
    # The first three status reads that say `complete` reach the page as `processing`.
    page.hold_completion(3)
    page.pay("visa")
    assert page.wait_done() == "Payment complete"
    assert page.js("() => window.__held") == 3, "success appeared before `complete`"
    assert not page.visible("#pay-form")
    done = bos.checkout_status(checkout["id"])
    assert done["status"] == "complete" and done["payment"]["amount"] == 4900


def test_a_decline_says_so_and_another_card_pays(driver: Driver, bos: Bos) -> None:
    checkout = bos.checkout(bos.price(2900)["id"])
    page = CheckoutPage(driver).open(checkout)
    page.pay("declined")
    assert page.wait_error() == "Your card was declined. Try another card."
    wait(lambda: page.enabled("#submit"), 10, "the Pay button back")
    assert bos.checkout_status(checkout["id"])["status"] == "open"
    page.pay("visa")
    assert page.wait_done() == "Payment complete"
    assert page.text("#form-error") == ""


def test_three_d_secure_completed(driver: Driver, bos: Bos) -> None:
    checkout = bos.checkout(bos.price(4900)["id"])
    page = CheckoutPage(driver).open(checkout)
    page.pay("3ds")
    page.answer_challenge("success")
    assert page.wait_done() == "Payment complete"
    assert bos.checkout_status(checkout["id"])["payment"]["status"] == "succeeded"


def test_three_d_secure_failed_then_another_try(driver: Driver, bos: Bos) -> None:
    checkout = bos.checkout(bos.price(4900)["id"])
    page = CheckoutPage(driver).open(checkout)
    page.pay("3ds")
    page.answer_challenge("failure")
    assert page.wait_error() == "Card authentication failed. Try again or use another card."
    wait(lambda: page.enabled("#submit"), 10, "the Pay button back")
    assert bos.checkout_status(checkout["id"])["status"] == "open"
    page.pay("visa")
    assert page.wait_done() == "Payment complete"


def test_coupon_discounts_the_price_and_the_charge(driver: Driver, bos: Bos) -> None:
    code = unique("SAVE").upper().replace("-", "")
    bos.coupon(code=code, percent_off=20, duration="forever")
    checkout = bos.checkout(bos.price(10000, name="Business")["id"])
    page = CheckoutPage(driver).open(checkout)
    page.apply_coupon("NOPE" + code)
    page.wait_visible("#coupon-msg.bad")
    assert page.text("#coupon-msg") == "Invalid coupon code"
    page.apply_coupon(code)
    page.wait_visible(".line.discount")
    assert page.text("#price") == "$80.00 per month"
    assert page.text(".line.total dd") == "$80.00"
    assert page.text("#submit") == "Pay $80.00"
    discount = page.text(".line.discount") or ""
    assert f"Discount ({code})" in discount and "−$20.00" in discount, discount
    page.pay("visa")
    page.wait_done()
    assert bos.checkout_status(checkout["id"])["payment"]["amount"] == 8000


def test_free_plan_needs_no_card(driver: Driver, bos: Bos) -> None:
    checkout = bos.checkout(bos.price(0, name="Hobby")["id"])
    page = CheckoutPage(driver).open(checkout)
    assert page.text("#price") == "Free"
    assert not page.visible("#card-section")
    assert page.text("#submit") == "Get started"
    page.click("#submit")
    assert page.wait_done() == "You're all set"
    assert bos.checkout_status(checkout["id"])["status"] == "complete"


def test_the_page_at_375_px(driver: Driver, bos: Bos, merchant_site: Site) -> None:
    name = "A plan with a rather long name for a phone"
    checkout = bos.checkout(bos.price(4900, name=name)["id"])
    driver.viewport(375, 667)
    if driver.call("() => window.innerWidth") == 375:
        page = CheckoutPage(driver).open(checkout)
    else:
        # MiniBrowser's window is at least 447 px wide: the page in a 375-px iframe of the
        # merchant's site (its own viewport) instead.
        driver.goto(merchant_site.url("/phone") + "?src=" + quote(hosted_url(checkout), safe=""))
        page = CheckoutPage(driver, ("#phone",)).wait_ready()
    width = page.page_width()
    assert width["inner"] == 375, width
    assert width["scroll"] <= width["view"], width
    assert page.small_targets() == []
    page.pay("declined")
    page.wait_error()
    width = page.page_width()
    assert width["scroll"] <= width["view"], width
    page.pay("visa")
    assert page.wait_done() == "Payment complete"


def test_sdk_embed_on_another_origin_reports_events_and_resizes(
    driver: Driver, bos: Bos, merchant_site: Site
) -> None:
    user = unique("user")
    token = bos.session_token(user)["token"]
    checkout = bos.checkout_for_user(token, bos.price(4500)["id"])
    shop = ShopPage(driver).open(merchant_site)
    frame = shop.start(checkoutId=checkout["id"], sessionToken=token, mode="inline")
    loaded = shop.wait_event("loaded")
    assert loaded["checkout_id"] == checkout["id"] and loaded["amount_total"] == 4500
    assert frame.text("#submit") == "Pay $45.00"
    outer, inner = wait(lambda: _settled(shop), 10, "the frame's height to follow its page")
    frame.pay("declined")
    assert shop.wait_event("failed")["code"] == "card_declined"
    assert frame.wait_error() == "Your card was declined. Try another card."
    grown, _ = wait(lambda: (h := _settled(shop)) and h[0] > outer and h, 10, "the frame to grow")
    frame.pay("visa")
    completed = shop.wait_event("completed")
    done = bos.checkout_status(checkout["id"])
    assert completed["subscription_id"] == done["subscription_id"] is not None
    types = [e["type"] for e in shop.events()]
    assert types.index("loaded") < types.index("confirmed") < types.index("completed")
    assert types.count("completed") == 1
    wait(lambda: (h := _settled(shop)) and h[0] < grown, 10, "the frame to shrink")


def _settled(shop: ShopPage) -> tuple[int, int] | None:
    outer, inner = shop.frame_heights()
    return (outer, inner) if abs(outer - inner) <= 1 else None


def _paid_customer(bos: Bos) -> dict[str, Any]:
    plan = unique("Pro")
    done = bos.pay(bos.checkout(bos.price(4900, name=plan)["id"])["id"])
    session = bos.post("/v1/portal-sessions", {"customer_id": done["customer"]["id"]})
    assert session.status_code == 201, session.text
    sub = bos.get(f"/v1/subscriptions/{done['subscription_id']}").json()
    return {"plan": plan, "url": session.json()["url"], "subscription": sub}


def test_portal_cancel_at_period_end_and_reactivate(driver: Driver, bos: Bos) -> None:
    customer = _paid_customer(bos)
    sub_id = customer["subscription"]["id"]
    portal = PortalPage(driver).open(customer["url"])
    assert "$49.00 / month" in portal.subscription_text()
    portal.keep_subscription()
    assert bos.get(f"/v1/subscriptions/{sub_id}").json()["cancel_at_period_end"] is False
    text = portal.cancel_at_period_end()
    assert text.startswith("You keep access until "), text
    wait(lambda: portal.action_label() == "Reactivate", 20, "the Reactivate button")
    sub = bos.get(f"/v1/subscriptions/{sub_id}").json()
    assert sub["cancel_at_period_end"] is True and sub["status"] == "active"
    portal.click("#subscriptions article .actions button")
    wait(lambda: portal.action_label() == "Cancel subscription", 20, "the Cancel button")
    assert bos.get(f"/v1/subscriptions/{sub_id}").json()["cancel_at_period_end"] is False


def test_portal_invoice_pdf_link(driver: Driver, bos: Bos) -> None:
    customer = _paid_customer(bos)
    portal = PortalPage(driver).open(customer["url"])
    invoices = bos.get(f"/v1/subscriptions/{customer['subscription']['id']}/invoices").json()
    number = invoices["data"][0]["number"]
    label = portal.js(
        "() => document.querySelector('#invoices tbody tr button').getAttribute('aria-label')"
    )
    assert label == f"Download invoice {number} (PDF)"
    download = portal.download_invoice()
    assert download["name"] == f"invoice-{number}.pdf"
    assert download["type"] == "application/pdf"
    # The whole file: a PDF from its header to its end-of-file marker.
    assert download["head"] == "%PDF-" and download["text"].rstrip().endswith("%%EOF")
    assert download["size"] == len(download["text"])
    assert number in download["text"]
    portal.wait_text("#status", contains=f"Invoice {number} downloaded.")
