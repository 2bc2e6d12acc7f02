"""What checkout asks of and tells Stripe about an organization's connected account:
whether it can receive charges (12.2), the organization's payout schedule (12.4) and the
account's country (the page's wallet button).

The payout schedule is pushed when the organization's changes (organization.updated.v1
from tokens; not when the account already has it), never on a customer's payment: Stripe
lets the platform change it only on accounts whose settings the platform controls
(Custom, or Express with platform controls) and refuses it on the others. A refusal is
the merchant's to see: `GET /v1/connected-account` shows it with Stripe's error (from the
account's row in `payout_schedules`), a warning names the organization,
`bos_payout_schedule_updates_total{outcome="refused"}` counts it and an audit line
records it (deploy/README.md, "Connected accounts' payout schedule").

An orchestrator between Stripe and `connect_repository`; who owns each transaction is part
of each function's contract:
- `charges_enabled` and `connected_account` own theirs: each reads in one short
  transaction of its own, committed before Stripe is asked anything, so no database
  connection is held while Stripe answers (their callers, confirm and the route, hold none);
- `on_organization_updated` (the inbox consumer's transaction) and `take_back_held_share`
  (the payment state machine's) run in their caller's and never commit;
- `account_country` touches no database.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import stripe
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.audit import audit
from bos_common.db import after_commit
from bos_common.errors import NotFound
from bos_common.events import Envelope, OrganizationUpdatedV1
from bos_common.stripe_api import as_dict, is_provider_outage, provider_unavailable
from checkout import connect_repository, stripe_params
from checkout.connect_repository import PayoutScheduleRecord
from checkout.records import Payment
from checkout.runtime import CheckoutRuntime
from checkout.schemas import ConnectedAccountOut, ErrorOut, PayoutScheduleState

log = logging.getLogger("checkout.connect")

PAYOUT_SCHEDULE_UPDATES = Counter(
    "bos_payout_schedule_updates_total",
    "Payout schedules pushed to connected accounts, by Stripe's answer.",
    ["outcome"],  # applied | refused
)


async def charges_enabled(runtime: CheckoutRuntime, account: str | None) -> bool | None:
    """What `account.updated` last said; asked of Stripe when never seen. Owns its
    transaction (a read, committed before Stripe is asked)."""
    if not account:
        return None
    async with runtime.db.transaction() as s:
        known = await connect_repository.account_charges_enabled(s, account)
    if known is not None:
        return known
    try:
        acct = await runtime.stripe.v1.accounts.retrieve_async(account)
    except stripe.StripeError as exc:
        if is_provider_outage(exc):
            raise provider_unavailable() from exc
        raise
    return bool(as_dict(acct).get("charges_enabled"))


async def take_back_held_share(
    runtime: CheckoutRuntime, session: AsyncSession, payment: Payment
) -> None:
    """A refunded payment that was taken on the platform (12.2): its merchant share is not
    owed any more. Still held, the transfer is canceled; already made, it is reversed on
    Stripe (a destination charge's share goes back with the refund, stripe_params.refund).
    In the caller's transaction."""
    if payment.connect_mode != "held":
        return
    transfer = await connect_repository.get_transfer_of_payment(session, payment.id)
    if transfer is None:
        return
    if transfer.status == "held":
        await connect_repository.mark_transfer(session, transfer.id, "canceled", None)
    elif transfer.status == "paid" and transfer.stripe_transfer_id:
        await runtime.stripe.v1.transfers.reversals.create_async(
            transfer.stripe_transfer_id,
            stripe_params.transfer_reversal(payment_id=payment.id),
            {"idempotency_key": f"bos-transfer-reversal-{transfer.id}"},
        )
        await connect_repository.mark_transfer(
            session, transfer.id, "reversed", transfer.stripe_transfer_id
        )


# --- payout schedule --------------------------------------------------------------------


def payout_push_needed(
    current: PayoutScheduleRecord | None, version: int, schedule: dict[str, Any]
) -> bool:
    """Push when the account has never had this schedule from us; not for an older event,
    nor for a change of something else (a refused schedule is not asked again until the
    organization changes it)."""
    if current is None:
        return True
    if current.org_version >= version:
        return False
    return current.schedule != schedule


def schedule_matches(account: dict[str, Any], schedule: dict[str, Any]) -> bool:
    """Whether the account's payout schedule already is `schedule` (Stripe shows
    delay_days as an integer, BOS may hold it as one or as a string)."""
    current = ((account.get("settings") or {}).get("payouts") or {}).get("schedule") or {}
    return all(str(current.get(k)) == str(v) for k, v in schedule.items())


async def on_organization_updated(
    runtime: CheckoutRuntime, session: AsyncSession, envelope: Envelope
) -> None:
    """Pushes the organization's payout schedule to its account when needed and records
    Stripe's answer, in the inbox consumer's transaction (the account's row stays locked
    while Stripe answers: two events of one organization never push at once)."""
    event = envelope.payload()
    assert isinstance(event, OrganizationUpdatedV1)
    account = event.stripe_account_id
    if not account:
        return
    schedule = event.payout_schedule.model_dump(exclude_none=True)
    current = await connect_repository.payout_schedule_of(session, account)
    if not payout_push_needed(current, event.version, schedule):
        if current is not None and current.org_version < event.version:
            await connect_repository.record_payout_schedule(
                session, replace(current, org_id=event.org_id, org_version=event.version)
            )
        return
    record = PayoutScheduleRecord(
        account_id=account,
        org_id=event.org_id,
        org_version=event.version,
        schedule=schedule,
        status="applied",
        error_code=None,
        error_message=None,
    )
    try:
        # Read first: an account already on this schedule needs no change (and one the
        # platform does not control then refuses nothing).
        found = as_dict(await runtime.stripe.v1.accounts.retrieve_async(account))
        if not schedule_matches(found, schedule):
            await runtime.stripe.v1.accounts.update_async(
                account,
                stripe_params.payout_schedule(event.payout_schedule),
                {"idempotency_key": f"bos-payouts-{account}-{event.version}"},
            )
    except stripe.StripeError as exc:
        if is_provider_outage(exc):
            raise  # nothing decided: the bus retries the event
        record = replace(
            record,
            status="refused",
            error_code=exc.code or "refused",
            error_message=str(as_dict(exc.error).get("message") or exc),
        )
        log.warning(
            "Stripe refused the payout schedule of organization %s on %s: %s",
            event.org_id,
            account,
            record.error_message,
            extra={"org_id": event.org_id, "stripe_account_id": account},
        )
    await connect_repository.record_payout_schedule(session, record)
    status = record.status

    def recorded() -> None:
        PAYOUT_SCHEDULE_UPDATES.labels(status).inc()
        audit(
            f"payout_schedule.{status}",
            actor_type="system",
            org_id=event.org_id,
            stripe_account_id=account,
            schedule=schedule,
            error_code=record.error_code,
        )

    after_commit(session, recorded)


def payout_schedule_state(
    org_id: str, requested: dict[str, Any], recorded: PayoutScheduleRecord | None
) -> PayoutScheduleState:
    """What the merchant is shown of its payout schedule: Stripe's answer to the schedule
    last applied, or `pending` while the one it asked for has not been (organization
    events are applied within seconds)."""
    if (
        recorded is None
        or recorded.org_id != org_id
        or not _same_schedule(recorded.schedule, requested)
    ):
        return PayoutScheduleState(schedule=requested, status="pending")
    error = None
    if recorded.status == "refused":
        error = ErrorOut(
            code=recorded.error_code or "refused", message=recorded.error_message or ""
        )
    return PayoutScheduleState(
        schedule=requested, status=recorded.status, error=error, updated_at=recorded.updated_at
    )


def _same_schedule(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def norm(s: dict[str, Any]) -> dict[str, str]:
        return {k: str(v) for k, v in s.items() if v is not None}

    return norm(a) == norm(b)


async def connected_account(runtime: CheckoutRuntime, org_id: str) -> ConnectedAccountOut:
    """The organization's connected account as BOS knows it: whether it can take charges and
    receive payouts, and the state of its payout schedule. 404 without an account. Owns
    its transaction (one read, committed before Stripe is asked)."""
    billing = await runtime.organizations.billing(org_id, fresh=True)
    account = billing.stripe_account_id
    if not account:
        raise NotFound(
            "connected_account_not_found",
            "This organization has no Stripe connected account: set stripe_account_id "
            "with PATCH /v1/organization.",
        )
    async with runtime.db.transaction() as s:
        state = await connect_repository.account_state(s, account)
        recorded = await connect_repository.payout_schedule_of(s, account, lock=False)
    charges, payouts = (state.charges_enabled, state.payouts_enabled) if state else (None, None)
    if state is None:
        # Never reported by `account.updated` (connected while already verified): ask Stripe.
        try:
            found = as_dict(await runtime.stripe.v1.accounts.retrieve_async(account))
        except stripe.StripeError as exc:
            if is_provider_outage(exc):
                raise provider_unavailable() from exc
            found = {}
        if found:
            charges = bool(found.get("charges_enabled"))
            payouts = bool(found.get("payouts_enabled"))
    return ConnectedAccountOut(
        id=account,
        charges_enabled=charges,
        payouts_enabled=payouts,
        payout_schedule=payout_schedule_state(org_id, billing.payout_schedule, recorded),
    )


# --- the account's country --------------------------------------------------------------

COUNTRY_CACHE_SECONDS = 600.0
_countries: dict[str, tuple[float, str | None]] = {}


async def account_country(runtime: CheckoutRuntime, account: str | None) -> str | None:
    """The country of the account the payment is taken on (the organization's connected
    account, else the platform's own), for the page's wallet button; None when Stripe
    cannot say (the page then offers no wallet). Cached: it does not change."""
    key = account or ""
    now = time.monotonic()
    cached = _countries.get(key)
    if cached and cached[0] > now:
        return cached[1]
    try:
        if account:
            found = await runtime.stripe.v1.accounts.retrieve_async(account)
        else:
            found = await runtime.stripe.v1.accounts.retrieve_current_async()
    except stripe.StripeError as exc:
        log.info("country of %s unavailable: %s", account or "the platform", exc)
        return None
    country = as_dict(found).get("country")
    _countries[key] = (now + COUNTRY_CACHE_SECONDS, str(country) if country else None)
    return _countries[key][1]
