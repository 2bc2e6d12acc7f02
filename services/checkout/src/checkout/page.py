"""The hosted checkout page, a minimal accessible placeholder: it loads Stripe.js from the
configured URL (the simulator's in dev and tests), collects a card and completes the
payment through the public API with the checkout's client secret, which travels in the
URL fragment and so never reaches a server log. The full page and SDK are their own work.
"""

from __future__ import annotations

import html
import json
import secrets
from importlib import resources
from string import Template
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from bos_common.ids import looks_like
from checkout.runtime import Runtime

router = APIRouter(include_in_schema=False)

PAGE = Template(resources.files("checkout").joinpath("templates/checkout.html").read_text())


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@router.get("/checkout/{checkout_id}", response_class=HTMLResponse)
async def hosted_checkout_page(checkout_id: str, runtime: Runtime) -> HTMLResponse:
    if not looks_like(checkout_id, "cs"):
        return HTMLResponse(
            "<!doctype html><title>Not found</title><p>Checkout not found.</p>", 404
        )
    settings = runtime.settings
    nonce = secrets.token_urlsafe(16)
    stripe_origin = _origin(settings.stripe_js_url)
    body = PAGE.substitute(
        stripe_js=html.escape(settings.stripe_js_url, quote=True),
        nonce=nonce,
        checkout_id=json.dumps(checkout_id),
        publishable_key=json.dumps(settings.stripe_publishable_key),
    )
    csp = (
        f"default-src 'self'; script-src 'nonce-{nonce}' {stripe_origin}; "
        f"style-src 'self' 'unsafe-inline'; connect-src 'self' {stripe_origin}; "
        f"frame-src {stripe_origin}; img-src 'self' data:; base-uri 'none'; form-action 'self'"
    )
    return HTMLResponse(
        body,
        headers={
            "Content-Security-Policy": csp,
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )
