"""Stripe event intake's decisions: the domain events a Stripe event means (`translate`),
what recording it writes (`record_of`: the raw event and its domain events' outbox rows)
and `ingest`, which hands that record to the repository to be written at once and counts
the outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import orjson
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.app import ServiceRuntime
from bos_common.events import (
    AccountUpdatedV1,
    Event,
    PaymentFailedV1,
    PaymentRefundedV1,
    PaymentRequiresActionV1,
    PaymentSucceededV1,
    SetupSucceededV1,
)
from bos_common.outbox import outbox_row
from bos_common.telemetry import TRACEPARENT_METADATA_KEY, linked_span
from webhooks import repository
from webhooks.event_recorder import EventRecorder

log = logging.getLogger("webhooks")

EVENTS_RECEIVED = Counter(
    "bos_webhook_events_total",
    "Stripe events received, by type (known types only) and outcome.",
    ["type", "outcome"],
)

StripeEvent = dict[str, Any]


def _created(event: StripeEvent) -> datetime:
    return datetime.fromtimestamp(int(event["created"]), UTC)


def _object(event: StripeEvent) -> dict[str, Any]:
    obj: dict[str, Any] = event.get("data", {}).get("object", {})
    return obj


def _common(event: StripeEvent) -> dict[str, Any]:
    """Provenance, Stripe time, status and the BOS ids BOS put in the object's metadata."""
    obj = _object(event)
    metadata = obj.get("metadata") or {}
    return {
        "stripe_event_id": event["id"],
        "stripe_created": _created(event),
        "stripe_account": event.get("account"),
        "status": obj.get("status") or "",
        "checkout_id": metadata.get("checkout_id"),
        "customer_id": metadata.get("customer_id"),
        "invoice_id": metadata.get("invoice_id"),
        "payment_id": metadata.get("payment_id"),
    }


def _id_of(value: Any) -> str | None:
    """A Stripe reference is an id or, when expanded, an object with one."""
    ref: str | None = value.get("id") if isinstance(value, dict) else value
    return ref


def _payment_succeeded(event: StripeEvent) -> Event:
    pi = _object(event)
    return PaymentSucceededV1(
        **_common(event),
        payment_intent_id=pi["id"],
        amount=int(pi.get("amount_received") or pi.get("amount") or 0),
        currency=pi.get("currency", ""),
        payment_method_id=_id_of(pi.get("payment_method")),
        stripe_customer_id=_id_of(pi.get("customer")),
    )


def _payment_failed(event: StripeEvent) -> Event:
    pi = _object(event)
    error = pi.get("last_payment_error") or {}
    return PaymentFailedV1(
        **_common(event),
        payment_intent_id=pi["id"],
        amount=int(pi.get("amount") or 0),
        currency=pi.get("currency", ""),
        failure_code=error.get("code"),
        decline_code=error.get("decline_code"),
        failure_message=error.get("message"),
    )


def _payment_requires_action(event: StripeEvent) -> Event:
    pi = _object(event)
    return PaymentRequiresActionV1(
        **_common(event),
        payment_intent_id=pi["id"],
        amount=int(pi.get("amount") or 0),
        currency=pi.get("currency", ""),
    )


def _setup_succeeded(event: StripeEvent) -> Event:
    si = _object(event)
    return SetupSucceededV1(
        **_common(event),
        setup_intent_id=si["id"],
        payment_method_id=_id_of(si.get("payment_method")),
        stripe_customer_id=_id_of(si.get("customer")),
    )


def _charge_refunded(event: StripeEvent) -> Event:
    charge = _object(event)
    return PaymentRefundedV1(
        **_common(event),
        payment_intent_id=_id_of(charge.get("payment_intent")) or "",
        charge_id=charge["id"],
        amount_refunded=int(charge.get("amount_refunded") or 0),
        currency=charge.get("currency", ""),
    )


def _account_updated(event: StripeEvent) -> Event:
    account = _object(event)
    return AccountUpdatedV1(
        stripe_event_id=event["id"],
        stripe_created=_created(event),
        account_id=account["id"],
        charges_enabled=bool(account.get("charges_enabled")),
        payouts_enabled=bool(account.get("payouts_enabled")),
    )


TRANSLATIONS: dict[str, Callable[[StripeEvent], Event]] = {
    "payment_intent.succeeded": _payment_succeeded,
    "payment_intent.payment_failed": _payment_failed,
    "payment_intent.requires_action": _payment_requires_action,
    "setup_intent.succeeded": _setup_succeeded,
    "charge.refunded": _charge_refunded,
    "account.updated": _account_updated,
}

# What each of the platform's two Stripe webhook endpoints subscribes to (deploy/README.md),
# and what reconciliation lists: connected accounts' events reach only the Connect endpoint;
# BOS's payments are destination charges, so their events are the platform's own.
CONNECT_EVENT_TYPES: tuple[str, ...] = ("account.updated",)
ACCOUNT_EVENT_TYPES: tuple[str, ...] = tuple(
    t for t in TRANSLATIONS if t not in CONNECT_EVENT_TYPES
)


def translate(event: StripeEvent) -> list[Event]:
    """The domain events a Stripe event means (none for types BOS does not use)."""
    translator = TRANSLATIONS.get(event.get("type", ""))
    return [translator(event)] if translator else []


def _org_in(metadata: dict[str, Any]) -> str | None:
    value = metadata.get("org_id")
    return value if isinstance(value, str) else None


def org_of(event: StripeEvent) -> str | None:
    return _org_in(_object(event).get("metadata") or {})


def record_of(
    runtime: ServiceRuntime, event: StripeEvent, raw: bytes | str | None = None
) -> repository.EventRecord:
    """What recording a verified Stripe event writes: the event (`raw` is its JSON as
    delivered, stored as is rather than serialized again) and its domain events' outbox
    rows."""
    metadata: dict[str, Any] = _object(event).get("metadata") or {}
    org_id = _org_in(metadata)
    events = translate(event)
    # The trace of what this event causes links to the span that created its object
    # (a traced confirm); the outbox rows carry that trace to the consumers. Without one
    # (most events), no span and nothing to describe it.
    traceparent = metadata.get(TRACEPARENT_METADATA_KEY) if events else None
    if traceparent:
        about = {"stripe.event_id": str(event["id"]), "stripe.event_type": str(event.get("type"))}
        with linked_span("stripe.event", traceparent, about):
            rows = [outbox_row(e, producer=runtime.name, org_id=org_id) for e in events]
    else:
        rows = [outbox_row(e, producer=runtime.name, org_id=org_id) for e in events]
    if raw is None:
        raw = orjson.dumps(event)
    return repository.EventRecord(
        id=event["id"],
        type=str(event.get("type", "")),
        account=event.get("account"),
        created=_created(event),
        payload=raw.decode() if isinstance(raw, bytes) else raw,
        outbox_rows=rows,
    )


async def ingest(
    runtime: ServiceRuntime,
    writer: EventRecorder | asyncpg.Connection | AsyncSession,
    event: StripeEvent,
    *,
    raw: bytes | str | None = None,
) -> bool:
    """Record a verified Stripe event and its domain events, atomically (one statement:
    `writer` is intake's EventRecorder, which writes the events recorded together in one
    statement, a driver connection, or a session whose transaction it joins); False when
    this Stripe id was already recorded (no new effect). Returns once committed, except
    in a session (its caller commits)."""
    record = record_of(runtime, event, raw)
    if isinstance(writer, EventRecorder):
        is_new = await writer.record(record)
    else:
        is_new = await repository.record_event(writer, record)
    known = record.type in TRANSLATIONS
    label = record.type if known else "unknown"
    if not is_new:
        EVENTS_RECEIVED.labels(label, "duplicate").inc()
        return False
    if not known:
        log.info(
            "stored a Stripe event type BOS does not use",
            extra={"type": record.type, "stripe_event": record.id},
        )
    EVENTS_RECEIVED.labels(label, "accepted").inc()
    return True
