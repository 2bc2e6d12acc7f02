"""Async database access for one service's schema.

Each service owns one Postgres schema; its engine pins `search_path` to it so raw SQL
cannot wander into another service's tables by accident. Service code never commits:
the request scope (`bos_common.app.Session`) or the consumer scope (`Database.transaction`)
commits once, at the end, or rolls back.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_metadata(schema: str) -> MetaData:
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


_AFTER_COMMIT = "bos_after_commit"
log = logging.getLogger("bos.db")


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the transaction of `session` (a `Database.transaction`) has
    committed, never if it rolls back: for counting what a transaction did (a batch of
    events rolled back and handled again one by one must count each event once). It runs
    in the context it was registered in (request id, the event's trace), for its logs."""
    session.info.setdefault(_AFTER_COMMIT, []).append((contextvars.copy_context(), callback))


def asyncpg_dsn(url: str) -> str:
    """The plain libpq-style DSN asyncpg wants (for LISTEN connections)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


# SQLSTATE classes of errors after which the server closes the connection: operator
# intervention (57P01 admin_shutdown: pg_terminate_backend, a failover) and connection
# exceptions (08). Until the socket's close reaches asyncpg, the connection does not look
# closed, but it can never run another statement.
CONNECTION_ENDING_SQLSTATES = ("57P", "08")


def _ends_the_connection(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.exceptions.ConnectionDoesNotExistError):
        return True
    sqlstate = getattr(exc, "sqlstate", None) if isinstance(exc, asyncpg.PostgresError) else None
    return isinstance(sqlstate, str) and sqlstate.startswith(CONNECTION_ENDING_SQLSTATES)


class Database:
    def __init__(self, url: str, schema: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.schema = schema
        # A fixed pool, no overflow: SQLAlchemy closes an overflow connection as soon as
        # it is returned to a full pool, so under sustained concurrency above pool_size
        # every few requests would pay for a new Postgres backend. Past pool_size,
        # requests queue for a connection instead: on a few cores Postgres is no faster
        # with more.
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            pool_pre_ping=False,
            pool_timeout=10,
            echo=echo,
            connect_args={
                "server_settings": {"search_path": schema, "application_name": schema},
                "timeout": 5,
                "command_timeout": 30,
            },
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on any exception; then the
        callbacks registered with `after_commit`, only if it committed."""
        async with self.sessionmaker() as session:
            async with session.begin():
                yield session
            for context, callback in session.info.pop(_AFTER_COMMIT, ()):
                try:
                    context.run(callback)
                except Exception:  # noqa: BLE001 - what committed must not look failed
                    log.exception("after-commit callback failed")

    @asynccontextmanager
    async def driver_connection(self) -> AsyncIterator[Any]:
        """A connection of the pool at the driver level (an asyncpg Connection), outside
        any transaction: for a hot path whose single statement is atomic on its own
        (raw SQL with `$n` parameters, kept in repository.py), which skips SQLAlchemy's
        per-statement machinery (Connection, compiled cache, cursor adaptation,
        BEGIN/COMMIT), a large share of such a request's database work.

        The same pool as the sessions', on purpose: a second pool (asyncpg's own) would be
        a little cheaper per call, but after a database restart or killed backends its
        stale connections would fail one request each, in the middle of flows whose other
        steps had already recovered through SQLAlchemy's pool."""
        fairy = await self.engine.raw_connection()
        driver = fairy.driver_connection
        try:
            yield driver
        except BaseException as exc:
            if driver is None or driver.is_closed() or _ends_the_connection(exc):
                # The server went away (restart, terminated backends): as SQLAlchemy does
                # on a disconnect, every connection opened before now is replaced at its
                # next checkout, not just this one; the caller sees a dependency outage
                # (503 and retry).
                await greenlet_spawn(self.engine.pool._invalidate, fairy, exc)
                if isinstance(exc, asyncpg.InterfaceError | asyncpg.PostgresError | OSError):
                    raise ConnectionResetError("the database connection was lost") from exc
                raise
            if isinstance(exc, asyncpg.PostgresError):
                # The server refused the statement; the connection itself is fine.
                await greenlet_spawn(fairy.close)
                raise
            # Interrupted mid-statement (cancelled): never hand it out again.
            await greenlet_spawn(fairy.invalidate)
            raise
        else:
            await greenlet_spawn(fairy.close)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
