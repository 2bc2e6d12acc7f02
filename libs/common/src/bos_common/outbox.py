"""Transactional outbox.

`add_event` writes the event row in the caller's (business) transaction and wakes the
relay with NOTIFY, which Postgres delivers only on commit; a hot writer that commits in
the relay's own process may call `OutboxRelay.wake()` after its commit instead.
`OutboxRelay` publishes pending rows with publisher confirms and marks them sent only
after the confirm; rows are claimed with `FOR UPDATE SKIP LOCKED`, so several replicas
share the work and a crash between confirm and update at worst publishes twice
(consumers are idempotent).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from prometheus_client import Gauge
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Insert,
    MetaData,
    Select,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.bus import Bus
from bos_common.db import Database, asyncpg_dsn
from bos_common.events import Envelope, Event
from bos_common.telemetry import current_traceparent

log = logging.getLogger("bos.outbox")

OUTBOX_BACKLOG = Gauge(
    "bos_outbox_backlog", "Outbox rows written but not yet confirmed by the broker.", ["service"]
)


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("event_type", String(200), nullable=False),
        Column("org_id", String(64)),
        Column("envelope", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", BigInteger, nullable=False, server_default=text("0")),
        Column("last_error", Text),
        Index("ix_outbox_pending", "id", postgresql_where=text("published_at IS NULL")),
    )


def notify_channel(schema: str) -> str:
    return f"{schema}_outbox"


def _envelope(
    event: Event, producer: str, org_id: str | None, occurred_at: datetime | None
) -> Envelope:
    """`event` in its envelope, in the trace of the work that caused it."""
    return Envelope.wrap(
        event,
        producer=producer,
        org_id=org_id,
        traceparent=current_traceparent(),
        occurred_at=occurred_at,
    )


def outbox_row(
    event: Event,
    *,
    producer: str,
    org_id: str | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """The outbox row of `event`, its envelope already JSON text: for a caller that
    writes the row in a statement of its own (one round trip with its business row)."""
    envelope = _envelope(event, producer, org_id, occurred_at)
    return {
        "event_id": envelope.event_id,
        "event_type": envelope.event_type,
        "org_id": org_id,
        "envelope": envelope.model_dump_json(),
    }


OUTBOX_COLUMNS = "(event_id, event_type, org_id, envelope)"


def insert_sql(table: Table, source: str) -> str:
    """The outbox's INSERT for a hand-written statement (a CTE of a set-based write):
    `source` is a SELECT of event_id, event_type, org_id and envelope, in that order."""
    return f"INSERT INTO {table.fullname} {OUTBOX_COLUMNS} {source}"


def unnest_sql(ids: str, types: str, org_ids: str, envelopes: str) -> str:
    """A SELECT of outbox rows from four parallel array parameters (as `outbox_arrays`
    returns them), each placeholder spelled as the driver wants (`$3`, `:ids`)."""
    return (
        f"SELECT * FROM unnest(CAST({ids} AS uuid[]), CAST({types} AS text[]), "
        f"CAST({org_ids} AS text[]), CAST({envelopes} AS jsonb[]))"
    )


def outbox_arrays(
    rows: list[dict[str, Any]],
) -> tuple[list[Any], list[str], list[str | None], list[str]]:
    """`outbox_row`s as the four parallel arrays `unnest_sql` reads."""
    return (
        [r["event_id"] for r in rows],
        [r["event_type"] for r in rows],
        [r["org_id"] for r in rows],
        [r["envelope"] for r in rows],
    )


OUTBOX_COLUMN_NAMES = ("event_id", "event_type", "org_id", "envelope")


def array_params(rows: list[dict[str, Any]], prefix: str = "outbox_") -> dict[str, list[Any]]:
    """`outbox_row`s as the parameters of `insert_arrays(table, prefix)`."""
    arrays: tuple[list[Any], ...] = outbox_arrays(rows)
    return {
        f"{prefix}{name}": values for name, values in zip(OUTBOX_COLUMN_NAMES, arrays, strict=True)
    }


def insert_arrays(table: Table, prefix: str = "outbox_") -> Insert:
    """The outbox's INSERT of the rows given as four parallel array parameters, as
    SQLAlchemy Core to compose into a statement of the caller's (a CTE of a set-based
    write); `array_params(rows, prefix)` are its parameters."""
    types = (ARRAY(Uuid), ARRAY(Text), ARRAY(Text), ARRAY(JSONB))
    arrays = func.unnest(
        *(
            bindparam(f"{prefix}{name}", type_=t)
            for name, t in zip(OUTBOX_COLUMN_NAMES, types, strict=True)
        )
    )
    rows = arrays.table_valued(*OUTBOX_COLUMN_NAMES).render_derived()
    return insert(table).from_select(
        list(OUTBOX_COLUMN_NAMES), select(*(rows.c[name] for name in OUTBOX_COLUMN_NAMES))
    )


def notify(table: Table) -> Select[Any]:
    """SQLAlchemy Core's SELECT that wakes the relay of `table` on commit."""
    return select(func.pg_notify(literal(notify_channel(table.schema or "public")), literal("")))


def notify_sql(channel: str) -> str:
    """Wakes the relay of this outbox on commit (`channel`: a placeholder for
    `notify_channel(schema)`)."""
    return f"SELECT pg_notify({channel}, '')"


async def add_event(
    session: AsyncSession,
    table: Table,
    event: Event,
    *,
    producer: str,
    org_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    """Record `event` in the current transaction; it is published after commit."""
    envelope = _envelope(event, producer, org_id, occurred_at)
    await session.execute(
        insert(table).values(
            event_id=envelope.event_id,
            event_type=envelope.event_type,
            org_id=org_id,
            envelope=envelope.model_dump(mode="json"),
        )
    )
    await session.execute(notify(table))
    return envelope


async def add_events(
    session: AsyncSession,
    table: Table,
    events: Sequence[tuple[Event, str | None]],
    *,
    producer: str,
) -> None:
    """Record `(event, org_id)`s in the current transaction in one statement, with one
    wake-up of the relay; they are published after commit."""
    if not events:
        return
    rows = []
    for event, org_id in events:
        envelope = _envelope(event, producer, org_id, None)
        rows.append(
            {
                "event_id": envelope.event_id,
                "event_type": envelope.event_type,
                "org_id": org_id,
                "envelope": envelope.model_dump(mode="json"),
            }
        )
    await session.execute(insert(table), rows)
    await session.execute(notify(table))


async def copy_events(
    conn: asyncpg.Connection,
    table: Table,
    events: Sequence[tuple[Event, str | None]],
    *,
    producer: str,
) -> None:
    """`add_events` with COPY, on the driver connection of the current transaction: for
    thousands of events at once."""
    if not events:
        return
    rows = [outbox_row(event, producer=producer, org_id=org_id) for event, org_id in events]
    await conn.copy_records_to_table(
        table.name,
        schema_name=table.schema,
        columns=list(OUTBOX_COLUMN_NAMES),
        records=[tuple(row[c] for c in OUTBOX_COLUMN_NAMES) for row in rows],
    )
    await conn.execute("SELECT pg_notify($1, '')", notify_channel(table.schema or "public"))


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        table: Table,
        bus: Bus,
        *,
        service: str,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        linger: float = 0.01,
    ) -> None:
        self.db = db
        self.table = table
        self.bus = bus
        self.service = service
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        # After a wake-up, wait this long before claiming rows, so that a busy outbox is
        # published in batches (a batch has a fixed cost: its statements and the
        # confirms' round trip) rather than a batch per row; the price is that much lag.
        self.linger = linger
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        # On the driver connection with fixed SQL text: SQLAlchemy built, compiled and
        # cache-keyed each statement per batch, and `id IN (...)` rendered a new
        # statement (a new prepared statement in Postgres) for every batch length.
        name = ".".join(f'"{part}"' for part in (table.schema, table.name) if part)
        self._claim_sql = (
            f"SELECT id, event_id::text AS event_id, event_type,"
            f" envelope->>'traceparent' AS traceparent, envelope::text AS body"
            f" FROM {name} WHERE published_at IS NULL ORDER BY id LIMIT $1"
            f" FOR UPDATE SKIP LOCKED"
        )
        self._mark_sql = f"UPDATE {name} SET published_at = $2 WHERE id = ANY($1::bigint[])"
        self._failed_sql = (
            f"UPDATE {name} AS o SET attempts = o.attempts + 1, last_error = f.error"
            f" FROM unnest($1::bigint[], $2::text[]) AS f(id, error) WHERE o.id = f.id"
        )

    def wake(self) -> None:
        """Rows were committed in this process: relay them without waiting for NOTIFY
        (a writer on a hot path may wake the relay this way instead of NOTIFY, which
        serializes the commits of every notifying transaction in Postgres)."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows; returns how many were confirmed."""
        async with self.db.driver_connection() as conn, conn.transaction():
            # The envelope's JSON as stored: published as is, never parsed and serialized
            # again (it was validated when it was written).
            rows = await conn.fetch(self._claim_sql, self.batch_size)
            if not rows:
                return 0
            # Sent in order on one channel; the confirms are awaited together.
            results = await asyncio.gather(
                *(
                    self.bus.publish_raw(
                        row["event_id"],
                        row["event_type"],
                        row["body"].encode(),
                        traceparent=row["traceparent"],
                    )
                    for row in rows
                ),
                return_exceptions=True,
            )
            confirmed = [row["id"] for row, r in zip(rows, results, strict=True) if r is None]
            failed = [(row["id"], r) for row, r in zip(rows, results, strict=True) if r is not None]
            # Marked only after the broker confirmed, in the transaction that holds the
            # rows' locks.
            if confirmed:
                await conn.execute(self._mark_sql, confirmed, datetime.now(UTC))
            if failed:
                await conn.execute(
                    self._failed_sql,
                    [row_id for row_id, _ in failed],
                    [str(exc)[:500] for _, exc in failed],
                )
        if failed:
            raise ConnectionError(f"{len(failed)} outbox rows not confirmed: {failed[0][1]!r}")
        return len(confirmed)

    async def backlog(self) -> int:
        t = self.table
        async with self.db.engine.connect() as conn:
            n = (
                await conn.execute(
                    select(func.count()).select_from(t).where(t.c.published_at.is_(None))
                )
            ).scalar_one()
        OUTBOX_BACKLOG.labels(self.service).set(n)
        return int(n)

    async def _listen(self) -> None:
        try:
            self._listener = await asyncpg.connect(asyncpg_dsn(self.db.url), timeout=5)
            await self._listener.add_listener(
                notify_channel(self.db.schema), lambda *_: self._wake.set()
            )
        except (OSError, asyncpg.PostgresError) as exc:
            # Polling still works without LISTEN; try again on the next loop.
            log.warning("outbox LISTEN unavailable: %s", exc)
            self._listener = None

    async def run(self) -> None:
        """Relay forever: drain, then sleep until NOTIFY or the poll interval."""
        delay = self.poll_interval
        loop = asyncio.get_running_loop()
        next_backlog = 0.0
        while True:
            try:
                if self._listener is None or self._listener.is_closed():
                    await self._listen()
                await self.bus.wait_connected()
                if self.linger:
                    await asyncio.sleep(self.linger)
                # Cleared after the linger: a wake-up that came during it is for a row
                # this drain sees.
                self._wake.clear()
                while await self.publish_pending() == self.batch_size:
                    pass
                # A count per wake-up would cost as much as the batch it follows when
                # NOTIFYs come hundreds a second: the gauge is refreshed once a poll interval.
                now = loop.time()
                if now >= next_backlog:
                    await self.backlog()
                    next_backlog = now + self.poll_interval
                delay = self.poll_interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - broker or DB down: back off, never die
                log.warning("outbox relay error, backing off: %s", exc)
                delay = min(max(delay, 0.2) * 2, 10.0)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def close(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()
