"""The hosted checkout page's Content-Security-Policy (strict, and no violation during a whole
checkout) and its client secret, which leaves the address bar, in headless Chromium against
the whole stack."""

from __future__ import annotations

import re
from typing import Any

import pytest
from browserkit import (
    Bos,
    challenge,
    hosted_url,
    open_checkout,
    pay,
    wait_done,
)

pytestmark = pytest.mark.browser


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
