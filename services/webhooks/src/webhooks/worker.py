"""Reconciliation: Stripe promises at-least-once delivery only while the endpoint is
healthy, so a periodic job lists recent events and feeds any id the inbox has not seen
through the same intake path."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client import Counter

from bos_common.stripe_api import is_provider_outage
from webhooks import repository, service
from webhooks.runtime import WebhooksRuntime

log = logging.getLogger("webhooks.reconcile")

RECONCILED = Counter(
    "bos_webhook_reconciled_total", "Stripe events recorded by reconciliation, not by delivery."
)


async def reconcile_once(runtime: WebhooksRuntime) -> int:
    """One pass over the window; returns how many missed events were recorded."""
    since = int(time.time()) - runtime.settings.reconcile_window_seconds
    params: dict[str, Any] = {"limit": 100, "created": {"gte": since}}
    recorded = 0
    while True:
        page = await runtime.stripe.v1.events.list_async(params)  # type: ignore[arg-type]
        events = [e.to_dict() for e in page.data]
        if events:
            async with runtime.db.transaction() as session:
                seen = await repository.known_event_ids(session, [e["id"] for e in events])
            for event in events:
                if event["id"] in seen or not await runtime.accounts.is_ours(event.get("account")):
                    continue
                async with runtime.db.transaction() as session:
                    created = await service.ingest(runtime, session, event)
                if created:
                    runtime.relay.wake()  # after the commit: see repository.record_event
                    recorded += 1
                    RECONCILED.inc()
        if not page.has_more or not events:
            return recorded
        params["starting_after"] = events[-1]["id"]


async def reconcile_forever(runtime: WebhooksRuntime) -> None:
    while True:
        await asyncio.sleep(runtime.settings.reconcile_interval_seconds)
        try:
            found = await reconcile_once(runtime)
            if found:
                log.warning("reconciliation recorded %d events that were never delivered", found)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - Stripe or DB down: try again next round
            level = logging.WARNING if is_provider_outage(exc) else logging.ERROR
            log.log(level, "reconciliation failed: %s", exc)
