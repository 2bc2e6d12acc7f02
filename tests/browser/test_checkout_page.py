"""The hosted checkout page (`GET /checkout/{id}`) opened directly with its client secret, in
headless Chromium against the whole stack: payments (4.1-4.7), what the page shows (2.4,
6.x, 7.1), error texts (16.2), loading (16.1), mobile (16.3), accessibility (16.4) and its
Content-Security-Policy."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
from pathlib import Path
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
    no_horizontal_scroll,
    run_axe,
    small_targets,
    unique,
    wait_error,
)

pytestmark = pytest.mark.browser

DONE = "#done-title"


def open_checkout(page: Any, checkout: dict[str, Any], query: str = "") -> None:
    page.goto(hosted_url(checkout, query))
    page.locator("#submit:not([disabled])").wait_for()


def pay(page: Any, card: str = "visa") -> None:
    enter_card(page, card)
    page.locator("#submit").click()


def wait_done(page: Any, timeout: float = 25_000) -> str:
    page.locator(DONE).wait_for(timeout=timeout)
    return page.locator(DONE).inner_text()


def expire_in_db(checkout_id: str) -> None:
    """Moves a checkout's expiry into the past (no API can; TTL is 24 h in the test stack)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> None:
        engine = create_async_engine(os.environ["DATABASE_URL"])
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE checkout.checkout_sessions SET expires_at = now() - interval '1 second'"
                    " WHERE id = :id"
                ),
                {"id": checkout_id},
            )
        await engine.dispose()

    # Sync Playwright owns this thread's event loop: run the update on another thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result(timeout=30)


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


# --- 16.2 error texts -------------------------------------------------------------------------


def test_16_2_checkout_that_expired_while_open(page: Any, bos: Bos, shot: Any) -> None:
    checkout = bos.checkout(bos.price(2900)["id"])
    open_checkout(page, checkout)
    enter_card(page, "visa")
    expire_in_db(checkout["id"])
    page.locator("#submit").click()
    page.get_by_role("alert").filter(has_text="This checkout expired. Start again.").wait_for()
    assert page.locator("#pay-form").is_hidden()
    shot(page, "expired")


def test_16_2_expired_checkout_on_arrival(page: Any, bos: Bos) -> None:
    checkout = bos.checkout(bos.price(2900)["id"])
    expire_in_db(checkout["id"])
    page.goto(hosted_url(checkout))
    page.get_by_role("alert").filter(has_text="This checkout expired. Start again.").wait_for()
    assert page.locator("#pay-form").is_hidden()


def test_16_2_card_form_validation_is_shown_before_any_payment(page: Any, bos: Bos) -> None:
    checkout = bos.checkout(bos.price(2900)["id"])
    confirms: list[str] = []
    page.on("request", lambda r: confirms.append(r.url) if r.url.endswith("/confirm") else None)
    open_checkout(page, checkout)
    number = card_fields(page).get_by_label("Card number")
    number.fill("4242 4242 4242")
    page.locator("#submit").click()
    assert wait_error(page) == "Your card number is incomplete."
    # The focus goes to the card element's frame, and there to the card number.
    assert page.evaluate("() => document.activeElement.title") == "Secure card payment input frame"
    assert number.evaluate("(e) => e === document.activeElement")
    assert confirms == []


def test_16_2_network_failure_and_rate_limit_have_next_steps(page: Any, bos: Bos) -> None:
    checkout = bos.checkout(bos.price(2900)["id"])
    open_checkout(page, checkout)
    page.route(re.compile(r".*/confirm$"), lambda route: route.abort("internetdisconnected"))
    pay(page)
    assert wait_error(page) == (
        "We couldn't reach the server. Check your connection, then try again."
    )
    page.unroute(re.compile(r".*/confirm$"))
    page.route(
        re.compile(r".*/confirm$"),
        lambda route: route.fulfill(
            status=429,
            headers={"Retry-After": "1", "Content-Type": "application/json"},
            body=json.dumps(
                {
                    "error": {
                        "type": "rate_limited",
                        "code": "rate_limited",
                        "message": "Too many requests, please retry later.",
                    }
                }
            ),
        ),
    )
    page.locator("#submit").click()
    page.locator("#form-error").filter(has_text="Too many attempts").wait_for(timeout=15_000)
    assert error_text(page) == "Too many attempts. Wait a minute, then try again."
    assert bos.checkout_status(checkout["id"])["status"] == "open"  # nothing was charged


def test_unknown_checkout_is_a_404_page(page: Any, gateway_url: str) -> None:
    response = page.goto(f"{gateway_url}/checkout/cs_doesnotexist0000000000")
    assert response.status == 404
    assert page.get_by_role("heading").inner_text() == "Checkout not found"


def test_16_2_link_without_its_secret_explains(page: Any, bos: Bos) -> None:
    checkout = bos.checkout(bos.price(2900)["id"])
    page.goto(checkout["url"].split("#")[0])
    page.get_by_role("alert").filter(has_text="This checkout link isn't valid").wait_for()


# --- 16.1 loading ---------------------------------------------------------------------------

FAST_3G = {"latency": 562.5, "downloadThroughput": 180_000, "uploadThroughput": 84_375}


def test_16_1_loading_skeleton_on_3g_without_layout_shift(
    context_factory: Any, bos: Bos, shot: Any, artifacts: Path
) -> None:
    checkout = bos.checkout(bos.price(2900)["id"])
    page = context_factory().new_page()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, **FAST_3G})
    page.goto(hosted_url(checkout), wait_until="commit")
    skeleton = page.locator("#title .sk")
    skeleton.wait_for(timeout=30_000)
    assert page.locator("main").get_attribute("aria-busy") == "true"
    assert page.get_by_role("status").inner_text() == "Loading checkout…"
    shot(page, "skeleton")
    page.locator("#submit:not([disabled])").wait_for(timeout=60_000)
    shot(page, "loaded")
    page.wait_for_timeout(500)
    cls = page.evaluate("() => window.__cls")
    timing = page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " return {dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd, now: performance.now()}; }"
    )
    assert page.locator("main").get_attribute("aria-busy") == "false"
    assert cls < 0.1, page.evaluate("() => window.__shifts")
    (artifacts / "loading-3g.json").write_text(json.dumps({"cls": cls, **timing}, indent=2))


# --- 16.3 / 13.5 mobile ---------------------------------------------------------------------------


@pytest.mark.parametrize("width", [375, 320])
def test_16_3_and_13_5_mobile_layout_touch_targets_and_tap_to_pay(
    context_factory: Any, bos: Bos, shot: Any, width: int
) -> None:
    context = context_factory(
        viewport={"width": width, "height": 667},
        has_touch=True,
        is_mobile=True,
        device_scale_factor=2,
    )
    page = context.new_page()
    code = unique("M").upper().replace("-", "")
    bos.coupon(code=code, percent_off=10, duration="once")
    checkout = bos.checkout(
        bos.price(4900, name="A plan with a rather long name for a phone")["id"]
    )
    open_checkout(page, checkout)
    sizes = no_horizontal_scroll(page)
    assert sizes["scroll"] <= sizes["view"], sizes
    assert small_targets(page) == []
    shot(page, "ready")
    page.get_by_role("button", name="Add promotion code").tap()
    page.get_by_label("Promotion code").fill(code)
    page.get_by_role("button", name="Apply").tap()
    page.locator(".line.discount").wait_for()
    enter_card(page, "declined")
    page.locator("#submit").tap()
    wait_error(page)
    sizes = no_horizontal_scroll(page)
    assert sizes["scroll"] <= sizes["view"], sizes
    assert small_targets(page) == []
    shot(page, "error")
    # The on-screen keyboard takes half the screen: still no sideways scroll, and the
    # focused field stays reachable.
    card_fields(page).get_by_label("Card number").focus()
    page.set_viewport_size({"width": width, "height": 340})
    sizes = no_horizontal_scroll(page)
    assert sizes["scroll"] <= sizes["view"], sizes
    card_fields(page).get_by_label("Card number").fill("4242 4242 4242 4242")
    page.locator("#submit").tap()
    assert wait_done(page) == "Payment complete"
    sizes = no_horizontal_scroll(page)
    assert sizes["scroll"] <= sizes["view"], sizes
    shot(page, "done")


# --- 16.4 accessibility ---------------------------------------------------------------------------


def test_16_4_axe_finds_no_wcag_aa_violation_in_any_state(
    context_factory: Any, bos: Bos, axe: Path
) -> None:
    # bypass_csp lets axe's script tag in; the CSP itself is tested below.
    page = context_factory(bypass_csp=True).new_page()
    code = unique("A").upper().replace("-", "")
    bos.coupon(
        code=code, amount_off=500, currency="usd", duration="repeating", duration_in_months=3
    )
    price = bos.price(2900, trial_days=7, setup_fee=900)
    checkout = bos.checkout(price["id"])
    open_checkout(page, checkout)
    assert run_axe(page, axe) == []
    page.get_by_role("button", name="Add promotion code").click()
    page.get_by_label("Promotion code").fill("WRONG")
    page.get_by_role("button", name="Apply").click()
    page.locator("#coupon-msg.bad").wait_for()
    assert run_axe(page, axe) == []
    page.get_by_label("Promotion code").fill(code)
    page.get_by_role("button", name="Apply").click()
    page.locator(".line.discount").wait_for()
    pay(page, "declined")
    wait_error(page)
    assert run_axe(page, axe) == []
    pay(page, "visa")
    wait_done(page)
    assert run_axe(page, axe) == []


def test_16_4_axe_on_a_free_checkout_and_the_404_page(
    context_factory: Any, bos: Bos, axe: Path, gateway_url: str
) -> None:
    page = context_factory(bypass_csp=True).new_page()
    open_checkout(page, bos.checkout(bos.price(0)["id"]))
    assert run_axe(page, axe) == []
    page.goto(f"{gateway_url}/checkout/cs_doesnotexist0000000000")
    assert run_axe(page, axe) == []


def test_16_4_keyboard_only_checkout_with_visible_focus(page: Any, bos: Bos, shot: Any) -> None:
    checkout = bos.checkout(bos.price(2900, name="Keyboard plan")["id"])
    open_checkout(page, checkout)
    seen: list[str] = []
    outlines: list[str] = []

    described = """(e) => ({ name: e.labels && e.labels[0] ? e.labels[0].textContent.trim()
        : e.textContent.trim(), outline: getComputedStyle(e).outlineStyle })"""

    def tab() -> str:
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.tagName") == "IFRAME":
            # inside the card element's frame: what has the focus there
            info = card_fields(page).locator(":focus").evaluate(described)
        else:
            info = page.evaluate(f"() => ({described})(document.activeElement)")
        seen.append(info["name"])
        outlines.append(info["outline"])
        return str(info["name"])

    assert tab() == "Add promotion code"
    assert tab() == "Email"
    assert tab() == "Name on card"
    page.keyboard.press("Control+A")
    page.keyboard.type("Grace Hopper")
    assert tab() == "Card number"
    page.keyboard.type("4000002500003155")  # 3DS: the challenge must work by keyboard too
    assert tab() == "Expiration date"
    page.keyboard.type("1234")
    assert tab() == "Security code"
    page.keyboard.type("123")
    assert tab().startswith("Pay $29.00")
    assert all(o not in ("none", "") for o in outlines), list(zip(seen, outlines, strict=True))
    shot(page, "focus-on-pay")
    page.keyboard.press("Enter")
    dialog = challenge(page)
    dialog.wait_for()
    from playwright.sync_api import expect

    # the challenge frame takes the focus: its first button
    expect(dialog.get_by_role("button", name="Complete")).to_be_focused()
    page.keyboard.press("Enter")
    assert wait_done(page) == "Payment complete"
    # The success message takes the focus, so a screen reader hears it.
    assert page.evaluate("() => document.activeElement.id") == "done"


def test_16_4_fields_are_labelled_and_status_is_announced(page: Any, bos: Bos) -> None:
    open_checkout(page, bos.checkout(bos.price(2900)["id"]))
    for label in ("Email", "Name on card"):
        assert page.get_by_label(label, exact=True).count() == 1, label
    for label in ("Card number", "Expiration date", "Security code"):
        assert card_fields(page).get_by_label(label, exact=True).count() == 1, label
    assert page.get_by_role("group", name="Card details").count() == 1
    assert page.get_by_role("heading", level=1).count() == 1
    toggle = page.get_by_role("button", name="Add promotion code")
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert page.get_by_label("Promotion code").evaluate("(e) => e === document.activeElement")
    assert page.get_by_role("status").count() >= 1
    assert page.locator("html").get_attribute("lang") == "en"


# --- CSP ------------------------------------------------------------------------------------------


def test_strict_csp_header_and_no_violation_during_a_checkout(
    page: Any, bos: Bos, merchant_site: Any
) -> None:
    checkout = bos.checkout(bos.price(2900)["id"])
    response = page.goto(hosted_url(checkout))
    csp = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert re.fullmatch(r"'nonce-[A-Za-z0-9_-]{20,}' \S+", directives["script-src"])
    assert directives["frame-ancestors"] == f"'self' {merchant_site.origin}"
    assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    # No inline event handler anywhere in the markup.
    assert (
        page.evaluate(
            "() => [...document.querySelectorAll('*')].filter((e) =>"
            " [...e.attributes].some((a) => a.name.startsWith('on'))).length"
        )
        == 0
    )
    page.locator("#submit:not([disabled])").wait_for()
    pay(page, "3ds")
    challenge(page).get_by_role("button", name="Complete").click()
    wait_done(page)
    assert page.evaluate("() => window.__csp") == []
    # An injected inline script (what an XSS would do) does not run.
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__pwned = 1';"
        " document.body.appendChild(s); }"
    )
    assert page.evaluate("() => window.__pwned") is None
    assert page.evaluate("() => window.__csp.map((v) => v.directive)") == ["script-src-elem"]
    # A second load gets another nonce.
    again = page.request.get(checkout["url"].split("#")[0]).headers["content-security-policy"]
    assert again != csp


def test_the_client_secret_leaves_the_address_bar(page: Any, bos: Bos) -> None:
    checkout = bos.checkout(bos.price(2900)["id"])
    open_checkout(page, checkout)
    assert "#" not in page.url and "_secret_" not in page.url
    page.reload()  # the secret is kept for this tab only
    page.locator("#submit:not([disabled])").wait_for()
