"""Seed the demo organization of `make up` and print a checkout URL a person can pay.

Idempotent: the organization and its API key are created once and remembered in
$STATE_DIR/demo.json (the secret is shown only once by the API); the catalog seeds the
plan's test data once per organization; each run opens a fresh checkout for pro-product.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bos_common.internal import InternalClient


def load_saved(state: Path) -> dict[str, Any] | None:
    return dict(json.loads(state.read_text())) if state.exists() else None


def save(state: Path, saved: dict[str, Any]) -> None:
    state.write_text(json.dumps(saved))
    state.chmod(0o600)


async def demo_org(gateway: httpx.AsyncClient, state: Path) -> dict[str, Any]:
    saved = load_saved(state)
    if saved is not None:
        r = await gateway.get(
            "/v1/organization", headers={"Authorization": f"Bearer {saved['api_key']}"}
        )
        if r.status_code == 200:
            return dict(saved)
    r = await gateway.post(
        "/admin/organizations",
        json={"name": "Demo Org", "allowed_origins": ["http://localhost:3000"]},
        headers={"Authorization": f"Bearer {os.environ['BOS_ADMIN_TOKEN']}"},
    )
    r.raise_for_status()
    body = r.json()
    saved = {"org_id": body["id"], "api_key": body["api_key"]["secret"]}
    save(state, saved)
    return saved


async def main() -> int:
    state = Path(os.environ.get("BOS_STATE_DIR", ".var/dev")) / "demo.json"
    async with httpx.AsyncClient(base_url=os.environ["GATEWAY_URL"], timeout=15) as gateway:
        org = await demo_org(gateway, state)
        catalog = InternalClient(
            os.environ["CATALOG_URL"], caller="seed", secret=os.environ["BOS_INTERNAL_SECRET"]
        )
        try:
            _, demo = await catalog.request("POST", f"/internal/demo/{org['org_id']}")
        finally:
            await catalog.close()
        pro = demo["products"]["pro-product"]
        checkout = await gateway.post(
            "/v1/checkout-sessions",
            json={
                "price_id": pro["price_id"],
                "customer": {"email": f"demo+{int(time.time())}@example.com", "name": "Demo"},
            },
            headers={"Authorization": f"Bearer {org['api_key']}"},
        )
        checkout.raise_for_status()
    print(f"  demo org         {org['org_id']}")
    print(f"  demo API key     {org['api_key']}")
    print(f"  demo checkout    {checkout.json()['url']}")
    print("                   (pay with 4242 4242 4242 4242, any future date, any CVC)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
