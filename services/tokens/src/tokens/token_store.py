"""The writer of minted session and portal tokens: it owns its transactions (the SQL is
`repository.insert_session_tokens`, which takes a connection).

Tokens that arrive while a write is in flight are written together by the next one: a
single INSERT of all their rows, which is a single transaction and a single commit (WAL
flush), so a burst costs Postgres one statement instead of one per token, and each request
still answers only after its own row is committed. Nothing else is written with a token
(minting publishes no event), so no BEGIN/COMMIT round trip is needed."""

from __future__ import annotations

from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from bos_common.batching import GroupCommit
from bos_common.db import Database
from tokens import repository
from tokens.repository import SessionTokenRecord

# Concurrent writes (each on a connection of its own) and rows per statement.
WRITERS = 4
MAX_BATCH = 500
# Postgres errors that say nothing about the other rows of a batch (bad data in one
# row: a NUL byte in a string, a value too long, a duplicate id): the batch is then
# written row by row so that only the offending request fails.
_ROW_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


class SessionTokenStore:
    """Writes minted tokens (see above): a group commit (bos_common.batching) of one
    INSERT per batch, each on a pool connection of its own; `close()` writes what is still
    queued first."""

    def __init__(self, db: Database, *, writers: int = WRITERS) -> None:
        self._db = db
        self._batches: GroupCommit[SessionTokenRecord, None] = GroupCommit(
            self._execute,
            writers=max(1, min(writers, WRITERS)),
            max_batch=MAX_BATCH,
            row_errors=_ROW_ERRORS,
            name="session-token-writer",
        )

    async def insert(self, values: dict[str, Any]) -> None:
        """Returns once the row is committed; raises what writing it raised."""
        await self._batches.submit(repository.session_token_record(values))

    async def _execute(self, records: list[SessionTokenRecord]) -> list[None]:
        async with self._db.driver_connection() as conn:
            await repository.insert_session_tokens(conn, records)
        return [None] * len(records)

    async def close(self) -> None:
        await self._batches.close()
