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
