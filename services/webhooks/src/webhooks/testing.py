"""Helpers for the webhooks tests: Stripe events as Stripe sends them, and their
`Stripe-Signature` (the scheme of Stripe's docs: HMAC-SHA256 of "<t>.<payload>"); events
the Stripe simulator makes happen."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx


def stripe_event(
    event_id: str | None = None, *, account: str | None = None, org_id: str = "org_test"
) -> dict[str, Any]:
    """A `payment_intent.succeeded` for an intent BOS did not create (no BOS ids)."""
    event: dict[str, Any] = {
        "id": event_id or f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": f"pi_{uuid.uuid4().hex[:12]}",
                "object": "payment_intent",
                "amount": 1200,
                "amount_received": 1200,
                "currency": "usd",
                "status": "succeeded",
                "metadata": {"org_id": org_id},
            }
        },
    }
    if account is not None:
        event["account"] = account
    return event


def signature(payload: bytes, secret: str, at: int | None = None) -> str:
    t = at if at is not None else int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def signed_headers(payload: bytes, secret: str, at: int | None = None) -> dict[str, str]:
    return {"Stripe-Signature": signature(payload, secret, at), "Content-Type": "application/json"}


def succeeded_intent(org_id: str) -> dict[str, Any]:
    """A succeeded PaymentIntent of `org_id` that BOS did not create (no BOS ids)."""
    return {
        "id": f"pi_{uuid.uuid4().hex[:12]}",
        "object": "payment_intent",
        "amount": 100,
        "currency": "usd",
        "status": "succeeded",
        "metadata": {"org_id": org_id},
    }


async def sim_emit(
    sim: httpx.AsyncClient, type_: str, obj: dict[str, Any], account: str | None = None
) -> dict[str, Any]:
    """An event the simulator records and sends to its endpoints (not caused by an API
    call), on connected `account` when given."""
    body: dict[str, Any] = {"type": type_, "data": {"object": obj}}
    if account is not None:
        body["account"] = account
    r = await sim.post("/_sim/events", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())
