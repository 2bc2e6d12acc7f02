"""The hosted checkout page (`GET /checkout/{id}`) opened directly with its client secret, in
headless Chromium against the whole stack: payments (4.1-4.7, 10.1) and what the page
shows (2.2, 2.4, 6.1, 7.1). Error texts and loading: test_checkout_page_errors.py; mobile
and accessibility: test_checkout_page_accessibility.py; its Content-Security-Policy:
test_checkout_page_csp.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from browserkit import (
    CARD_FRAME,
    Bos,
    card_fields,
    challenge,
    enter_card,
    error_text,
    hosted_url,
    open_checkout,
    pay,
    unique,
    wait_done,
    wait_error,
)

pytestmark = pytest.mark.browser


# --- paying ---------------------------------------------------------------------------------


def test_4_1_card_payment_success_only_when_checkout_reports_complete(
    page: Any, bos: Bos, shot: Any
) -> None:
    price = bos.price(4900, name="Team plan")
    checkout = bos.checkout(price["id"])
    # The first three status reads say "processing" whatever the server says: the page must
    # keep waiting, not declare success because the confirm call went through.
    held = {"n": 0}

    def hold(route: Any) -> None:
        response = route.fetch()
        body = response.json()
        if route.request.method == "GET" and body.get("status") == "complete" and held["n"] < 3:
            held["n"] += 1
            body["status"] = "processing"
            route.fulfill(response=response, body=json.dumps(body))
            return
        route.fulfill(response=response)

    page.route(re.compile(r".*/v1/checkout-sessions/cs_[A-Za-z0-9]+$"), hold)
    open_checkout(page, checkout)
    assert page.locator("h1").inner_text() == "Team plan"
    assert page.locator("#submit").inner_text() == "Pay $49.00"
    shot(page, "ready")
    pay(page)
    page.locator("#submit[disabled]").wait_for()
    assert wait_done(page) == "Payment complete"
    assert held["n"] == 3, "success appeared before the page saw `complete`"
    shot(page, "complete")
    done = bos.checkout_status(checkout["id"])
    assert done["status"] == "complete" and done["subscription_id"]
    assert done["payment"]["amount"] == 4900 and done["payment"]["status"] == "succeeded"
    assert page.locator("#pay-form").is_hidden()


@pytest.mark.parametrize(
    ("card", "text"),
    [
        ("declined", "Your card was declined. Try another card."),
        ("insufficient_funds", "Insufficient funds. Try another card."),
    ],
    ids=["declined", "insufficient_funds"],
)
def test_4_2_4_3_and_16_2_declines_say_what_to_do_and_another_card_works(
    page: Any, bos: Bos, shot: Any, card: str, text: str
) -> None:
    checkout = bos.checkout(bos.price(2900)["id"])
    open_checkout(page, checkout)
    pay(page, card)
    assert wait_error(page) == text
    assert page.locator("#form-error").get_attribute("role") == "alert"
    assert page.locator("#submit").is_enabled()
    shot(page, "declined")
    assert bos.checkout_status(checkout["id"])["status"] == "open"
    pay(page, "visa")  # 4.2: retry with a different card
    assert wait_done(page) == "Payment complete"
    assert error_text(page) == ""


def test_4_4_three_d_secure_completed_in_the_modal(page: Any, bos: Bos, shot: Any) -> None:
    checkout = bos.checkout(bos.price(4900)["id"])
    open_checkout(page, checkout)
    pay(page, "3ds")
    dialog = challenge(page)
    dialog.wait_for()
    assert page.locator("#submit").is_disabled()
    assert page.locator("#submit").inner_text() == "Waiting for your bank…"
    shot(page, "challenge")
    dialog.get_by_role("button", name="Complete").click()
    assert wait_done(page) == "Payment complete"
    done = bos.checkout_status(checkout["id"])
    assert done["status"] == "complete" and done["payment"]["status"] == "succeeded"


def test_4_5_three_d_secure_failure_explains_and_allows_a_retry(
    page: Any, bos: Bos, shot: Any
) -> None:
    checkout = bos.checkout(bos.price(4900)["id"])
    open_checkout(page, checkout)
    pay(page, "3ds")
    dialog = challenge(page)
    dialog.get_by_role("button", name="Fail").click()
    assert wait_error(page) == "Card authentication failed. Try again or use another card."
    assert page.locator("#submit").is_enabled()
    shot(page, "failed")
    assert bos.checkout_status(checkout["id"])["status"] == "open"
    pay(page, "visa")
    assert wait_done(page) == "Payment complete"


@pytest.mark.parametrize("wallet", ["apple_pay", "google_pay"])
def test_4_6_and_4_7_wallet_button_pays_with_the_wallet(
    page: Any, bos: Bos, shot: Any, wallet: str
) -> None:
    checkout = bos.checkout(bos.price(1900)["id"])
    open_checkout(page, checkout, f"?sim_wallet={wallet}")
    label = "Pay with Apple Pay" if wallet == "apple_pay" else "Pay with Google Pay"
    page.locator("#wallet-button").get_by_role("button", name=label).click()
    sheet = page.get_by_role("dialog")
    sheet.wait_for()
    assert "19.00 USD" in sheet.inner_text()  # the sheet shows what is due
    shot(page, "sheet")
    sheet.get_by_role("button", name=label).click()
    assert wait_done(page) == "Payment complete"
    done = bos.checkout_status(checkout["id"])
    assert done["payment"]["status"] == "succeeded"
    pm = bos.sim.get(f"/v1/payment_intents/{bos.intents_of(checkout['id'])[0]['id']}")
    method = bos.sim.get(f"/v1/payment_methods/{pm.json()['payment_method']}").json()
    assert method["card"]["wallet"]["type"] == wallet


def test_no_wallet_button_when_the_browser_has_no_wallet(page: Any, bos: Bos) -> None:
    open_checkout(page, bos.checkout(bos.price(1900)["id"]))
    assert page.locator("#wallet").is_hidden()
    assert page.locator("#wallet-button button").count() == 0


def test_10_1_double_click_sends_one_payment_with_one_idempotency_key(page: Any, bos: Bos) -> None:
    checkout = bos.checkout(bos.price(3900)["id"])
    confirms: list[dict[str, str]] = []
    page.on(
        "request",
        lambda r: confirms.append(r.headers) if r.url.endswith("/confirm") else None,
    )
    open_checkout(page, checkout)
    enter_card(page, "visa")
    page.locator("#submit").dblclick()
    # and two more submissions that a disabled button would not stop
    card_fields(page).get_by_label("Security code").press("Enter")
    page.evaluate("() => document.getElementById('pay-form').requestSubmit()")
    assert wait_done(page) == "Payment complete"
    assert len(confirms) == 1, confirms
    assert confirms[0].get("idempotency-key", "").startswith("bos_")
    assert len(bos.intents_of(checkout["id"])) == 1


def test_a_new_attempt_gets_a_new_idempotency_key(page: Any, bos: Bos) -> None:
    checkout = bos.checkout(bos.price(3900)["id"])
    keys: list[str] = []
    page.on(
        "request",
        lambda r: (
            keys.append(r.headers.get("idempotency-key", ""))
            if r.url.endswith("/confirm")
            else None
        ),
    )
    open_checkout(page, checkout)
    pay(page, "declined")
    wait_error(page)
    pay(page, "visa")
    wait_done(page)
    assert len(keys) == 2 and keys[0] != keys[1] and all(keys)


# --- what the page shows ----------------------------------------------------------------------


def test_7_1_coupon_field_applies_a_discount_and_the_charge_follows(
    page: Any, bos: Bos, shot: Any
) -> None:
    code = unique("SAVE").upper().replace("-", "")
    bos.coupon(code=code, percent_off=20, duration="forever")
    checkout = bos.checkout(bos.price(10000, name="Business")["id"])
    open_checkout(page, checkout)
    page.get_by_role("button", name="Add promotion code").click()
    page.get_by_label("Promotion code").fill("NOPE" + code)
    page.get_by_role("button", name="Apply").click()
    page.locator("#coupon-msg.bad").wait_for()
    assert page.locator("#coupon-msg").inner_text() == "Invalid coupon code"
    assert page.get_by_label("Promotion code").get_attribute("aria-invalid") == "true"
    page.get_by_label("Promotion code").fill(code)
    page.get_by_label("Promotion code").press("Enter")
    page.locator(".line.discount").wait_for()
    assert page.locator("#price").inner_text() == "$80.00 per month"
    discount = page.locator(".line.discount")
    assert f"Discount ({code})" in discount.inner_text()
    assert "−$20.00" in discount.inner_text() and "20% off" in discount.inner_text()
    assert page.locator(".line.total dd").inner_text() == "$80.00"
    assert page.locator("#submit").inner_text() == "Pay $80.00"
    assert page.locator("#coupon").is_hidden()  # one coupon per checkout
    shot(page, "discounted")
    pay(page)
    wait_done(page)
    assert bos.checkout_status(checkout["id"])["payment"]["amount"] == 8000


def test_6_1_trial_and_setup_fee_lines(page: Any, bos: Bos, shot: Any) -> None:
    price = bos.price(2500, name="Starter", trial_days=14, setup_fee=1500)
    checkout = bos.checkout(price["id"])
    open_checkout(page, checkout)
    lines = page.locator("#lines").inner_text()
    assert "One-time setup fee" in lines and "$15.00" in lines
    assert "Free trial" in lines and "14 days" in lines
    ends = checkout["trial"]["ends_at"][:10]
    assert (
        page.evaluate(
            "(d) => new Date(d).toLocaleDateString(undefined, {year:'numeric', month:'long',"
            " day:'numeric'})",
            ends + "T12:00:00Z",
        )
        in lines
    )
    assert page.locator(".line.total dd").inner_text() == "$15.00"  # only the fee is due now
    assert "$25.00 / month" in lines
    assert page.locator("#submit").inner_text() == "Pay $15.00"
    shot(page, "trial")
    pay(page)
    wait_done(page)
    assert bos.checkout_status(checkout["id"])["payment"]["amount"] == 1500


def test_2_4_yearly_price_shows_the_interval_and_the_savings(
    page: Any, bos: Bos, shot: Any
) -> None:
    monthly = bos.price(1200, name="Annual or monthly")
    yearly = bos.price(12000, interval="year", product_id=monthly["product_id"])
    open_checkout(page, bos.checkout(yearly["id"]))
    assert page.locator("#price").inner_text() == "$120.00 per year"
    note = page.locator("#price-note")
    note.filter(has_text="You save").wait_for()
    assert note.inner_text() == (
        "That's $10.00 per month, billed yearly."
        " You save $24.00 (17%) compared with paying monthly."
    )
    assert "(yearly)" in page.locator("#lines").inner_text()
    shot(page, "yearly")
    # Without a monthly price to compare with, no savings claim.
    page.goto(hosted_url(bos.checkout(bos.price(12000, interval="year")["id"])))
    page.locator("#submit:not([disabled])").wait_for()
    page.wait_for_timeout(500)
    assert note.inner_text() == "That's $10.00 per month, billed yearly."


def test_2_2_free_checkout_needs_no_card(page: Any, bos: Bos, shot: Any) -> None:
    checkout = bos.checkout(bos.price(0, name="Hobby")["id"])
    open_checkout(page, checkout)
    assert page.locator("#price").inner_text() == "Free"
    assert page.locator("#card-section").is_hidden() and page.locator("#coupon").is_hidden()
    assert page.locator(CARD_FRAME).count() == 0
    page.get_by_role("button", name="Get started").click()
    assert wait_done(page) == "You're all set"
    shot(page, "done")
    assert bos.checkout_status(checkout["id"])["status"] == "complete"
