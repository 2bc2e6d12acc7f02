"""Price snapshots kept in this process, so creating a checkout does not ask catalog
each time: creation is a local write plus a cached snapshot.

How stale a snapshot may be, and why that is safe:

- catalog publishes `product.updated.v1` (an edit or an archive) and `price.deleted.v1`
  through its outbox; every checkout process consumes them on a queue of its own
  (exclusive: each replica gets every event) and drops the snapshots concerned at once.
  The usual window is the relay-to-consumer delay: milliseconds.
- Should an event be late (catalog's relay or the broker slow), a snapshot is never
  used more than `ttl` seconds (default 5 s) after catalog served it: a checkout for an
  archived product or a deleted price can be opened at most that long after the change.
  (An open checkout keeps its snapshot for 24 h by design, so a 5 s bound at creation
  changes nothing a merchant can tell apart from a checkout opened a moment earlier.)
- While this process is not connected to the broker it cannot hear invalidations: the
  cache is bypassed, and emptied when the connection comes back.
- A fetch that raced an invalidation is not stored (generation counter), so an event
  can never be undone by a response that left catalog before it.
- Catalog's refusals (not found, not available) are never cached: they come from
  catalog every time.

Concurrent misses for the same price share one request to catalog (single flight).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import partial

from bos_common.events import Envelope, PriceDeletedV1, PriceSnapshot, ProductUpdatedV1

EVENT_TYPES = (ProductUpdatedV1.event_type, PriceDeletedV1.event_type)

Key = tuple[str, str]  # (org_id, price_id)
Fetch = Callable[[str, str], Awaitable[PriceSnapshot]]


class SnapshotCache:
    def __init__(
        self,
        fetch: Fetch,
        *,
        ttl: float = 5.0,
        max_entries: int = 10_000,
        connected: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.ttl = ttl
        self.max_entries = max_entries
        self._connected = connected
        self._clock = clock
        self._entries: OrderedDict[Key, tuple[float, PriceSnapshot]] = OrderedDict()
        self._inflight: dict[Key, asyncio.Task[PriceSnapshot]] = {}
        # Bumped by every invalidation: a fetch started before one is not stored.
        self._generation = 0
        self._was_disconnected = False
        self.hits = 0
        self.misses = 0

    async def get(self, org_id: str, price_id: str) -> PriceSnapshot:
        """The price's snapshot; raises what catalog raises (product_not_found, ...)."""
        if not self._connected():
            # Invalidations may be missed now: ask catalog every time, and forget what
            # was cached before once the connection is back.
            self._was_disconnected = True
            self.misses += 1
            return await self._fetch(org_id, price_id)
        if self._was_disconnected:
            self.clear()
        key = (org_id, price_id)
        cached = self._entries.get(key)
        if cached is not None and cached[0] > self._clock():
            self.hits += 1
            return cached[1]
        self.misses += 1
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fill(key, self._generation, self._clock()))
            self._inflight[key] = task
            task.add_done_callback(partial(self._forget, key))
        # shield: one caller going away (client disconnect) does not cancel the others'.
        return await asyncio.shield(task)

    def _forget(self, key: Key, _done: asyncio.Future[PriceSnapshot]) -> None:
        self._inflight.pop(key, None)

    async def _fill(self, key: Key, generation: int, fetched_at: float) -> PriceSnapshot:
        snapshot = await self._fetch(*key)
        if generation == self._generation and self._connected():
            self._entries[key] = (fetched_at + self.ttl, snapshot)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return snapshot

    # --- invalidation -----------------------------------------------------------------

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._was_disconnected = False

    def drop_product(self, org_id: str | None, product_id: str) -> None:
        self._generation += 1
        for key in [
            k
            for k, (_, snap) in self._entries.items()
            if snap.product_id == product_id and (org_id is None or k[0] == org_id)
        ]:
            del self._entries[key]

    def drop_price(self, org_id: str | None, price_id: str) -> None:
        self._generation += 1
        for key in [k for k in self._entries if k[1] == price_id]:
            if org_id is None or key[0] == org_id:
                del self._entries[key]

    async def on_event(self, envelope: Envelope) -> None:
        """Handler of this process's exclusive queue (product.updated, price.deleted)."""
        event = envelope.payload()
        if isinstance(event, ProductUpdatedV1):
            self.drop_product(envelope.org_id, event.product_id)
        elif isinstance(event, PriceDeletedV1):
            self.drop_price(envelope.org_id, event.price_id)

    async def on_connected(self) -> None:
        """After every (re)connection: events sent while away are gone."""
        self.clear()
