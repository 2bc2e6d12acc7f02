"""The simulator's state: store, events, webhook deliverer, idempotency cache and faults."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from . import errors, ids, versions
from .config import Config
from .faults import Faults
from .idempotency import IdempotencyCache
from .ledger import Ledger
from .request_log import RequestLog
from .store import Obj, Store, read_snapshot, write_atomic
from .webhooks import Deliverer

log = logging.getLogger("stripe_sim")


@dataclass(slots=True)
class Ctx:
    """Per-request facts the handlers need."""

    account: str | None = None
    publishable: bool = False
    request_id: str = ""
    idempotency_key: str | None = None
    api_version: str | None = None
    base_url: str = ""


def snapshot_of(obj: Obj) -> Obj:
    """A deep copy, so later mutations do not leak into already emitted events."""
    copied: Obj = orjson.loads(orjson.dumps(obj))
    return copied


class Sim:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store()
        self.faults = Faults()
        self.idempotency = IdempotencyCache()
        self.request_log = RequestLog()
        self.known_versions = versions.known_versions(config.api_version)
        self.ledger = Ledger(self.store)
        self.deliverer = Deliverer(config, self.faults, self._record_delivery, self._delivered)
        for spec in config.webhook_endpoints:
            self.deliverer.add_endpoint(
                spec.url,
                spec.secret,
                enabled_events=spec.enabled_events,
                connect=spec.connect,
                source="env",
            )
        self._snapshot_task: asyncio.Task[None] | None = None
        self._saved_changes = -1

    # -- events --------------------------------------------------------------------------
    def emit(
        self,
        type_: str,
        obj: Obj,
        *,
        account: str | None,
        ctx: Ctx | None = None,
        previous: dict[str, Any] | None = None,
        raw_object: bool = False,
    ) -> Obj:
        data: dict[str, Any] = {"object": obj if raw_object else snapshot_of(obj)}
        if previous:
            data["previous_attributes"] = snapshot_of(previous)
        event: Obj = {
            "id": ids.new_id("evt"),
            "object": "event",
            "api_version": (ctx.api_version if ctx and ctx.api_version else None)
            or self.config.api_version,
            "created": ids.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": {
                "id": ctx.request_id if ctx else None,
                "idempotency_key": ctx.idempotency_key if ctx else None,
            },
            "type": type_,
        }
        if account is not None:
            event["account"] = account
        endpoints = self.deliverer.matching(event)
        event["pending_webhooks"] = len(endpoints)
        self.store.add(event, account, {"deliveries": []})
        self.store.seq_index_add("event.type", f"{account or ''}|{type_}", event["id"])
        self.store.seq_index_add("event.all_type", type_, event["id"])
        self.store.seq_index_add("event.all", "all", event["id"])
        if endpoints:
            self.deliverer.enqueue(event["id"], orjson.dumps(event), endpoints)
        return event

    def _record_delivery(self, event_id: str, attempt: dict[str, Any]) -> None:
        meta = self.store.meta.get(event_id)
        if meta is not None:
            meta.internal.setdefault("deliveries", []).append(attempt)
            self.store.touch()

    def _delivered(self, event_id: str) -> None:
        event = self.store.get_any(event_id)
        if event is not None and event["pending_webhooks"] > 0:
            event["pending_webhooks"] -= 1

    # -- lookups -------------------------------------------------------------------------
    def require(
        self, ctx: Ctx, object_id: str | None, kind: str, *, param: str | None = None
    ) -> Obj:
        """The object visible to ``ctx.account``; 404 for a path id, 400 for a parameter."""
        obj = self.store.get(object_id, ctx.account) if object_id else None
        if obj is None:
            if param is None:
                raise errors.no_such(kind, str(object_id))
            raise errors.no_such(kind, str(object_id), param=param, status=400)
        return obj

    # -- snapshots -----------------------------------------------------------------------
    def reset(self) -> None:
        self.deliverer.cancel_all()
        self.store.reset()
        self.ledger.reset()
        self.idempotency.clear()

    def save(self) -> None:
        path = self.config.state_file
        if not path:
            return
        payload = {
            "store": self.store.dump(),
            "idempotency": self.idempotency.dump(),
            "webhook_endpoints": self.deliverer.dump_endpoints(),
        }
        write_atomic(path, orjson.dumps(payload))
        self._saved_changes = self.store.changes

    def load(self) -> None:
        path = self.config.state_file
        if not path:
            return
        # Millions of small objects: the cyclic GC would rescan them over and over while
        # they are created; afterwards freeze them out of future collections.
        gc.disable()
        try:
            data = read_snapshot(path)
            if data is None:
                return
            self.store.load(data["store"])
            self.ledger.reset()
            self.idempotency.load(data.get("idempotency", []))
            self.deliverer.load_endpoints(data.get("webhook_endpoints", []))
        finally:
            gc.enable()
        gc.freeze()
        self._saved_changes = self.store.changes
        log.warning("loaded %d objects from %s", self.store.count(), path)

    async def start(self) -> None:
        self.load()
        await self.deliverer.start()
        if self.config.state_file and self.config.snapshot_interval > 0:
            self._snapshot_task = asyncio.get_running_loop().create_task(self._snapshot_loop())

    async def stop(self) -> None:
        if self._snapshot_task is not None:
            self._snapshot_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._snapshot_task
        await self.deliverer.stop()
        self.save()

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.snapshot_interval)
            if self.store.changes != self._saved_changes:
                try:
                    self.save()
                except OSError:
                    log.exception("snapshot failed")
