"""Background loops of the checkout service, safe with several replicas
(`FOR UPDATE SKIP LOCKED` on the rows they take)."""

from __future__ import annotations

import asyncio
import logging

import stripe

from bos_common.stripe_api import is_provider_outage
from checkout import repository, service
from checkout.runtime import CheckoutRuntime

log = logging.getLogger("checkout.worker")


async def expire_once(runtime: CheckoutRuntime) -> int:
    async with runtime.db.transaction() as s:
        expired = await repository.expire_due(s, service.utcnow())
    for row in expired:
        await service.release_coupon(runtime, row)
    return len(expired)


async def release_transfers_once(runtime: CheckoutRuntime) -> int:
    """12.2/12.4: held merchant shares go out once the account can receive them."""
    released = 0
    async with runtime.db.transaction() as s:
        for transfer in await repository.due_transfers(s, service.utcnow()):
            try:
                created = await runtime.stripe.v1.transfers.create_async(
                    {
                        "amount": transfer.amount,
                        "currency": transfer.currency,
                        "destination": transfer.destination_account,
                        "metadata": {"payment_id": transfer.payment_id, "org_id": transfer.org_id},
                    },
                    {"idempotency_key": f"bos-transfer-{transfer.id}"},
                )
            except stripe.StripeError as exc:
                if is_provider_outage(exc):
                    raise
                log.error("transfer %s refused by Stripe: %s", transfer.id, exc)
                await repository.mark_transfer(s, transfer.id, "failed", None)
                continue
            await repository.mark_transfer(s, transfer.id, "paid", str(created.id))
            released += 1
    return released


async def every(seconds: float, job: str, fn: object) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await fn()  # type: ignore[operator]
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a dependency down: try again next round
            log.warning("%s failed: %s", job, exc)
