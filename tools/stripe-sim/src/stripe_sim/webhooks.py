"""Webhook endpoints and asynchronous, signed delivery with retries and exponential backoff.

Each attempt is signed like Stripe: ``Stripe-Signature: t=<ts>,v1=<hex hmac_sha256(secret,
"<ts>.<payload>")>``. A delivery is retried until the endpoint answers 2xx or the attempt
budget is spent. Attempts are recorded per event (``GET /_sim/events`` shows them).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from . import ids
from .config import Config
from .faults import Faults

log = logging.getLogger("stripe_sim.webhooks")

SHUFFLE_WINDOW_SECONDS = 0.25
MAX_CONCURRENT_POSTS = 64


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    mac = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@dataclass(slots=True)
class Endpoint:
    id: str
    url: str
    secret: str
    enabled_events: list[str] = field(default_factory=lambda: ["*"])
    #: None: every event; True: only Connect events (``account`` set); False: only platform ones
    connect: bool | None = None
    source: str = "api"
    created: int = field(default_factory=ids.now)

    def wants(self, event: dict[str, Any]) -> bool:
        if self.connect is not None and self.connect != ("account" in event):
            return False
        return "*" in self.enabled_events or event["type"] in self.enabled_events

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data["object"] = "webhook_endpoint"
        return data


@dataclass(slots=True)
class Delivery:
    endpoint: Endpoint
    event_id: str
    payload: bytes


class Deliverer:
    """Owns the endpoint list and every in-flight delivery task."""

    def __init__(
        self,
        config: Config,
        faults: Faults,
        record: Callable[[str, dict[str, Any]], None],
        delivered: Callable[[str], None],
    ) -> None:
        self.config = config
        self.faults = faults
        self._record = record
        self._delivered = delivered
        self.endpoints: dict[str, Endpoint] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._shuffle_buffer: list[Delivery] = []
        self._client: aiohttp.ClientSession | None = None
        self._semaphore = asyncio.Semaphore(MAX_CONCURRENT_POSTS)

    # -- endpoints -----------------------------------------------------------------------
    def add_endpoint(
        self,
        url: str,
        secret: str,
        *,
        enabled_events: list[str] | None = None,
        connect: bool | None = None,
        source: str = "api",
        endpoint_id: str | None = None,
    ) -> Endpoint:
        for existing in self.endpoints.values():
            if existing.url == url and existing.secret == secret:
                return existing
        endpoint = Endpoint(
            id=endpoint_id or ids.new_id("we"),
            url=url,
            secret=secret,
            enabled_events=enabled_events or ["*"],
            connect=connect,
            source=source,
        )
        self.endpoints[endpoint.id] = endpoint
        return endpoint

    def remove_endpoint(self, endpoint_id: str) -> Endpoint | None:
        return self.endpoints.pop(endpoint_id, None)

    def dump_endpoints(self) -> list[dict[str, Any]]:
        return [asdict(e) for e in self.endpoints.values() if e.source != "env"]

    def load_endpoints(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            endpoint = Endpoint(**row)
            self.endpoints[endpoint.id] = endpoint

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        # aiohttp: far less CPU per delivery than httpx under many concurrent posts
        self._client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout),
            connector=aiohttp.TCPConnector(limit=MAX_CONCURRENT_POSTS),
            headers={"User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"},
        )

    async def stop(self) -> None:
        self.cancel_all()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None

    def cancel_all(self) -> None:
        self._shuffle_buffer.clear()
        for task in list(self._tasks):
            task.cancel()

    def pending(self) -> int:
        return len(self._tasks) + len(self._shuffle_buffer)

    # -- delivery ------------------------------------------------------------------------
    def matching(self, event: dict[str, Any]) -> list[Endpoint]:
        return [e for e in self.endpoints.values() if e.wants(event)]

    def enqueue(self, event_id: str, payload: bytes, endpoints: list[Endpoint]) -> None:
        copies = 2 if self.faults.webhook_duplicate else 1
        for endpoint in endpoints:
            for _ in range(copies):
                delivery = Delivery(endpoint, event_id, payload)
                if self.faults.webhook_shuffle:
                    self._buffer(delivery)
                else:
                    self._spawn(self._run(delivery, first_attempt=1))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _buffer(self, delivery: Delivery) -> None:
        if not self._shuffle_buffer:
            self._spawn(self._flush_shuffled())
        self._shuffle_buffer.append(delivery)

    async def _flush_shuffled(self) -> None:
        """Out-of-order delivery: hold a short window, then send newest first."""
        await asyncio.sleep(SHUFFLE_WINDOW_SECONDS)
        batch, self._shuffle_buffer = self._shuffle_buffer, []
        for delivery in reversed(batch):
            if not await self._attempt(delivery, 1):
                self._spawn(self._run(delivery, first_attempt=2))

    async def _run(self, delivery: Delivery, first_attempt: int) -> None:
        attempt = first_attempt
        limit = self.config.max_attempts()
        while True:
            if attempt > 1:
                await asyncio.sleep(self.config.retry_delay(attempt - 1))
            if await self._attempt(delivery, attempt) or attempt >= limit:
                return
            attempt += 1

    async def _attempt(self, delivery: Delivery, attempt: int) -> bool:
        status: int | None = None
        error: str | None = None
        if attempt == 1 and self.faults.webhook_drop_first_attempt:
            error = "dropped by fault injection"
        else:
            status, error = await self._post(delivery)
        ok = status is not None and 200 <= status < 300
        self._record(
            delivery.event_id,
            {
                "attempt": attempt,
                "status_code": status,
                "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "endpoint": delivery.endpoint.url,
                "error": error,
            },
        )
        if ok:
            self._delivered(delivery.event_id)
        return ok

    async def _post(self, delivery: Delivery) -> tuple[int | None, str | None]:
        assert self._client is not None, "deliverer not started"
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(delivery.payload, delivery.endpoint.secret, int(time.time())),
        }
        async with self._semaphore:
            try:
                async with self._client.post(
                    delivery.endpoint.url, data=delivery.payload, headers=headers
                ) as response:
                    await response.read()
                    return response.status, None
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                return None, f"{type(exc).__name__}: {exc}"
