"""Issue 15.3 and 15.7 from outside: HTTP as clients speak it through the gateway (real curl
with `Expect: 100-continue`, the request-size limit) and authentication before forwarding
(an anonymous request for an authenticated route is 401 at the gateway, never a service's
422)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

ADMIN_TOKEN = os.environ.get("BOS_ADMIN_TOKEN", "bos-dev-admin")
LIMIT = int(os.environ.get("MAX_REQUEST_BODY_BYTES", "1048576"))


def error(r: httpx.Response) -> dict[str, Any]:
    assert r.headers["content-type"].startswith("application/json"), r.text
    body = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) >= {"type", "code", "message", "request_id"}
    return dict(body["error"])


@pytest.fixture
async def api_key(gateway: httpx.AsyncClient) -> str:
    r = await gateway.post(
        "/admin/organizations",
        json={"name": f"http-{uuid.uuid4().hex[:8]}"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["api_key"]["secret"])


async def curl(*args: str) -> tuple[int, dict[str, Any], str]:
    """(status, JSON body, curl's verbose output) of one curl run, bounded in time."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    process = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-v", "--max-time", "10", "-w", "\n%{http_code}", *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    body, _, status = out.decode().rpartition("\n")
    return int(status), json.loads(body), err.decode()


async def test_curl_with_expect_100_continue_gets_its_answer(
    gateway_url: str, api_key: str
) -> None:
    # Over 1 KB: curl (and PHP's curl for any POST body over 1 KB) sends Expect itself.
    product = {"name": "Expect", "description": "x" * 2000, "metadata": {"source": "curl"}}
    status, body, verbose = await curl(
        "-H", f"Authorization: Bearer {api_key}",
        "-H", "Content-Type: application/json",
        "-H", "Expect: 100-continue",
        "--data-binary", json.dumps(product),
        f"{gateway_url}/v1/products",
    )  # fmt: skip
    assert "< HTTP/1.1 100 Continue" in verbose
    assert status == 201, body
    assert body["description"] == product["description"]


async def test_a_body_over_the_limit_is_413_before_it_is_read(
    gateway_url: str, api_key: str, gateway: httpx.AsyncClient, tmp_path: Path
) -> None:
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"name": "big", "description": "d" * (LIMIT + 10)}))
    status, body, verbose = await curl(
        "-H", f"Authorization: Bearer {api_key}",
        "-H", "Content-Type: application/json",
        "--data-binary", f"@{big}",
        f"{gateway_url}/v1/products",
    )  # fmt: skip
    assert status == 413, body
    assert body["error"]["type"] == "invalid_request"
    assert body["error"]["code"] == "request_too_large"
    assert "100 Continue" not in verbose  # refused by its Content-Length, body never asked for

    async def chunks() -> Any:
        for _ in range(LIMIT // 65536 + 2):
            yield b"d" * 65536

    r = await gateway.post(
        "/v1/products",
        content=chunks(),  # no length: sent chunked
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and error(r)["code"] == "request_too_large"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/products", {"name": 5}),  # invalid: validation must not come first
        ("POST", "/v1/checkout-sessions", {}),
        ("POST", "/v1/session-tokens", {}),
        ("POST", "/v1/prices", None),
        ("GET", "/v1/subscriptions", None),
        ("GET", "/v1/customers", None),
        ("GET", "/v1/entitlements", None),
        ("PATCH", "/v1/organization", {"allowed_origins": "x"}),
        ("POST", "/admin/organizations", {}),
        ("GET", "/v1/portal/subscriptions", None),
        ("GET", "/v1/checkout-sessions/cs_unknown", None),
    ],
)
async def test_anonymous_requests_for_authenticated_routes_are_401(
    gateway: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    r = await gateway.request(method, path, json=body)
    assert r.status_code == 401, r.text
    err = error(r)
    assert err["type"] == "authentication_error" and err["code"] == "authentication_required"
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_public_routes_stay_open_without_credentials(
    gateway: httpx.AsyncClient,
) -> None:
    assert (await gateway.get("/sdk/v1/checkout.js")).status_code == 200
    assert (await gateway.get("/portal")).status_code == 200
    assert (await gateway.get("/checkout/cs_unknown")).status_code == 404  # the page's own
    # Stripe's intake: refused by its signature check, not for lack of credentials.
    r = await gateway.post("/v1/webhooks/stripe", content=b"{}")
    assert r.status_code == 400, r.text
    # The hosted page's client secret reaches the checkout service, which judges it.
    r = await gateway.get(
        "/v1/checkout-sessions/cs_unknown", headers={"X-Checkout-Secret": "wrong"}
    )
    assert r.status_code == 404 and error(r)["code"] == "checkout_not_found"
