"""Every query of the chaos checker, in one place. The checker is an operator's tool: it
reads each service's schema directly (services never do)."""

from __future__ import annotations

from typing import Any

import asyncpg

SCHEMAS_WITH_OUTBOX = ("tokens", "catalog", "checkout", "subscriptions", "webhooks")

Rows = list[dict[str, Any]]


async def _rows(conn: asyncpg.Connection, query: str, *args: Any) -> Rows:
    return [dict(r) for r in await conn.fetch(query, *args)]


async def checkouts(conn: asyncpg.Connection, ids: list[str]) -> Rows:
    return await _rows(
        conn,
        "SELECT id, org_id, status, customer_email, amount_total, trial_days, is_free,"
        " payment_id, subscription_id FROM checkout.checkout_sessions WHERE id = ANY($1)",
        ids,
    )


async def checkouts_processing(conn: asyncpg.Connection) -> Rows:
    return await _rows(
        conn, "SELECT id, updated_at FROM checkout.checkout_sessions WHERE status = 'processing'"
    )


async def payments_with_intents(conn: asyncpg.Connection) -> Rows:
    return await _rows(
        conn,
        "SELECT id, checkout_id, kind, status, amount, platform_fee, stripe_intent_id"
        " FROM checkout.payments WHERE stripe_intent_id IS NOT NULL",
    )


async def subscriptions_of_checkouts(conn: asyncpg.Connection, ids: list[str]) -> Rows:
    return await _rows(
        conn,
        "SELECT id, checkout_id, status, cancel_at_period_end"
        " FROM subscriptions.subscriptions WHERE checkout_id = ANY($1)",
        ids,
    )


async def invoices_of_checkouts(conn: asyncpg.Connection, ids: list[str]) -> Rows:
    return await _rows(
        conn,
        "SELECT s.checkout_id, i.id, i.status, i.total, i.billing_reason"
        " FROM subscriptions.invoices i JOIN subscriptions.subscriptions s"
        " ON s.id = i.subscription_id WHERE s.checkout_id = ANY($1)",
        ids,
    )


async def invoice_numbers(conn: asyncpg.Connection) -> Rows:
    return await _rows(conn, "SELECT org_id, number FROM subscriptions.invoices")


async def notifications_to(conn: asyncpg.Connection, emails: list[str]) -> Rows:
    return await _rows(
        conn,
        "SELECT to_email, kind, status FROM subscriptions.notifications WHERE to_email = ANY($1)",
        emails,
    )


async def outbox_pending(conn: asyncpg.Connection) -> dict[str, int]:
    return {
        schema: int(
            await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL")
        )
        for schema in SCHEMAS_WITH_OUTBOX
    }


async def stored_stripe_events(conn: asyncpg.Connection) -> set[str]:
    return {r["id"] for r in await conn.fetch("SELECT id FROM webhooks.stripe_events")}


async def notifications_pending(conn: asyncpg.Connection) -> int:
    """Customer e-mails written and not yet sent (nor given up)."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM subscriptions.notifications WHERE status = 'pending'"
        )
    )


# --- webhooks to merchants ---------------------------------------------------------------


async def outbox_events(conn: asyncpg.Connection, org_id: str, types: list[str]) -> Rows:
    """An organization's internal events of these types, from every outbox, with their data."""
    union = " UNION ALL ".join(
        f"SELECT event_id::text AS event_id, event_type, (envelope->'data')::text AS data"
        f" FROM {schema}.outbox WHERE org_id = $1 AND event_type = ANY($2)"
        for schema in SCHEMAS_WITH_OUTBOX
    )
    return await _rows(conn, union, org_id, types)


async def merchant_event_sources(conn: asyncpg.Connection, org_id: str) -> dict[str, str]:
    """Public event id -> the internal event it was made from."""
    rows = await conn.fetch(
        "SELECT id, source_event_id::text AS source FROM webhooks.webhook_events"
        " WHERE org_id = $1 AND source_event_id IS NOT NULL",
        org_id,
    )
    return {r["id"]: r["source"] for r in rows}


async def merchant_deliveries_pending(conn: asyncpg.Connection, endpoint_ids: list[str]) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM webhooks.webhook_deliveries"
            " WHERE endpoint_id = ANY($1) AND status = 'pending'",
            endpoint_ids,
        )
    )


async def merchant_deliveries_unsubscribed(conn: asyncpg.Connection, org_id: str) -> int:
    """Deliveries to an endpoint of a type it does not subscribe to (the test event aside)."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM webhooks.webhook_deliveries d"
            " JOIN webhooks.webhook_endpoints e ON e.id = d.endpoint_id"
            " WHERE d.org_id = $1 AND cardinality(e.event_types) > 0"
            " AND NOT d.event_type = ANY(e.event_types)"
            " AND d.event_type <> 'webhook_endpoint.test'",
            org_id,
        )
    )
