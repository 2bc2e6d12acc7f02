"""Fills checkout's projection of subscriptions (`customer_subscriptions`, what answers
"already subscribed to this product?" at creation, 8.2) from the subscriptions service,
once, on a database that predates the projection: until then the projection only knows
the subscriptions whose `subscription.created.v1` it consumed itself, and a customer
subscribed before the upgrade could buy the same product twice.

Runs at start as a checkout worker until it has succeeded once (`projection_backfills`
remembers it), and on demand as `python -m checkout backfill` (`--force` to run it again).
Several replicas at once are harmless: every write is an upsert under the projection's
newest-wins rule, so an event recorded meanwhile (a subscription that ended) stays.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from checkout import projection_repository
from checkout.runtime import CheckoutRuntime

log = logging.getLogger("checkout.backfill")

NAME = "customer_subscriptions"
PAGE = 500


async def backfill_subscriptions(runtime: CheckoutRuntime, *, force: bool = False) -> int | None:
    """How many live subscriptions were projected; None when it had been done already."""
    if not force:
        async with runtime.db.transaction() as session:
            if await projection_repository.backfilled(session, NAME):
                return None
    after: str | None = None
    total = 0
    while True:
        page, after = await runtime.subscriptions.live_subscriptions(after, PAGE)
        rows = [
            {
                "subscription_id": r["subscription_id"],
                "org_id": r["org_id"],
                "customer_id": r["customer_id"],
                "product_id": r["product_id"],
                "as_of": datetime.fromisoformat(r["as_of"]),
            }
            for r in page
        ]
        async with runtime.db.transaction() as session:
            await projection_repository.project_live_subscriptions(session, rows)
        total += len(rows)
        if after is None:
            break
    async with runtime.db.transaction() as session:
        await projection_repository.mark_backfilled(session, NAME)
    log.info("subscription projection backfilled", extra={"subscriptions": total})
    return total


async def until_backfilled(runtime: CheckoutRuntime) -> None:
    """The start-up worker: again with backoff while subscriptions (or Postgres) is away."""
    delay = 1.0
    while True:
        try:
            await backfill_subscriptions(runtime)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a dependency down: try again
            log.warning("subscription projection backfill failed, retrying: %s", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)
