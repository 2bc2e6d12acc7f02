"""Group commit for a hot path's single-statement writes.

Rows that arrive while a write is in flight are written together by the next one: one
statement, so one round trip, one transaction and one commit (WAL flush) for the whole
burst instead of one each. A request still answers only after its own row is committed.
A row alone is written at once (no waiting for company): the first request starts a
writer, and rows only queue while every writer is busy.

`execute(rows)` writes a batch in ONE statement (atomic on its own) and returns one
result per row, in order. When it raises one of `row_errors` (bad data in some row,
which says nothing about the others), the batch is written again row by row so that
only the offending request fails; any other error (the database is unreachable) is
every waiting request's answer, and the statement wrote nothing.

Writers are started on first use (an app built without its lifespan, as in tests, works
too) and stopped by `close()`, which writes what is still queued first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from prometheus_client import Histogram

BATCH_ROWS = Histogram(
    "bos_group_commit_rows",
    "Rows written together by one statement of a group commit, by writer.",
    ["writer"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)

Row = TypeVar("Row")
Result = TypeVar("Result")


class GroupCommit(Generic[Row, Result]):
    def __init__(
        self,
        execute: Callable[[list[Row]], Awaitable[Sequence[Result]]],
        *,
        writers: int,
        max_batch: int,
        row_errors: tuple[type[BaseException], ...] = (),
        name: str = "group-commit-writer",
    ) -> None:
        self._execute = execute
        self._size = max(1, writers)
        self._max_batch = max(1, max_batch)
        self._row_errors = row_errors
        self._name = name
        self._queue: list[tuple[Row, asyncio.Future[Result]]] = []
        self._idle: list[asyncio.Future[None]] = []  # writers waiting for work
        self._writers: list[asyncio.Task[None]] = []
        self._closing = False
        self._rows = BATCH_ROWS.labels(name)

    async def submit(self, row: Row) -> Result:
        """The row's result once it is committed; raises what writing it raised."""
        if self._closing:
            raise RuntimeError(f"{self._name}: closed")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Result] = loop.create_future()
        self._queue.append((row, done))
        if self._idle:
            _wake(self._idle.pop())
        else:
            # A writer only ends with close() or with its event loop (tests); never wait
            # on one that is gone.
            self._writers = [w for w in self._writers if not w.done()]
            if len(self._writers) < self._size:
                self._writers.append(loop.create_task(self._writer(), name=self._name))
        return await done

    async def _writer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                waiting: asyncio.Future[None] = loop.create_future()
                self._idle.append(waiting)
                await waiting
                continue
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            self._rows.observe(len(batch))
            await self._write(batch)

    async def _write(self, batch: list[tuple[Row, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._execute([row for row, _ in batch])
        except self._row_errors as exc:
            if len(batch) == 1:
                _settle(batch[0][1], error=exc)
                return
            for entry in batch:  # isolate the offending row(s)
                await self._write([entry])
            return
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request
            for _, done in batch:
                _settle(done, error=exc)
            return
        for (_, done), result in zip(batch, results, strict=True):
            _settle(done, result)

    async def close(self) -> None:
        self._closing = True
        while self._idle:
            _wake(self._idle.pop())
        writers, self._writers = self._writers, []
        await asyncio.gather(*writers, return_exceptions=True)


def _wake(waiting: asyncio.Future[None]) -> None:
    if not waiting.done():
        waiting.set_result(None)


def _settle(
    done: asyncio.Future[Result],
    result: Result | None = None,
    *,
    error: BaseException | None = None,
) -> None:
    if done.done():  # the request was cancelled (client gone): nothing to tell
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)  # type: ignore[arg-type]
