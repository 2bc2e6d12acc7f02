"""Idempotent consumer (inbox): `(consumer, event_id)` is inserted with
`ON CONFLICT DO NOTHING` in the same transaction as the handler's side effects, so a
redelivered event finds its row and does nothing; the bus acks only after commit.

Events that arrive together are handled together (`idempotent_batch`): one transaction,
one claim statement for all of them, the handler once per newly claimed event, one
commit. If any handler raises, the whole batch rolls back and the bus handles each event
alone (`idempotent`), so the outcome per event is the same as if it had come alone.

Each handling of one event runs in a consumer span whose parent is the envelope's
`traceparent`, so one trace goes gateway -> service -> outbox -> bus -> consumer (and on
through the events the handler publishes); a set-based handler's span links to the
traces of its events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind
from prometheus_client import Counter
from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    TextClause,
    Uuid,
    bindparam,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.bus import BatchHandler, Handler
from bos_common.db import Database
from bos_common.events import Envelope
from bos_common.telemetry import context_from_traceparent

DUPLICATES = Counter(
    "bos_inbox_duplicates_total", "Events a consumer had already processed.", ["consumer"]
)

_tracer = trace.get_tracer("bos.consumer")

# Per event, or set-based: all the new events of a batch in one call (one statement for
# all of them where the work allows it).
SessionHandler = Callable[[AsyncSession, Envelope], Awaitable[None]]
SetHandler = Callable[[AsyncSession, Sequence[Envelope]], Awaitable[None]]


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(200), primary_key=True),
        Column("event_id", Uuid, primary_key=True),
        Column("event_type", String(200), nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


_CLAIMS: dict[Table, Any] = {}


def _claim_statement(table: Table) -> Any:
    """Built once per table: a statement object reused is neither rebuilt (values(),
    on_conflict) nor re-keyed for SQLAlchemy's compiled cache on every event (its cache
    key is memoized on the object); building it is most of the work of a claim."""
    stmt = _CLAIMS.get(table)
    if stmt is None:
        stmt = _CLAIMS[table] = (
            insert(table)
            .values(
                consumer=bindparam("consumer"),
                event_id=bindparam("event_id"),
                event_type=bindparam("event_type"),
            )
            .on_conflict_do_nothing()
            .returning(table.c.event_id)
        )
    return stmt


async def claim(session: AsyncSession, table: Table, consumer: str, envelope: Envelope) -> bool:
    """True the first time this consumer sees the event, False on a redelivery."""
    result = await session.execute(
        _claim_statement(table),
        {
            "consumer": consumer,
            "event_id": envelope.event_id,
            "event_type": envelope.event_type,
        },
    )
    return result.first() is not None


_CLAIM_MANY: dict[Table, TextClause] = {}


def _claim_many_statement(table: Table) -> TextClause:
    stmt = _CLAIM_MANY.get(table)
    if stmt is None:
        stmt = _CLAIM_MANY[table] = text(
            f"INSERT INTO {table.fullname} (consumer, event_id, event_type) "
            "SELECT :consumer, e.id, e.type "
            "FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[])) AS e(id, type) "
            "ON CONFLICT DO NOTHING RETURNING event_id"
        )
    return stmt


async def claim_many(
    session: AsyncSession, table: Table, consumer: str, envelopes: Sequence[Envelope]
) -> set[Any]:
    """The ids of the events this consumer sees for the first time (one statement)."""
    result = await session.execute(
        _claim_many_statement(table),
        {
            "consumer": consumer,
            "ids": [envelope.event_id for envelope in envelopes],
            "types": [envelope.event_type for envelope in envelopes],
        },
    )
    return set(result.scalars())


def _span_attributes(consumer: str, envelopes: Sequence[Envelope]) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": "rabbitmq",
        "messaging.destination.name": consumer,
    }
    if len(envelopes) == 1:
        attributes["messaging.message.id"] = str(envelopes[0].event_id)
    else:
        attributes["messaging.batch.message_count"] = len(envelopes)
    return attributes


@contextmanager
def _consumer_span(consumer: str, envelopes: Sequence[Envelope]) -> Iterator[None]:
    """One event: a child of its traceparent. Several (a set-based handler): a span of
    its own linked to each event's trace, as OpenTelemetry's messaging conventions do
    for batches."""
    first = envelopes[0]
    parent = context_from_traceparent(first.traceparent) if len(envelopes) == 1 else None
    links = []
    if len(envelopes) > 1:
        for envelope in envelopes:
            context = context_from_traceparent(envelope.traceparent)
            if context is not None:
                links.append(Link(trace.get_current_span(context).get_span_context()))
    with _tracer.start_as_current_span(
        f"{consumer} {first.event_type}",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes=_span_attributes(consumer, envelopes),
    ):
        yield


def each(handler: SessionHandler, consumer: str) -> SetHandler:
    """A per-event handler as a set-based one: called once per event, each in its span."""

    async def handle(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            with _consumer_span(consumer, (envelope,)):
                await handler(session, envelope)

    return handle


def set_based(handler: SetHandler, consumer: str) -> SetHandler:
    """A set-based handler, called in one span for its events."""

    async def handle(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
        with _consumer_span(consumer, envelopes):
            await handler(session, envelopes)

    return handle


def idempotent(db: Database, table: Table, consumer: str, handler: SetHandler) -> Handler:
    """Wrap a handler so it runs at most once per event, in one transaction."""

    async def handle(envelope: Envelope) -> None:
        async with db.transaction() as session:
            if not await claim(session, table, consumer, envelope):
                DUPLICATES.labels(consumer).inc()
                return
            await handler(session, (envelope,))

    return handle


def idempotent_batch(
    db: Database, table: Table, consumer: str, handler: SetHandler
) -> BatchHandler:
    """`idempotent` for several events in one transaction: all or nothing. The handler
    gets the events this consumer sees for the first time, in delivery order, each once."""

    async def handle(envelopes: Sequence[Envelope]) -> None:
        async with db.transaction() as session:
            first_time = await claim_many(session, table, consumer, envelopes)
            fresh = []
            for envelope in envelopes:
                if envelope.event_id in first_time:
                    first_time.discard(envelope.event_id)  # the same event twice in a batch
                    fresh.append(envelope)
                else:
                    DUPLICATES.labels(consumer).inc()
            if fresh:
                await handler(session, fresh)

    return handle
