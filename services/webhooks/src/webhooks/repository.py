"""All SQL of the webhooks service."""

import re
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from webhooks.models import outbox, stripe_events

# The raw event and the outbox rows of its domain events (only when the event is new) in
# ONE statement: atomic on its own (no BEGIN/COMMIT round trips around it) and a single
# round trip at intake, where every millisecond is queueing at 500 events/s. No NOTIFY:
# the caller wakes this process's relay (OutboxRelay.wake). Every notifying transaction
# takes one lock at commit and holds it through its WAL flush (Postgres keeps the queue in
# commit order), so NOTIFY serializes the intakes' commits; it also cost the backend about
# 100 us per event (measured: 90-130 us of backend CPU per statement without it, 200-230
# with it). A data-modifying CTE runs to completion whether or not the query reads it.
_RECORD_EVENT = text(
    f"""
    WITH ev AS (
        INSERT INTO {stripe_events.fullname} (id, type, account, created, payload)
        VALUES (:id, :type, :account, :created, CAST(:payload AS jsonb))
        ON CONFLICT (id) DO NOTHING
        RETURNING id
    ), ob AS (
        INSERT INTO {outbox.fullname} (event_id, event_type, org_id, envelope)
        SELECT r.event_id, r.event_type, r.org_id, r.envelope
        FROM unnest(
            CAST(:event_ids AS uuid[]),
            CAST(:event_types AS text[]),
            CAST(:org_ids AS text[]),
            CAST(:envelopes AS jsonb[])
        ) AS r(event_id, event_type, org_id, envelope)
        WHERE EXISTS (SELECT FROM ev)
    )
    SELECT EXISTS (SELECT FROM ev) AS is_new
    """
)
# The same statement for the driver (asyncpg numbers its parameters).
_RECORD_EVENT_PARAMS: list[str] = []


def _number(match: re.Match[str]) -> str:
    _RECORD_EVENT_PARAMS.append(match.group(1))
    return f"${len(_RECORD_EVENT_PARAMS)}"


_RECORD_EVENT_DRIVER = re.sub(r"(?<![:\w]):(\w+)", _number, _RECORD_EVENT.text)


async def record_event(
    conn: asyncpg.Connection | AsyncSession,
    *,
    event_id: str,
    type_: str,
    account: str | None,
    created: datetime,
    payload: str,
    outbox_rows: list[dict[str, Any]],
) -> bool:
    """Store the raw event (`payload` is its JSON text) and, if it is new, its outbox rows
    (`bos_common.outbox.outbox_row`); False when this Stripe id was already stored.
    `conn` is a driver connection (intake) or a session whose transaction it joins."""
    params = {
        "id": event_id,
        "type": type_,
        "account": account,
        "created": created,
        "payload": payload,
        "event_ids": [r["event_id"] for r in outbox_rows],
        "event_types": [r["event_type"] for r in outbox_rows],
        "org_ids": [r["org_id"] for r in outbox_rows],
        "envelopes": [r["envelope"] for r in outbox_rows],
    }
    if isinstance(conn, AsyncSession):
        return bool((await conn.execute(_RECORD_EVENT, params)).scalar_one())
    return bool(
        await conn.fetchval(_RECORD_EVENT_DRIVER, *(params[k] for k in _RECORD_EVENT_PARAMS))
    )


async def known_event_ids(session: AsyncSession, ids: list[str]) -> set[str]:
    rows = await session.execute(select(stripe_events.c.id).where(stripe_events.c.id.in_(ids)))
    return {row.id for row in rows}
