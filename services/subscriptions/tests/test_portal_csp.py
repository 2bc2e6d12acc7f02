"""The portal page's Content-Security-Policy for Stripe.js (docs.stripe.com/security/guide):
Stripe's documented sources for Stripe's Stripe.js, the simulator's origin otherwise."""

from __future__ import annotations

from bos_common.stripe_testing import (
    assert_csp_allows_simulated_stripe_js,
    assert_csp_allows_stripe_js,
)
from subscriptions.portal_page import _policy


def test_the_portal_allows_what_stripe_documents_for_stripe_js() -> None:
    assert_csp_allows_stripe_js(_policy("https://js.stripe.com/v3/"))


def test_the_portal_allows_the_simulators_stripe_js_and_its_card_iframe() -> None:
    sim = "http://127.0.0.1:12111"
    csp = assert_csp_allows_simulated_stripe_js(_policy(f"{sim}/js.stripe.com/v3/"), sim)
    assert not any("stripe.com" in s for d in csp.values() for s in d)
