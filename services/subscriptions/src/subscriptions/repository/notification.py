"""SQL of the organizations projection (names on invoices and emails) and of notifications."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from subscriptions.models import (
    notifications,
    organizations,
)
from subscriptions.rows import Notification, Row

# --- organizations ------------------------------------------------------------------------


async def upsert_organization(
    session: AsyncSession, org_id: str, name: str, version: int, updated_at: datetime
) -> None:
    stmt = insert(organizations).values(
        org_id=org_id, name=name, version=version, updated_at=updated_at
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[organizations.c.org_id],
        set_={
            "name": stmt.excluded.name,
            "version": stmt.excluded.version,
            "updated_at": stmt.excluded.updated_at,
        },
        where=organizations.c.version < stmt.excluded.version,
    )
    await session.execute(stmt)


async def organization_name(session: AsyncSession, org_id: str) -> str | None:
    return (
        await session.execute(select(organizations.c.name).where(organizations.c.org_id == org_id))
    ).scalar()


# --- notifications -------------------------------------------------------------------------


async def enqueue_notifications(session: AsyncSession, rows: list[Row]) -> None:
    if rows:
        await session.execute(
            insert(notifications).on_conflict_do_nothing(
                index_elements=[notifications.c.dedupe_key]
            ),
            rows,
        )


async def claim_notifications(
    session: AsyncSession, now: datetime, limit: int, lease: timedelta
) -> list[Notification]:
    """Due notifications, each leased to the caller: not due again before `now + lease`
    (another replica skips them meanwhile; a sender killed mid-batch leaves the rest to be
    sent when the lease runs out)."""
    due = (
        select(notifications.c.id)
        .where(notifications.c.status == "pending", notifications.c.next_attempt_at <= now)
        .order_by(notifications.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    stmt = (
        update(notifications)
        .where(notifications.c.id.in_(select(due.c.id)))
        .values(next_attempt_at=now + lease)
        .returning(*notifications.c)
    )
    rows = [Notification.from_row(r) for r in (await session.execute(stmt)).mappings()]
    return sorted(rows, key=lambda r: r.created_at)


async def release_notifications(
    session: AsyncSession, ids: list[uuid.UUID], *, leased_until: datetime, due: datetime
) -> None:
    """Claimed notifications handed back unsent: due again at `due`. Only those still under
    the caller's lease (`leased_until`): one another sender claimed since is left alone."""
    await session.execute(
        update(notifications)
        .where(
            notifications.c.id.in_(ids),
            notifications.c.status == "pending",
            notifications.c.next_attempt_at == leased_until,
        )
        .values(next_attempt_at=due)
    )


async def record_notification_attempt(
    session: AsyncSession,
    notification_id: uuid.UUID,
    *,
    attempts: int,
    status: str,
    last_error: str | None,
    next_attempt_at: datetime | None = None,
    sent_at: datetime | None = None,
) -> None:
    """A send's outcome: `sent` (at `sent_at`), or `pending` again at `next_attempt_at`, or
    `failed` for good."""
    values: dict[str, object] = {"attempts": attempts, "status": status, "last_error": last_error}
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    if sent_at is not None:
        values["sent_at"] = sent_at
    await session.execute(
        update(notifications).where(notifications.c.id == notification_id).values(**values)
    )
