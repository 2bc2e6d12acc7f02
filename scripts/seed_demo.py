"""Seed the demo organization of `make up` and print a checkout URL a person can pay.

Idempotent: the organization and its API key are created once and remembered in
$STATE_DIR/demo.json (the secret is shown only once by the API; a key that no longer works,
revoked or from a wiped database, gets a new demo organization); the catalog seeds the
plan's test data once per organization and makes again what the merchant archived or
deleted since (printed); each run opens a fresh checkout for pro-product. Exit status 1
only when the demo cannot be made at all.
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

from bos_common.errors import BOSError
from bos_common.internal import InternalClient


class SeedingFailed(Exception):
    """The demo could not be made (the message says which call and its answer)."""


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
        if r.status_code != 401:  # only a key that no longer works means a new demo
            raise SeedingFailed(f"GET /v1/organization answered {r.status_code}: {r.text}")
    r = await gateway.post(
        "/admin/organizations",
        json={"name": "Demo Org", "allowed_origins": ["http://localhost:3000"]},
        headers={"Authorization": f"Bearer {os.environ['BOS_ADMIN_TOKEN']}"},
    )
    if r.status_code != 201:
        raise SeedingFailed(f"POST /admin/organizations answered {r.status_code}: {r.text}")
    body = r.json()
    saved = {"org_id": body["id"], "api_key": body["api_key"]["secret"]}
    save(state, saved)
    return saved


async def seed(state: Path) -> None:
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
                "customer": {"email": f"demo+{time.time_ns()}@example.com", "name": "Demo"},
            },
            headers={"Authorization": f"Bearer {org['api_key']}"},
        )
        if checkout.status_code != 201:
            raise SeedingFailed(
                f"POST /v1/checkout-sessions answered {checkout.status_code}: {checkout.text}"
            )
    for line in demo.get("restored", []):
        print(f"  demo restored    {line}")
    print(f"  demo org         {org['org_id']}")
    print(f"  demo API key     {org['api_key']}")
    print(f"  demo checkout    {checkout.json()['url']}")
    print("                   (pay with 4242 4242 4242 4242, any future date, any CVC)")


def main() -> int:
    state = Path(os.environ.get("BOS_STATE_DIR", ".var/dev")) / "demo.json"
    try:
        asyncio.run(seed(state))
    except (SeedingFailed, BOSError, httpx.HTTPError) as exc:
        print(f"demo seeding failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
