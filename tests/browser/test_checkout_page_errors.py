"""The hosted checkout page's error texts (16.2: expired, invalid card data, network failure,
rate limit, unknown or incomplete links) and its loading state on a slow network (16.1), in
headless Chromium against the whole stack."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from browserkit import (
    Bos,
    card_fields,
    enter_card,
    error_text,
    expire_in_db,
    hosted_url,
    open_checkout,
    pay,
    wait_error,
)

pytestmark = pytest.mark.browser


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
