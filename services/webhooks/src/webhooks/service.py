"""Stripe event intake: store raw (deduplicated) and translate into domain events in the
same transaction, so an accepted event is never half-recorded."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.app import ServiceRuntime
from bos_common.events import Event, PaymentSucceededV1
from webhooks import repository


def translate(stripe_event: dict[str, Any]) -> list[Event]:
    """The domain events a Stripe event means (none for types BOS does not use)."""
    obj = stripe_event.get("data", {}).get("object", {})
    metadata = obj.get("metadata") or {}
    created = datetime.fromtimestamp(int(stripe_event["created"]), UTC)
    if stripe_event.get("type") == "payment_intent.succeeded":
        return [
            PaymentSucceededV1(
                stripe_event_id=stripe_event["id"],
                payment_intent_id=obj["id"],
                amount=int(obj.get("amount_received") or obj.get("amount") or 0),
                currency=obj.get("currency", ""),
                status=obj.get("status", "succeeded"),
                stripe_created=created,
                checkout_id=metadata.get("checkout_id"),
                customer_id=metadata.get("customer_id"),
                invoice_id=metadata.get("invoice_id"),
                stripe_account=stripe_event.get("account"),
            )
        ]
    return []


async def ingest(
    runtime: ServiceRuntime, session: AsyncSession, stripe_event: dict[str, Any]
) -> bool:
    """Record a verified Stripe event; False when it was a duplicate (no new effect)."""
    created = datetime.fromtimestamp(int(stripe_event["created"]), UTC)
    is_new = await repository.insert_stripe_event(
        session,
        event_id=stripe_event["id"],
        type_=stripe_event["type"],
        account=stripe_event.get("account"),
        created=created,
        payload=stripe_event,
    )
    if not is_new:
        return False
    org_id = (stripe_event.get("data", {}).get("object", {}).get("metadata") or {}).get("org_id")
    for event in translate(stripe_event):
        await runtime.publish(session, event, org_id=org_id)
    return True
