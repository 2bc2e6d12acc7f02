"""Browser tests (plan sections 4.4-4.7, 13, 16, 17) in Debian's Chromium driven by
Playwright, against the stack that `make test` starts (black box through GATEWAY_URL, the
Stripe simulator and its fake Stripe.js).

Fixtures:
- `bos`: a merchant (new organization whose allowed origin is the merchant site) with sync
  helpers to create prices, checkouts, session and portal tokens;
- `merchant_site`: a page on another loopback origin (127.0.0.2) that embeds the SDK, and
  `foreign_site` on a third one (127.0.0.3) that is in no organization's allowed origins;
- `browser`, `context_factory`, `page`: headless Chromium (never `playwright install`);
- `axe`: axe-core from npm (installed from package-lock.json into node_modules on demand);
- `shot`: screenshots of each state into tests/browser/artifacts/ (git-ignored);
- `driver`: one test in each of the three engines (engines.py: Chromium, Firefox, WebKit),
  for the page objects of pages.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from browserkit import (  # noqa: E402
    CLASSIC_SHOP_HTML,
    FOREIGN_HTML,
    PHONE_HTML,
    SHOP_HTML,
    Bos,
    Site,
    new_bos,
)
from engines import (  # noqa: E402
    ENGINES,
    ChromiumDriver,
    Driver,
    FirefoxBridge,
    FirefoxDriver,
    WebKitDriver,
    WebKitSession,
    Xvfb,
    missing,
)

HERE = Path(__file__).parent
ARTIFACTS = HERE / "artifacts"
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _stack_required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("BOS_TEST_STACK"))


@pytest.fixture(scope="session")
def gateway_url() -> str:
    url = os.environ.get("GATEWAY_URL")
    if not url:
        if _stack_required():
            pytest.fail("GATEWAY_URL is not set: the stack under test is missing")
        pytest.skip("no running stack (run `make test`)")
    return url.rstrip("/")


@pytest.fixture(scope="session")
def sim_url() -> str:
    url = os.environ.get("STRIPE_API_BASE")
    if not url:
        if _stack_required():
            pytest.fail("STRIPE_API_BASE is not set: the Stripe simulator is missing")
        pytest.skip("no Stripe simulator (run `make test`)")
    return url.rstrip("/")


# --- the browser -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser(gateway_url: str) -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        if _stack_required():
            pytest.fail(f"{CHROMIUM} is missing (scripts/ensure-deps.sh installs it)")
        pytest.skip("needs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield instance
        instance.close()


class AnonymousBudget:
    """The gateway lets one client IP make RATE_LIMIT_IP (default 60) unauthenticated
    requests a minute, and the hosted page's requests (the HTML, the SDK, API calls that
    carry the checkout's client secret instead of a token) are unauthenticated. Every browser
    here connects from 127.0.0.1, so the whole suite shares one customer's budget: before a
    test opens pages, wait until the last minute's requests leave it room. (The page itself
    retries rate-limited API calls; a rate-limited page load would just fail the test.)"""

    def __init__(self, gateway_url: str) -> None:
        self.gateway = gateway_url
        spec = os.environ.get("RATE_LIMIT_IP", "60/minute")
        count, _, unit = spec.partition("/")
        per_minute = int(count) * {"second": 60, "minute": 1, "hour": 1 / 60}.get(unit, 1)
        self.limit = max(10, int(per_minute) - 6)
        self.times: deque[float] = deque()

    def assume(self, count: int) -> None:
        """Counts `count` requests made now (engines whose requests are not observed)."""
        self.times.extend([time.monotonic()] * count)

    def record(self, request: Any) -> None:
        if request.url.startswith(self.gateway) and "authorization" not in request.headers:
            self.times.append(time.monotonic())

    def reserve(self, needed: int) -> None:
        while True:
            now = time.monotonic()
            while self.times and self.times[0] < now - 61:
                self.times.popleft()
            if len(self.times) + needed <= self.limit:
                return
            time.sleep(self.times[0] + 61.5 - now)


# What one context of these tests sends without a token at most: page loads, the SDK and the
# page's API calls (status polls back off: 300 ms, 500 ms, 700 ms, 1 s, ...).
ANONYMOUS_PER_CONTEXT = 14


@pytest.fixture(scope="session")
def anonymous_budget(gateway_url: str) -> AnonymousBudget:
    return AnonymousBudget(gateway_url)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[FAILED] = report.failed


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def context_factory(
    browser: Any, request: pytest.FixtureRequest, anonymous_budget: AnonymousBudget
) -> Iterator[Callable[..., Any]]:
    """New browser contexts (closed after the test). A tiny init script records CSP
    violations and layout shifts in every frame for the tests that look at them. A failed
    test leaves a screenshot of each of its pages in artifacts/."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        anonymous_budget.reserve(ANONYMOUS_PER_CONTEXT)
        context = browser.new_context(**options)
        context.on("request", anonymous_budget.record)
        context.set_default_timeout(15_000)
        context.add_init_script(script=RECORDERS)
        contexts.append(context)
        return context

    yield make
    failed = request.node.stash.get(FAILED, False)
    for c, context in enumerate(contexts):
        if failed:
            ARTIFACTS.mkdir(exist_ok=True)
            for p, pg in enumerate(context.pages):
                name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
                try:
                    pg.screenshot(
                        path=str(ARTIFACTS / f"FAILED-{name}-{c}-{p}.png"), full_page=True
                    )
                except Exception:  # noqa: BLE001 - best effort
                    pass
        context.close()


RECORDERS = """
(() => {
  window.__csp = [];
  document.addEventListener("securitypolicyviolation", (e) =>
    window.__csp.push({ directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample }));
  window.__cls = 0; window.__shifts = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (!e.hadRecentInput) { window.__cls += e.value; window.__shifts.push(e.value); }
      }
    }).observe({ type: "layout-shift", buffered: true });
  } catch (e) {}
})();
"""


@pytest.fixture
def page(context_factory: Callable[..., Any]) -> Any:
    return context_factory().new_page()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def shot(artifacts: Path, request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """`shot(page, "state")` saves artifacts/<test>--<state>.png (full page)."""

    def take(target: Any, state: str) -> Path:
        name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
        path = artifacts / f"{name}--{state}.png"
        # A cross-origin iframe only paints what is in view: scroll to the top first, or a
        # full-page screenshot shows its scrolled-off part blank.
        target.evaluate("() => window.scrollTo(0, 0)")
        target.screenshot(path=str(path), full_page=True)
        return path

    return take


# --- axe-core ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """axe-core, terser, typescript and puppeteer-core from the npm registry, installed from
    the lock file (tests/browser/package-lock.json) into tests/browser/node_modules when
    missing."""
    modules = HERE / "node_modules"
    wanted = [
        modules / "axe-core" / "axe.min.js",
        modules / "terser" / "bin" / "terser",
        modules / "typescript" / "bin" / "tsc",
        modules / "puppeteer-core" / "package.json",
    ]
    if not all(p.exists() for p in wanted):
        npm = shutil.which("npm")
        if npm is None:
            if _stack_required():
                pytest.fail("npm is missing: axe-core cannot be installed")
            pytest.skip("npm is missing: axe-core cannot be installed")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=HERE,
            check=True,
            timeout=300,
            # puppeteer-core drives Debian's firefox-esr: no browser download
            env={**os.environ, "PUPPETEER_SKIP_DOWNLOAD": "1"},
        )
    return modules


@pytest.fixture(scope="session")
def axe(node_modules: Path) -> Path:
    return node_modules / "axe-core" / "axe.min.js"


# --- the merchant's site and a foreign site ---------------------------------------------------


@pytest.fixture(scope="session")
def merchant_site(gateway_url: str) -> Iterator[Site]:
    pages = {"/shop": SHOP_HTML, "/classic-shop": CLASSIC_SHOP_HTML, "/phone": PHONE_HTML}
    site = Site(
        "127.0.0.2", {p: html.replace("__GATEWAY__", gateway_url) for p, html in pages.items()}
    )
    yield site
    site.close()


@pytest.fixture(scope="session")
def foreign_site(gateway_url: str) -> Iterator[Site]:
    site = Site("127.0.0.3", {"/": FOREIGN_HTML})
    yield site
    site.close()


@pytest.fixture
def bos(gateway_url: str, sim_url: str, merchant_site: Site) -> Iterator[Bos]:
    client = new_bos(gateway_url, sim_url, allowed_origins=[merchant_site.origin])
    merchant_site.token_source = None
    yield client
    merchant_site.token_source = None
    client.close()


# --- the three engines (engines.py, pages.py) ----------------------------------------------


@pytest.fixture(scope="session", params=ENGINES)
def engine(
    request: pytest.FixtureRequest, gateway_url: str, node_modules: Path, tmp_path_factory: Any
) -> Iterator[Any]:
    """One browser per engine for the session: Chromium's is the `browser` fixture, Firefox
    is held by the BiDi bridge, WebKit by a WebDriver session on an Xvfb display. pytest
    runs the tests engine by engine, so one of them is up at a time."""
    name = str(request.param)
    absent = missing(name)
    if absent:
        if _stack_required():
            pytest.fail(f"{name}: {absent} missing (scripts/ensure-deps.sh installs it)")
        pytest.skip(f"{name}: {absent} missing")
    if name == "chromium":
        yield request.getfixturevalue("browser")
    elif name == "firefox":
        bridge = FirefoxBridge(node_modules, tmp_path_factory.mktemp("firefox-downloads"))
        yield bridge
        bridge.close()
    else:
        display = Xvfb()
        try:
            session = WebKitSession(display.display)
            yield session
            session.close()
        finally:
            display.close()


@pytest.fixture
def driver(
    engine: Any,
    request: pytest.FixtureRequest,
    anonymous_budget: AnonymousBudget,
) -> Iterator[Driver]:
    """A fresh page in the test's engine (a new context in Chromium and Firefox, a blank
    page without cookies in WebKit's one window). A failed test leaves a screenshot."""
    name = request.node.callspec.params["engine"]
    made: Driver
    if name == "chromium":
        made = ChromiumDriver(request.getfixturevalue("context_factory")())
    else:
        anonymous_budget.reserve(ANONYMOUS_PER_CONTEXT)
        anonymous_budget.assume(ANONYMOUS_PER_CONTEXT)
        made = FirefoxDriver(engine) if name == "firefox" else WebKitDriver(engine)
    yield made
    if request.node.stash.get(FAILED, False):
        ARTIFACTS.mkdir(exist_ok=True)
        name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
        try:
            made.screenshot(ARTIFACTS / f"FAILED-{name}.png")
        except Exception:  # noqa: BLE001 - best effort
            pass
    made.close()
