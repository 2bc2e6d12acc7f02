"""Waiting for a checkout to complete, for a confirm that answers `complete` (plan 5.1: a
free checkout completes at once).

A checkout completes in checkout's consumer of `subscription.created.v1`, on whichever
replica took the event; for a free checkout that statement also NOTIFYs
`checkout_completed` with the checkout's id (projection_repository.record_subscribed).
Each process holds one LISTEN connection, opened on first use, and wakes the requests
waiting for that id. A waiter registers before its own transaction commits, so no
notification can fall in between. Without LISTEN (Postgres unreachable for it), waiting
falls back to reading the row every `POLL_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, Final

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from bos_common.db import Database, asyncpg_dsn

CHANNEL: Final = "checkout_completed"
POLL_SECONDS: Final = 0.05

log = logging.getLogger("checkout.completion")

# Reads the checkout's status (a fresh read, outside any earlier transaction).
StatusReader = Callable[[], Awaitable[str | None]]


class CompletionWaiter:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._listener: Any = None  # asyncpg.Connection
        self._connecting = asyncio.Lock()
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}

    @asynccontextmanager
    async def watching(self, checkout_id: str) -> AsyncIterator[asyncio.Future[None] | None]:
        """A future set when `checkout_id` completes, for the duration of the block (None
        when this process cannot LISTEN: the caller polls)."""
        if not await self._listening():
            yield None
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(checkout_id, set()).add(future)
        try:
            yield future
        finally:
            waiters = self._waiting.get(checkout_id)
            if waiters is not None:
                waiters.discard(future)
                if not waiters:
                    del self._waiting[checkout_id]

    async def wait(
        self, completed: asyncio.Future[None] | None, status: StatusReader, timeout: float
    ) -> str | None:
        """The checkout's status once it is `complete`, or as it stands after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            current = await status()
            remaining = deadline - loop.time()
            if current != "processing" or remaining <= 0:
                return current
            if completed is None:
                await asyncio.sleep(min(POLL_SECONDS, remaining))
                continue
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(completed), remaining)
            completed = None if completed.done() else completed

    async def close(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()

    async def _listening(self) -> bool:
        if self._listener is not None and not self._listener.is_closed():
            return True
        async with self._connecting:
            if self._listener is not None and not self._listener.is_closed():
                return True
            try:
                listener = await asyncpg.connect(asyncpg_dsn(self._db.url), timeout=2)
                await listener.add_listener(CHANNEL, self._notified)
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                log.warning("checkout completion LISTEN unavailable: %s", exc)
                return False
            self._listener = listener
            return True

    def _notified(self, _conn: Any, _pid: int, _channel: str, checkout_id: str) -> None:
        for future in self._waiting.get(checkout_id, ()):
            if not future.done():
                future.set_result(None)
