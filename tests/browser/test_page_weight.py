"""Benchmark of the hosted checkout page (issue 9 "Benchmarks"): bytes transferred for the
page itself (HTML + JS + CSS from BOS, before Stripe.js), time to interactive (the Pay
button enabled with the card element mounted) under 3G profiles, and the SDK's minified
size. Results go to tests/browser/artifacts/page-weight.json."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from browserkit import Bos, hosted_url

pytestmark = pytest.mark.browser

# Chrome DevTools' network presets (bytes per second, latency in ms).
PROFILES = {
    "fast_3g": {"latency": 562.5, "downloadThroughput": 180_000, "uploadThroughput": 84_375},
    "slow_3g": {"latency": 2000, "downloadThroughput": 50_000, "uploadThroughput": 50_000},
}
PAGE_BUDGET = 60 * 1024
SDK_BUDGET = 8 * 1024

TTI_PROBE = """
(() => {
  window.__tti = null;
  const mark = () => {
    const b = document.getElementById('submit');
    if (b && !b.disabled && window.__tti === null) window.__tti = performance.now();
  };
  new MutationObserver(mark).observe(document, { subtree: true, attributes: true,
    attributeFilter: ['disabled'], childList: true });
})();
"""


def load(context: Any, url: str, profile: str | None) -> dict[str, Any]:
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    if profile:
        cdp.send("Network.emulateNetworkConditions", {"offline": False, **PROFILES[profile]})
    requests: dict[str, dict[str, Any]] = {}
    cdp.on(
        "Network.requestWillBeSent",
        lambda e: requests.__setitem__(
            e["requestId"], {"url": e["request"]["url"], "type": e.get("type")}
        ),
    )
    cdp.on(
        "Network.loadingFinished",
        lambda e: requests.get(e["requestId"], {}).__setitem__("bytes", e["encodedDataLength"]),
    )
    page.goto(url, wait_until="commit")
    page.wait_for_function("() => window.__tti !== null", timeout=90_000)
    tti = page.evaluate("() => window.__tti")
    fcp = page.evaluate(
        "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime"
    )
    page.wait_for_timeout(300)
    page.close()
    return {"tti_ms": round(tti), "fcp_ms": round(fcp or 0), "requests": list(requests.values())}


def test_benchmark_checkout_page_weight_and_time_to_interactive(
    context_factory: Any, bos: Bos, gateway_url: str, sim_url: str, artifacts: Path
) -> None:
    context = context_factory()
    context.add_init_script(script=TTI_PROBE)
    report: dict[str, Any] = {}
    for profile in (None, "fast_3g", "slow_3g"):
        checkout = bos.checkout(bos.price(2900)["id"])
        run = load(context, hosted_url(checkout), profile)
        own = [r for r in run["requests"] if r["url"].startswith(gateway_url)]
        page_assets = [r for r in own if r["type"] in ("Document", "Script", "Stylesheet")]
        api = [r for r in own if r["type"] in ("Fetch", "XHR")]
        stripe = [r for r in run["requests"] if r["url"].startswith(sim_url)]
        report[profile or "unthrottled"] = {
            "tti_ms": run["tti_ms"],
            "fcp_ms": run["fcp_ms"],
            "page_bytes": sum(r.get("bytes", 0) for r in page_assets),
            "page_requests": len(page_assets),
            "api_bytes": sum(r.get("bytes", 0) for r in api),
            "stripe_js_bytes": sum(r.get("bytes", 0) for r in stripe if r["type"] == "Script"),
        }
    (artifacts / "page-weight.json").write_text(json.dumps(report, indent=2))
    print("\npage weight:", json.dumps(report, indent=2))
    base = report["unthrottled"]
    assert base["page_requests"] == 1  # the document carries its CSS and JS
    assert base["page_bytes"] < PAGE_BUDGET, base
    assert report["fast_3g"]["tti_ms"] < 8_000, report["fast_3g"]


def test_benchmark_sdk_is_under_8_kb_minified(
    page: Any, gateway_url: str, node_modules: Path, artifacts: Path, tmp_path: Path
) -> None:
    body = page.request.get(f"{gateway_url}/sdk/v1/checkout.js").body()
    source = tmp_path / "checkout.js"
    source.write_bytes(body)
    terser = node_modules / "terser" / "bin" / "terser"
    minified = subprocess.run(
        ["node", str(terser), "--module", "--compress", "--mangle", "--", str(source)],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    import gzip

    sizes = {
        "raw": len(body),
        "minified": len(minified),
        "minified_gzip": len(gzip.compress(minified)),
    }
    (artifacts / "sdk-size.json").write_text(json.dumps(sizes, indent=2))
    print("\nsdk size:", sizes)
    assert sizes["minified"] < SDK_BUDGET, sizes
