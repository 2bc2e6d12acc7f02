"""The hosted checkout page (`GET /checkout/{id}`) and the browser SDK (`GET /sdk/v1/...`).

The page is one HTML response: markup with a loading skeleton, the stylesheet and the page
script inlined under a per-response CSP nonce (no other script or style may run, no inline
handler), and Stripe.js from the configured URL (the simulator's in dev and tests). It holds
no customer data: the script loads the checkout through the public API with the checkout's
client secret (from the URL fragment, which never reaches a server log) or, embedded by the
SDK, with the credential the parent hands over a MessageChannel.

`frame-ancestors` is the checkout's organization's `allowed_origins` (from the tokens
service, cached briefly): any other site that frames the page gets nothing. The same list
goes to the page script, which accepts the SDK's handshake only from those origins.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from bos_common.app import CurrentIdentity
from bos_common.errors import BOSError
from bos_common.ids import looks_like
from checkout import connect, repository, service
from checkout.api import ClientSecret
from checkout.runtime import CheckoutRuntime, Runtime
from checkout.sdk_bundle import classic_script

log = logging.getLogger("checkout.page")

router = APIRouter(include_in_schema=False)

_FILES = resources.files("checkout")
PAGE = Template(_FILES.joinpath("templates/checkout.html").read_text())
CSS = _FILES.joinpath("static/checkout.css").read_text()
PAGE_JS = _FILES.joinpath("static/checkout-page.js").read_text()
SDK_JS = _FILES.joinpath("static/checkout.js").read_bytes()
SDK_DTS = _FILES.joinpath("static/checkout.d.ts").read_bytes()
SDK_GLOBAL_JS = classic_script(SDK_JS.decode()).encode()  # the same source, a `BOS` global
SDK_GLOBAL_ETAG = '"' + hashlib.sha256(SDK_GLOBAL_JS).hexdigest()[:20] + '"'
SDK_ETAG = '"' + hashlib.sha256(SDK_JS).hexdigest()[:20] + '"'
SDK_DTS_ETAG = '"' + hashlib.sha256(SDK_DTS).hexdigest()[:20] + '"'

ORIGINS_CACHE_SECONDS = 30.0
ORIGINS_CACHE_SIZE = 10_000
_origins_cache: dict[str, tuple[float, list[str]]] = {}

# Stripe's documented CSP needs (https://docs.stripe.com/security/guide#content-security-policy)
# when Stripe.js is Stripe's own.
REAL_STRIPE_JS = "https://js.stripe.com"
REAL_STRIPE = {
    "script": ["https://js.stripe.com", "https://*.js.stripe.com"],
    "connect": ["https://api.stripe.com"],
    "frame": ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"],
    "img": ["https://*.stripe.com"],
}


def stripe_sources(stripe_js_url: str) -> dict[str, list[str]]:
    """What a page with Stripe.js from `stripe_js_url` must allow, by directive: Stripe's
    documented list for Stripe's origin; otherwise (the simulator) that origin for the
    script, the API calls and the card fields' iframe. Shared with the portal page."""
    origin = _origin(stripe_js_url)
    if origin == REAL_STRIPE_JS:
        return {k: list(v) for k, v in REAL_STRIPE.items()}
    return {"script": [origin], "connect": [origin], "frame": [origin], "img": []}


NOT_FOUND_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Checkout not found</title><style nonce="{nonce}">
body{{font:16px/1.5 system-ui,sans-serif;color:#1a1a1a;margin:0;padding:2rem 1.25rem}}
main{{max-width:30rem;margin:0 auto}}</style></head><body><main><h1>Checkout not found</h1>
<p>This checkout link isn't valid. Ask the seller for a new link.</p></main></body></html>"""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _csp_source(origin: str) -> str | None:
    """An allowed origin as a CSP source expression, or None if it could break the header."""
    if not origin or any(c in origin for c in " ;,'\"\r\n") or "://" not in origin:
        return None
    return origin.rstrip("/")


def content_security_policy(stripe_js_url: str, nonce: str, frame_ancestors: list[str]) -> str:
    stripe = stripe_sources(stripe_js_url)
    script = [f"'nonce-{nonce}'"] + stripe["script"]
    connect = ["'self'"] + stripe["connect"]
    frame = stripe["frame"]
    img = ["'self'", "data:"] + stripe["img"]
    ancestors = ["'self'"] + [s for s in map(_csp_source, frame_ancestors) if s]
    return "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(dict.fromkeys(script)),
            f"style-src 'nonce-{nonce}'",
            "connect-src " + " ".join(dict.fromkeys(connect)),
            "frame-src " + " ".join(dict.fromkeys(frame)),
            "img-src " + " ".join(img),
            "font-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "object-src 'none'",
            "frame-ancestors " + " ".join(dict.fromkeys(ancestors)),
        ]
    )


async def allowed_origins(runtime: CheckoutRuntime, org_id: str) -> list[str]:
    """The organization's allowed origins from the tokens service (cached for 30 s). On a
    failure, none: the page then cannot be framed by anyone else (fails closed)."""
    now = time.monotonic()
    cached = _origins_cache.get(org_id)
    if cached and cached[0] > now:
        return cached[1]
    try:
        # The tokens client of OrganizationsClient; its billing() view drops the origins.
        client = runtime.organizations._client
        _, body = await client.request("GET", f"/internal/organizations/{org_id}")
        origins = [str(o) for o in (body or {}).get("allowed_origins") or []]
    except BOSError as exc:
        log.warning("allowed origins of %s unavailable: %s", org_id, exc.message)
        return []
    if len(_origins_cache) >= ORIGINS_CACHE_SIZE:
        _origins_cache.clear()
    _origins_cache[org_id] = (now + ORIGINS_CACHE_SECONDS, origins)
    return origins


async def wallet_country(runtime: CheckoutRuntime, org_id: str) -> str | None:
    """The country of the account that takes the payment (the organization's connected
    account, else the platform's), for the wallet button; None: no wallet button."""
    try:
        billing = await runtime.organizations.billing(org_id)
    except BOSError as exc:
        log.warning("billing of %s unavailable: %s", org_id, exc.message)
        return None
    return await connect.account_country(runtime, billing.stripe_account_id)


def _security_headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }


def _json_for_html(value: Any) -> str:
    return (
        json.dumps(value, separators=(",", ":"))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


@router.get("/checkout/{checkout_id}", response_class=HTMLResponse)
async def hosted_checkout_page(checkout_id: str, runtime: Runtime) -> HTMLResponse:
    nonce = secrets.token_urlsafe(18)
    row = None
    if looks_like(checkout_id, "cs"):
        async with runtime.db.transaction() as s:
            row = await repository.get_checkout_by_id(s, checkout_id)
    if row is None:
        csp = (
            f"default-src 'none'; style-src 'nonce-{nonce}'; base-uri 'none';"
            " frame-ancestors 'none'"
        )
        return HTMLResponse(NOT_FOUND_HTML.format(nonce=nonce), 404, headers=_security_headers(csp))
    settings = runtime.settings
    origins = await allowed_origins(runtime, row.org_id)
    config = {
        "checkoutId": checkout_id,
        "publishableKey": settings.stripe_publishable_key,
        "allowedOrigins": [o for o in origins if _csp_source(o)],
        "country": await wallet_country(runtime, row.org_id),
    }
    body = PAGE.substitute(
        nonce=nonce,
        css=CSS,
        js=PAGE_JS,
        config=_json_for_html(config),
        stripe_js=settings.stripe_js_url.replace("&", "&amp;").replace('"', "&quot;"),
    )
    csp = content_security_policy(settings.stripe_js_url, nonce, origins)
    return HTMLResponse(body, headers=_security_headers(csp))


@router.get("/checkout/{checkout_id}/savings")
async def checkout_savings(
    checkout_id: str,
    identity: CurrentIdentity,
    runtime: Runtime,
    client_secret: ClientSecret = None,
) -> dict[str, Any]:
    """What a yearly price saves against the product's monthly price (plan 2.4), for the
    page: `{monthly_equivalent, savings: {amount, percent, compared_to_price_id} | null}`.
    Same access as the checkout itself (client secret or session token)."""
    async with runtime.db.transaction() as s:
        row = await service.load_checkout(s, identity, checkout_id, client_secret)
    try:
        # The catalog client of checkout only returns the snapshot: ask for the whole answer.
        _, body = await runtime.catalog._client.request(
            "GET",
            f"/internal/orgs/{row.org_id}/prices/{row.price_id}/snapshot",
            params={"include_unavailable": "true"},
        )
    except BOSError as exc:
        log.info("no savings for %s: %s", checkout_id, exc.message)
        body = {}
    return {
        "monthly_equivalent": (body or {}).get("monthly_equivalent"),
        "savings": (body or {}).get("savings"),
    }


def _static(request: Request, content: bytes, etag: str, media_type: str) -> Response:
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=300",
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(content, media_type=media_type, headers=headers)


@router.get("/sdk/v1/checkout.js")
async def sdk_script(request: Request) -> Response:
    return _static(request, SDK_JS, SDK_ETAG, "text/javascript; charset=utf-8")


@router.get("/sdk/v1/checkout.global.js")
async def sdk_classic_script(request: Request) -> Response:
    return _static(request, SDK_GLOBAL_JS, SDK_GLOBAL_ETAG, "text/javascript; charset=utf-8")


@router.get("/sdk/v1/checkout.d.ts")
async def sdk_types(request: Request) -> Response:
    return _static(request, SDK_DTS, SDK_DTS_ETAG, "text/plain; charset=utf-8")
