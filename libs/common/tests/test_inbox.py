"""The inbox wrapper continues the producer's trace (the claim itself is covered against
real Postgres by tests/integration/test_walking_skeleton.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.events import Envelope
from bos_common.inbox import each, idempotent, inbox_table
from bos_common.telemetry import current_traceparent, setup_tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class _FirstTime:
    def first(self) -> object:
        return object()  # the claim's INSERT ... RETURNING found no earlier row


class _Session:
    async def execute(self, _statement: Any, _params: Any = None) -> _FirstTime:
        return _FirstTime()


class _Database:
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Session]:
        yield _Session()


async def test_handler_runs_in_the_trace_of_the_event() -> None:
    setup_tracing("bos-test")  # as a service does at start (unsampled without an exporter)
    seen: list[str | None] = []

    async def handler(_session: AsyncSession, _envelope: Envelope) -> None:
        seen.append(current_traceparent())

    handle = idempotent(
        _Database(),  # type: ignore[arg-type]
        inbox_table(MetaData()),
        "svc.purpose",
        each(handler, "svc.purpose"),
    )
    envelope = Envelope(
        event_id=uuid.uuid4(),
        event_type="payment.succeeded.v1",
        occurred_at=datetime.now(UTC),
        producer="webhooks",
        traceparent=f"00-{TRACE_ID}-00f067aa0ba902b7-01",
    )
    await handle(envelope)
    await handle(envelope.model_copy(update={"traceparent": None}))

    joined, fresh = seen
    assert joined is not None and joined.split("-")[1] == TRACE_ID
    assert joined.split("-")[2] != "00f067aa0ba902b7"  # the consumer's own span
    assert fresh is not None and TRACE_ID not in fresh  # no parent: a trace of its own
