"""The chaos run's customers and merchants: the e2e suite's black-box clients
(tests/e2e/merchant.py) with what a real client does when the platform misbehaves: every
POST carries an Idempotency-Key and is retried with the same key on no answer, a 5xx,
429 or a 409 of a change in progress (`idempotency_key_in_use`, `checkout_in_progress`),
with a backoff, up to a deadline."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "e2e"))
from merchant import CARDS, Merchant, new_merchant, unique  # noqa: E402

__all__ = ["CARDS", "Client", "GiveUp", "Merchant", "new_merchant", "unique"]

RETRY_DEADLINE_SECONDS = 120.0
# Conflicts with a change in progress: nothing was done, the retry with the same key runs
# once it has settled (docs/api.md, idempotency).
RETRIED_CONFLICTS = {"idempotency_key_in_use", "checkout_in_progress"}


class GiveUp(Exception):
    """A request kept failing until its deadline."""


@dataclass
class Client:
    """Retrying calls to the gateway (through the load balancer) and to the simulator."""

    gateway: httpx.AsyncClient
    sim: httpx.AsyncClient
    retries: int = 0
    conflicts_seen: int = 0
    longest_conflict_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    async def call(
        self,
        http: httpx.AsyncClient,
        method: str,
        path: str,
        *,
        key: str | None = None,
        ok: tuple[int, ...] = (200, 201),
        **kwargs: Any,
    ) -> httpx.Response:
        """`method path` until it answers one of `ok` or a 4xx that is not retried (then
        returned as is); every attempt with the same Idempotency-Key."""
        headers = dict(kwargs.pop("headers", {}))
        if key is None and method == "POST":
            key = unique("chaos")
        if key:
            headers["Idempotency-Key"] = key
        deadline = time.monotonic() + RETRY_DEADLINE_SECONDS
        delay = 0.1
        first_conflict: float | None = None
        last = ""
        while time.monotonic() < deadline:
            try:
                r = await http.request(method, path, headers=headers, **kwargs)
            except httpx.HTTPError as e:
                last = f"{type(e).__name__}"
            else:
                if r.status_code in ok:
                    return r
                code = _error_code(r)
                if r.status_code == 409 and code in RETRIED_CONFLICTS:
                    now = time.monotonic()
                    if first_conflict is None:
                        first_conflict = now
                        self.conflicts_seen += 1
                    self.longest_conflict_seconds = max(
                        self.longest_conflict_seconds, now - first_conflict
                    )
                elif r.status_code < 500 and r.status_code != 429:
                    return r
                last = f"{r.status_code} {code}"
            self.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 2.0)
        self.errors.append(f"{method} {path}: {last}")
        raise GiveUp(f"{method} {path}: still {last} after {RETRY_DEADLINE_SECONDS:.0f} s")

    async def bos(
        self, merchant: Merchant, method: str, path: str, body: Any = None, **kw: Any
    ) -> httpx.Response:
        return await self.call(self.gateway, method, path, json=body, headers=merchant.auth, **kw)

    async def card(self, kind: str) -> str:
        """A PaymentMethod as Stripe.js creates it (the simulator's API may be faulty)."""
        r = await self.call(
            self.sim,
            "POST",
            "/v1/payment_methods",
            ok=(200,),
            data={
                "type": "card",
                "card[number]": CARDS[kind],
                "card[exp_month]": "12",
                "card[exp_year]": "2034",
                "card[cvc]": "123",
            },
            headers={"Authorization": "Bearer pk_test_bos"},
        )
        return str(r.json()["id"])

    async def wait_terminal(
        self, merchant: Merchant, checkout_id: str, wanted: set[str], timeout: float
    ) -> dict[str, Any]:
        """The checkout once its status is one of `wanted` (or the last seen at timeout)."""
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                r = await self.gateway.get(
                    f"/v1/checkout-sessions/{checkout_id}", headers=merchant.auth
                )
                if r.status_code == 200:
                    body = r.json()
                    if body.get("status") in wanted:
                        return body
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.25)
        return body


def _error_code(r: httpx.Response) -> str:
    try:
        return str(r.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


def new_key() -> str:
    return f"chaos-{uuid.uuid4().hex}"
