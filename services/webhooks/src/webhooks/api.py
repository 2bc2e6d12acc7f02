"""Stripe webhook intake route (the gateway routes it without API-key auth: the
signature is the authentication)."""

from __future__ import annotations

import json
from typing import Any

import stripe
from fastapi import APIRouter, Request

from bos_common.app import Session
from bos_common.errors import InvalidRequest
from webhooks import service
from webhooks.runtime import Runtime

router = APIRouter()


def verify(payload: bytes, signature: str | None, secrets: list[str], tolerance: int) -> Any:
    """The event if any configured secret verifies its Stripe-Signature."""
    if not signature:
        raise InvalidRequest("signature_missing", "Missing Stripe-Signature header.")
    text = payload.decode("utf-8", errors="replace")
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, signature, secret, tolerance)
        except (stripe.SignatureVerificationError, ValueError):
            continue
        try:
            event = json.loads(payload)
        except ValueError:
            break
        if isinstance(event, dict) and {"id", "type", "created"} <= event.keys():
            return event
        break
    raise InvalidRequest("signature_invalid", "Invalid Stripe-Signature.")


@router.post("/v1/webhooks/stripe", summary="Receive a Stripe event")
async def receive_stripe_event(
    request: Request, runtime: Runtime, session: Session
) -> dict[str, bool]:
    settings = runtime.settings
    event = verify(
        await request.body(),
        request.headers.get("stripe-signature"),
        settings.webhook_secrets,
        settings.signature_tolerance_seconds,
    )
    if not await runtime.accounts.is_ours(event.get("account")):
        raise InvalidRequest(
            "wrong_account", "This event belongs to a Stripe account that is not ours."
        )
    created = await service.ingest(runtime, session, event)
    return {"received": True, "duplicate": not created}
