"""Keeps a replica's AuthState and API-key cache current.

Events arrive on the replica's own exclusive queue (bound to `session_token.revoked.v1`,
`api_key.revoked.v1`, `organization.updated.v1`), so a revocation reaches every replica
within milliseconds. The gateway has no database: it consumes without an inbox, which is
fine because applying any of these events twice changes nothing.

An exclusive queue lives only as long as its connection, so events sent while the
replica was disconnected are lost; the full state is therefore loaded from the tokens
service (`GET /internal/gateway/snapshot`) at start and after every reconnection (the
queue is consuming before the snapshot is read, so nothing falls in between), every
`reload_seconds` anyway, and every second while the bus is down.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from bos_common.bus import Bus, ConsumerSpec
from bos_common.events import (
    ApiKeyRevokedV1,
    Envelope,
    OrganizationUpdatedV1,
    SessionTokenRevokedV1,
)
from gateway.apikeys import ApiKeyCache
from gateway.state import AuthState

log = logging.getLogger("gateway.sync")

EVENT_TYPES = (
    SessionTokenRevokedV1.event_type,
    ApiKeyRevokedV1.event_type,
    OrganizationUpdatedV1.event_type,
)
# While the bus is down (or before the first load), the snapshot is read every tick.
TICK_SECONDS = 1.0

Snapshot = Callable[[], Awaitable[dict[str, Any]]]


def replica_queue_name() -> str:
    return f"gateway.auth.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}"


class StateSync:
    def __init__(
        self,
        amqp_url: str,
        state: AuthState,
        api_keys: ApiKeyCache,
        snapshot: Snapshot,
        *,
        on_organizations_changed: Callable[[], None] = lambda: None,
        reload_seconds: float = 300.0,
    ) -> None:
        self.state = state
        self.api_keys = api_keys
        self._snapshot = snapshot
        self._organizations_changed = on_organizations_changed
        self.reload_seconds = reload_seconds
        self.bus = Bus(amqp_url, "gateway")
        self.spec = ConsumerSpec(
            queue=replica_queue_name(),
            routing_keys=EVENT_TYPES,
            handler=self.handle,
            prefetch=256,
            exclusive=True,
        )
        self.bus.on_connected(self.reload)
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.bus.consume(self.spec)
        self.bus.start()
        self._task = asyncio.create_task(self._run(), name="gateway-auth-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.bus.close()

    # --- events -----------------------------------------------------------------------

    async def handle(self, envelope: Envelope) -> None:
        event = envelope.payload()
        if isinstance(event, SessionTokenRevokedV1):
            self.state.revoke(event.token_id, event.expires_at.timestamp())
        elif isinstance(event, ApiKeyRevokedV1):
            self.api_keys.revoke(event.key_id)
        elif isinstance(event, OrganizationUpdatedV1):
            self.state.apply_org(
                event.org_id, event.version, event.allowed_origins, event.rate_limits
            )
            self._organizations_changed()

    # --- snapshots ----------------------------------------------------------------------

    async def reload(self) -> None:
        async with self._lock:
            snapshot = await self._snapshot()
            # Resolutions cached while disconnected may predate a missed revocation.
            self.api_keys.clear()
            self.state.load(snapshot)
            self._organizations_changed()
        log.info(
            "auth state loaded",
            extra={"revoked": len(self.state.revoked), "orgs": len(self.state.orgs)},
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = -self.reload_seconds
        while True:
            healthy = self.state.loaded and self.bus.is_connected
            if not healthy or loop.time() - last >= self.reload_seconds:
                try:
                    await self.reload()
                    last = loop.time()
                except Exception as exc:  # noqa: BLE001 - keep trying; the state stays as is
                    log.warning("auth state reload failed: %s", exc)
            self.state.prune()
            await asyncio.sleep(TICK_SECONDS)
