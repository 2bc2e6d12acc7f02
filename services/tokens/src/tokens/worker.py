"""Background loops of the tokens service (safe with several replicas)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from prometheus_client import Counter

from bos_common.app import ServiceRuntime
from tokens import service
from tokens.settings import TokensSettings

log = logging.getLogger("tokens.worker")

DELETED = Counter("bos_tokens_expired_deleted_total", "Expired session and portal tokens deleted.")


def register(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    assert isinstance(settings, TokensSettings)

    @runtime.worker
    async def session_token_cleanup() -> None:
        """Delete expired tokens in set-based batches, every few minutes."""
        while True:
            try:
                deleted = await service.delete_expired_tokens(
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
