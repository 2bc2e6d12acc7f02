"""A merchant and a customer as black-box clients of BOS (through the gateway) and of
Stripe (the simulator), for end-to-end tests."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

ADMIN_TOKEN = os.environ.get("BOS_ADMIN_TOKEN", "bos-dev-admin")

CARDS = {
    "visa": "4242424242424242",
    "declined": "4000000000000002",
    "insufficient_funds": "4000000000009995",
    "3ds": "4000002500003155",
    "3ds_always": "4000002760003184",
}


def sent_mails(to: str, kind: str) -> list[EmailMessage]:
    """The emails the stack's SMTP sink wrote under the state dir (scripts/services.sh)."""
    state = os.environ.get("BOS_STATE_DIR")
    if not state:
        pytest.skip("BOS_STATE_DIR of the stack is not set: its SMTP sink cannot be read")
    found = []
    for path in sorted((Path(state) / "mail").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if to in str(message["To"]) and message["X-BOS-Notification"] == kind:
            found.append(message)
    return found


async def intents_of(sim: httpx.AsyncClient, checkout_id: str) -> list[dict[str, Any]]:
    """The simulator's PaymentIntents for one checkout (among its latest 100)."""
    r = await sim.get("/v1/payment_intents", params={"limit": 100})
    return [p for p in r.json()["data"] if p["metadata"].get("checkout_id") == checkout_id]


async def intent_of(sim: httpx.AsyncClient, checkout_id: str) -> dict[str, Any]:
    """The one PaymentIntent of a checkout (fails if there is none or more than one)."""
    [pi] = await intents_of(sim, checkout_id)
    return pi


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Merchant:
    gateway: httpx.AsyncClient
    sim: httpx.AsyncClient
    org_id: str
    api_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    async def post(self, path: str, body: Any = None, **headers: str) -> httpx.Response:
        return await self.gateway.post(path, json=body, headers={**self.auth, **headers})

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.gateway.get(path, params=params, headers=self.auth)

    async def price(
        self, amount: int, *, currency: str = "usd", interval: str | None = "month", **extra: Any
    ) -> dict[str, Any]:
        product = await self.post(
            "/v1/products", {"name": unique("product"), "features": ["feature_a", "feature_b"]}
        )
        assert product.status_code == 201, product.text
        body = {
            "product_id": product.json()["id"],
            "amount": amount,
            "currency": currency,
            "type": "recurring" if interval else "one_time",
            **({"interval": interval} if interval else {}),
            **extra,
        }
        price = await self.post("/v1/prices", body)
        assert price.status_code == 201, price.text
        return dict(price.json())

    async def checkout(
        self, price_id: str, email: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        body = {
            "price_id": price_id,
            "customer": {"email": email or f"{unique('c')}@example.com", "name": "Test Customer"},
            **extra,
        }
        r = await self.post("/v1/checkout-sessions", body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def card(self, kind: str = "visa") -> str:
        """A PaymentMethod created the way Stripe.js creates it in the browser."""
        r = await self.sim.post(
            "/v1/payment_methods",
            data={
                "type": "card",
                "card[number]": CARDS[kind],
                "card[exp_month]": "12",
                "card[exp_year]": "2034",
                "card[cvc]": "123",
            },
            headers={"Authorization": "Bearer pk_test_bos"},
        )
        assert r.status_code == 200, r.text
        return str(r.json()["id"])

    async def confirm(self, checkout_id: str, pm: str, key: str | None = None) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else {}
        return await self.post(
            f"/v1/checkout-sessions/{checkout_id}/confirm", {"payment_method": pm}, **headers
        )

    async def wait_status(
        self, checkout_id: str, status: str, timeout: float = 20.0
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        body: dict[str, Any] = {}
        while asyncio.get_running_loop().time() < deadline:
            body = (await self.get(f"/v1/checkout-sessions/{checkout_id}")).json()
            if body.get("status") == status:
                return body
            await asyncio.sleep(0.1)
        raise AssertionError(f"checkout never reached {status}: {body}")


async def new_merchant(gateway: httpx.AsyncClient, sim: httpx.AsyncClient, **org: Any) -> Merchant:
    r = await gateway.post(
        "/admin/organizations",
        json={"name": unique("merchant"), **org},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return Merchant(gateway, sim, body["id"], body["api_key"]["secret"])
