"""Rate limits at the gateway, on the `limits` library (moving window: a limit of
60/minute never lets more than 60 through in any 60 seconds, even across a window edge).

Defaults (docs/api.md "Rate limits"): 100/second per API key, 60/minute per session or
portal token, 60/minute per client IP for unauthenticated requests. The Stripe webhook
endpoint and the admin token are not limited. Each default is a deployment setting; an
organization may get its own `api_key` and `session` limits (PATCH
/admin/organizations/{id}). Counters live in memory unless `RATE_LIMIT_STORAGE_URL`
names a Redis, which every replica then shares.

In memory the library's synchronous moving-window strategy runs on `LoopMemoryStorage`
below instead of the library's own memory storages: the asyncio one's expiry task hops to
a thread for every key on every hit, and the synchronous one starts a `threading.Timer`
thread every 10 ms of traffic, each start taking the event loop's time from the requests
in flight. Redis goes through the library's asyncio API.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Mapping
from typing import Final

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindowRateLimiter
from limits.storage import MovingWindowSupport, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from limits.util import WindowStats

from bos_common.auth import Identity
from bos_common.errors import RateLimited

log = logging.getLogger("gateway.ratelimit")

EXEMPT_PATHS: Final = frozenset({"/v1/webhooks/stripe"})
RATE_LIMITED_MESSAGE: Final = "Too many requests, please retry later."
_ERROR_LOG_INTERVAL: Final = 10.0


class LoopMemoryStorage(Storage, MovingWindowSupport):
    """Moving-window entries in process memory, for a single event loop: no locks, no
    timer thread. A key's timestamps sit in a deque (oldest left) trimmed on every hit;
    keys gone quiet are swept once a minute."""

    STORAGE_SCHEME = None
    SWEEP_SECONDS: Final = 60.0

    def __init__(self) -> None:
        super().__init__()
        self.events: dict[str, tuple[int, deque[float]]] = {}  # key -> (expiry, times)
        self._next_sweep = time.monotonic() + self.SWEEP_SECONDS

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        now = time.time()
        entry = self.events.get(key)
        if entry is None:
            entry = self.events[key] = (expiry, deque())
        times = entry[1]
        edge = now - expiry
        while times and times[0] <= edge:
            times.popleft()
        if len(times) + amount > limit:
            return False
        times.extend([now] * amount)
        if now > self._next_sweep:
            self._sweep(now)
        return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        entry = self.events.get(key)
        if entry is None:
            return now, 0
        live = [t for t in entry[1] if t > now - expiry]
        return (live[0], len(live)) if live else (now, 0)

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self.SWEEP_SECONDS
        quiet = [k for k, (exp, t) in self.events.items() if not t or t[-1] <= now - exp]
        for key in quiet:
            del self.events[key]

    # The rest of the Storage interface (fixed-window counters), unused by this strategy.
    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError

    def get(self, key: str) -> int:
        return len(self.events.get(key, (0, ()))[1])

    def get_expiry(self, key: str) -> float:
        return time.time()

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        count = len(self.events)
        self.events.clear()
        return count

    def clear(self, key: str) -> None:
        self.events.pop(key, None)


def async_storage_uri(url: str) -> str:
    """`redis://host:6379/0` -> `async+redis://host:6379/0` (the library's async scheme)."""
    return url if url.startswith("async+") else f"async+{url}"


class RateLimiter:
    def __init__(
        self,
        *,
        api_key: str,
        session: str,
        ip: str,
        storage_url: str | None = None,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self._memory: MovingWindowRateLimiter | None = None
        self._shared: AsyncMovingWindowRateLimiter | None = None
        if storage_url:
            self._shared = AsyncMovingWindowRateLimiter(
                storage_from_string(async_storage_uri(storage_url))
            )
        else:
            self._memory = MovingWindowRateLimiter(LoopMemoryStorage())
        self.defaults: dict[str, RateLimitItem] = {
            "api_key": parse(api_key),
            "session": parse(session),
            "ip": parse(ip),
        }
        self._parsed: dict[str, RateLimitItem] = {}
        self._last_error_log = 0.0

    def _item(self, kind: str, overrides: Mapping[str, str]) -> RateLimitItem:
        override = overrides.get(kind)
        if override is None:
            return self.defaults[kind]
        item = self._parsed.get(override)
        if item is None:
            try:
                item = parse(override)
            except ValueError:
                log.warning("ignoring malformed rate limit %r", override)
                return self.defaults[kind]
            self._parsed[override] = item
        return item

    async def check(
        self,
        identity: Identity,
        path: str,
        client_ip: str | None,
        overrides: Mapping[str, str],
    ) -> None:
        """Count this request; raise 429 `rate_limited` with Retry-After when over."""
        if not self.enabled:
            return
        kind = identity.principal_type
        if kind == "api_key":
            item, key = self._item("api_key", overrides), f"key:{identity.principal_id}"
        elif kind in ("session", "portal"):
            item, key = self._item("session", overrides), f"sess:{identity.principal_id}"
        elif kind == "anonymous":
            if path in EXEMPT_PATHS or not client_ip:
                return
            item, key = self.defaults["ip"], f"ip:{client_ip}"
        else:  # admin (and service, which never comes through the gateway)
            return
        try:
            if self._memory is not None:
                allowed = self._memory.hit(item, key)
            else:
                assert self._shared is not None
                allowed = await self._shared.hit(item, key)
        except Exception:  # noqa: BLE001 - a storage outage must not take the API down
            self._log_storage_error()
            return
        if not allowed:
            raise RateLimited(
                "rate_limited", RATE_LIMITED_MESSAGE, retry_after=await self._retry_after(item, key)
            )

    async def _retry_after(self, item: RateLimitItem, key: str) -> int:
        try:
            stats: WindowStats
            if self._memory is not None:
                stats = self._memory.get_window_stats(item, key)
            else:
                assert self._shared is not None
                stats = await self._shared.get_window_stats(item, key)
        except Exception:  # noqa: BLE001
            return item.get_expiry()
        return max(1, math.ceil(stats.reset_time - time.time()))

    def _log_storage_error(self) -> None:
        now = time.monotonic()
        if now - self._last_error_log > _ERROR_LOG_INTERVAL:
            self._last_error_log = now
            log.warning("rate limit storage unavailable; requests pass unlimited", exc_info=True)
