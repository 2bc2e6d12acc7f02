"""The billing scheduler: trial reminders and conversions, renewals, ends at period end,
payment resends, dunning retries and cancellations, for every subscription whose
`next_action_at` has come.

Each pass claims a batch of due rows with `FOR UPDATE SKIP LOCKED`, so any number of
replicas share the work and a row is handled by exactly one of them; the batch's invoices,
events (outbox) and emails are written in the same transaction, so a crash redoes the whole
batch or none of it (`outcomes.write_outcomes`, the writer of every decision).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from prometheus_client import Counter

from bos_common.health import heartbeat
from subscriptions import billing, repository
from subscriptions.outcomes import Decision, write_outcomes
from subscriptions.runtime import SubscriptionsRuntime

log = logging.getLogger("bos.subscriptions.scheduler")

SCHEDULED = Counter(
    "bos_subscriptions_scheduled_total",
    "Scheduled subscription actions handled, by action.",
    ["action"],
)
INVOICES = Counter("bos_subscriptions_invoices_created_total", "Invoices issued by the scheduler.")


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
        decisions: list[Decision] = []
        parked: list[str] = []
        for sub, inv in pairs:
            SCHEDULED.labels(sub.next_action or "none").inc()
            try:
                out = billing.on_due(sub, inv, now=now, policy=rt.policy)
            except Exception:  # noqa: BLE001 - one bad row must not stall the others
                log.exception("scheduled action failed for %s; parked", sub.id)
                parked.append(sub.id)
                continue
            decisions.append(Decision(sub, inv, out))
        await write_outcomes(rt, session, decisions, now=now, parked=parked)
        INVOICES.inc(sum(1 for d in decisions if d.out.new_invoice is not None))
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
