"""The browser SDK (`/sdk/v1/checkout.js`) on a merchant page served from another loopback
origin (127.0.0.2), with a foreign site on a third (127.0.0.3): plan section 13 (13.1-13.6),
3DS through the embed, overlay and popup modes."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from browserkit import Bos, Site, challenge, enter_card, open_shop, unique, wait_event

pytestmark = pytest.mark.browser

FRAME = "#checkout iframe"


def start(page: Any, **cfg: Any) -> None:
    page.evaluate("(cfg) => window.startCheckout(cfg)", cfg)


def checkout_frame(page: Any) -> Any:
    frame = page.frame_locator(FRAME)
    frame.locator("#submit:not([disabled])").wait_for()
    return frame


def event_types(page: Any) -> list[str]:
    return [e["type"] for e in page.evaluate("() => window.bosEvents")]


def user_checkout(bos: Bos, amount: int = 2900, **price: Any) -> tuple[str, dict[str, Any]]:
    """A session token for a new external user and a checkout that user created with it."""
    user = unique("user")
    token = bos.session_token(user)["token"]
    checkout = bos.checkout_for_user(token, bos.price(amount, **price)["id"])
    return token, checkout


def test_13_1_paid_checkout_inline_and_the_parent_receives_completed(
    page: Any, bos: Bos, merchant_site: Site, shot: Any
) -> None:
    token, checkout = user_checkout(bos, 4500)
    open_shop(page, merchant_site)
    start(page, checkoutId=checkout["id"], sessionToken=token, mode="inline")
    frame = checkout_frame(page)
    loaded = wait_event(page, "loaded")
    assert loaded["checkout_id"] == checkout["id"] and loaded["amount_total"] == 4500
    shot(page, "inline")
    enter_card(frame, "visa")
    frame.locator("#submit").click()
    completed = wait_event(page, "completed")
    done = bos.checkout_status(checkout["id"])
    assert done["status"] == "complete"
    assert completed["subscription_id"] == done["subscription_id"] is not None
    assert completed["checkoutId"] == checkout["id"]
    types = event_types(page)
    assert types.index("loaded") < types.index("confirmed") < types.index("completed")
    assert types.count("completed") == 1
    shot(page, "completed")
    # The iframe is served by BOS; the credential never appears in its address.
    src = page.locator(FRAME).get_attribute("src")
    assert token not in src and re.search(r"#embed=[0-9a-f]{32}$", src)


def test_13_1_failure_and_3ds_events_reach_the_parent(
    page: Any, bos: Bos, merchant_site: Site
) -> None:
    token, checkout = user_checkout(bos)
    open_shop(page, merchant_site)
    start(page, checkoutId=checkout["id"], sessionToken=token)
    frame = checkout_frame(page)
    enter_card(frame, "declined")
    frame.locator("#submit").click()
    failed = wait_event(page, "failed")
    assert failed["code"] == "card_declined"
    assert failed["message"] == "Your card was declined. Try another card."
    enter_card(frame, "3ds")
    frame.locator("#submit").click()
    wait_event(page, "requires_action")
    challenge(frame).get_by_role("button", name="Complete").click()
    assert wait_event(page, "completed")["subscription_id"]


def test_13_2_a_foreign_site_cannot_frame_the_checkout(
    page: Any, bos: Bos, foreign_site: Site
) -> None:
    checkout = bos.checkout(bos.price(2900)["id"])
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.goto(foreign_site.url("/"))
    page.evaluate(
        "(url) => { const f = document.createElement('iframe'); f.src = url;"
        " f.id = 'stolen'; document.body.appendChild(f); }",
        checkout["url"],
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any("frame-ancestors" in m for m in console):
        page.wait_for_timeout(100)
    assert any("frame-ancestors" in m and "blocked" in m for m in console), console
    for frame in page.frames[1:]:
        assert frame.locator("#pay-form").count() == 0


def test_13_2_messages_from_a_foreign_origin_are_ignored(
    page: Any, bos: Bos, merchant_site: Site, foreign_site: Site
) -> None:
    token, checkout = user_checkout(bos)
    open_shop(page, merchant_site)
    # A foreign frame inside the merchant's page (an ad, a widget)...
    page.evaluate(
        "(url) => { const f = document.createElement('iframe'); f.src = url; f.id = 'ad';"
        " document.getElementById('frames').appendChild(f); }",
        foreign_site.url("/"),
    )
    page.frame_locator("#ad").locator("h1").wait_for()
    start(page, checkoutId=checkout["id"], sessionToken=token)
    frame = checkout_frame(page)
    nonce = page.locator(FRAME).get_attribute("src").split("#embed=")[1]
    ad = next(f for f in page.frames if f.url.startswith(foreign_site.origin))
    # ...knows the handshake nonce and imitates the checkout page: a `ready` (to get the
    # credential in an `init`) and a fake `completed`, to the merchant's window.
    ad.evaluate(
        """([nonce, id]) => {
          parent.postMessage({ bos: 1, v: 1, type: 'ready', nonce, checkoutId: id }, '*');
          parent.postMessage({ bos: 1, v: 1, type: 'event', event: 'completed',
                               data: { checkout_id: id, subscription_id: 'sub_fake' } }, '*');
        }""",
        [nonce, checkout["id"]],
    )
    # ...and sends the checkout frame an `init` of its own, with a port to listen on.
    ad.evaluate(
        """([nonce, id]) => {
          window.portMessages = [];
          for (let i = 0; i < parent.frames.length; i++) {
            if (parent.frames[i] === window) continue;
            const ch = new MessageChannel();
            ch.port1.onmessage = (e) => window.portMessages.push(e.data);
            parent.frames[i].postMessage({ bos: 1, v: 1, type: 'init', nonce, checkoutId: id,
                                           clientSecret: 'cs_x_secret_y' }, '*', [ch.port2]);
          }
        }""",
        [nonce, checkout["id"]],
    )
    page.wait_for_timeout(1500)
    assert ad.evaluate("() => window.received") == []  # no init, no token
    assert ad.evaluate("() => window.portMessages") == []  # the checkout did not answer
    assert "completed" not in event_types(page)
    # The real checkout still works and reports once.
    enter_card(frame, "visa")
    frame.locator("#submit").click()
    completed = wait_event(page, "completed")
    assert completed["subscription_id"] != "sub_fake"
    assert event_types(page).count("completed") == 1


def test_13_2_an_unlisted_site_opening_the_checkout_gets_nothing(
    context_factory: Any, bos: Bos, foreign_site: Site
) -> None:
    """Framing is refused by frame-ancestors; a popup is not, so the page itself must refuse
    to talk to an opener whose origin the organization did not allow."""
    checkout = bos.checkout(bos.price(2900)["id"])
    context = context_factory()
    page = context.new_page()
    page.goto(foreign_site.url("/"))
    api_calls: list[str] = []
    context.on(
        "request", lambda r: api_calls.append(r.url) if "/v1/checkout-sessions" in r.url else None
    )
    nonce = "f" * 32
    with context.expect_page() as popup_info:
        page.evaluate(
            "([url, nonce]) => { window.w = window.open(url + '#embed=' + nonce, 'x'); }",
            [checkout["url"].split("#")[0], nonce],
        )
    popup = popup_info.value
    popup.wait_for_load_state()
    page.evaluate(
        """([nonce, id, secret]) => {
          const ch = new MessageChannel();
          window.portMessages = [];
          ch.port1.onmessage = (e) => window.portMessages.push(e.data);
          const send = () => window.w.postMessage({ bos: 1, v: 1, type: 'init', nonce,
              checkoutId: id, clientSecret: secret }, '*', [ch.port2]);
          send();
        }""",
        [nonce, checkout["id"], checkout["client_secret"]],
    )
    popup.wait_for_timeout(2000)
    assert page.evaluate("() => window.received") == []  # no `ready` reached this origin
    assert page.evaluate("() => window.portMessages") == []
    assert api_calls == []  # the stolen secret was never used
    assert popup.locator("#submit").is_disabled()


def test_13_2_cors_follows_the_organizations_allowed_origins(
    context_factory: Any, bos: Bos, merchant_site: Site, foreign_site: Site, gateway_url: str
) -> None:
    token = bos.session_token(unique("user"))["token"]
    script = """async ([url, token]) => {
      try {
        const headers = { Authorization: 'Bearer ' + token };
        const r = await fetch(url + '/v1/products', { headers });
        return { status: r.status };
      } catch (e) { return { error: String(e) }; }
    }"""
    page = context_factory().new_page()
    seen: list[dict[str, str]] = []
    page.on("response", lambda r: seen.append(r.headers) if "/v1/products" in r.url else None)
    page.goto(merchant_site.url("/shop"))
    allowed = page.evaluate(script, [gateway_url, token])
    assert allowed == {"status": 200}
    assert seen[-1].get("access-control-allow-origin") == merchant_site.origin
    page.goto(foreign_site.url("/"))
    refused = page.evaluate(script, [gateway_url, token])
    assert "error" in refused, refused  # the browser refuses to expose the answer


def test_13_3_iframe_height_follows_the_content(
    page: Any, bos: Bos, merchant_site: Site, shot: Any
) -> None:
    token, checkout = user_checkout(bos)
    open_shop(page, merchant_site)
    start(page, checkoutId=checkout["id"], sessionToken=token)
    frame = checkout_frame(page)
    wait_event(page, "loaded")

    def heights() -> tuple[int, int, int]:
        outer = page.locator(FRAME).evaluate("(f) => Math.round(f.getBoundingClientRect().height)")
        inner = frame.locator("html").evaluate(
            "(h) => [Math.ceil(h.getBoundingClientRect().height), h.scrollHeight, h.clientHeight]"
        )
        return outer, inner[0], inner[1] - inner[2]

    page.wait_for_timeout(300)
    outer, inner, overflow = heights()
    assert abs(outer - inner) <= 1 and overflow <= 0, (outer, inner, overflow)
    enter_card(frame, "declined")
    frame.locator("#submit").click()
    frame.locator("#form-error:not(:empty)").wait_for()
    page.wait_for_function(
        "(h) => document.querySelector('#checkout iframe').getBoundingClientRect().height > h",
        arg=outer,
    )
    grown, inner2, overflow2 = heights()
    error_height = frame.locator("#form-error").evaluate("(e) => e.getBoundingClientRect().height")
    assert grown >= outer + error_height - 1
    assert abs(grown - inner2) <= 1 and overflow2 <= 0, (grown, inner2, overflow2)
    shot(page, "grown")
    enter_card(frame, "visa")
    frame.locator("#submit").click()
    wait_event(page, "completed")
    page.wait_for_timeout(300)
    shrunk, inner3, _ = heights()
    assert shrunk < grown and abs(shrunk - inner3) <= 1  # the success view is shorter


def test_13_4_session_token_refreshed_mid_checkout_without_losing_input(
    page: Any, bos: Bos, merchant_site: Site, shot: Any
) -> None:
    user = unique("user")
    checkout = bos.checkout_for_user(bos.session_token(user)["token"], bos.price(3300)["id"])
    lifetime = 25
    old = bos.short_lived_token(user, lifetime)
    expires = time.time() + lifetime
    merchant_site.token_source = lambda: bos.session_token(user)["token"]
    auth: list[str] = []
    page.on(
        "request",
        lambda r: (
            auth.append(r.headers.get("authorization", ""))
            if "/v1/checkout-sessions/" in r.url
            else None
        ),
    )
    open_shop(page, merchant_site)
    start(page, checkoutId=checkout["id"], sessionToken=old, refresh=True)
    frame = checkout_frame(page)
    frame.locator("html").evaluate("() => { window.__notReloaded = true; }")
    frame.get_by_label("Name on card").fill("Grace Hopper")
    enter_card(frame, "visa")
    time.sleep(max(0.0, expires - time.time()) + 1)  # the token is now expired
    assert page.evaluate("() => window.refreshCalls") == 0
    frame.locator("#submit").click()
    completed = wait_event(page, "completed")
    assert completed["subscription_id"]
    assert page.evaluate("() => window.refreshCalls") == 1
    assert merchant_site.token_requests == 1
    assert "token_refreshed" in event_types(page)
    # Same document, same typed values: nothing was reloaded.
    assert frame.locator("html").evaluate("() => window.__notReloaded") is True
    assert auth[0] == f"Bearer {old}"
    assert auth[-1] != f"Bearer {old}" and auth[-1].startswith("Bearer bos_session_")
    paid = bos.checkout_status(checkout["id"])
    assert paid["status"] == "complete"
    shot(page, "after-refresh")


def test_16_2_expired_session_without_a_refresh_says_what_to_do(
    page: Any, bos: Bos, merchant_site: Site
) -> None:
    user = unique("user")
    checkout = bos.checkout_for_user(bos.session_token(user)["token"], bos.price(3300)["id"])
    token = bos.short_lived_token(user, 4)
    open_shop(page, merchant_site)
    start(page, checkoutId=checkout["id"], sessionToken=token)  # no refreshSessionToken
    frame = checkout_frame(page)
    enter_card(frame, "visa")
    time.sleep(5)
    frame.locator("#submit").click()
    failed = wait_event(page, "failed")
    assert failed["code"] == "session_expired"
    text = "Your session expired. Reload the page to continue."
    assert frame.locator("#form-error").inner_text() == text
    assert bos.checkout_status(checkout["id"])["status"] == "open"


def test_13_6_blocked_popup_falls_back_to_inline_and_says_so(
    page: Any, bos: Bos, merchant_site: Site
) -> None:
    token, checkout = user_checkout(bos)
    open_shop(page, merchant_site)
    page.evaluate("() => { window.open = () => null; }")  # what a popup blocker does
    start(page, checkoutId=checkout["id"], sessionToken=token, mode="popup")
    blocked = wait_event(page, "popup_blocked")
    assert blocked["fallback"] == "inline"
    assert page.evaluate("() => window.handle.mode") == "inline"
    frame = checkout_frame(page)
    enter_card(frame, "visa")
    frame.locator("#submit").click()
    assert wait_event(page, "completed")["subscription_id"]


def test_13_6_popup_mode_when_allowed(
    context_factory: Any, bos: Bos, merchant_site: Site, shot: Any
) -> None:
    token, checkout = user_checkout(bos)
    context = context_factory()
    page = context.new_page()
    open_shop(page, merchant_site)
    with context.expect_page() as popup_info:
        start(page, checkoutId=checkout["id"], sessionToken=token, mode="popup")
    popup = popup_info.value
    popup.locator("#submit:not([disabled])").wait_for()
    assert page.locator(FRAME).count() == 0
    enter_card(popup, "visa")
    popup.locator("#submit").click()
    assert wait_event(page, "completed")["subscription_id"]
    shot(popup, "popup-done")
    page.evaluate("() => window.handle.close()")
    wait_event(page, "closed")
    if not popup.is_closed():
        popup.wait_for_event("close", timeout=5000)
    assert popup.is_closed()


def test_overlay_mode_with_a_client_secret_closes_on_escape(
    page: Any, bos: Bos, merchant_site: Site, shot: Any
) -> None:
    checkout = bos.checkout(bos.price(2900)["id"])
    open_shop(page, merchant_site)
    start(page, checkoutId=checkout["id"], clientSecret=checkout["client_secret"], mode="overlay")
    dialog = page.get_by_role("dialog", name="Checkout")
    dialog.wait_for()
    frame = page.frame_locator("[role=dialog] iframe")
    frame.locator("#submit:not([disabled])").wait_for()
    wait_event(page, "loaded")
    shot(page, "overlay")
    page.get_by_role("button", name="Close checkout").focus()
    page.keyboard.press("Escape")
    wait_event(page, "closed")
    assert dialog.count() == 0


def test_sdk_is_small_typed_and_cacheable(page: Any, gateway_url: str) -> None:
    r = page.request.get(f"{gateway_url}/sdk/v1/checkout.js")
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["access-control-allow-origin"] == "*"
    assert "etag" in r.headers and "max-age" in r.headers["cache-control"]
    assert len(r.body()) < 12_000  # unminified; the minified size is in test_page_weight
    again = page.request.get(
        f"{gateway_url}/sdk/v1/checkout.js", headers={"If-None-Match": r.headers["etag"]}
    )
    assert again.status == 304
    types = page.request.get(f"{gateway_url}/sdk/v1/checkout.d.ts")
    assert types.status == 200 and "export function checkout" in types.text()


TS_OK = """
import { checkout, type CheckoutEvent } from "./checkout";
const handle = checkout({
  checkoutId: "cs_1", sessionToken: "bos_session_x", mode: "inline", container: "#pay",
  onEvent: (e: CheckoutEvent) => { if (e.type === "completed") console.log(e.subscription_id); },
  refreshSessionToken: async () => "bos_session_y",
});
handle.close();
checkout({ checkoutId: "cs_1", clientSecret: "cs_1_secret_x", mode: "overlay" });
"""
TS_BAD = """
import { checkout } from "./checkout";
checkout({ checkoutId: "cs_1", clientSecret: "s", sessionToken: "t" });
checkout({ checkoutId: "cs_1", sessionToken: "t", mode: "modal" });
"""


def test_sdk_types_accept_good_calls_and_reject_bad_ones(
    page: Any, gateway_url: str, node_modules: Path, tmp_path: Path
) -> None:
    (tmp_path / "checkout.d.ts").write_bytes(
        page.request.get(f"{gateway_url}/sdk/v1/checkout.d.ts").body()
    )
    tsc = [
        "node",
        str(node_modules / "typescript" / "bin" / "tsc"),
        "--noEmit",
        "--strict",
        "--lib",
        "es2020,dom",
        "--moduleResolution",
        "node",
    ]
    (tmp_path / "ok.ts").write_text(TS_OK)
    (tmp_path / "bad.ts").write_text(TS_BAD)
    ok = subprocess.run([*tsc, "ok.ts"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout
    bad = subprocess.run(
        [*tsc, "bad.ts"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert "bad.ts(3," in bad.stdout and "bad.ts(4," in bad.stdout, bad.stdout


def test_sdk_refuses_bad_options(page: Any, merchant_site: Site) -> None:
    open_shop(page, merchant_site)
    error = page.evaluate(
        "() => { try { window.startCheckout({ checkoutId: 'nope', sessionToken: 't' }); }"
        " catch (e) { return e.message; } }"
    )
    assert "checkoutId" in error
    error = page.evaluate(
        "() => { try { window.startCheckout({ checkoutId: 'cs_abc' }); }"
        " catch (e) { return e.message; } }"
    )
    assert "sessionToken or clientSecret" in error


def test_13_1_classic_script_build_defines_bos_and_embeds_inline(
    page: Any, bos: Bos, merchant_site: Site, gateway_url: str
) -> None:
    """A merchant page on another origin that loads `/sdk/v1/checkout.global.js` with a plain
    <script src> (as Stripe.js is loaded) gets `window.BOS` and the module's behaviour: the
    inline iframe from the script's origin, the handshake, and the checkout's events (a
    free plan, so the events do not depend on the card element)."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    user = unique("user")
    token = bos.session_token(user)["token"]
    checkout = bos.checkout_for_user(token, bos.price(0, name="Hobby")["id"])
    page.goto(merchant_site.url("/classic-shop"))
    page.wait_for_function("() => window.shopReady === true")
    assert page.evaluate("() => typeof window.BOS.checkout") == "function"
    assert page.evaluate("() => window.BOS.version") == 1
    start(page, checkoutId=checkout["id"], sessionToken=token, mode="inline")
    frame = checkout_frame(page)
    loaded = wait_event(page, "loaded")
    assert loaded["checkout_id"] == checkout["id"] and loaded["is_free"] is True
    # The frame comes from the BOS origin the script was loaded from (document.currentScript).
    src = page.locator(FRAME).get_attribute("src")
    assert src.startswith(f"{gateway_url}/checkout/{checkout['id']}#embed=")
    assert page.evaluate("() => window.handle.connected") is True
    frame.locator("#submit").click()
    completed = wait_event(page, "completed")
    assert completed["subscription_id"] == bos.checkout_status(checkout["id"])["subscription_id"]
    types = event_types(page)
    assert types.index("loaded") < types.index("confirmed") < types.index("completed")
    assert errors == []


def test_classic_script_build_is_served_cacheable_and_matches_the_module(
    page: Any, gateway_url: str
) -> None:
    module = page.request.get(f"{gateway_url}/sdk/v1/checkout.js").text()
    r = page.request.get(f"{gateway_url}/sdk/v1/checkout.global.js")
    assert r.status == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.headers["access-control-allow-origin"] == "*"
    script = r.text()
    assert "import.meta" not in script and "export " not in script
    # Built from the module at startup: its code is the module's, line for line.
    assert "function checkout(options)" in script and "const PAGE_EVENTS" in script
    assert module.split("const PAGE_EVENTS", 1)[1].split("export function")[0] in script
    again = page.request.get(
        f"{gateway_url}/sdk/v1/checkout.global.js", headers={"If-None-Match": r.headers["etag"]}
    )
    assert again.status == 304
