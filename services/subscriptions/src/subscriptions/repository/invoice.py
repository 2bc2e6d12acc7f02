"""SQL of invoices: numbering, invoices, payment attempts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Text, cast, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from bos_common.pagination import newest_first_page
from subscriptions.models import (
    invoice_attempts,
    invoice_sequences,
    invoices,
)
from subscriptions.repository.base import all_rows
from subscriptions.rows import Changes, Invoice, Row

# --- invoices ----------------------------------------------------------------------------


# Numbers are `<prefix><n>`, n at least NUMBER_DIGITS digits, zero-padded: in Python
# (`invoice_number`) and, for a statement that numbers its invoice itself, in SQL
# (`invoice_number_sql`); `allocate_numbers` is the counter both take numbers from.
NUMBER_DIGITS = 6


def invoice_prefix(org_id: str) -> str:
    return (org_id.removeprefix("org_")[:8].upper() or "INV") + "-"


def invoice_number(org_id: str, n: int) -> str:
    return f"{invoice_prefix(org_id)}{n:0{NUMBER_DIGITS}d}"


def invoice_number_sql(prefix: ColumnElement[str], n: ColumnElement[int]) -> ColumnElement[str]:
    """`invoice_number` as SQL: `prefix` is `invoice_prefix(org_id)`, `n` the number."""
    digits = cast(n, Text)
    return prefix.concat(func.lpad(digits, func.greatest(NUMBER_DIGITS, func.length(digits)), "0"))


def allocate_numbers(org_id: Any, count: Any) -> ReturningInsert[Any]:
    """The statement that reserves `count` consecutive numbers for `org_id` (values or
    bound parameters) and returns the last. The row lock is held to commit, so numbers
    are gap-free and strictly increasing per organization."""
    return (
        insert(invoice_sequences)
        .values(org_id=org_id, last_number=count)
        .on_conflict_do_update(
            index_elements=[invoice_sequences.c.org_id],
            set_={"last_number": invoice_sequences.c.last_number + count},
        )
        .returning(invoice_sequences.c.last_number)
    )


async def allocate_invoice_numbers(session: AsyncSession, org_id: str, count: int) -> int:
    """Reserve `count` consecutive numbers for `org_id`; returns the first."""
    last = int((await session.execute(allocate_numbers(org_id, count))).scalar_one())
    return last - count + 1


async def insert_invoices(session: AsyncSession, rows: list[Row]) -> None:
    """New invoices, as column values (`Invoice.values()`, numbered)."""
    if rows:
        await session.execute(insert(invoices), rows)


async def get_invoice(
    session: AsyncSession,
    invoice_id: str,
    *,
    org_id: str | None = None,
    customer_id: str | None = None,
    lock: bool = False,
) -> Invoice | None:
    stmt = select(invoices).where(invoices.c.id == invoice_id)
    if org_id is not None:
        stmt = stmt.where(invoices.c.org_id == org_id)
    if customer_id is not None:
        stmt = stmt.where(invoices.c.customer_id == customer_id)
    if lock:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).mappings().first()
    return Invoice.from_row(row) if row is not None else None


async def update_invoice(session: AsyncSession, invoice_id: str, values: Changes) -> None:
    if values:
        await session.execute(update(invoices).where(invoices.c.id == invoice_id).values(**values))


async def list_invoices(
    session: AsyncSession,
    org_id: str,
    *,
    customer_id: str | None,
    subscription_id: str | None,
    limit: int,
    starting_after: str | None,
) -> tuple[list[Invoice], bool]:
    stmt = select(invoices).where(invoices.c.org_id == org_id)
    if customer_id:
        stmt = stmt.where(invoices.c.customer_id == customer_id)
    if subscription_id:
        stmt = stmt.where(invoices.c.subscription_id == subscription_id)
    rows, more = await newest_first_page(session, invoices, stmt, org_id, limit, starting_after)
    return [Invoice.from_row(row) for row in rows], more


async def insert_attempts(session: AsyncSession, rows: list[Row]) -> None:
    """Payment attempts; one already recorded is left as it is."""
    if rows:
        await session.execute(insert(invoice_attempts).on_conflict_do_nothing(), rows)


async def list_payments(
    session: AsyncSession, org_id: str, customer_id: str, limit: int, starting_after: str | None
) -> tuple[list[Row], bool]:
    stmt = (
        select(invoice_attempts, invoices.c.number, invoices.c.subscription_id)
        .join(invoices, invoices.c.id == invoice_attempts.c.invoice_id)
        .where(invoice_attempts.c.org_id == org_id, invoice_attempts.c.customer_id == customer_id)
    )
    if starting_after:
        inv_id, _, attempt = starting_after.partition(":")
        cursor = (
            await session.execute(
                select(invoice_attempts.c.created_at).where(
                    invoice_attempts.c.invoice_id == inv_id,
                    invoice_attempts.c.attempt == int(attempt or 0),
                )
            )
        ).first()
        if cursor is None:
            return [], False
        stmt = stmt.where(invoice_attempts.c.created_at < cursor[0])
    stmt = stmt.order_by(invoice_attempts.c.created_at.desc()).limit(limit + 1)
    rows = all_rows(await session.execute(stmt))
    return rows[:limit], len(rows) > limit
