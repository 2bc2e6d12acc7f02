"""The SQL of checkout's Connect state: connected accounts as `account.updated` reported
them, held transfers (12.2) and the payout schedule pushed to each account (12.4). Every
function runs on the session it is given (its caller's transaction) and opens none; the
rows connect.py works on come back typed (`AccountState`, `PayoutScheduleRecord`,
`Transfer`, `DueTransfer`, each built by its `from_row`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from checkout.models import connected_accounts, payments, payout_schedules, transfers


@dataclass(frozen=True, slots=True)
class AccountState:
    """What the last `account.updated` said of a connected account."""

    charges_enabled: bool
    payouts_enabled: bool

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> AccountState:
        return cls(
            charges_enabled=bool(row["charges_enabled"]),
            payouts_enabled=bool(row["payouts_enabled"]),
        )


@dataclass(frozen=True, slots=True)
class Transfer:
    """A payment's merchant share taken on the platform, held until it can be paid."""

    id: str
    org_id: str
    payment_id: str
    destination_account: str
    amount: int
    currency: str
    status: str  # held | paid | failed | canceled | reversed
    stripe_transfer_id: str | None
    available_at: datetime
    attempts: int
    last_error: str | None
    source_charge_id: str | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Transfer:
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            payment_id=row["payment_id"],
            destination_account=row["destination_account"],
            amount=row["amount"],
            currency=row["currency"],
            status=row["status"],
            stripe_transfer_id=row["stripe_transfer_id"],
            available_at=row["available_at"],
            attempts=row["attempts"],
            last_error=row["last_error"],
            source_charge_id=row["source_charge_id"],
        )


@dataclass(frozen=True, slots=True)
class DueTransfer:
    """A held transfer whose time has come, with the PaymentIntent of its payment (whose
    charge it draws on)."""

    transfer: Transfer
    stripe_intent_id: str | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> DueTransfer:
        return cls(transfer=Transfer.from_row(row), stripe_intent_id=row["stripe_intent_id"])


@dataclass(frozen=True, slots=True)
class PayoutScheduleRecord:
    """The payout schedule last pushed to an account for an organization's version, and
    Stripe's answer (`error_*` set when it refused)."""

    account_id: str
    org_id: str
    org_version: int
    schedule: dict[str, Any]
    status: Literal["applied", "refused"]
    error_code: str | None
    error_message: str | None
    updated_at: datetime | None = None  # set by the database on each write

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> PayoutScheduleRecord:
        return cls(
            account_id=row["account_id"],
            org_id=row["org_id"],
            org_version=row["org_version"],
            schedule=row["schedule"],
            status=row["status"],
            error_code=row["error_code"],
            error_message=row["error_message"],
            updated_at=row["updated_at"],
        )


async def account_state(session: AsyncSession, account_id: str) -> AccountState | None:
    """charges_enabled and payouts_enabled as the last `account.updated` said; None if
    never reported."""
    q = select(connected_accounts.c.charges_enabled, connected_accounts.c.payouts_enabled)
    row = (await session.execute(q.where(connected_accounts.c.id == account_id))).mappings()
    found = row.first()
    return AccountState.from_row(found) if found else None


async def account_charges_enabled(session: AsyncSession, account_id: str) -> bool | None:
    q = select(connected_accounts.c.charges_enabled).where(connected_accounts.c.id == account_id)
    return (await session.execute(q)).scalar()


async def record_account(
    session: AsyncSession, account_id: str, charges: bool, payouts: bool, at: datetime
) -> None:
    """Keeps the newest state by Stripe's time: a stale `account.updated` changes nothing."""
    stmt = insert(connected_accounts).values(
        id=account_id, charges_enabled=charges, payouts_enabled=payouts, stripe_updated_at=at
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[connected_accounts.c.id],
        set_={
            "charges_enabled": stmt.excluded.charges_enabled,
            "payouts_enabled": stmt.excluded.payouts_enabled,
            "stripe_updated_at": stmt.excluded.stripe_updated_at,
        },
        where=connected_accounts.c.stripe_updated_at <= stmt.excluded.stripe_updated_at,
    )
    await session.execute(stmt)


# --- held transfers ---------------------------------------------------------------------


async def hold_transfer(session: AsyncSession, **values: Any) -> None:
    await session.execute(insert(transfers).values(**values).on_conflict_do_nothing())


async def due_transfers(
    session: AsyncSession, now: datetime, limit: int = 100
) -> list[DueTransfer]:
    """Held transfers whose account can now receive funds and whose time has come."""
    q = (
        select(transfers, payments.c.stripe_intent_id)
        .join(payments, payments.c.id == transfers.c.payment_id)
        .where(
            transfers.c.status == "held",
            transfers.c.available_at <= now,
            exists().where(
                and_(
                    connected_accounts.c.id == transfers.c.destination_account,
                    connected_accounts.c.charges_enabled.is_(True),
                    connected_accounts.c.payouts_enabled.is_(True),
                )
            ),
        )
        .order_by(transfers.c.available_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=transfers)
    )
    return [DueTransfer.from_row(row) for row in (await session.execute(q)).mappings()]


async def mark_transfer(
    session: AsyncSession,
    transfer_id: str,
    status: str,
    stripe_transfer_id: str | None,
    *,
    source_charge_id: str | None = None,
    error: str | None = None,
) -> None:
    values: dict[str, Any] = {
        "status": status,
        "stripe_transfer_id": stripe_transfer_id,
        "updated_at": func.now(),
        "attempts": transfers.c.attempts + 1,
        "last_error": error,
    }
    if source_charge_id:
        values["source_charge_id"] = source_charge_id
    await session.execute(update(transfers).where(transfers.c.id == transfer_id).values(values))


async def retry_transfer_later(
    session: AsyncSession,
    transfer_id: str,
    at: datetime,
    error: str,
    *,
    source_charge_id: str | None = None,
) -> None:
    """Still held: Stripe cannot make it yet (funds pending, Stripe down); tried at `at`."""
    values: dict[str, Any] = {
        "available_at": at,
        "attempts": transfers.c.attempts + 1,
        "last_error": error,
        "updated_at": func.now(),
    }
    if source_charge_id:
        values["source_charge_id"] = source_charge_id
    await session.execute(
        update(transfers)
        .where(transfers.c.id == transfer_id, transfers.c.status == "held")
        .values(values)
    )


async def get_transfer_of_payment(session: AsyncSession, payment_id: str) -> Transfer | None:
    q = select(transfers).where(transfers.c.payment_id == payment_id)
    found = (await session.execute(q)).mappings().first()
    return Transfer.from_row(found) if found else None


# --- payout schedules -------------------------------------------------------------------


async def payout_schedule_of(
    session: AsyncSession, account_id: str, *, lock: bool = True
) -> PayoutScheduleRecord | None:
    """The account's row; locked by default: two events of one organization never push at
    once (a merchant's read takes no lock)."""
    q = select(payout_schedules).where(payout_schedules.c.account_id == account_id)
    if lock:
        q = q.with_for_update()
    found = (await session.execute(q)).mappings().first()
    return PayoutScheduleRecord.from_row(found) if found else None


async def record_payout_schedule(session: AsyncSession, record: PayoutScheduleRecord) -> None:
    """Upsert by account (`updated_at` is set now, whatever `record` says)."""
    values = {
        "account_id": record.account_id,
        "org_id": record.org_id,
        "org_version": record.org_version,
        "schedule": record.schedule,
        "status": record.status,
        "error_code": record.error_code,
        "error_message": record.error_message,
    }
    stmt = insert(payout_schedules).values(**values, updated_at=func.now())
    stmt = stmt.on_conflict_do_update(
        index_elements=[payout_schedules.c.account_id],
        set_={k: stmt.excluded[k] for k in (*values.keys(), "updated_at") if k != "account_id"},
    )
    await session.execute(stmt)
