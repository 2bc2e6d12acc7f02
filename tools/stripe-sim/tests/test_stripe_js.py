"""The fake Stripe.js in headless Chromium: card entry and validation, createPaymentMethod,
3DS complete and fail, confirmCardSetup, wallet button. The page is served from another
origin (a local server on another port) so CORS is exercised too, and the card fields live in
an iframe of the simulator's origin, as Stripe's: tests fill them through a frame locator."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import stripe
from playwright.sync_api import expect

from stripe_sim.testing import confirmed_card_payment

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian chromium"),
]

PAGE = Path(__file__).with_name("checkout_page.html")
CARD_FRAME = 'iframe[title="Secure card payment input frame"]'
CHALLENGE_FRAME = 'iframe[title="3D Secure authentication"]'


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def shop_url(sim_url: str) -> Iterator[str]:
    """The merchant page, served from its own origin (another port) like a BOS frontend."""
    body = PAGE.read_text().replace("__SIM__", sim_url).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (stdlib API)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def page(browser: Any, shop_url: str) -> Iterator[Any]:
    context = browser.new_context(base_url=shop_url)
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    yield pg
    context.close()


def _card(page: Any) -> Any:
    return page.frame_locator(CARD_FRAME)


def _challenge(page: Any) -> Any:
    return page.frame_locator(CHALLENGE_FRAME).get_by_role(
        "dialog", name="3D Secure authentication"
    )


def _open(page: Any, query: str = "") -> None:
    page.goto(f"/checkout{query}")
    _card(page).get_by_label("Card number").wait_for()


def _enter_card(page: Any, number: str, expiry: str = "12 / 34", cvc: str = "123") -> None:
    card = _card(page)
    card.get_by_label("Card number").fill(number)
    card.get_by_label("Expiration date").fill(expiry)
    card.get_by_label("Security code").fill(cvc)


def _result(page: Any) -> dict[str, Any]:
    page.wait_for_function("() => window.result !== undefined")
    # the page stores the Stripe.js result in window.result (and prints it in #output)
    result: dict[str, Any] = json.loads(page.locator("#output").text_content() or "{}")
    return result


def test_card_fields_are_out_of_the_pages_reach(page: Any, sim_url: str) -> None:
    _open(page)
    assert page.get_by_label("Card number").count() == 0
    assert page.locator("input").count() == 0
    frame = page.locator(CARD_FRAME)
    assert (frame.get_attribute("src") or "").startswith(f"{sim_url}/js.stripe.com/v3/")
    # another origin: the page can neither read nor fill the frame's inputs
    assert page.evaluate("() => document.querySelector('iframe').contentDocument") is None


def test_card_entry_and_create_payment_method(page: Any, client: stripe.StripeClient) -> None:
    _open(page)
    _enter_card(page, "4242 4242 4242 4242")
    page.wait_for_function("() => (window.changes.at(-1) || {}).complete === true")
    last = page.evaluate("() => window.changes[window.changes.length - 1]")
    assert last["complete"] is True
    assert last["brand"] == "visa"
    assert last.get("error") is None
    result = page.evaluate("() => window.createPM()")
    pm = result["paymentMethod"]
    assert pm["card"]["last4"] == "4242"
    assert pm["billing_details"]["name"] == "Ada"
    assert client.v1.payment_methods.retrieve(pm["id"]).card.exp_year == 2034


def test_validation_errors_are_reported(page: Any) -> None:
    _open(page)
    card = _card(page)
    card.get_by_label("Card number").fill("4242 4242 4242 4241")
    alert = card.get_by_role("alert")
    assert alert.text_content() == "Your card number is invalid."
    assert card.get_by_label("Card number").get_attribute("aria-invalid") == "true"
    page.wait_for_function("() => window.changes.length > 0")
    last = page.evaluate("() => window.changes[window.changes.length - 1]")
    assert last["error"]["code"] == "invalid_number"
    assert last["complete"] is False
    card.get_by_label("Card number").fill("4242 4242 4242 4242")
    card.get_by_label("Expiration date").fill("01 / 20")
    assert "in the past" in (alert.text_content() or "")
    result = page.evaluate("() => window.createPM()")
    assert result["error"]["type"] == "validation_error"


def test_3ds_challenge_completed(page: Any, client: stripe.StripeClient) -> None:
    pi = client.v1.payment_intents.create(params={"amount": 2500, "currency": "usd"})
    _open(page)
    _enter_card(page, "4000 0027 6000 3184")
    page.evaluate("(secret) => { window.pay(secret); }", pi.client_secret)
    dialog = _challenge(page)
    dialog.wait_for()
    dialog.get_by_role("button", name="Complete").click()
    result = _result(page)
    assert result["paymentIntent"]["status"] == "succeeded"
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    assert page.locator(CHALLENGE_FRAME).count() == 0


def test_3ds_challenge_takes_the_focus_and_works_by_keyboard(
    page: Any, client: stripe.StripeClient
) -> None:
    pi = client.v1.payment_intents.create(params={"amount": 2500, "currency": "usd"})
    _open(page)
    _enter_card(page, "4000 0027 6000 3184")
    page.evaluate("(secret) => { window.pay(secret); }", pi.client_secret)
    expect(_challenge(page).get_by_role("button", name="Complete")).to_be_focused()
    page.keyboard.press("Enter")
    assert _result(page)["paymentIntent"]["status"] == "succeeded"


def test_3ds_challenge_failed(page: Any, client: stripe.StripeClient) -> None:
    pi = client.v1.payment_intents.create(params={"amount": 2500, "currency": "usd"})
    _open(page)
    _enter_card(page, "4000 0025 0000 3155")
    page.evaluate("(secret) => { window.pay(secret); }", pi.client_secret)
    _challenge(page).get_by_role("button", name="Fail").click()
    result = _result(page)
    assert result["error"]["code"] == "payment_intent_authentication_failure"
    assert result["error"]["payment_intent"]["status"] == "requires_payment_method"
    assert client.v1.payment_intents.retrieve(pi.id).status == "requires_payment_method"


def test_decline_is_returned_as_error(page: Any, client: stripe.StripeClient) -> None:
    pi = client.v1.payment_intents.create(params={"amount": 2500, "currency": "usd"})
    _open(page)
    _enter_card(page, "4000 0000 0000 9995")
    page.evaluate("(secret) => { window.pay(secret); }", pi.client_secret)
    result = _result(page)
    assert result["error"]["type"] == "card_error"
    assert result["error"]["decline_code"] == "insufficient_funds"


def test_confirm_card_setup_with_3ds(page: Any, client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    si = client.v1.setup_intents.create(params={"customer": customer.id, "usage": "off_session"})
    _open(page)
    _enter_card(page, "4000 0025 0000 3155")
    page.evaluate("(secret) => { window.setup(secret); }", si.client_secret)
    _challenge(page).get_by_role("button", name="Complete").click()
    result = _result(page)
    assert result.get("setupIntent", {}).get("status") == "succeeded", result
    pm = client.v1.payment_methods.retrieve(result["setupIntent"]["payment_method"])
    assert pm.customer == customer.id


def test_wallet_button_apple_pay(page: Any, client: stripe.StripeClient) -> None:
    pi = client.v1.payment_intents.create(params={"amount": 1500, "currency": "usd"})
    _open(page, "?sim_wallet=apple_pay")
    can = page.evaluate("(secret) => window.wallet(secret)", pi.client_secret)
    assert can == {"applePay": True, "googlePay": False, "link": False}
    page.locator("#wallet").get_by_role("button", name="Pay with Apple Pay").click()
    sheet = page.get_by_role("dialog", name="Apple Pay (simulated)")
    assert "15.00 USD" in (sheet.text_content() or "")
    sheet.get_by_role("button", name="Pay with Apple Pay").click()
    result = _result(page)
    assert result.get("walletName") == "applePay", result
    assert result["paymentIntent"]["status"] == "succeeded"
    pm = client.v1.payment_methods.retrieve(result["paymentMethod"]["id"])
    assert pm.card.wallet.type == "apple_pay"


def test_no_wallet_without_flag(page: Any, client: stripe.StripeClient) -> None:
    pi = client.v1.payment_intents.create(params={"amount": 1500, "currency": "usd"})
    _open(page)
    assert page.evaluate("(secret) => window.wallet(secret)", pi.client_secret) is None
    assert page.locator("#wallet button").count() == 0


def test_handle_next_action_after_server_side_confirm(
    page: Any, client: stripe.StripeClient
) -> None:
    customer = client.v1.customers.create()
    pm = client.v1.payment_methods.attach(
        "pm_card_threeDSecure2Required", params={"customer": customer.id}
    )
    pi = client.v1.payment_intents.create(
        params=confirmed_card_payment(4100, pm.id, customer=customer.id)
    )
    assert pi.status == "requires_action"
    _open(page)
    page.evaluate("(secret) => { window.nextAction(secret); }", pi.client_secret)
    _challenge(page).get_by_role("button", name="Complete").click()
    assert _result(page)["paymentIntent"]["status"] == "succeeded"


def test_payment_element_confirm_payment(page: Any, client: stripe.StripeClient) -> None:
    pi = client.v1.payment_intents.create(params={"amount": 1200, "currency": "usd"})
    _open(page, "?element=payment")
    assert page.locator("[data-stripe-sim-element=payment]").count() == 1
    _enter_card(page, "5555 5555 5555 4444")
    page.evaluate("(secret) => { window.confirmPayment(secret); }", pi.client_secret)
    result = _result(page)
    assert result["paymentIntent"]["status"] == "succeeded"
    charge = client.v1.charges.retrieve(result["paymentIntent"]["latest_charge"])
    assert charge.payment_method_details.card.brand == "mastercard"


def test_google_pay_flag(page: Any, client: stripe.StripeClient) -> None:
    pi = client.v1.payment_intents.create(params={"amount": 900, "currency": "usd"})
    _open(page, "?sim_wallet=google_pay")
    can = page.evaluate("(secret) => window.wallet(secret)", pi.client_secret)
    assert can == {"applePay": False, "googlePay": True, "link": False}
    page.locator("#wallet").get_by_role("button", name="Pay with Google Pay").click()
    page.get_by_role("dialog", name="Google Pay (simulated)").get_by_role(
        "button", name="Pay with Google Pay"
    ).click()
    result = _result(page)
    assert result.get("walletName") == "googlePay", result
    pm = client.v1.payment_methods.retrieve(result["paymentMethod"]["id"])
    assert pm.card.wallet.type == "google_pay"
