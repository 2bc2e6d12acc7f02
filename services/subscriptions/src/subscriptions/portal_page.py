"""The customer portal page (`GET /portal`): current plan, next billing date, cancel at
period end (with a confirmation) and reactivate, card update through Stripe.js, invoices
with PDF download and the payment history, all through `/v1/portal/*` with the portal
token from `#token=` (or `?token=`), which the page keeps for the tab and drops from the
address bar.

The markup, stylesheet and script live in templates/portal.{html,css,js}. The page carries
its own Content-Security-Policy in a `<meta>` (script and style allowed by their SHA-256,
Stripe.js by origin), so `PORTAL_HTML` is safe to serve as is. `portal_response()` adds
the same policy as a header plus `frame-ancestors 'none'` (which a `<meta>` cannot carry)
and the other security headers: the route should serve that.

Stripe.js comes from `STRIPE_JS_URL` (the simulator's in dev and tests) with
`STRIPE_PUBLISHABLE_KEY`, the same variables the checkout service reads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from importlib import resources
from string import Template
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse

_FILES = resources.files("subscriptions")
_TEMPLATE = Template(_FILES.joinpath("templates/portal.html").read_text())
_CSS = _FILES.joinpath("templates/portal.css").read_text()
_JS = _FILES.joinpath("templates/portal.js").read_text()

STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL", "https://js.stripe.com/v3/")
STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "pk_test_bos")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# What Stripe documents for a page with Stripe.js (docs.stripe.com/security/guide), when
# Stripe.js is Stripe's; the simulator's origin for all three otherwise (its card fields
# live in an iframe of its own origin).
REAL_STRIPE_JS = "https://js.stripe.com"
REAL_STRIPE = {
    "script": "https://js.stripe.com https://*.js.stripe.com",
    "connect": "https://api.stripe.com",
    "frame": "https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com",
    "img": " https://*.stripe.com",
}


def _stripe_sources(stripe_js_url: str) -> dict[str, str]:
    origin = _origin(stripe_js_url)
    if origin == REAL_STRIPE_JS:
        return REAL_STRIPE
    return {"script": origin, "connect": origin, "frame": origin, "img": ""}


def _policy(stripe_js_url: str) -> str:
    stripe = _stripe_sources(stripe_js_url)
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {_sha256(_JS)} {stripe['script']}",
            f"style-src {_sha256(_CSS)}",
            f"connect-src 'self' {stripe['connect']}",
            f"frame-src {stripe['frame']}",
            "img-src 'self' data:" + stripe["img"],
            "base-uri 'none'",
            "form-action 'none'",
            "object-src 'none'",
        ]
    )


def render(
    stripe_js_url: str = STRIPE_JS_URL, publishable_key: str = STRIPE_PUBLISHABLE_KEY
) -> str:
    config = json.dumps({"publishableKey": publishable_key}).replace("<", "\\u003c")
    return _TEMPLATE.substitute(
        csp=_policy(stripe_js_url),
        css=_CSS,
        js=_JS,
        config=config,
        stripe_js=stripe_js_url.replace("&", "&amp;").replace('"', "&quot;"),
    )


PORTAL_HTML = render()
PORTAL_CSP = _policy(STRIPE_JS_URL) + "; frame-ancestors 'none'"


def portal_response() -> HTMLResponse:
    """The page with its policy as headers (frame-ancestors works only there)."""
    return HTMLResponse(
        PORTAL_HTML,
        headers={
            "Content-Security-Policy": PORTAL_CSP,
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )
