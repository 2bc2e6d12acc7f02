"""The checkout mix of the chaos run: what merchants and their customers do, each flow
ending in the checkout status it expects."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.chaos.client import Client, GiveUp, Merchant, new_merchant, unique

ADMIN_TOKEN_ENV = "BOS_ADMIN_TOKEN"
TERMINAL = {"complete", "failed", "expired", "canceled"}
WAIT_SECONDS = 150.0

# (flow, weight in percent)
MIX: list[tuple[str, int]] = [
    ("paid", 30),
    ("decline_then_paid", 12),
    ("3ds_completed", 10),
    ("3ds_failed", 5),
    ("trial", 10),
    ("free", 8),
    ("coupon", 10),
    ("connect", 10),
    ("portal_cancel", 5),
]


@dataclass
class Shop:
    """One organization and what it sells."""

    merchant: Merchant
    paid: str
    trial: str
    free: str
    coupon: str
    connect: bool = False


@dataclass
class Outcome:
    flow: str
    org_id: str
    email: str
    started: float
    ended: float = 0.0
    checkout_id: str = ""
    status: str = ""
    expected: str = "complete"
    error: str = ""
    portal_canceled: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error and self.status == self.expected


async def _price(m: Merchant, amount: int, **extra: Any) -> str:
    return str((await m.price(amount, **extra))["id"])


async def open_shop(gateway: httpx.AsyncClient, sim: httpx.AsyncClient, connect: bool) -> Shop:
    """An organization with its prices and a coupon (before any fault starts)."""
    org: dict[str, Any] = {}
    if connect:
        account = (await sim.post("/v1/accounts", data={"type": "express"})).json()["id"]
        assert (await sim.post(f"/_sim/accounts/{account}/verify")).status_code == 200
        org["stripe_account_id"] = account
    m = await new_merchant(gateway, sim, **org)
    code = unique("CHAOS").upper().replace("-", "")
    r = await m.post("/v1/coupons", {"code": code, "percent_off": 20, "duration": "forever"})
    assert r.status_code == 201, r.text
    return Shop(
        merchant=m,
        paid=await _price(m, 10_000 if connect else 2900),
        trial=await _price(m, 2900, trial_days=14),
        free=await _price(m, 0),
        coupon=code,
        connect=connect,
    )


def pick_flow(rng: random.Random) -> str:
    flows, weights = zip(*MIX, strict=True)
    return rng.choices(flows, weights=weights)[0]


class Flows:
    def __init__(self, client: Client, shops: list[Shop], connect_shops: list[Shop]) -> None:
        self.client = client
        self.shops = shops
        self.connect_shops = connect_shops
        self.outcomes: list[Outcome] = []  # every flow started, finished or not

    async def run(self, flow: str, rng: random.Random) -> Outcome:
        shop = rng.choice(self.connect_shops if flow == "connect" else self.shops)
        email = f"{unique('chaos')}@example.com"
        out = Outcome(flow, shop.merchant.org_id, email, started=time.time())
        self.outcomes.append(out)
        steps: dict[str, Callable[[Shop, Outcome], Awaitable[None]]] = {
            "paid": self._paid,
            "connect": self._paid,
            "coupon": self._coupon,
            "decline_then_paid": self._decline_then_paid,
            "3ds_completed": self._three_ds_completed,
            "3ds_failed": self._three_ds_failed,
            "trial": self._trial,
            "free": self._free,
            "portal_cancel": self._portal_cancel,
        }
        try:
            await steps[flow](shop, out)
        except (GiveUp, httpx.HTTPError, KeyError, ValueError, AssertionError) as e:
            out.error = f"{type(e).__name__}: {e}"[:300]
        out.ended = time.time()
        return out

    # --- steps ---------------------------------------------------------------------
    async def _create(self, shop: Shop, out: Outcome, price: str, **extra: Any) -> None:
        body = {
            "price_id": price,
            "customer": {"email": out.email, "name": "Chaos Customer"},
            **extra,
        }
        r = await self.client.bos(shop.merchant, "POST", "/v1/checkout-sessions", body)
        if r.status_code != 201:
            raise AssertionError(f"create: {r.status_code} {r.text[:200]}")
        out.checkout_id = r.json()["id"]

    async def _confirm(self, shop: Shop, out: Outcome, card: str) -> dict[str, Any]:
        pm = await self.client.card(card)
        r = await self.client.bos(
            shop.merchant,
            "POST",
            f"/v1/checkout-sessions/{out.checkout_id}/confirm",
            {"payment_method": pm},
        )
        if r.status_code != 200:
            raise AssertionError(f"confirm: {r.status_code} {r.text[:200]}")
        return dict(r.json())

    async def _wait(self, shop: Shop, out: Outcome, wanted: set[str]) -> dict[str, Any]:
        body = await self.client.wait_terminal(shop.merchant, out.checkout_id, wanted, WAIT_SECONDS)
        out.status = str(body.get("status", ""))
        return body

    async def _paid(self, shop: Shop, out: Outcome) -> None:
        await self._create(shop, out, shop.paid)
        await self._confirm(shop, out, "visa")
        await self._wait(shop, out, TERMINAL)

    async def _coupon(self, shop: Shop, out: Outcome) -> None:
        await self._create(shop, out, shop.paid, coupon_code=shop.coupon)
        await self._confirm(shop, out, "visa")
        await self._wait(shop, out, TERMINAL)

    async def _trial(self, shop: Shop, out: Outcome) -> None:
        await self._create(shop, out, shop.trial)
        await self._confirm(shop, out, "visa")
        await self._wait(shop, out, TERMINAL)

    async def _free(self, shop: Shop, out: Outcome) -> None:
        await self._create(shop, out, shop.free)
        r = await self.client.bos(
            shop.merchant, "POST", f"/v1/checkout-sessions/{out.checkout_id}/confirm-free"
        )
        if r.status_code != 200:
            raise AssertionError(f"confirm-free: {r.status_code} {r.text[:200]}")
        await self._wait(shop, out, TERMINAL)

    async def _decline_then_paid(self, shop: Shop, out: Outcome) -> None:
        await self._create(shop, out, shop.paid)
        first = await self._confirm(shop, out, "declined")
        if first.get("status") != "failed":
            out.notes.append(f"decline answered {first.get('status')}")
        # The checkout is open again once the decline is recorded.
        await self._wait(shop, out, {"open"} | TERMINAL)
        await self._confirm(shop, out, "visa")
        await self._wait(shop, out, TERMINAL)

    async def _three_ds(self, shop: Shop, out: Outcome, outcome: str) -> None:
        await self._create(shop, out, shop.paid)
        body = await self._confirm(shop, out, "3ds")
        if body.get("status") != "requires_action":
            raise AssertionError(f"3DS confirm answered {body.get('status')}")
        intent = body["next_action"]["client_secret"].split("_secret_")[0]
        await self.client.call(
            self.client.sim,
            "POST",
            f"/_sim/payment_intents/{intent}/authenticate",
            ok=(200,),
            json={"outcome": outcome},
        )

    async def _three_ds_completed(self, shop: Shop, out: Outcome) -> None:
        await self._three_ds(shop, out, "success")
        await self._wait(shop, out, TERMINAL)

    async def _three_ds_failed(self, shop: Shop, out: Outcome) -> None:
        out.expected = "canceled"
        await self._three_ds(shop, out, "failure")
        # Authentication failed: the checkout reopens; the customer gives up.
        await self._wait(shop, out, {"open"} | TERMINAL)
        r = await self.client.bos(
            shop.merchant, "POST", f"/v1/checkout-sessions/{out.checkout_id}/cancel"
        )
        if r.status_code != 200:
            raise AssertionError(f"cancel: {r.status_code} {r.text[:200]}")
        await self._wait(shop, out, TERMINAL)

    async def _portal_cancel(self, shop: Shop, out: Outcome) -> None:
        await self._create(shop, out, shop.paid)
        await self._confirm(shop, out, "visa")
        done = await self._wait(shop, out, TERMINAL)
        if out.status != "complete":
            return
        r = await self.client.bos(
            shop.merchant,
            "POST",
            "/v1/portal-sessions",
            {"customer_id": done["customer"]["id"]},
        )
        if r.status_code != 201:
            raise AssertionError(f"portal session: {r.status_code} {r.text[:200]}")
        portal = {"Authorization": f"Bearer {r.json()['token']}"}
        sub = done["subscription_id"]
        r = await self.client.call(
            self.client.gateway,
            "POST",
            f"/v1/portal/subscriptions/{sub}/cancel",
            headers=portal,
        )
        if r.status_code != 200:
            raise AssertionError(f"portal cancel: {r.status_code} {r.text[:200]}")
        out.portal_canceled = True
