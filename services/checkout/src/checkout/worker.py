"""Background loops of the checkout service, safe with several replicas
(`FOR UPDATE SKIP LOCKED` on the rows they take)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import stripe

from bos_common.stripe_api import as_dict, is_provider_outage
from checkout import (
    confirm,
    connect_repository,
    recovery_repository,
    repository,
    service,
    stripe_params,
)
from checkout.connect_repository import DueTransfer
from checkout.runtime import CheckoutRuntime

log = logging.getLogger("checkout.worker")


async def expire_once(runtime: CheckoutRuntime) -> int:
    async with runtime.db.transaction() as s:
        expired = await repository.expire_due(s, service.utcnow())
    for row in expired:
        await service.release_coupon(runtime, row)
    return len(expired)


# A held transfer Stripe cannot make yet is tried again after this, doubling per attempt.
TRANSFER_RETRY_FIRST = timedelta(minutes=1)
TRANSFER_RETRY_MAX = timedelta(hours=6)


def transfer_retryable(exc: stripe.StripeError) -> bool:
    """Funds still pending (`balance_insufficient`), Stripe down or overloaded: the same
    transfer succeeds later. Anything else is a refusal to look at."""
    return exc.code == "balance_insufficient" or is_provider_outage(exc)


def transfer_retry_delay(attempts: int) -> timedelta:
    """Backoff after `attempts` tries (1, 2, 4, ... minutes, at most 6 hours)."""
    return min(TRANSFER_RETRY_FIRST * (2 ** min(attempts, 20)), TRANSFER_RETRY_MAX)


async def _source_charge(runtime: CheckoutRuntime, due: DueTransfer) -> str | None:
    """The charge the merchant's share came with: the PaymentIntent's latest_charge."""
    if due.transfer.source_charge_id:
        return due.transfer.source_charge_id
    if not due.stripe_intent_id:
        return None
    intent = await runtime.stripe.v1.payment_intents.retrieve_async(due.stripe_intent_id)
    charge = as_dict(intent).get("latest_charge")
    if isinstance(charge, dict):
        charge = charge.get("id")
    return str(charge) if charge else None


async def release_transfers_once(runtime: CheckoutRuntime) -> int:
    """12.2/12.4: held merchant shares go out once the account can receive them, each
    tied to its charge (`source_transaction`) so pending funds are enough."""
    released = 0
    async with runtime.db.transaction() as s:
        for due in await connect_repository.due_transfers(s, service.utcnow()):
            transfer = due.transfer
            charge = transfer.source_charge_id
            try:
                charge = await _source_charge(runtime, due)
                created = await runtime.stripe.v1.transfers.create_async(
                    stripe_params.held_transfer(
                        amount=transfer.amount,
                        currency=transfer.currency,
                        destination=transfer.destination_account,
                        source_charge=charge,
                        payment_id=transfer.payment_id,
                        org_id=transfer.org_id,
                    ),
                    {"idempotency_key": f"bos-transfer-{transfer.id}"},
                )
            except stripe.StripeError as exc:
                if transfer_retryable(exc):
                    at = service.utcnow() + transfer_retry_delay(transfer.attempts)
                    log.warning("transfer %s not made yet, again at %s: %s", transfer.id, at, exc)
                    await connect_repository.retry_transfer_later(
                        s, transfer.id, at, _error(exc), source_charge_id=charge
                    )
                    continue
                log.error("transfer %s refused by Stripe: %s", transfer.id, exc)
                await connect_repository.mark_transfer(
                    s, transfer.id, "failed", None, source_charge_id=charge, error=_error(exc)
                )
                continue
            await connect_repository.mark_transfer(
                s, transfer.id, "paid", str(created.id), source_charge_id=charge
            )
            released += 1
    return released


async def settle_orphaned_payments_once(runtime: CheckoutRuntime) -> int:
    """Confirms whose process died (their payment's lease ran out) settled against
    Stripe, each under a lease of this process while it is read and recorded."""
    leases = runtime.payment_leases
    async with runtime.db.transaction() as s:
        orphans = await recovery_repository.take_over_orphaned_payments(s, leases.lease)
    for payment in orphans:
        try:
            with leases.hold(payment.id):
                await confirm.settle_left_payment(runtime, payment)
        except Exception as exc:  # noqa: BLE001 - Stripe or the database down: next round
            log.warning("payment %s not settled yet: %s", payment.id, exc)
            async with runtime.db.transaction() as s:
                await recovery_repository.expire_payment_lease(s, payment.id, leases.lease)
    return len(orphans)


def _error(exc: stripe.StripeError) -> str:
    return f"{exc.code or type(exc).__name__}: {exc.user_message or exc}"[:500]


async def every(seconds: float, job: str, fn: object) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await fn()  # type: ignore[operator]
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a dependency down: try again next round
            log.warning("%s failed: %s", job, exc)
