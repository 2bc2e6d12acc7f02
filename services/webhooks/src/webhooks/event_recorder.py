"""Intake's writer of verified Stripe events: it owns its transactions (the SQL is
`repository.record_events`, which takes a connection). Each batch is one statement on a
pool connection of its own, atomic on its own: one round trip, one commit and one WAL
flush for the events that arrived together."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from bos_common.batching import GroupCommit
from bos_common.db import Database
from webhooks.repository import EventRecord, record_events

# Concurrent intake statements (each on a pool connection of its own) and events per
# statement. A request that comes alone is written at once; requests queue, and are
# written together, only while every writer is busy (bos_common.batching).
WRITERS = 2
MAX_BATCH = 200
# Postgres errors that say nothing about the other events of a batch (bad data in one
# event: a NUL character in the payload, an id longer than the column): the batch is then
# written event by event so that only the offending request fails.
_ROW_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


class EventRecorder:
    """Intake's writer: `record` returns once the event (and its outbox rows) is
    committed, with whether it was new; events recorded together share one statement."""

    def __init__(self, db: Database, *, writers: int = WRITERS) -> None:
        self._db = db
        self._batches: GroupCommit[EventRecord, bool] = GroupCommit(
            self._execute,
            writers=writers,
            max_batch=MAX_BATCH,
            row_errors=_ROW_ERRORS,
            name="stripe-event-writer",
        )

    async def record(self, record: EventRecord) -> bool:
        return await self._batches.submit(record)

    async def _execute(self, records: list[EventRecord]) -> list[bool]:
        async with self._db.driver_connection() as conn:
            return await record_events(conn, records)

    async def close(self) -> None:
        await self._batches.close()
