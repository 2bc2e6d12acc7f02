"""Helpers of the browser tests: a merchant as a black-box client of BOS (sync httpx through
the gateway, the Stripe simulator for test controls), the merchant's and a foreign web site
on their own loopback origins, and what a customer does in the checkout page."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx

ADMIN_TOKEN = os.environ.get("BOS_ADMIN_TOKEN", "bos-dev-admin")
DEFAULT_SESSION_SECRETS = "k1:bos-dev-session-secret-1,k2:bos-dev-session-secret-2"

CARDS = {
    "visa": "4242 4242 4242 4242",
    "declined": "4000 0000 0000 0002",
    "insufficient_funds": "4000 0000 0000 9995",
    "3ds": "4000 0025 0000 3155",
    "3ds_always": "4000 0027 6000 3184",
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Bos:
    """One organization (a merchant) and its API key."""

    gateway: httpx.Client
    sim: httpx.Client
    org_id: str
    api_key: str
    allowed_origins: list[str] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.gateway.post(path, json=body, headers=self.auth)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.gateway.get(path, params=params, headers=self.auth)

    def price(
        self,
        amount: int,
        *,
        name: str | None = None,
        interval: str | None = "month",
        currency: str = "usd",
        product_id: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        if product_id is None:
            product = self.post(
                "/v1/products", {"name": name or unique("Plan"), "features": ["pro"]}
            )
            assert product.status_code == 201, product.text
            product_id = product.json()["id"]
        body = {
            "product_id": product_id,
            "amount": amount,
            "currency": currency,
            "type": "recurring" if interval else "one_time",
            **({"interval": interval} if interval else {}),
            **extra,
        }
        r = self.post("/v1/prices", body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def checkout(self, price_id: str, **extra: Any) -> dict[str, Any]:
        body = {
            "price_id": price_id,
            "customer": {"email": f"{unique('buyer')}@example.com", "name": "Ada Lovelace"},
            **extra,
        }
        r = self.post("/v1/checkout-sessions", body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def checkout_for_user(self, token: str, price_id: str, **extra: Any) -> dict[str, Any]:
        """A checkout created by the browser with a session token (bound to its user)."""
        body = {
            "price_id": price_id,
            "customer": {"email": f"{unique('buyer')}@example.com", "name": "Ada Lovelace"},
            **extra,
        }
        r = self.gateway.post(
            "/v1/checkout-sessions", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def session_token(self, user: str, expires_in: int = 3600) -> dict[str, Any]:
        r = self.post("/v1/session-tokens", {"external_user_id": user, "expires_in": expires_in})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def short_lived_token(self, user: str, seconds: int) -> str:
        """A genuine session token of this organization that expires in `seconds` (the API's
        minimum lifetime is 60 s), minted with the deployment's session secret the way the
        tokens service mints them (as tests/e2e 1.4 does)."""
        from bos_common.session_tokens import SessionKeys

        keys = SessionKeys.parse(os.environ.get("BOS_SESSION_SECRETS", DEFAULT_SESSION_SECRETS))
        issued = int(time.time()) - 3600 + seconds
        token, _ = keys.mint(
            org=self.org_id, sub=user, scope="session", expires_in=3600, now=issued
        )
        return token

    def checkout_status(self, checkout_id: str) -> dict[str, Any]:
        r = self.get(f"/v1/checkout-sessions/{checkout_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def wait_status(self, checkout_id: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = self.checkout_status(checkout_id)
            if body["status"] == status:
                return body
            time.sleep(0.2)
        raise AssertionError(f"checkout never reached {status}: {body}")

    def coupon(self, **body: Any) -> dict[str, Any]:
        r = self.post("/v1/coupons", body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def pay(self, checkout_id: str) -> dict[str, Any]:
        """Confirm with a 4242 card (a PaymentMethod made as Stripe.js makes it) and wait
        for `complete`: the checkout as it then is."""
        pm = self.sim.post(
            "/v1/payment_methods",
            data={
                "type": "card",
                "card[number]": "4242424242424242",
                "card[exp_month]": "12",
                "card[exp_year]": "2034",
                "card[cvc]": "123",
            },
            headers={"Authorization": "Bearer pk_test_bos"},
        ).json()["id"]
        r = self.post(f"/v1/checkout-sessions/{checkout_id}/confirm", {"payment_method": pm})
        assert r.status_code == 200, r.text
        return self.wait_status(checkout_id, "complete")

    def intents_of(self, checkout_id: str) -> list[dict[str, Any]]:
        """The simulator's PaymentIntents created for this checkout."""
        r = self.sim.get("/v1/payment_intents", params={"limit": 100})
        assert r.status_code == 200, r.text
        return [
            pi
            for pi in r.json()["data"]
            if (pi.get("metadata") or {}).get("checkout_id") == checkout_id
        ]

    def close(self) -> None:
        self.gateway.close()
        self.sim.close()


def new_bos(gateway_url: str, sim_url: str, *, allowed_origins: list[str]) -> Bos:
    gateway = httpx.Client(base_url=gateway_url, timeout=15)
    key = os.environ.get("STRIPE_SECRET_KEY", "sk_test_bos_simulator")
    sim = httpx.Client(base_url=sim_url, timeout=15, headers={"Authorization": f"Bearer {key}"})
    r = gateway.post(
        "/admin/organizations",
        json={"name": unique("shop"), "allowed_origins": allowed_origins},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return Bos(gateway, sim, body["id"], body["api_key"]["secret"], allowed_origins)


# --- what the customer does ---------------------------------------------------------------


# Stripe.js puts the card fields and the 3D Secure challenge in iframes of its own origin
# (the simulator's here, as js.stripe.com with real Stripe): the page cannot reach into them,
# a test (or a customer) types into the frame.
CARD_FRAME = 'iframe[title="Secure card payment input frame"]'
CHALLENGE_FRAME = 'iframe[title="3D Secure authentication"]'


def card_fields(scope: Any) -> Any:
    """The card element's frame (`scope`: a page or a frame locator holding the element)."""
    return scope.frame_locator(CARD_FRAME)


def challenge(scope: Any) -> Any:
    """The bank's 3D Secure dialog, in Stripe.js's challenge frame over `scope`."""
    frame = scope.frame_locator(CHALLENGE_FRAME)
    return frame.get_by_role("dialog", name="3D Secure authentication")


def enter_card(scope: Any, kind: str = "visa", expiry: str = "12 / 34", cvc: str = "123") -> None:
    """Types a test card into the card element (`scope`: a page or a frame locator)."""
    fields = card_fields(scope)
    fields.get_by_label("Card number").fill(CARDS.get(kind, kind))
    fields.get_by_label("Expiration date").fill(expiry)
    fields.get_by_label("Security code").fill(cvc)


def hosted_url(checkout: dict[str, Any], query: str = "") -> str:
    """The hosted page URL with the client secret in its fragment (as BOS returns it)."""
    base, _, fragment = checkout["url"].partition("#")
    return f"{base}{query}#{fragment}"


def error_text(scope: Any) -> str:
    return (scope.locator("#form-error").text_content() or "").strip()


def wait_error(scope: Any, timeout: float = 20_000) -> str:
    scope.locator("#form-error:not(:empty)").wait_for(timeout=timeout)
    return error_text(scope)


def no_horizontal_scroll(page: Any) -> dict[str, int]:
    return dict(
        page.evaluate(
            "() => ({scroll: document.documentElement.scrollWidth, view: window.innerWidth,"
            " body: document.body.scrollWidth})"
        )
    )


def small_targets(page_or_frame: Any) -> list[dict[str, Any]]:
    """Visible interactive elements smaller than 44x44 CSS px (WCAG 2.5.5 / plan 16.3).
    Text inputs count by their height (their width is the row)."""
    return list(
        page_or_frame.evaluate(
            """() => [...document.querySelectorAll(
                'button, input, a[href], select, textarea, [role=button]')]
              .filter((e) => e.offsetParent !== null && !e.hidden)
              .map((e) => { const r = e.getBoundingClientRect();
                return { what: e.outerHTML.slice(0, 80), w: Math.round(r.width),
                         h: Math.round(r.height), input: e.tagName === 'INPUT' }; })
              .filter((t) => t.h < 44 || (!t.input && t.w < 44))"""
        )
    )


def run_axe(page_or_frame: Any, axe_path: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.0/2.1 A and AA violations of the document."""
    page_or_frame.add_script_tag(path=str(axe_path))
    result = page_or_frame.evaluate(
        """async () => {
          const r = await axe.run(document, { runOnly: { type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }, resultTypes: ['violations'] });
          return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(' ') + ' :: ' + n.failureSummary) }));
        }"""
    )
    return list(result)


# --- web sites on other origins ---------------------------------------------------------------
SHOP_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Test shop</title>
<style>body{font:16px system-ui,sans-serif;margin:0;padding:16px}#checkout{max-width:480px}</style>
</head><body>
<h1>Test shop</h1>
<div id="checkout"></div>
<div id="frames"></div>
<script type="module">
import { checkout } from "__GATEWAY__/sdk/v1/checkout.js";
window.bosEvents = [];
window.refreshCalls = 0;
window.startCheckout = (cfg) => {
  const onEvent = (e) => window.bosEvents.push(e);
  const opts = Object.assign({ container: "#checkout", onEvent }, cfg);
  if (cfg.refresh) {
    delete opts.refresh;
    opts.refreshSessionToken = async () => {
      window.refreshCalls += 1;
      const r = await fetch("/token", { method: "POST" });
      return (await r.json()).token;
    };
  }
  window.handle = checkout(opts);
  return opts.mode || "inline";
};
window.shopReady = true;
</script>
</body></html>
"""

# The same shop with the SDK's classic-script build: a plain <script src> and the BOS global.
CLASSIC_SHOP_HTML = SHOP_HTML.replace(
    '<script type="module">\nimport { checkout } from "__GATEWAY__/sdk/v1/checkout.js";\n',
    '<script src="__GATEWAY__/sdk/v1/checkout.global.js"></script>\n<script>\n'
    "const checkout = window.BOS.checkout;\n",
)

# A phone-sized viewport on the merchant's site: the page under test in a 375 x 667 iframe
# (`?src=<url>`). An iframe is its document's viewport (media queries, layout, scrolling),
# for an engine whose window cannot be made that narrow.
PHONE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Phone</title>
<style>body{margin:0}iframe{width:375px;height:667px;border:0;display:block}</style>
</head><body><iframe id="phone" title="Phone"></iframe>
<script>
document.getElementById("phone").src = new URLSearchParams(location.search).get("src");
</script>
</body></html>
"""

FOREIGN_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Foreign site</title></head><body>
<h1>Not the merchant</h1>
<script>
window.received = [];
window.addEventListener("message", (e) => window.received.push({ origin: e.origin, data: e.data }));
</script>
</body></html>
"""


class Site:
    """A tiny HTTP server on its own loopback address (its own origin)."""

    def __init__(self, host: str, pages: dict[str, str]) -> None:
        self.pages = pages
        self.token_source: Callable[[], str] | None = None
        self.token_requests = 0
        site = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 (stdlib API)
                path = urlsplit(self.path).path
                html = site.pages.get(path)
                if html is None:
                    self._send(404, b"not found", "text/plain")
                else:
                    self._send(200, html.encode(), "text/html; charset=utf-8")

            def do_POST(self) -> None:  # noqa: N802
                # The merchant's backend: a fresh session token for the signed-in user.
                if urlsplit(self.path).path != "/token" or site.token_source is None:
                    self._send(404, b"{}", "application/json")
                    return
                site.token_requests += 1
                token = site.token_source()
                self._send(200, json.dumps({"token": token}).encode(), "application/json")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.origin = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, **query: str) -> str:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return self.origin + path + (f"?{q}" if q else "")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def open_shop(page: Any, site: Site) -> None:
    page.goto(site.url("/shop"))
    page.wait_for_function("() => window.shopReady === true")


def wait_event(page: Any, kind: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = page.evaluate("() => window.bosEvents")
        for event in events:
            if event["type"] == kind:
                return dict(event)
        page.wait_for_timeout(100)
    raise AssertionError(f"no {kind!r} event; got {page.evaluate('() => window.bosEvents')}")


# --- the hosted checkout page, in Playwright ---------------------------------------------

# The heading the page shows once the checkout is done (paid or free).
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
