"""Stripe webhook intake route."""

import json

import stripe
from fastapi import APIRouter, Request

from bos_common.app import Runtime, Session
from bos_common.errors import InvalidRequest
from webhooks import service
from webhooks.settings import WebhooksSettings

router = APIRouter()


def verify(payload: bytes, signature: str | None, secrets: list[str]) -> dict:
    """The event if any configured secret verifies its Stripe-Signature (5 min tolerance)."""
    if not signature:
        raise InvalidRequest("signature_missing", "Missing Stripe-Signature header.")
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload.decode(), signature, secret, 300)
        except (stripe.SignatureVerificationError, ValueError):
            continue
        return json.loads(payload)
    raise InvalidRequest("signature_invalid", "Invalid Stripe-Signature.")


@router.post("/v1/webhooks/stripe", summary="Receive a Stripe event")
async def receive_stripe_event(request: Request, runtime: Runtime, session: Session) -> dict:
    settings = runtime.settings
    assert isinstance(settings, WebhooksSettings)
    event = verify(await request.body(), request.headers.get("stripe-signature"),
                   settings.webhook_secrets)
    created = await service.ingest(runtime, session, event)
    return {"received": True, "duplicate": not created}
