"""Page objects over engines.Driver: what a customer sees and does on the hosted checkout
page, the customer portal and a merchant's page embedding the SDK, written once for the
three engines. Reads are JavaScript run in the page's frame (text as the engine renders it,
whitespace collapsed); actions are the driver's clicks and typing; waits poll."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from browserkit import CARDS, Site, hosted_url
from engines import Driver, wait

CARD_FRAME = 'iframe[title="Secure card payment input frame"]'
CHALLENGE_FRAME = 'iframe[title="3D Secure authentication"]'

TEXT = """(s) => { const e = document.querySelector(s);
  return e ? e.innerText.replace(/\\s+/g, ' ').trim() : null; }"""
VISIBLE = """(s) => { const e = document.querySelector(s);
  return !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden'; }"""
ENABLED = """(s) => { const e = document.querySelector(s); return !!e && !e.disabled; }"""


class View:
    """A document: the top one, or one in nested iframes (`frames`, CSS selectors)."""

    def __init__(self, driver: Driver, frames: Sequence[str] = ()) -> None:
        self.driver = driver
        self.frames = tuple(frames)

    def js(self, function: str, arg: Any = None) -> Any:
        return self.driver.call(function, arg, self.frames)

    def text(self, selector: str) -> str | None:
        value = self.js(TEXT, selector)
        return None if value is None else str(value)

    def visible(self, selector: str) -> bool:
        return bool(self.js(VISIBLE, selector))

    def enabled(self, selector: str) -> bool:
        return bool(self.js(ENABLED, selector))

    def wait_visible(self, selector: str, timeout: float = 20) -> None:
        wait(lambda: self.visible(selector), timeout, f"{selector} to show")

    def wait_text(self, selector: str, timeout: float = 20, contains: str = "") -> str:
        def ready() -> str | None:
            if not self.visible(selector):
                return None
            text = self.text(selector) or ""
            return text if text and contains in text else None

        return str(wait(ready, timeout, f"text in {selector}"))

    def click(self, selector: str) -> None:
        self.driver.click(selector, self.frames)

    def fill(self, selector: str, text: str) -> None:
        self.driver.fill(selector, text, self.frames)

    def inner(self, selector: str) -> View:
        return View(self.driver, (*self.frames, selector))

    def page_width(self) -> dict[str, int]:
        return dict(
            self.js(
                "() => ({scroll: document.documentElement.scrollWidth,"
                " view: document.documentElement.clientWidth, inner: window.innerWidth})"
            )
        )

    def small_targets(self) -> list[dict[str, Any]]:
        """Visible controls smaller than 44x44 CSS px (text inputs by their height)."""
        return list(
            self.js(
                """() => [...document.querySelectorAll(
                    'button, input, a[href], select, textarea, [role=button]')]
                  .filter((e) => e.offsetParent !== null && !e.hidden)
                  .map((e) => { const r = e.getBoundingClientRect();
                    return { what: e.outerHTML.slice(0, 80), w: Math.round(r.width),
                             h: Math.round(r.height), input: e.tagName === 'INPUT' }; })
                  .filter((t) => t.h < 44 || (!t.input && t.w < 44))"""
            )
        )


class CheckoutPage(View):
    """The hosted checkout page, opened on its own or inside the SDK's iframe."""

    def open(self, checkout: dict[str, Any], query: str = "") -> CheckoutPage:
        self.driver.goto(hosted_url(checkout, query))
        return self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> CheckoutPage:
        wait(lambda: self.enabled("#submit"), timeout, "the Pay button to be enabled")
        return self

    @property
    def card(self) -> View:
        return self.inner(CARD_FRAME)

    def enter_card(self, kind: str = "visa", expiry: str = "1234", cvc: str = "123") -> None:
        number = CARDS.get(kind, kind).replace(" ", "")
        self.card.fill("#field-number", number)
        self.card.fill("#field-expiry", expiry)
        self.card.fill("#field-cvc", cvc)

    def pay(self, kind: str = "visa") -> None:
        self.enter_card(kind)
        self.click("#submit")

    def wait_done(self, timeout: float = 30) -> str:
        self.wait_visible("#done", timeout)
        return self.text("#done-title") or ""

    def wait_error(self, timeout: float = 30) -> str:
        return self.wait_text("#form-error", timeout)

    def answer_challenge(self, outcome: str) -> None:
        """The bank's 3D Secure dialog: "success" (Complete) or "failure" (Fail)."""
        challenge = self.inner(CHALLENGE_FRAME)
        challenge.wait_visible(f"button[data-outcome={outcome}]")
        challenge.click(f"button[data-outcome={outcome}]")

    def apply_coupon(self, code: str) -> None:
        if not self.visible("#coupon-code"):
            self.click("#coupon-toggle")
            self.wait_visible("#coupon-code")
        self.fill("#coupon-code", code)
        self.click("#coupon-apply")

    def hold_completion(self, reads: int) -> None:
        """The next `reads` status reads that say `complete` are shown to the page as
        `processing` (wrapping the page's fetch): the page must keep waiting."""
        self.js(
            """(reads) => {
              window.__held = 0;
              const real = window.fetch;
              window.fetch = async (input, init) => {
                const response = await real(input, init);
                const url = String(input && input.url || input);
                if ((init && init.method || 'GET') !== 'GET'
                    || !/\\/v1\\/checkout-sessions\\/cs_[A-Za-z0-9]+$/.test(url)) return response;
                const body = await response.clone().json();
                if (body.status !== 'complete' || window.__held >= reads) return response;
                window.__held += 1;
                body.status = 'processing';
                return new Response(JSON.stringify(body),
                  { status: response.status, headers: response.headers });
              };
            }""",
            reads,
        )


class PortalPage(View):
    def open(self, url: str) -> PortalPage:
        self.driver.goto(url)
        self.wait_visible("main[aria-busy=false]", 30)
        return self

    def subscription_text(self) -> str:
        return self.text("#subscriptions article") or ""

    def cancel_at_period_end(self) -> str:
        """Cancel subscription, then confirm in the dialog: the dialog's text."""
        self.click("#subscriptions article .actions button")
        self.wait_visible("#confirm")
        text = self.text("#confirm-text") or ""
        self.click("#confirm-cancel")
        return text

    def keep_subscription(self) -> None:
        self.click("#subscriptions article .actions button")
        self.wait_visible("#confirm")
        self.click("#confirm-keep")
        wait(lambda: not self.visible("#confirm"), 10, "the dialog to close")

    def action_label(self) -> str:
        return self.text("#subscriptions article .actions button") or ""

    def download_invoice(self) -> dict[str, Any]:
        """Clicks the first invoice's PDF button and returns what the page handed to the
        browser as the download: file name, type, size and first bytes of the file."""
        self.js(
            """() => {
              window.__download = null;
              const make = URL.createObjectURL;
              URL.createObjectURL = (blob) => { window.__blob = blob; return make(blob); };
              const click = HTMLAnchorElement.prototype.click;
              HTMLAnchorElement.prototype.click = function () {
                window.__download = { name: this.download, href: this.href };
                return click.call(this);
              };
            }"""
        )
        self.click("#invoices tbody tr button")
        wait(lambda: self.js("() => !!window.__download"), 20, "the invoice download")
        return dict(
            self.js(
                """async () => { const b = window.__blob;
                  const head = new Uint8Array(await b.slice(0, 5).arrayBuffer());
                  const all = new TextDecoder('latin1').decode(await b.arrayBuffer());
                  return { name: window.__download.name, type: b.type, size: b.size,
                           head: String.fromCharCode(...head), text: all }; }"""
            )
        )


class ShopPage(View):
    """The merchant's page on another origin with the SDK (browserkit.SHOP_HTML)."""

    FRAME = "#checkout iframe"

    def open(self, site: Site) -> ShopPage:
        self.driver.goto(site.url("/shop"))
        wait(lambda: self.js("() => window.shopReady === true"), 30, "the shop's SDK")
        return self

    def start(self, **cfg: Any) -> CheckoutPage:
        self.js("(cfg) => { window.startCheckout(cfg); }", cfg)
        return CheckoutPage(self.driver, (*self.frames, self.FRAME)).wait_ready()

    def events(self) -> list[dict[str, Any]]:
        return list(self.js("() => window.bosEvents"))

    def wait_event(self, kind: str, timeout: float = 30) -> dict[str, Any]:
        def seen() -> dict[str, Any] | None:
            return next((e for e in self.events() if e["type"] == kind), None)

        return dict(wait(seen, timeout, f"a {kind!r} event"))

    def frame_heights(self) -> tuple[int, int]:
        """The iframe's height in the merchant's page, and its document's height."""
        outer = self.js(
            "(s) => Math.round(document.querySelector(s).getBoundingClientRect().height)",
            self.FRAME,
        )
        inner = self.inner(self.FRAME).js(
            "() => Math.ceil(document.documentElement.getBoundingClientRect().height)"
        )
        return int(outer), int(inner)
