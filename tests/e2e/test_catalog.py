"""Catalog end to end: through the gateway, with a real API key and session token from the
tokens service (black box; the stack `make test` starts)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

ADMIN_TOKEN = os.environ.get("BOS_ADMIN_TOKEN", "bos-dev-admin")


async def new_org(gateway: httpx.AsyncClient) -> dict[str, str]:
    r = await gateway.post(
        "/admin/organizations",
        json={"name": f"catalog-e2e-{uuid.uuid4().hex[:8]}"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return {"Authorization": f"Bearer {body['api_key']['secret']}"}


async def create(
    gateway: httpx.AsyncClient, auth: dict[str, str], path: str, body: dict[str, Any]
) -> dict[str, Any]:
    r = await gateway.post(path, json=body, headers=auth)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_merchant_builds_a_catalog_and_reads_it_back(gateway: httpx.AsyncClient) -> None:
    auth = await new_org(gateway)
    product = await create(
        gateway, auth, "/v1/products", {"name": "Team", "features": ["seats:10"]}
    )
    monthly = await create(
        gateway,
        auth,
        "/v1/prices",
        {
            "product_id": product["id"],
            "amount": 5000,
            "currency": "usd",
            "type": "recurring",
            "interval": "month",
        },
    )
    annual = await create(
        gateway,
        auth,
        "/v1/prices",
        {
            "product_id": product["id"],
            "amount": 50000,
            "currency": "usd",
            "type": "recurring",
            "interval": "year",
        },
    )
    coupon = await create(
        gateway, auth, "/v1/coupons", {"code": "E2E20", "percent_off": 20, "duration": "once"}
    )

    r = await gateway.get(f"/v1/products/{product['id']}", headers=auth)
    assert r.status_code == 200 and r.json() == product
    assert r.headers["x-request-id"]
    r = await gateway.get(f"/v1/prices/{annual['id']}", headers=auth)
    assert r.json()["savings"] == {
        "amount": 10000,
        "percent": 16.67,
        "compared_to_price_id": monthly["id"],
    }
    r = await gateway.get("/v1/coupons/e2e20", headers=auth)
    assert r.status_code == 200 and r.json()["id"] == coupon["id"]
    r = await gateway.get("/v1/products", params={"limit": 1}, headers=auth)
    assert r.json()["data"][0]["id"] == product["id"] and r.json()["has_more"] is False


async def test_another_organizations_catalog_is_not_found(gateway: httpx.AsyncClient) -> None:
    a, b = await new_org(gateway), await new_org(gateway)
    product = await create(gateway, a, "/v1/products", {"name": "Mine"})
    r = await gateway.get(f"/v1/products/{product['id']}", headers=b)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "product_not_found"
    assert r.json()["error"]["message"] == "Product not found"
    assert (await gateway.get("/v1/products", headers=b)).json()["data"] == []


async def test_browsers_list_visible_products_and_read_any_by_id(
    gateway: httpx.AsyncClient,
) -> None:
    auth = await new_org(gateway)
    shown = await create(gateway, auth, "/v1/products", {"name": "Shown"})
    hidden = await create(gateway, auth, "/v1/products", {"name": "Hidden", "visible": False})
    r = await gateway.post(
        "/v1/session-tokens", json={"external_user_id": "user_e2e"}, headers=auth
    )
    assert r.status_code == 201, r.text
    browser = {"Authorization": f"Bearer {r.json()['token']}"}

    listed = (await gateway.get("/v1/products", headers=browser)).json()["data"]
    assert [p["id"] for p in listed] == [shown["id"]]
    r = await gateway.get(f"/v1/products/{hidden['id']}", headers=browser)
    assert r.status_code == 200 and r.json()["visible"] is False
    r = await gateway.post("/v1/products", json={"name": "nope"}, headers=browser)
    assert r.status_code == 403


async def test_catalog_needs_credentials(gateway: httpx.AsyncClient) -> None:
    r = await gateway.get("/v1/products")
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"
