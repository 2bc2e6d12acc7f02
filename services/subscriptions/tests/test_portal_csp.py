"""The portal page's Content-Security-Policy for Stripe.js (shared/stripe/README.md rule 7):
Stripe's documented sources for Stripe's Stripe.js, the simulator's origin otherwise."""

from __future__ import annotations

from subscriptions.portal_page import _policy


def directives(csp: str) -> dict[str, set[str]]:
    parts = (d.strip().split() for d in csp.split(";") if d.strip())
    return {p[0]: set(p[1:]) for p in parts}


def test_the_portal_allows_what_stripe_documents_for_stripe_js() -> None:
    csp = directives(_policy("https://js.stripe.com/v3/"))
    assert {"https://js.stripe.com", "https://*.js.stripe.com"} <= csp["script-src"]
    assert {
        "https://js.stripe.com",
        "https://*.js.stripe.com",
        "https://hooks.stripe.com",
    } <= csp["frame-src"]
    assert "https://api.stripe.com" in csp["connect-src"]


def test_the_portal_allows_the_simulators_stripe_js_and_its_card_iframe() -> None:
    sim = "http://127.0.0.1:12111"
    csp = directives(_policy(f"{sim}/js.stripe.com/v3/"))
    assert sim in csp["script-src"]
    assert csp["frame-src"] == {sim}
    assert sim in csp["connect-src"]
    assert not any("stripe.com" in s for d in csp.values() for s in d)
