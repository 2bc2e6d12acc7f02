"""Plan 12.3 (multi-currency) on the hosted checkout page: a customer in the US (en-US
browser, US card) buys a product priced in EUR, sees euros and is charged euros."""

from __future__ import annotations

from typing import Any

import pytest
from browserkit import Bos, enter_card, hosted_url

pytestmark = pytest.mark.browser


def test_12_3_eur_price_shown_in_eur_and_charged_in_eur(
    context_factory: Any, bos: Bos, shot: Any
) -> None:
    page = context_factory(locale="en-US").new_page()
    checkout = bos.checkout(bos.price(4500, name="Euro plan", currency="eur")["id"])
    page.goto(hosted_url(checkout))
    page.locator("#submit:not([disabled])").wait_for()
    assert page.locator("#price").inner_text() == "€45.00 per month"
    assert page.locator(".line.total dd").inner_text() == "€45.00"
    assert page.locator("#submit").inner_text() == "Pay €45.00"
    assert "$" not in page.locator("main").inner_text()
    shot(page, "eur")

    enter_card(page, "visa")  # Stripe's 4242 test card is a US card
    page.locator("#submit").click()
    page.locator("#done-title").wait_for(timeout=25_000)
    done = bos.checkout_status(checkout["id"])
    assert (done["payment"]["currency"], done["payment"]["amount"]) == ("eur", 4500)
    [pi] = bos.intents_of(checkout["id"])
    assert (pi["currency"], pi["amount"], pi["status"]) == ("eur", 4500, "succeeded")
