"""Stripe webhook intake route (the gateway routes it without API-key auth: the
signature is the authentication). Its body, `receive`, is also what the plain-ASGI fast
path runs; this route is the documented one."""

from __future__ import annotations

from typing import Any

import orjson
import stripe
from fastapi import APIRouter, Request
from prometheus_client import Counter

from bos_common.errors import InvalidRequest
from webhooks import service
from webhooks.runtime import WebhooksRuntime

router = APIRouter()

# Refused deliveries by reason (alert BosWebhookSignatureFailures): a rotated secret not
# configured here, or someone posting forged events. Both series exist from the start.
SIGNATURE_FAILURES = Counter(
    "bos_webhook_signature_failures_total",
    "Webhook deliveries refused for a missing or invalid Stripe-Signature.",
    ["reason"],
)
for _reason in ("signature_missing", "signature_invalid"):
    SIGNATURE_FAILURES.labels(_reason)


def verify(payload: bytes, signature: str | None, secrets: list[str], tolerance: int) -> Any:
    """The event if any configured secret verifies its Stripe-Signature (`secrets`: the
    account endpoint's and the Connect endpoint's, rotations included)."""
    if not signature:
        SIGNATURE_FAILURES.labels("signature_missing").inc()
        raise InvalidRequest("signature_missing", "Missing Stripe-Signature header.")
    text = payload.decode("utf-8", errors="replace")
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, signature, secret, tolerance)
        except (stripe.SignatureVerificationError, ValueError):
            continue
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            break
        if isinstance(event, dict) and {"id", "type", "created"} <= event.keys():
            return event
        break
    SIGNATURE_FAILURES.labels("signature_invalid").inc()
    raise InvalidRequest("signature_invalid", "Invalid Stripe-Signature.")


async def receive(
    runtime: WebhooksRuntime, payload: bytes, signature: str | None
) -> dict[str, bool]:
    """Verify, check the account, record: the whole intake, for the route and the fast
    path alike."""
    settings = runtime.settings
    event = verify(
        payload, signature, settings.webhook_secrets, settings.signature_tolerance_seconds
    )
    if not await runtime.accounts.is_ours(event.get("account")):
        raise InvalidRequest(
            "wrong_account", "This event belongs to a Stripe account that is not ours."
        )
    # Recorded with the events that arrive at the same time (one statement, one commit):
    # answered once committed.
    created = await service.ingest(runtime, runtime.recorder, event, raw=payload)
    if created:
        runtime.relay.wake()  # committed: see repository.record_events
    return {"received": True, "duplicate": not created}


# Signed by Stripe, not authenticated by a bearer credential: no `security`, a required
# `Stripe-Signature` header, and any JSON object as the body (a Stripe event).
STRIPE_EVENT_DOC: dict[str, Any] = {
    "security": [],
    "parameters": [
        {
            "name": "Stripe-Signature",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "`t=<unix time>,v1=<HMAC-SHA256>` as Stripe signs its webhooks.",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
}


@router.post(
    "/v1/webhooks/stripe",
    summary="Receive a Stripe event",
    description="Bad or missing signature: 400 (`signature_missing`, `signature_invalid`); "
    "an event of another Stripe account: 400 `wrong_account`; a duplicate: 200 with "
    "`duplicate: true`; a failure to store it: 503, so Stripe retries.",
    openapi_extra=STRIPE_EVENT_DOC,
)
async def receive_stripe_event(request: Request) -> dict[str, bool]:
    # No Session/Runtime dependencies: the event is recorded by one statement
    # (see repository.record_event), and FastAPI's dependency solving is measurable at
    # hundreds of webhooks a second.
    runtime: WebhooksRuntime = request.app.state.runtime
    return await receive(runtime, await request.body(), request.headers.get("stripe-signature"))
