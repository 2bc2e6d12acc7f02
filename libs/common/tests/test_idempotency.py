"""Idempotency-Key semantics (docs/api.md "Idempotency") against real Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from bos_common.auth import Identity, sign_identity
from bos_common.context import RequestContextMiddleware
from bos_common.db import Database, asyncpg_dsn, make_metadata
from bos_common.errors import install_error_handlers
from bos_common.idempotency import IdempotencyMiddleware, idempotency_table
from bos_common.leases import DEFAULT_LEASE
from bos_common.testing import SECRET, Infra

pytestmark = pytest.mark.integration
SCHEMA = "idem_test"


@pytest.fixture(scope="module")
async def db(infra: Infra) -> AsyncIterator[Database]:
    database = Database(infra.database_url, SCHEMA)
    metadata = make_metadata(SCHEMA)
    idempotency_table(metadata)
    async with database.engine.begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        await conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self.gate: asyncio.Event | None = None
        self.fail_next = False
        self.before_failing: Any = None
        self.conflict_next = False


@pytest.fixture
def app_and_calls(db: Database) -> tuple[FastAPI, Calls]:
    return make_app(db)


def make_app(db: Database, **middleware: Any) -> tuple[FastAPI, Calls]:
    calls = Calls()
    app = FastAPI()

    @app.post("/v1/things", status_code=201)
    async def create(request: Request) -> Any:
        calls.count += 1
        if calls.conflict_next:
            calls.conflict_next = False
            return JSONResponse({"error": {"code": "in_progress"}}, status_code=409)
        if calls.gate is not None:
            await calls.gate.wait()
        if calls.fail_next:
            calls.fail_next = False
            if calls.before_failing is not None:
                await calls.before_failing()
            raise RuntimeError("transient failure")
        return {"id": f"thing_{calls.count}", "body": await request.json()}

    install_error_handlers(app)
    table = idempotency_table(make_metadata(SCHEMA))
    app.add_middleware(IdempotencyMiddleware, db=db, table=table, secret=SECRET, **middleware)
    app.add_middleware(RequestContextMiddleware)
    return app, calls


def client(app: FastAPI, principal: str = "key_1") -> httpx.AsyncClient:
    identity = sign_identity(
        Identity(principal_type="api_key", principal_id=principal, org_id="org_1"), SECRET
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://t",
        headers={"x-bos-identity": identity},
    )


async def test_same_key_same_body_replays_byte_for_byte(app_and_calls: Any) -> None:
    app, calls = app_and_calls
    async with client(app) as c:
        first = await c.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-replay"})
        second = await c.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-replay"})
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert calls.count == 1


async def test_same_key_different_body_is_422(app_and_calls: Any) -> None:
    app, calls = app_and_calls
    async with client(app) as c:
        await c.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-reuse"})
        again = await c.post("/v1/things", json={"a": 2}, headers={"Idempotency-Key": "k-reuse"})
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "idempotency_key_reused"
    assert calls.count == 1


async def test_same_key_while_in_flight_is_409(app_and_calls: Any) -> None:
    app, calls = app_and_calls
    calls.gate = asyncio.Event()
    async with client(app) as c:
        first = asyncio.create_task(
            c.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-inflight"})
        )
        while calls.count == 0:  # noqa: ASYNC110 - polls a plain counter of the fake route
            await asyncio.sleep(0.01)
        second = await c.post(
            "/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-inflight"}
        )
        calls.gate.set()
        assert (await first).status_code == 201
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "idempotency_key_in_use"
    assert calls.count == 1


async def test_keys_are_scoped_to_the_principal(app_and_calls: Any) -> None:
    app, calls = app_and_calls
    async with client(app, "key_1") as a, client(app, "key_2") as b:
        ra = await a.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-shared"})
        rb = await b.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-shared"})
    assert ra.status_code == rb.status_code == 201
    assert ra.json()["id"] != rb.json()["id"]
    assert calls.count == 2


async def test_a_5xx_is_not_remembered_so_the_client_can_retry(app_and_calls: Any) -> None:
    app, calls = app_and_calls
    calls.fail_next = True
    async with client(app) as c:
        failed = await c.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-5xx"})
        retried = await c.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-5xx"})
    assert failed.status_code == 500
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers


async def test_a_409_conflict_is_not_remembered_so_the_retry_runs_again(
    app_and_calls: Any,
) -> None:
    """A conflict with a state being changed (a payment in progress) did nothing: the
    retry once that state has settled runs the request, not a replay of the 409."""
    app, calls = app_and_calls
    calls.conflict_next = True
    async with client(app) as c:
        first = await c.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-409"})
        retried = await c.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-409"})
    assert first.status_code == 409
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    assert calls.count == 2


async def test_a_failure_after_a_database_restart_still_releases_the_key(
    app_and_calls: Any, infra: Infra
) -> None:
    """The request fails because the database went away; by the time the key is released
    the pooled connections are dead (backends terminated, as by a restart): the release
    goes through on a fresh connection, so the client's retry runs instead of 409."""
    app, calls = app_and_calls

    async def restart_like() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(infra.database_url))
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = $1 AND pid <> pg_backend_pid()",
                SCHEMA,
            )
        finally:
            await conn.close()

    calls.fail_next, calls.before_failing = True, restart_like
    async with client(app) as c:
        failed = await c.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-dead"})
        retried = await c.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-dead"})
    assert failed.status_code == 500
    assert retried.status_code == 201, retried.text


async def test_overlong_key_is_rejected(app_and_calls: Any) -> None:
    app, calls = app_and_calls
    async with client(app) as c:
        r = await c.post("/v1/things", json={}, headers={"Idempotency-Key": "k" * 256})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "idempotency_key_invalid"
    assert calls.count == 0


async def test_requests_without_a_key_are_not_deduplicated(app_and_calls: Any) -> None:
    app, calls = app_and_calls
    async with client(app) as c:
        await c.post("/v1/things", json={"a": 1})
        await c.post("/v1/things", json={"a": 1})
    assert calls.count == 2


async def _age(db: Database, key: str, interval: str) -> None:
    async with db.transaction() as s:
        await s.execute(
            text(
                f"UPDATE {SCHEMA}.idempotency_keys SET created_at = now() - interval '{interval}'"
                " WHERE key = :key"
            ),
            {"key": key},
        )


async def test_an_abandoned_claim_is_taken_over(app_and_calls: Any, db: Database) -> None:
    app, calls = app_and_calls
    calls.gate = asyncio.Event()
    async with client(app) as c:
        # A first request that never finishes (its process died): the claim stays open.
        first = asyncio.create_task(
            c.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-abandoned"})
        )
        while calls.count == 0:  # noqa: ASYNC110 - polls a plain counter of the fake route
            await asyncio.sleep(0.01)
        await _age(db, "k-abandoned", "2 minutes")
        calls.gate = None
        retried = await c.post(
            "/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-abandoned"}
        )
        first.cancel()
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert calls.count == 2


async def test_a_claim_not_renewed_for_a_lease_is_taken_over(
    app_and_calls: Any, db: Database
) -> None:
    """The process answering the first request was killed (SIGKILL: nothing released the
    key): a few seconds later, not minutes, the client's retry runs the request again."""
    app, calls = app_and_calls
    async with db.transaction() as s:
        await s.execute(
            text(
                f"INSERT INTO {SCHEMA}.idempotency_keys (principal, key, request_hash)"
                " VALUES ('api_key:org_1:key_1', 'k-killed', 'h')"
            )
        )
    async with client(app) as c:
        while_held = await c.post(
            "/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-killed"}
        )
        await _age(db, "k-killed", f"{DEFAULT_LEASE.total_seconds() + 1} seconds")
        retried = await c.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-killed"})
    assert while_held.status_code == 409
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert calls.count == 1


async def test_a_running_request_keeps_its_claim_past_the_lease(db: Database) -> None:
    """The claim is renewed while the request runs: a slow request is not taken over."""
    app, calls = make_app(db, lease=timedelta(seconds=1.5))
    calls.gate = asyncio.Event()
    async with client(app) as c:
        first = asyncio.create_task(
            c.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-slow"})
        )
        while calls.count == 0:  # noqa: ASYNC110 - polls a plain counter of the fake route
            await asyncio.sleep(0.01)
        await asyncio.sleep(4)  # well past the lease: only renewals keep the claim
        second = await c.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-slow"})
        calls.gate.set()
        assert (await first).status_code == 201
    assert second.status_code == 409, second.text
    assert second.json()["error"]["code"] == "idempotency_key_in_use"
    assert calls.count == 1


async def test_a_key_older_than_24_hours_can_be_used_again(
    app_and_calls: Any, db: Database
) -> None:
    app, calls = app_and_calls
    async with client(app) as c:
        first = await c.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-old"})
        await _age(db, "k-old", "25 hours")
        # Even with another body: the old request is forgotten, not compared.
        again = await c.post("/v1/things", json={"a": 2}, headers={"Idempotency-Key": "k-old"})
        replay = await c.post("/v1/things", json={"a": 2}, headers={"Idempotency-Key": "k-old"})
    assert first.status_code == again.status_code == 201
    assert again.json()["body"] == {"a": 2} and "idempotent-replayed" not in again.headers
    assert replay.headers["idempotent-replayed"] == "true" and replay.content == again.content
    assert calls.count == 2


async def test_concurrent_requests_with_one_key_run_the_write_once(app_and_calls: Any) -> None:
    app, calls = app_and_calls
    calls.gate = asyncio.Event()
    async with client(app) as c:
        racing = [
            asyncio.create_task(
                c.post("/v1/things", json={"a": 1}, headers={"Idempotency-Key": "k-race"})
            )
            for _ in range(10)
        ]
        # The first holds the key inside the route; the other nine are answered meanwhile
        # (waited for, not slept for: a loaded machine takes its time).
        for _ in range(1000):
            if calls.count == 1 and sum(task.done() for task in racing) == 9:
                break
            await asyncio.sleep(0.01)
        calls.gate.set()
        statuses = sorted(r.status_code for r in await asyncio.gather(*racing))
    assert statuses == [201] + [409] * 9
    assert calls.count == 1


async def test_the_key_is_completed_before_the_client_sees_the_response(
    app_and_calls: Any, db: Database
) -> None:
    """So a client that got the answer and sends the request again gets the replay (a
    409 `in use` would tell it the first request was still running)."""
    app, _ = app_and_calls
    seen_at_response_start: list[object] = []

    async def probe(scope: Any, receive: Any, send: Any) -> None:
        async def send_probing(message: Any) -> None:
            if message["type"] == "http.response.start":
                async with db.transaction() as s:
                    seen_at_response_start.append(
                        (
                            await s.execute(
                                text(
                                    f"SELECT completed_at FROM {SCHEMA}.idempotency_keys"
                                    " WHERE key = 'k-done'"
                                )
                            )
                        ).scalar_one()
                    )
            await send(message)

        await app(scope, receive, send_probing)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=probe), base_url="http://t"
    ) as c:
        identity = sign_identity(
            Identity(principal_type="api_key", principal_id="key_1", org_id="org_1"), SECRET
        )
        first = await c.post(
            "/v1/things",
            json={"a": 1},
            headers={"Idempotency-Key": "k-done", "x-bos-identity": identity},
        )
    assert first.status_code == 201
    assert seen_at_response_start and seen_at_response_start[0] is not None
