"""All SQL of merchant webhooks. Takes a session, never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.pagination import newest_first_page
from webhooks.endpoints.models import webhook_deliveries, webhook_endpoints, webhook_events
from webhooks.endpoints.rows import (
    ClaimedDelivery,
    Delivery,
    DisabledNotice,
    Endpoint,
    NewDelivery,
    NewEvent,
    SubscribedEndpoint,
)

_ENDPOINT_COLUMNS = [c for c in webhook_endpoints.c if c.name not in ("secret", "previous_secret")]


# --- endpoints ---------------------------------------------------------------------------


async def insert_endpoint(
    session: AsyncSession,
    *,
    id: str,
    org_id: str,
    url: str,
    event_types: list[str],
    description: str | None,
    secret: str,
) -> Endpoint:
    result = await session.execute(
        insert(webhook_endpoints)
        .values(
            id=id,
            org_id=org_id,
            url=url,
            event_types=event_types,
            description=description,
            secret=secret,
        )
        .returning(*_ENDPOINT_COLUMNS)
    )
    return Endpoint.from_row(result.mappings().one())


async def get_endpoint(session: AsyncSession, org_id: str, endpoint_id: str) -> Endpoint | None:
    result = await session.execute(
        select(*_ENDPOINT_COLUMNS).where(
            webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.org_id == org_id
        )
    )
    row = result.mappings().first()
    return Endpoint.from_row(row) if row else None


async def list_endpoints(
    session: AsyncSession, org_id: str, limit: int, starting_after: str | None
) -> tuple[list[Endpoint], bool]:
    stmt = select(*_ENDPOINT_COLUMNS).where(webhook_endpoints.c.org_id == org_id)
    rows, more = await newest_first_page(
        session, webhook_endpoints, stmt, org_id, limit, starting_after
    )
    return [Endpoint.from_row(r) for r in rows], more


async def update_endpoint(
    session: AsyncSession, org_id: str, endpoint_id: str, values: dict[str, Any]
) -> Endpoint | None:
    """`values`: the columns to change (values or SQL expressions)."""
    result = await session.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.org_id == org_id)
        .values(**values, updated_at=func.now())
        .returning(*_ENDPOINT_COLUMNS)
    )
    row = result.mappings().first()
    return Endpoint.from_row(row) if row else None


async def delete_endpoint(session: AsyncSession, org_id: str, endpoint_id: str) -> bool:
    result = await session.execute(
        delete(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.org_id == org_id)
        .returning(webhook_endpoints.c.id)
    )
    return result.first() is not None


async def subscribed_endpoints(
    session: AsyncSession, org_ids: Sequence[str]
) -> list[SubscribedEndpoint]:
    """The enabled endpoints of these organizations, with what they subscribe to."""
    result = await session.execute(
        select(
            webhook_endpoints.c.id, webhook_endpoints.c.org_id, webhook_endpoints.c.event_types
        ).where(
            webhook_endpoints.c.org_id.in_(list(org_ids)),
            webhook_endpoints.c.status == "enabled",
        )
    )
    return [SubscribedEndpoint.from_row(r) for r in result.mappings()]


# --- events and deliveries ----------------------------------------------------------------


async def insert_events(session: AsyncSession, events: Sequence[NewEvent]) -> None:
    if events:
        await session.execute(insert(webhook_events), [e.values() for e in events])


async def insert_deliveries(session: AsyncSession, deliveries: Sequence[NewDelivery]) -> None:
    if deliveries:
        await session.execute(insert(webhook_deliveries), [d.values() for d in deliveries])


_DELIVERY_COLUMNS = [*webhook_deliveries.c]


async def list_deliveries(
    session: AsyncSession, org_id: str, endpoint_id: str, limit: int, starting_after: str | None
) -> tuple[list[Delivery], bool]:
    stmt = select(*_DELIVERY_COLUMNS).where(
        webhook_deliveries.c.org_id == org_id, webhook_deliveries.c.endpoint_id == endpoint_id
    )
    rows, more = await newest_first_page(
        session, webhook_deliveries, stmt, org_id, limit, starting_after
    )
    return [Delivery.from_row(r) for r in rows], more


async def retry_delivery(session: AsyncSession, org_id: str, delivery_id: str) -> Delivery | None:
    """Due now, whatever its state (its attempts keep counting)."""
    result = await session.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery_id, webhook_deliveries.c.org_id == org_id)
        .values(status="pending", next_attempt_at=func.now())
        .returning(*_DELIVERY_COLUMNS)
    )
    row = result.mappings().first()
    return Delivery.from_row(row) if row else None


# Claiming is two statements in one transaction. The first locks the enabled endpoints
# that have due deliveries and room (fewer than `per_endpoint` in flight, whichever
# replica sent them), skipping those another replica is claiming for and those already
# at their limit in this process (`busy`). The second, with a snapshot taken once those
# locks are held (so it sees every lease committed before), counts each locked endpoint's
# deliveries in flight and leases at most its room of due ones, oldest first, `limit` in
# all: `leased_until` marks them in flight and `next_attempt_at` moves past the attempt's
# timeout, so a crashed attempt is due again when its lease ends.
_LOCK_ENDPOINTS = text(
    """
    WITH full_endpoints AS (
        SELECT endpoint_id FROM webhook_deliveries
        WHERE leased_until > now() AND status = 'pending'
        GROUP BY endpoint_id HAVING count(*) >= :per_endpoint
    ), due AS (
        SELECT d.endpoint_id
        FROM webhook_deliveries d
        JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.status = 'enabled'
        WHERE d.status = 'pending' AND d.next_attempt_at <= now()
          AND d.endpoint_id <> ALL(CAST(:busy AS text[]))
          AND d.endpoint_id NOT IN (SELECT endpoint_id FROM full_endpoints)
        ORDER BY d.next_attempt_at
        LIMIT :scan
    )
    SELECT e.id FROM webhook_endpoints e
    WHERE e.status = 'enabled' AND e.id IN (SELECT endpoint_id FROM due)
    ORDER BY e.id
    FOR NO KEY UPDATE OF e SKIP LOCKED
    """
)

_CLAIM = text(
    """
    WITH room AS (
        SELECT e.id, :per_endpoint - (
            SELECT count(*) FROM webhook_deliveries f
            WHERE f.endpoint_id = e.id AND f.leased_until > now() AND f.status = 'pending'
        ) AS free
        FROM unnest(CAST(:endpoints AS text[])) AS e(id)
    ), picked AS (
        SELECT p.id, p.next_attempt_at
        FROM room CROSS JOIN LATERAL (
            SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
            WHERE d.endpoint_id = room.id AND d.status = 'pending'
              AND d.next_attempt_at <= now()
            ORDER BY d.next_attempt_at
            LIMIT greatest(room.free, 0)
        ) p
        ORDER BY p.next_attempt_at
        LIMIT :limit
    ), leased AS (
        UPDATE webhook_deliveries d
        SET next_attempt_at = now() + make_interval(secs => :lease),
            leased_until = now() + make_interval(secs => :lease)
        FROM picked
        WHERE d.id = picked.id AND d.status = 'pending' AND d.next_attempt_at <= now()
        RETURNING d.id, d.endpoint_id, d.event_id, d.attempts, d.org_id
    )
    SELECT l.id, l.endpoint_id, l.event_id, l.attempts, l.org_id,
           e.url, e.status AS endpoint_status, e.secret, e.previous_secret,
           e.previous_secret_expires_at, e.failing_since,
           ev.type, ev.payload, ev.data, ev.object_kind, ev.object_id, ev.created_at
    FROM leased l
    JOIN webhook_endpoints e ON e.id = l.endpoint_id
    JOIN webhook_events ev ON ev.id = l.event_id
    ORDER BY l.id
    """
)


async def claim_due(
    session: AsyncSession, *, limit: int, per_endpoint: int, busy: Sequence[str], lease: float
) -> list[ClaimedDelivery]:
    """At most `limit` due deliveries, at most `per_endpoint` in flight per endpoint across
    replicas, leased for `lease` seconds (see above)."""
    endpoints = list(
        (
            await session.execute(
                _LOCK_ENDPOINTS,
                {"busy": list(busy), "scan": limit * 4, "per_endpoint": per_endpoint},
            )
        ).scalars()
    )
    if not endpoints:
        return []
    result = await session.execute(
        _CLAIM,
        {"endpoints": endpoints, "per_endpoint": per_endpoint, "lease": lease, "limit": limit},
    )
    return [ClaimedDelivery.from_row(r) for r in result.mappings()]


async def set_payload(session: AsyncSession, event_id: str, payload: str) -> str:
    """The event's body: `payload` if it had none yet, else the one stored first."""
    await session.execute(
        update(webhook_events)
        .where(webhook_events.c.id == event_id, webhook_events.c.payload.is_(None))
        .values(payload=payload)
    )
    stored = await session.scalar(
        select(webhook_events.c.payload).where(webhook_events.c.id == event_id)
    )
    return str(stored)


async def record_attempt(
    session: AsyncSession,
    delivery_id: str,
    *,
    status: str,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    next_attempt_at: datetime | None,
    delivered: bool,
) -> None:
    await session.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery_id)
        .values(
            status=status,
            attempts=webhook_deliveries.c.attempts + 1,
            last_status_code=status_code,
            last_error=error,
            last_duration_ms=duration_ms,
            next_attempt_at=next_attempt_at,
            leased_until=None,
            delivered_at=func.now() if delivered else webhook_deliveries.c.delivered_at,
        )
    )


async def endpoint_succeeded(session: AsyncSession, endpoint_id: str) -> None:
    await session.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.failing_since.isnot(None))
        .values(failing_since=None)
    )


async def endpoint_failed(session: AsyncSession, endpoint_id: str) -> datetime | None:
    """Since when the endpoint fails (set now if it was healthy)."""
    result = await session.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(failing_since=func.coalesce(webhook_endpoints.c.failing_since, func.now()))
        .returning(webhook_endpoints.c.failing_since)
    )
    return result.scalar()


async def disable_endpoint(session: AsyncSession, endpoint_id: str, reason: str) -> Endpoint | None:
    """The endpoint, disabled now; None when it was not enabled (already disabled)."""
    result = await session.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.status == "enabled")
        .values(
            status="disabled",
            disabled_reason=reason,
            disabled_at=func.now(),
            updated_at=func.now(),
            # The merchant is owed an e-mail about it from now on (notice.DisabledNotifier).
            disabled_notice_due_at=func.now(),
            disabled_notice_attempts=0,
        )
        .returning(*_ENDPOINT_COLUMNS)
    )
    row = result.mappings().first()
    return Endpoint.from_row(row) if row else None


async def claim_disabled_notices(
    session: AsyncSession, limit: int, lease: timedelta
) -> list[DisabledNotice]:
    """Endpoints still disabled whose notice is due, each leased to the caller: its due
    time pushed to the lease's end (another replica skips it meanwhile; locked rows are
    skipped too). The returned `disabled_notice_due_at` is the claim's token."""
    e = webhook_endpoints.c
    due = (
        select(e.id)
        .where(e.disabled_notice_due_at <= func.now(), e.status == "disabled")
        .order_by(e.disabled_notice_due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    result = await session.execute(
        update(webhook_endpoints)
        .where(e.id.in_(select(due.c.id)))
        .values(disabled_notice_due_at=func.now() + lease)
        .returning(*_ENDPOINT_COLUMNS)
    )
    return [DisabledNotice.from_row(r) for r in result.mappings()]


async def settle_disabled_notice(
    session: AsyncSession, endpoint_id: str, claimed: datetime, retry_in: timedelta | None
) -> bool:
    """After an attempt: nothing owed any more (`retry_in` None: sent, or given up) or due
    again after `retry_in`. Only under the caller's claim (the due time it was given): False
    when the claim was lost (its lease ended, or the endpoint was enabled meanwhile)."""
    e = webhook_endpoints.c
    result = await session.execute(
        update(webhook_endpoints)
        .where(e.id == endpoint_id, e.disabled_notice_due_at == claimed)
        .values(
            disabled_notice_due_at=None if retry_in is None else func.now() + retry_in,
            disabled_notice_attempts=e.disabled_notice_attempts + 1,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def backlog(session: AsyncSession) -> tuple[int, int, float]:
    """Pending deliveries of enabled endpoints never tried yet and waiting for a retry, and
    the age in seconds of the oldest never tried (how far the worker is behind)."""
    d = webhook_deliveries.c
    new = d.attempts == 0
    result = await session.execute(
        select(
            func.count().filter(new),
            func.count().filter(~new),
            func.coalesce(
                func.extract("epoch", func.now() - func.min(d.created_at).filter(new)), 0
            ),
        )
        .select_from(
            webhook_deliveries.join(webhook_endpoints, webhook_endpoints.c.id == d.endpoint_id)
        )
        .where(and_(d.status == "pending", webhook_endpoints.c.status == "enabled"))
    )
    fresh, retrying, age = result.one()
    return int(fresh), int(retrying), float(age)


async def endpoint_secret(session: AsyncSession, endpoint_id: str) -> str:
    return str(
        await session.scalar(
            select(webhook_endpoints.c.secret).where(webhook_endpoints.c.id == endpoint_id)
        )
    )


async def postpone(session: AsyncSession, delivery_id: str, seconds: float) -> None:
    """Due again in `seconds`, without counting an attempt."""
    await session.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery_id)
        .values(next_attempt_at=func.now() + timedelta(seconds=seconds), leased_until=None)
    )


# The successful attempts that finished together, in one statement: the deliveries and
# their endpoints' failure clocks (the common path, written by a group commit).
_RECORD_SUCCESSES = text(
    """
    WITH r AS (
        SELECT * FROM unnest(
            CAST(:ids AS text[]), CAST(:codes AS int[]), CAST(:durations AS int[])
        ) AS r(id, code, duration)
    ), d AS (
        UPDATE webhook_deliveries d
        SET status = 'succeeded', attempts = d.attempts + 1, last_status_code = r.code,
            last_error = NULL, last_duration_ms = r.duration, next_attempt_at = NULL,
            leased_until = NULL, delivered_at = now()
        FROM r WHERE d.id = r.id
        RETURNING d.endpoint_id
    )
    UPDATE webhook_endpoints e SET failing_since = NULL
    WHERE e.failing_since IS NOT NULL AND e.id IN (SELECT endpoint_id FROM d)
    """
)


async def record_successes(session: AsyncSession, rows: Sequence[tuple[str, int, int]]) -> None:
    """(delivery id, status code, duration in ms) of successful attempts."""
    await session.execute(
        _RECORD_SUCCESSES,
        {
            "ids": [r[0] for r in rows],
            "codes": [r[1] for r in rows],
            "durations": [r[2] for r in rows],
        },
    )
