"""`after_commit` against real Postgres: callbacks run once the transaction committed,
never when it rolled back (what the checkout funnel counters rely on)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from bos_common.context import request_id_var
from bos_common.db import Database, after_commit
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
