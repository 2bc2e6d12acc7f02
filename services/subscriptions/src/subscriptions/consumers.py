"""Event handlers of the subscriptions service. Each runs once per event (inbox), in the
transaction that records its effects; every handler is a guarded state transition, so a
late or repeated event is harmless."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.app import ServiceRuntime
from bos_common.events import (
    CheckoutCompletedV1,
    Envelope,
    InvoicePaidV1,
    InvoicePaymentFailedV1,
)
from subscriptions import fulfilment, payments, repository
from subscriptions.runtime import SubscriptionsRuntime

log = logging.getLogger("bos.subscriptions.consumers")


def _parse_time(value: object) -> datetime:
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)


def register(runtime: ServiceRuntime) -> None:
    assert isinstance(runtime, SubscriptionsRuntime)
    rt = runtime
    # payment.succeeded.v1 was recorded here once (a table nobody read): the queue goes.
    runtime.retire_queue("payments")

    async def checkout_completed(session: AsyncSession, envelope: Envelope) -> None:
        event = envelope.payload()
        assert isinstance(event, CheckoutCompletedV1)
        await fulfilment.fulfil_checkout(rt, session, envelope.org_id, event)

    async def invoice_result(session: AsyncSession, envelope: Envelope) -> None:
        event = envelope.payload()
        if isinstance(event, InvoicePaidV1):
            await payments.invoice_paid(rt, session, event)
        elif isinstance(event, InvoicePaymentFailedV1):
            await payments.invoice_payment_failed(rt, session, event)

    async def organization_updated(session: AsyncSession, envelope: Envelope) -> None:
        # Read from the raw data: only the name (seller on invoices, email branding) and
        # the version (a late, older update is ignored) matter here.
        data = envelope.data
        org_id = data.get("org_id") or envelope.org_id
        if not org_id or not data.get("name"):
            return
        await repository.upsert_organization(
            session,
            org_id,
            str(data["name"]),
            int(data.get("version") or 0),
            _parse_time(data.get("updated_at")),
        )

    async def card_saved(session: AsyncSession, envelope: Envelope) -> None:
        # setup.succeeded.v1 (webhooks): a card saved for a BOS customer (portal card
        # update, 17.3) becomes the one later invoices are charged to.
        data = envelope.data
        customer_id, payment_method_id = data.get("customer_id"), data.get("payment_method_id")
        if not customer_id or not payment_method_id:
            return
        await payments.payment_method_updated(
            rt,
            session,
            envelope.org_id,
            customer_id,
            payment_method_id,
            data.get("stripe_customer_id"),
            _parse_time(data.get("stripe_created")),
        )

    runtime.on_event("checkouts", CheckoutCompletedV1.event_type)(checkout_completed)
    runtime.on_event("invoices", InvoicePaidV1.event_type, InvoicePaymentFailedV1.event_type)(
        invoice_result
    )
    runtime.on_event("organizations", "organization.updated.v1")(organization_updated)
    runtime.on_event("payment_methods", "setup.succeeded.v1")(card_saved)
