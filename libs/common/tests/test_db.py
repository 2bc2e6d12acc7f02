"""`after_commit` against real Postgres: callbacks run once the transaction committed,
never when it rolled back (what the checkout funnel counters rely on)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest
from sqlalchemy import text

from bos_common.context import request_id_var
from bos_common.db import Database, after_commit, asyncpg_dsn
from bos_common.testing import Infra

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(infra: Infra) -> AsyncIterator[Database]:
    database = Database(infra.database_url, "public")
    yield database
    await database.dispose()


async def test_callbacks_run_after_a_commit_and_never_after_a_rollback(db: Database) -> None:
    ran: list[str] = []
    async with db.transaction() as session:
        await session.execute(text("SELECT 1"))
        after_commit(session, lambda: ran.append("committed"))
        assert ran == []  # not before the commit
    assert ran == ["committed"]

    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            after_commit(session, lambda: ran.append("rolled back"))
            raise RuntimeError("the handler failed")
    assert ran == ["committed"]

    async with db.transaction() as session:
        await session.execute(text("SELECT 1"))  # a new transaction starts with none
    assert ran == ["committed"]


async def test_a_callback_runs_in_the_context_it_was_registered_in(db: Database) -> None:
    seen: list[str | None] = []
    async with db.transaction() as session:
        token = request_id_var.set("req_registered")
        after_commit(session, lambda: seen.append(request_id_var.get()))
        request_id_var.reset(token)
    assert seen == ["req_registered"]  # its log lines carry the request (and trace) ids


async def test_a_failing_callback_does_not_make_a_commit_look_failed(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []
    async with db.transaction() as session:
        after_commit(session, lambda: 1 / 0)  # a bug in a metric or an audit line
        after_commit(session, lambda: ran.append("next"))
    assert ran == ["next"]
    assert "after-commit callback failed" in caplog.text


@pytest.mark.parametrize("by", ["itself", "another_session"])
async def test_a_statement_its_backend_was_terminated_under_is_a_lost_connection(
    infra: Infra, by: str
) -> None:
    """Postgres ends a backend mid-statement (pg_terminate_backend, a failover): that is an
    outage (ConnectionResetError: 503 and retry), and the connection is never handed out
    again: the next statement on the pool runs on a fresh one (a reused one fails with
    asyncpg's "another operation is in progress", a 500)."""
    db = Database(infra.database_url, "public", pool_size=1)
    try:
        async with db.driver_connection() as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
        with pytest.raises(ConnectionResetError):
            async with db.driver_connection() as conn:
                assert await conn.fetchval("SELECT pg_backend_pid()") == pid
                if by == "itself":
                    await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
                else:
                    sleeping = asyncio.create_task(conn.execute("SELECT pg_sleep(10)"))
                    other = await asyncpg.connect(asyncpg_dsn(infra.database_url))
                    try:
                        for _ in range(1000):  # until the statement runs
                            if await other.fetchval(
                                "SELECT count(*) FROM pg_stat_activity"
                                " WHERE pid = $1 AND query LIKE 'SELECT pg_sleep%'",
                                pid,
                            ):
                                break
                            await asyncio.sleep(0.01)
                        await other.execute("SELECT pg_terminate_backend($1)", pid)
                    finally:
                        await other.close()
                    await sleeping
        async with db.driver_connection() as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") != pid
    finally:
        await db.dispose()
