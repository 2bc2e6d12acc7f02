"""Webhooks that arrive together are recorded by one statement (webhooks.repository
EventRecorder on bos_common.batching.GroupCommit): one transaction for the whole batch,
each request answered after the commit with its own "new or duplicate", the same Stripe id
twice in a batch stored once with one set of outbox rows, a bad event failing alone, and
Postgres down a 503 for every waiting request (plan section 9)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import httpx
import pytest
from sqlalchemy import text

from bos_common.testing import Infra, migrate
from webhooks import service
from webhooks.app import build_runtime, create_app
from webhooks.event_recorder import EventRecorder
from webhooks.models import outbox, stripe_events
from webhooks.repository import EventRecord, record_events
from webhooks.runtime import WebhooksRuntime
from webhooks.settings import WebhooksSettings
from webhooks.testing import signed_headers, stripe_event

pytestmark = pytest.mark.integration
SECRET = "whsec_group_commit_test"
PATH = "/v1/webhooks/stripe"


def settings(infra: Infra, **overrides: str) -> WebhooksSettings:
    env: dict[str, Any] = {
        **infra.env(),
        "STRIPE_WEBHOOK_SECRETS": SECRET,
        "STRIPE_SECRET_KEY": "sk_test_group_commit",
        "TOKENS_URL": "http://127.0.0.1:9",  # platform events only: never called
        "RECONCILE_INTERVAL_SECONDS": "3600",
        **overrides,
    }
    return WebhooksSettings(**env)


@pytest.fixture(scope="module")
async def runtime(infra: Infra) -> AsyncIterator[WebhooksRuntime]:
    await migrate(infra.database_url, "webhooks")
    runtime = build_runtime(settings(infra))
    yield runtime
    await runtime.recorder.close()
    await runtime.db.dispose()


def record(runtime: WebhooksRuntime, event: dict[str, Any]) -> EventRecord:
    return service.record_of(runtime, event)


async def written(runtime: WebhooksRuntime, ids: list[str]) -> dict[str, Any]:
    """Per Stripe id: its stored rows, its outbox rows' event ids, and the transactions
    (xmin) that wrote them."""
    async with runtime.db.transaction() as s:
        events = (
            await s.execute(
                text(
                    f"SELECT id, xmin::text AS tx FROM {stripe_events.fullname} "
                    "WHERE id = ANY(:ids)"
                ),
                {"ids": ids},
            )
        ).all()
        rows = (
            await s.execute(
                text(
                    f"SELECT envelope->'data'->>'stripe_event_id' AS stripe_id, event_id, "
                    f"xmin::text AS tx FROM {outbox.fullname} "
                    "WHERE envelope->'data'->>'stripe_event_id' = ANY(:ids)"
                ),
                {"ids": ids},
            )
        ).all()
    return {
        "events": sorted(e.id for e in events),
        "outbox": {i: [r.event_id for r in rows if r.stripe_id == i] for i in ids},
        "transactions": {e.tx for e in events} | {r.tx for r in rows},
    }


async def test_9_1_events_recorded_together_share_one_statement(
    runtime: WebhooksRuntime,
) -> None:
    recorder = EventRecorder(runtime.db)
    events = [stripe_event(org_id="org_gc") for _ in range(12)]
    try:
        # Queued in the same loop iteration: the first writer takes them as one batch.
        results = await asyncio.gather(*(recorder.record(record(runtime, e)) for e in events))
    finally:
        await recorder.close()
    assert results == [True] * 12
    ids = [e["id"] for e in events]
    stored = await written(runtime, ids)
    assert stored["events"] == sorted(ids)
    assert all(len(rows) == 1 for rows in stored["outbox"].values()), stored["outbox"]
    # The 12 events and their 12 outbox rows were committed by ONE transaction.
    assert len(stored["transactions"]) == 1


async def test_9_3_same_event_twice_in_one_batch_has_one_effect(
    runtime: WebhooksRuntime,
) -> None:
    recorder = EventRecorder(runtime.db)
    event, other = stripe_event(org_id="org_gc"), stripe_event(org_id="org_gc")
    first, again = record(runtime, event), record(runtime, event)
    assert first.outbox_rows[0]["event_id"] != again.outbox_rows[0]["event_id"]
    try:
        results = await asyncio.gather(
            recorder.record(first), recorder.record(record(runtime, other)), recorder.record(again)
        )
        # And once more in a later batch: still a duplicate.
        later = await recorder.record(record(runtime, event))
    finally:
        await recorder.close()
    assert results == [True, True, False]
    assert later is False
    stored = await written(runtime, [event["id"], other["id"]])
    assert stored["events"] == sorted([event["id"], other["id"]])
    # One set of outbox rows: the first delivery's, the one answered "new".
    assert stored["outbox"][event["id"]] == [first.outbox_rows[0]["event_id"]]
    assert len(stored["outbox"][other["id"]]) == 1


async def test_9_3_same_event_delivered_twice_at_once_over_http(
    runtime: WebhooksRuntime,
) -> None:
    events = [stripe_event(org_id="org_gc") for _ in range(8)]
    deliveries = events + events[:3]  # three of them delivered twice, concurrently
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://webhooks") as client:
        bodies = [json.dumps(e).encode() for e in deliveries]
        answers = await asyncio.gather(
            *(client.post(PATH, content=b, headers=signed_headers(b, SECRET)) for b in bodies)
        )
    assert [a.status_code for a in answers] == [200] * len(deliveries)
    duplicates: dict[str, list[bool]] = {}
    for event, answer in zip(deliveries, answers, strict=True):
        duplicates.setdefault(event["id"], []).append(answer.json()["duplicate"])
    assert all(sorted(d) in ([False], [False, True]) for d in duplicates.values()), duplicates
    assert sum(d.count(False) for d in duplicates.values()) == len(events)
    ids = [e["id"] for e in events]
    stored = await written(runtime, ids)
    assert stored["events"] == sorted(ids)
    assert all(len(rows) == 1 for rows in stored["outbox"].values()), stored["outbox"]
    # Recorded together: fewer transactions than requests.
    assert len(stored["transactions"]) < len(events)


async def test_a_bad_event_fails_alone_when_recorded_together(runtime: WebhooksRuntime) -> None:
    recorder = EventRecorder(runtime.db)
    events = [stripe_event(org_id="org_gc") for _ in range(5)]
    events[2]["id"] = "evt_" + "x" * 300  # longer than the column: this event's data error
    try:
        results = await asyncio.gather(
            *(recorder.record(record(runtime, e)) for e in events), return_exceptions=True
        )
    finally:
        await recorder.close()
    assert [r is True for r in results] == [True, True, False, True, True], results
    assert isinstance(results[2], asyncpg.DataError)
    ids = [e["id"] for e in events]
    stored = await written(runtime, ids)
    good = [i for n, i in enumerate(ids) if n != 2]
    assert stored["events"] == sorted(good)
    assert stored["outbox"][ids[2]] == []
    assert all(len(stored["outbox"][i]) == 1 for i in good)


async def test_9_5_postgres_unreachable_is_a_503_for_every_waiting_request(
    infra: Infra,
) -> None:
    # Nothing listens on port 1: every batch's connection is refused.
    runtime = build_runtime(
        settings(infra, DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:1/none")
    )
    transport = httpx.ASGITransport(app=create_app(runtime))
    bodies = [json.dumps(stripe_event(org_id="org_gc")).encode() for _ in range(10)]
    async with httpx.AsyncClient(transport=transport, base_url="http://webhooks") as client:
        answers = await asyncio.gather(
            *(client.post(PATH, content=b, headers=signed_headers(b, SECRET)) for b in bodies)
        )
    await runtime.recorder.close()
    await runtime.db.dispose()
    assert [a.status_code for a in answers] == [503] * 10, [a.text for a in answers]
    for a in answers:
        assert a.json()["error"]["code"] == "service_unavailable"
        assert a.headers.get("retry-after")


async def test_9_5_nothing_is_half_written_when_a_batch_fails(runtime: WebhooksRuntime) -> None:
    # A failure that is not one event's (here the statement is cancelled by its timeout
    # while it waits for another transaction's lock on the last event of the batch, after
    # it inserted the others) is every request's answer, and the statement wrote nothing.
    events = [stripe_event(org_id="org_gc") for _ in range(4)]
    locked = stripe_event(f"evt_gc_zzzz{uuid.uuid4().hex[:8]}")  # inserted last (id order)
    events.append(locked)

    async def with_timeout(records: list[EventRecord]) -> list[bool]:
        async with runtime.db.driver_connection() as conn:
            await conn.execute("SET statement_timeout = 300")
            try:
                return await record_events(conn, records)
            finally:
                await conn.execute("RESET statement_timeout")

    recorder = EventRecorder(runtime.db)
    recorder._batches._execute = with_timeout  # type: ignore[assignment]
    async with runtime.db.engine.connect() as blocker:  # never committed
        await blocker.execute(
            text(
                f"INSERT INTO {stripe_events.fullname} (id, type, created, payload) "
                "VALUES (:id, 't', now(), '{}')"
            ),
            {"id": locked["id"]},
        )
        try:
            results = await asyncio.gather(
                *(recorder.record(record(runtime, e)) for e in events), return_exceptions=True
            )
        finally:
            await recorder.close()
            await blocker.rollback()
    assert all(isinstance(r, asyncpg.QueryCanceledError) for r in results), results
    stored = await written(runtime, [e["id"] for e in events])
    assert stored["events"] == [] and stored["transactions"] == set()


async def test_reconciliation_records_in_its_session_with_the_same_statement(
    runtime: WebhooksRuntime,
) -> None:
    event = stripe_event(org_id="org_gc")
    async with runtime.db.transaction() as session:
        assert await service.ingest(runtime, session, event) is True
    async with runtime.db.transaction() as session:
        assert await service.ingest(runtime, session, event) is False
    # Intake after reconciliation: a duplicate.
    assert await service.ingest(runtime, runtime.recorder, event) is False
    stored = await written(runtime, [event["id"]])
    assert stored["events"] == [event["id"]]
    assert len(stored["outbox"][event["id"]]) == 1
