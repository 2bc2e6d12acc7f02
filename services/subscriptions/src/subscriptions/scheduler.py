"""The billing scheduler: trial reminders and conversions, renewals, ends at period end,
payment resends, dunning retries and cancellations, for every subscription whose
`next_action_at` has come.

Each pass claims a batch of due rows with `FOR UPDATE SKIP LOCKED`, so any number of
replicas share the work and a row is handled by exactly one of them; the batch's invoices,
events (outbox) and emails are written in the same transaction, so a crash redoes the whole
batch or none of it. Invoice numbers are reserved per organization in one statement per
batch, late in the transaction, to keep the counter row's lock short.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from prometheus_client import Counter

from bos_common.events import Event
from bos_common.health import heartbeat
from subscriptions import billing, repository
from subscriptions.models import invoices, subscriptions
from subscriptions.runtime import SubscriptionsRuntime
from subscriptions.service import end_free_subscriptions, invoice_created_event, notification_rows

log = logging.getLogger("bos.subscriptions.scheduler")

SCHEDULED = Counter(
    "bos_subscriptions_scheduled_total",
    "Scheduled subscription actions handled, by action.",
    ["action"],
)
INVOICES = Counter("bos_subscriptions_invoices_created_total", "Invoices issued by the scheduler.")

Row = dict[str, Any]


async def run_due(
    rt: SubscriptionsRuntime, *, limit: int | None = None, now: datetime | None = None
) -> int:
    """One pass over at most `limit` due subscriptions; returns how many were handled."""
    now = now or rt.clock.now()
    limit = limit or rt.settings.scheduler_batch
    async with rt.db.transaction() as session:
        pairs = await repository.claim_due(session, now, limit)
        if not pairs:
            return 0
        sub_updates: list[Row] = []
        invoice_updates: list[Row] = []
        events: list[tuple[Event, str | None]] = []
        notices: list[Row] = []
        new_invoices: list[tuple[Row, Row]] = []  # (merged subscription, invoice)
        upgrades: list[Row] = []
        for sub, inv in pairs:
            SCHEDULED.labels(sub.get("next_action") or "none").inc()
            try:
                out = billing.on_due(sub, inv, now=now, policy=rt.policy)
            except Exception:  # noqa: BLE001 - one bad row must not stall the others
                log.exception("scheduled action failed for %s; parked", sub["id"])
                sub_updates.append({"id": sub["id"], "next_action_at": None, "updated_at": now})
                continue
            merged = {**sub, **out.updates}
            if out.updates:
                sub_updates.append({"id": sub["id"], **out.updates, "updated_at": now})
            if inv is not None and out.invoice_updates:
                invoice_updates.append({"id": inv["id"], **out.invoice_updates})
            if inv is not None and out.republish:
                events.append(
                    (invoice_created_event(merged, {**inv, **out.invoice_updates}), sub["org_id"])
                )
            events.extend((e, sub["org_id"]) for e in out.events)
            if out.notices:
                notices.extend(notification_rows(merged, out.notices, now))
            if out.new_invoice is not None:
                new_invoices.append((merged, out.new_invoice))
            if out.became_paid_active:
                upgrades.append(merged)

        await repository.update_rows(session, subscriptions, sub_updates)
        await repository.update_rows(session, invoices, invoice_updates)
        await repository.enqueue_notifications(session, notices)
        if new_invoices:
            per_org: dict[str, list[Row]] = {}
            for _, invoice in new_invoices:
                per_org.setdefault(invoice["org_id"], []).append(invoice)
            for org_id in sorted(per_org):  # one order everywhere: no deadlock between replicas
                first = await repository.allocate_invoice_numbers(
                    session, org_id, len(per_org[org_id])
                )
                for i, invoice in enumerate(per_org[org_id]):
                    invoice["number"] = repository.invoice_number(org_id, first + i)
            await repository.copy_rows(session, invoices, [inv for _, inv in new_invoices])
            events.extend(
                (invoice_created_event(sub, inv), sub["org_id"])
                for sub, inv in new_invoices
                if inv["status"] == "open"
            )
            INVOICES.inc(len(new_invoices))
        await repository.copy_events(session, rt.name, events)
        for paid in upgrades:
            await end_free_subscriptions(rt, session, paid)
    return len(pairs)


async def drain(
    rt: SubscriptionsRuntime, *, limit: int | None = None, now: datetime | None = None
) -> int:
    """Run passes until nothing is due (tests and benchmarks)."""
    total = 0
    while True:
        n = await run_due(rt, limit=limit, now=now)
        total += n
        if n == 0:
            return total


async def scheduler_loop(rt: SubscriptionsRuntime) -> None:
    """Forever: full batches back to back, then sleep for the interval."""
    delay = rt.settings.scheduler_interval
    while True:
        try:
            n = await run_due(rt)
            heartbeat("subscriptions", "scheduler")  # BosRenewalSchedulerStalled
            delay = rt.settings.scheduler_interval
            if n >= rt.settings.scheduler_batch:
                continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - database down: back off, never die
            log.warning("scheduler pass failed, backing off: %s", exc)
            delay = min(max(delay, 0.5) * 2, 30.0)
        await asyncio.sleep(delay)
