"""The hosted checkout page on phones (16.3, 13.5: 320 and 375 px, touch targets, tap to pay)
and for everyone (16.4: axe in every state, keyboard only, labels and announcements), in
headless Chromium against the whole stack."""

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
    open_checkout,
    pay,
    run_axe,
    small_targets,
    unique,
    wait_done,
    wait_error,
)

pytestmark = pytest.mark.browser


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
    # bypass_csp lets axe's script tag in; the CSP itself is tested in
    # test_checkout_page_csp.py.
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
