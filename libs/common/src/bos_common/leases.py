"""Leases: claims that die with the process holding them.

A claim stored in a row (an Idempotency-Key being answered, a payment being confirmed)
carries the time it was last renewed; it counts as held while that time is recent, and
anyone may take it over once it is older than the lease. The process holding claims
renews all of them together, one statement every `interval` (a third of the lease), so
a request costs no extra round trip however many are in flight; a process killed with
SIGKILL stops renewing and its claims lapse within one lease.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Generic, TypeVar

log = logging.getLogger("bos.leases")

K = TypeVar("K", bound=Hashable)

# Long enough that a loaded machine or a slow statement never lets a live claim lapse
# between two renewals, short enough that a client retrying after a crash waits seconds.
DEFAULT_LEASE = timedelta(seconds=6)


class LeaseRenewer(Generic[K]):
    """The claims this process holds, renewed together by `renew(keys)` every third of
    the lease while any is held. The loop runs in the event loop of the first `hold`."""

    def __init__(
        self,
        name: str,
        renew: Callable[[list[K]], Awaitable[None]],
        *,
        lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        self.name = name
        self.lease = lease
        self.interval = lease.total_seconds() / 3
        self._renew = renew
        self._held: Counter[K] = Counter()
        self._task: asyncio.Task[None] | None = None

    @contextmanager
    def hold(self, key: K) -> Iterator[None]:
        """Keep `key`'s claim renewed for the duration of the block."""
        self._held[key] += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"lease-renewer-{self.name}"
            )
        try:
            yield
        finally:
            self._held[key] -= 1
            if self._held[key] <= 0:
                del self._held[key]

    @property
    def held(self) -> list[K]:
        return list(self._held)

    async def _run(self) -> None:
        # Ends when nothing is held; the next `hold` starts it again.
        while self._held:
            await asyncio.sleep(self.interval)
            keys = list(self._held)
            if not keys:
                break
            try:
                await self._renew(keys)
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                log.warning(
                    "%s: %d leases not renewed: %s", self.name, len(keys), exc, exc_info=False
                )
