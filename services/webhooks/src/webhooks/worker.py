"""Reconciliation: Stripe promises at-least-once delivery only while the endpoint is
healthy, so a periodic job lists recent events and feeds any id the inbox has not seen
through the same intake path: the platform's own events, and each BOS organization's
connected account's (listed with `Stripe-Account`, as Stripe scopes them)."""

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
# Connected accounts listed at the same time.
ACCOUNT_CONCURRENCY = 4
# After a complete pass over an account, the next one starts this long before that pass
# began (Stripe's clock, lists that catch up late), not at the whole window.
OVERLAP_SECONDS = 900


def _level(exc: BaseException) -> int:
    return logging.WARNING if is_provider_outage(exc) else logging.ERROR


async def reconcile_once(runtime: WebhooksRuntime) -> int:
    """One pass: the platform's events, then each connected account's; returns how many
    missed events were recorded. A connected account that cannot be listed (or tokens,
    which names them, being down) is logged and tried again next pass; the platform's
    failure raises."""
    recorded = await _reconcile_account(runtime, None)
    try:
        accounts = await runtime.accounts.connected()
    except Exception as exc:  # noqa: BLE001 - tokens down: the accounts wait for the next pass
        log.log(_level(exc), "reconciliation could not list connected accounts: %s", exc)
        return recorded
    limit = asyncio.Semaphore(ACCOUNT_CONCURRENCY)

    async def one(account: str) -> int:
        async with limit:
            try:
                return await _reconcile_account(runtime, account)
            except Exception as exc:  # noqa: BLE001 - one account's failure spares the others
                log.log(_level(exc), "reconciliation of %s failed: %s", account, exc)
                return 0

    return recorded + sum(await asyncio.gather(*(one(a) for a in accounts)))


async def _reconcile_account(runtime: WebhooksRuntime, account: str | None) -> int:
    """The events of one account (None: the platform) since its window began: the types
    its webhook endpoint subscribes to, deduplicated through the inbox."""
    started = int(time.time())
    since = started - runtime.settings.reconcile_window_seconds
    last = runtime.reconciled_at.get(account)
    if last is not None:
        since = max(since, last - OVERLAP_SECONDS)
    types = service.CONNECT_EVENT_TYPES if account else service.ACCOUNT_EVENT_TYPES
    params: dict[str, Any] = {"limit": 100, "created": {"gte": since}, "types": list(types)}
    options: dict[str, Any] = {"stripe_account": account} if account else {}
    recorded = 0
    while True:
        page = await runtime.stripe.v1.events.list_async(params, options)  # type: ignore[arg-type]
        events = [e.to_dict() for e in page.data]
        if account:
            # Listed under Stripe-Account: that account's events, as delivered to the
            # Connect endpoint (which names the account).
            events = [e for e in events if e.setdefault("account", account) == account]
        if events:
            recorded += await _record_missing(runtime, events, check_account=not account)
        if not page.has_more or not page.data:
            break
        params["starting_after"] = page.data[-1].id
    runtime.reconciled_at[account] = started
    return recorded


async def _record_missing(
    runtime: WebhooksRuntime, events: list[dict[str, Any]], *, check_account: bool
) -> int:
    async with runtime.db.transaction() as session:
        seen = await repository.known_event_ids(session, [e["id"] for e in events])
    recorded = 0
    for event in events:
        if event["id"] in seen:
            continue
        if check_account and not await runtime.accounts.is_ours(event.get("account")):
            continue
        async with runtime.db.transaction() as session:
            created = await service.ingest(runtime, session, event)
        if created:
            runtime.relay.wake()  # after the commit: see repository.record_event
            recorded += 1
            RECONCILED.inc()
    return recorded


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
            log.log(_level(exc), "reconciliation failed: %s", exc)
