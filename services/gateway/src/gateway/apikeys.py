"""API-key resolution with a short-lived in-process cache.

A key is resolved by the tokens service (`POST /internal/api-keys/resolve`) the first
time a replica sees it, then served from memory for `ttl` seconds (never past the key's
own `expires_at`). `api_key.revoked.v1` drops it at once. Unknown secrets are
remembered briefly too, so a client retrying a bad key does not reach the tokens
service each time. Concurrent misses for one secret share a single resolution.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bos_common.auth import Identity
from bos_common.errors import AuthenticationError
from gateway.state import epoch

INVALID_API_KEY = ("invalid_api_key", "Invalid API key provided.")
# How long a revoked key id is remembered, to refuse a resolution that was already in
# flight when the revocation arrived (far longer than any resolution may take).
REVOKED_MEMORY_SECONDS = 300.0

# secret -> the tokens service's answer (`ResolvedApiKey` as JSON), or None if invalid.
Resolver = Callable[[str], Awaitable[dict[str, Any] | None]]


@dataclass(slots=True)
class _Entry:
    identity: Identity | None
    key_id: str | None
    until: float  # monotonic
    expires_at: float | None  # the key's own expiry (epoch seconds)


class ApiKeyCache:
    def __init__(
        self,
        resolve: Resolver,
        *,
        ttl: float = 30.0,
        negative_ttl: float = 5.0,
        max_entries: int = 10_000,
    ) -> None:
        self._resolve = resolve
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Future[_Entry]] = {}
        self._revoked: dict[str, float] = {}  # key id -> monotonic time of the revocation

    async def identity(self, secret: str) -> Identity:
        """The key's identity, or 401 `invalid_api_key`; 503 if the tokens service is down."""
        entry = self._entries.get(secret)
        if entry is None or entry.until <= time.monotonic():
            entry = await self._lookup(secret)
        if entry.identity is None or (
            entry.expires_at is not None and entry.expires_at <= time.time()
        ):
            raise AuthenticationError(*INVALID_API_KEY)
        return entry.identity

    async def _lookup(self, secret: str) -> _Entry:
        pending = self._inflight.get(secret)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_Entry] = asyncio.get_running_loop().create_future()
        self._inflight[secret] = future
        try:
            entry = await self._fetch(secret)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            del self._inflight[secret]
        future.set_result(entry)
        self._store(secret, entry)
        return entry

    async def _fetch(self, secret: str) -> _Entry:
        resolved = await self._resolve(secret)
        now = time.monotonic()
        if resolved is None or resolved["key_id"] in self._revoked:
            return _Entry(None, None, now + self.negative_ttl, None)
        identity = Identity(
            principal_type="api_key", principal_id=resolved["key_id"], org_id=resolved["org_id"]
        )
        expires = resolved.get("expires_at")
        return _Entry(
            identity, resolved["key_id"], now + self.ttl, epoch(expires) if expires else None
        )

    def _store(self, secret: str, entry: _Entry) -> None:
        if entry.until <= time.monotonic():
            return  # ttl 0: caching disabled
        self._entries.pop(secret, None)
        self._entries[secret] = entry
        while len(self._entries) > self.max_entries:
            del self._entries[next(iter(self._entries))]  # the oldest

    # --- invalidation -------------------------------------------------------------------

    def revoke(self, key_id: str) -> None:
        now = time.monotonic()
        self._revoked[key_id] = now
        for secret in [s for s, e in self._entries.items() if e.key_id == key_id]:
            del self._entries[secret]
        for old in [k for k, at in self._revoked.items() if at < now - REVOKED_MEMORY_SECONDS]:
            del self._revoked[old]

    def clear(self) -> None:
        """Forget every resolution (after a bus reconnection, when revocations may have
        been missed)."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
