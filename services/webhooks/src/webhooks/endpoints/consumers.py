"""Internal events -> deliveries to merchant endpoints (one queue, through the inbox:
each event makes its deliveries once)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.app import ServiceRuntime
from bos_common.db import after_commit
from bos_common.events import Envelope
from webhooks.endpoints import catalogue, service
from webhooks.endpoints.worker import MerchantDelivery

# A busy queue's batch waits this long for more events: planning costs a transaction and
# four statements per batch whatever its size, and a delivery can wait 50 ms.
PLAN_LINGER_SECONDS = 0.05


def register(runtime: ServiceRuntime, delivery: MerchantDelivery) -> None:
    async def plan(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
        if await service.plan_deliveries(session, envelopes):
            after_commit(session, delivery.wake)

    runtime.on_events("merchant_webhooks", *catalogue.SOURCES, batch_linger=PLAN_LINGER_SECONDS)(
        plan
    )
