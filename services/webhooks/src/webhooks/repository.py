"""All SQL of the webhooks service."""

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.outbox import array_params, insert_sql
from webhooks.models import outbox, stripe_events

# Stripe events and the outbox rows of their domain events (only for the events that are
# new) in ONE statement: atomic on its own (no BEGIN/COMMIT round trips around it) and a
# single round trip at intake, where under load every round trip is time other events
# spend queueing.
#
# Intake writes the events that arrive together with one execution of it
# (webhooks.event_recorder: one round trip, one commit and one WAL flush for a burst);
# reconciliation writes one event at a time in its session's transaction. Within a batch
# the same Stripe id can come twice (a redelivery racing the first delivery): DISTINCT ON
# keeps its first occurrence, which alone gets its outbox rows and is answered "new". Rows
# are inserted in id order so that concurrent batches take their unique-index locks in the
# same order (no deadlock between two batches holding the same two ids). The result is the batch
# positions (1-based) of the events that were inserted.
#
# No NOTIFY: the caller wakes this process's relay (OutboxRelay.wake). Every notifying
# transaction takes one lock at commit and holds it through its WAL flush (Postgres keeps
# the queue in commit order), so NOTIFY would serialize the intakes' commits and add
# backend work per event. A data-modifying CTE runs to completion whether or not the
# query reads it.
#
# The outbox rows (`bos_common.outbox.array_params`) come with the batch position of
# their event (`ob_ords`): only those of new events are written.
_NEW_EVENTS_OUTBOX_ROWS = """
        SELECT r.event_id, r.event_type, r.org_id, r.envelope
        FROM unnest(
            CAST(:ob_ords AS bigint[]),
            CAST(:ob_event_id AS uuid[]),
            CAST(:ob_event_type AS text[]),
            CAST(:ob_org_id AS text[]),
            CAST(:ob_envelope AS jsonb[])
        ) WITH ORDINALITY AS r(ord, event_id, event_type, org_id, envelope, n)
        JOIN input i ON i.ord = r.ord
        JOIN ev ON ev.id = i.id
        ORDER BY r.n
"""
_RECORD_EVENTS = text(
    f"""
    WITH input AS (
        SELECT DISTINCT ON (e.id) e.ord, e.id, e.type, e.account, e.created, e.payload
        FROM unnest(
            CAST(:ids AS text[]),
            CAST(:types AS text[]),
            CAST(:accounts AS text[]),
            CAST(:created AS timestamptz[]),
            CAST(:payloads AS text[])
        ) WITH ORDINALITY AS e(id, type, account, created, payload, ord)
        ORDER BY e.id, e.ord
    ), ev AS (
        INSERT INTO {stripe_events.fullname} (id, type, account, created, payload)
        SELECT id, type, account, created, CAST(payload AS jsonb) FROM input ORDER BY id
        ON CONFLICT (id) DO NOTHING
        RETURNING id
    ), ob AS (
        {insert_sql(outbox, _NEW_EVENTS_OUTBOX_ROWS)}
    )
    SELECT i.ord FROM input i JOIN ev ON ev.id = i.id
    """
)
# The same statement for the driver (asyncpg numbers its parameters).
_RECORD_EVENTS_PARAMS: list[str] = []


def _number(match: re.Match[str]) -> str:
    _RECORD_EVENTS_PARAMS.append(match.group(1))
    return f"${len(_RECORD_EVENTS_PARAMS)}"


_RECORD_EVENTS_DRIVER = re.sub(r"(?<![:\w]):(\w+)", _number, _RECORD_EVENTS.text)


class EventRecord(NamedTuple):
    """A verified Stripe event to store (`payload` is its JSON text) and the outbox rows
    (`bos_common.outbox.outbox_row`) of its domain events."""

    id: str
    type: str
    account: str | None
    created: datetime
    payload: str
    outbox_rows: list[dict[str, Any]]


async def record_events(
    conn: asyncpg.Connection | AsyncSession, records: Sequence[EventRecord]
) -> list[bool]:
    """Store the events and, for those that are new, their outbox rows, in one statement;
    per event, in order, whether it was new (False: this Stripe id was already stored, or
    came earlier in `records`). `conn` is a driver connection (intake) or a session whose
    transaction it joins."""
    outbox_rows = [(n, r) for n, rec in enumerate(records, 1) for r in rec.outbox_rows]
    params = {
        "ids": [r.id for r in records],
        "types": [r.type for r in records],
        "accounts": [r.account for r in records],
        "created": [r.created for r in records],
        "payloads": [r.payload for r in records],
        "ob_ords": [n for n, _ in outbox_rows],
        **array_params([r for _, r in outbox_rows], "ob_"),
    }
    if isinstance(conn, AsyncSession):
        inserted = set((await conn.execute(_RECORD_EVENTS, params)).scalars())
    else:
        rows = await conn.fetch(_RECORD_EVENTS_DRIVER, *(params[k] for k in _RECORD_EVENTS_PARAMS))
        inserted = {row[0] for row in rows}
    return [n in inserted for n in range(1, len(records) + 1)]


async def record_event(conn: asyncpg.Connection | AsyncSession, record: EventRecord) -> bool:
    """`record_events` of one event."""
    [is_new] = await record_events(conn, [record])
    return is_new


async def known_event_ids(session: AsyncSession, ids: list[str]) -> set[str]:
    rows = await session.execute(select(stripe_events.c.id).where(stripe_events.c.id.in_(ids)))
    return {row.id for row in rows}
