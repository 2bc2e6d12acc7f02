"""Data for scenarios, created through the public API of the running stack (as a merchant
would), for `Scenario.prepare` hooks. Synchronous on purpose: it runs once, before any
measurement."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class BenchOrg:
    org_id: str
    api_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def gateway_client(urls: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=urls["gateway"], timeout=30)


def create_org(urls: dict[str, str], name: str = "bench", **fields: Any) -> BenchOrg:
    """A fresh organization with an API key (admin API, `BOS_ADMIN_TOKEN`)."""
    admin = os.environ.get("BOS_ADMIN_TOKEN", "bos-dev-admin")
    body = {"name": f"{name}-{uuid.uuid4().hex[:8]}", **fields}
    with gateway_client(urls) as client:
        r = client.post(
            "/admin/organizations", json=body, headers={"Authorization": f"Bearer {admin}"}
        )
        r.raise_for_status()
        data = r.json()
    return BenchOrg(org_id=data["id"], api_key=data["api_key"]["secret"])


def create_product(
    urls: dict[str, str],
    org: BenchOrg,
    *,
    amount: int = 2900,
    currency: str = "usd",
    interval: str | None = "month",
    **product: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A visible product with one price (`interval=None`: one-time): (product, price)."""
    with gateway_client(urls) as client:
        r = client.post(
            "/v1/products",
            json={"name": f"bench-{uuid.uuid4().hex[:8]}", **product},
            headers=org.auth,
        )
        r.raise_for_status()
        created: dict[str, Any] = r.json()
        price_body: dict[str, Any] = {
            "product_id": created["id"],
            "amount": amount,
            "currency": currency,
            "type": "recurring" if interval else "one_time",
        }
        if interval:
            price_body["interval"] = interval
        r = client.post("/v1/prices", json=price_body, headers=org.auth)
        r.raise_for_status()
        price: dict[str, Any] = r.json()
    return created, price
