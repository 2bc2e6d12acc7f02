"""Background loops of the tokens service (safe with several replicas)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter

from bos_common.app import ServiceRuntime
from bos_common.db import Database
from tokens import repository
from tokens.settings import TokensSettings

log = logging.getLogger("tokens.worker")

DELETED = Counter("bos_tokens_expired_deleted_total", "Expired session and portal tokens deleted.")


async def delete_expired_tokens(
    db: Database, *, retention: timedelta, batch: int, now: datetime | None = None
) -> int:
    """Delete tokens expired longer than `retention` ago, one batch per transaction
    (short transactions, no long lock on the table: this loop owns them); the number
    deleted."""
    before = (now or datetime.now(UTC)) - retention
    total = 0
    while True:
        async with db.transaction() as session:
            deleted = await repository.delete_expired_batch(session, before=before, batch=batch)
        total += deleted
        if deleted < batch:
            return total


def register(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    assert isinstance(settings, TokensSettings)

    @runtime.worker
    async def session_token_cleanup() -> None:
        """Delete expired tokens in set-based batches, every few minutes."""
        while True:
            try:
                deleted = await delete_expired_tokens(
                    runtime.db,
                    retention=timedelta(seconds=settings.session_token_retention_seconds),
                    batch=settings.cleanup_batch_size,
                )
                if deleted:
                    DELETED.inc(deleted)
                    log.info("deleted %d expired session tokens", deleted)
            except Exception:  # noqa: BLE001 - the loop must survive a database outage
                log.warning("session token cleanup failed; retrying later", exc_info=True)
            await asyncio.sleep(settings.cleanup_interval_seconds)
