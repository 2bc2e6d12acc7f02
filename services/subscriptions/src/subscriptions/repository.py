"""All SQL of the subscriptions service."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson
from sqlalchemy import or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.events import Envelope, Event
from bos_common.outbox import notify_channel, outbox_row
from bos_common.pagination import newest_first_page
from bos_common.telemetry import current_traceparent
from subscriptions.models import (
    LIVE_STATUSES,
    invoice_attempts,
    invoice_sequences,
    invoices,
    notifications,
    organizations,
    outbox,
    subscription_checkouts,
    subscriptions,
    trial_history,
)

Row = dict[str, Any]


def _one(result: Any) -> Row | None:
    row = result.first()
    return dict(row._mapping) if row is not None else None


def _all(result: Any) -> list[Row]:
    return [dict(r._mapping) for r in result.all()]


# --- outbox (batched) -------------------------------------------------------------------


async def publish_many(
    session: AsyncSession, producer: str, events: Sequence[tuple[Event, str | None]]
) -> None:
    """Write many events to the outbox in one statement (the scheduler issues thousands of
    invoices per transaction; one NOTIFY wakes the relay on commit)."""
    if not events:
        return
    traceparent = current_traceparent()
    rows = []
    for event, org_id in events:
        env = Envelope.wrap(event, producer=producer, org_id=org_id, traceparent=traceparent)
        rows.append(
            {
                "event_id": env.event_id,
                "event_type": env.event_type,
                "org_id": org_id,
                "envelope": env.model_dump(mode="json"),
            }
        )
    await session.execute(insert(outbox), rows)
    await session.execute(
        text("SELECT pg_notify(:c, '')"), {"c": notify_channel(outbox.schema or "public")}
    )


# --- subscriptions ------------------------------------------------------------------------


async def get_subscription(
    session: AsyncSession,
    sub_id: str,
    *,
    org_id: str | None = None,
    customer_id: str | None = None,
    lock: bool = False,
) -> Row | None:
    stmt = select(subscriptions).where(subscriptions.c.id == sub_id)
    if org_id is not None:
        stmt = stmt.where(subscriptions.c.org_id == org_id)
    if customer_id is not None:
        stmt = stmt.where(subscriptions.c.customer_id == customer_id)
    if lock:
        stmt = stmt.with_for_update()
    return _one(await session.execute(stmt))


async def update_subscription(session: AsyncSession, sub_id: str, values: Row) -> None:
    if values:
        await session.execute(
            update(subscriptions).where(subscriptions.c.id == sub_id).values(**values)
        )


async def live_subscription(
    session: AsyncSession, org_id: str, customer_id: str, product_id: str, *, lock: bool = False
) -> Row | None:
    stmt = select(subscriptions).where(
        subscriptions.c.org_id == org_id,
        subscriptions.c.customer_id == customer_id,
        subscriptions.c.product_id == product_id,
        subscriptions.c.status.in_(LIVE_STATUSES),
    )
    if lock:
        stmt = stmt.with_for_update()
    return _one(await session.execute(stmt))


async def last_canceled_free(
    session: AsyncSession, org_id: str, customer_id: str, product_id: str
) -> Row | None:
    stmt = (
        select(subscriptions)
        .where(
            subscriptions.c.org_id == org_id,
            subscriptions.c.customer_id == customer_id,
            subscriptions.c.product_id == product_id,
            subscriptions.c.status == "canceled",
            subscriptions.c.is_free.is_(True),
        )
        .order_by(subscriptions.c.ended_at.desc().nulls_last())
        .limit(1)
        .with_for_update()
    )
    return _one(await session.execute(stmt))


async def live_free_subscriptions(
    session: AsyncSession, org_id: str, customer_id: str, *, except_id: str
) -> list[Row]:
    stmt = (
        select(subscriptions)
        .where(
            subscriptions.c.org_id == org_id,
            subscriptions.c.customer_id == customer_id,
            subscriptions.c.is_free.is_(True),
            subscriptions.c.status.in_(LIVE_STATUSES),
            subscriptions.c.id != except_id,
        )
        .order_by(subscriptions.c.id)
        .with_for_update()
    )
    return _all(await session.execute(stmt))


async def customer_subscriptions(
    session: AsyncSession,
    org_id: str,
    customer_id: str,
    *,
    statuses: Iterable[str] | None = None,
    lock: bool = False,
) -> list[Row]:
    stmt = select(subscriptions).where(
        subscriptions.c.org_id == org_id, subscriptions.c.customer_id == customer_id
    )
    if statuses is not None:
        stmt = stmt.where(subscriptions.c.status.in_(list(statuses)))
    stmt = stmt.order_by(subscriptions.c.created_at.desc(), subscriptions.c.id.desc())
    if lock:
        stmt = stmt.with_for_update()
    return _all(await session.execute(stmt))


async def subscriptions_of_customer_any_org(
    session: AsyncSession, customer_id: str, *, lock: bool = False
) -> list[Row]:
    stmt = select(subscriptions).where(subscriptions.c.customer_id == customer_id)
    if lock:
        stmt = stmt.with_for_update()
    return _all(await session.execute(stmt))


async def list_subscriptions(
    session: AsyncSession,
    org_id: str,
    *,
    customer_id: str | None,
    external_user_id: str | None,
    status: str | None,
    limit: int,
    starting_after: str | None,
) -> tuple[list[Row], bool]:
    stmt = select(subscriptions).where(subscriptions.c.org_id == org_id)
    if customer_id:
        stmt = stmt.where(subscriptions.c.customer_id == customer_id)
    if external_user_id:
        stmt = stmt.where(subscriptions.c.external_user_id == external_user_id)
    if status:
        stmt = stmt.where(subscriptions.c.status == status)
    return await newest_first_page(session, subscriptions, stmt, org_id, limit, starting_after)


# The entitlements read is the hottest query (p95 < 10 ms through the gateway): plain SQL
# on the asyncpg connection, which prepares each statement once per connection and reuses
# it. Through SQLAlchemy Core every request paid more CPU than the query itself: the
# expanding `status IN (...)` is re-rendered per execution, plus the cache key, the
# autobegin and the row mapping (py-spy: ~60% of the request's own time).
_ENTITLED = (
    "SELECT id, product_id, status, features, current_period_end, cancel_at_period_end, "
    "past_due_since FROM {table} WHERE org_id = $1 AND {where} "
    "AND status IN ('trialing', 'active', 'past_due')"
)
_TABLE = f"{subscriptions.schema}.{subscriptions.name}"
_ENTITLED_BY = {
    (True, False): _ENTITLED.format(table=_TABLE, where="customer_id = $2"),
    (False, True): _ENTITLED.format(table=_TABLE, where="external_user_id = $2"),
    (True, True): _ENTITLED.format(
        table=_TABLE, where="customer_id = $2 AND external_user_id = $3"
    ),
}


async def entitled_subscriptions(
    conn: asyncpg.Connection,
    org_id: str,
    *,
    customer_id: str | None,
    external_user_id: str | None,
) -> list[Row]:
    """The customer's subscriptions that may grant features (trialing, active, past_due);
    `conn` is the driver connection (`AsyncConnection.get_raw_connection()`)."""
    sql = _ENTITLED_BY[(bool(customer_id), bool(external_user_id))]
    args = [a for a in (customer_id, external_user_id) if a]
    rows = []
    for record in await conn.fetch(sql, org_id, *args):
        row = dict(record)
        if isinstance(row["features"], str | bytes):  # no jsonb codec on this connection
            row["features"] = orjson.loads(row["features"])
        rows.append(row)
    return rows


async def set_checkout_subscription(
    session: AsyncSession, checkout_id: str, subscription_id: str, outcome: str
) -> None:
    await session.execute(
        update(subscription_checkouts)
        .where(subscription_checkouts.c.checkout_id == checkout_id)
        .values(subscription_id=subscription_id, outcome=outcome)
    )


# --- trials ---------------------------------------------------------------------------


async def trial_used(
    session: AsyncSession,
    org_id: str,
    product_id: str,
    *,
    customer_id: str | None,
    email: str | None,
    card_fingerprint: str | None,
) -> str | None:
    """Why this customer cannot have another trial of the product (None: eligible)."""
    checks = []
    if customer_id:
        checks.append(("customer", trial_history.c.customer_id == customer_id))
    if email:
        checks.append(("email", trial_history.c.email == email.strip().lower()))
    if card_fingerprint:
        checks.append(("card", trial_history.c.card_fingerprint == card_fingerprint))
    if not checks:
        return None
    stmt = (
        select(trial_history.c.customer_id, trial_history.c.email, trial_history.c.card_fingerprint)
        .where(
            trial_history.c.org_id == org_id,
            trial_history.c.product_id == product_id,
            or_(*(c for _, c in checks)),
        )
        .limit(1)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    if customer_id and row.customer_id == customer_id:
        return "customer"
    if email and row.email == email.strip().lower():
        return "email"
    return "card"


async def insert_trial_history(session: AsyncSession, values: Row) -> None:
    await session.execute(insert(trial_history).values(**values))


# --- invoices ----------------------------------------------------------------------------


def invoice_prefix(org_id: str) -> str:
    return (org_id.removeprefix("org_")[:8].upper() or "INV") + "-"


def invoice_number(org_id: str, n: int) -> str:
    return f"{invoice_prefix(org_id)}{n:06d}"


async def allocate_invoice_numbers(session: AsyncSession, org_id: str, count: int) -> int:
    """Reserve `count` consecutive numbers for `org_id`; returns the first. The row lock
    is held to commit, so numbers are gap-free and strictly increasing per organization."""
    result = await session.execute(
        insert(invoice_sequences)
        .values(org_id=org_id, last_number=count)
        .on_conflict_do_update(
            index_elements=[invoice_sequences.c.org_id],
            set_={"last_number": invoice_sequences.c.last_number + count},
        )
        .returning(invoice_sequences.c.last_number)
    )
    last = int(result.scalar_one())
    return last - count + 1


async def insert_invoices(session: AsyncSession, rows: list[Row]) -> None:
    if rows:
        await session.execute(insert(invoices), rows)


async def get_invoice(
    session: AsyncSession,
    invoice_id: str,
    *,
    org_id: str | None = None,
    customer_id: str | None = None,
    lock: bool = False,
) -> Row | None:
    stmt = select(invoices).where(invoices.c.id == invoice_id)
    if org_id is not None:
        stmt = stmt.where(invoices.c.org_id == org_id)
    if customer_id is not None:
        stmt = stmt.where(invoices.c.customer_id == customer_id)
    if lock:
        stmt = stmt.with_for_update()
    return _one(await session.execute(stmt))


async def update_invoice(session: AsyncSession, invoice_id: str, values: Row) -> None:
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
) -> tuple[list[Row], bool]:
    stmt = select(invoices).where(invoices.c.org_id == org_id)
    if customer_id:
        stmt = stmt.where(invoices.c.customer_id == customer_id)
    if subscription_id:
        stmt = stmt.where(invoices.c.subscription_id == subscription_id)
    return await newest_first_page(session, invoices, stmt, org_id, limit, starting_after)


async def insert_attempt(session: AsyncSession, values: Row) -> None:
    await session.execute(insert(invoice_attempts).values(**values).on_conflict_do_nothing())


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
    rows = _all(await session.execute(stmt))
    return rows[:limit], len(rows) > limit


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
) -> list[Row]:
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
    rows = _all(await session.execute(stmt))
    return sorted(rows, key=lambda r: r["created_at"])


async def update_notification(
    session: AsyncSession, notification_id: uuid.UUID, values: Row
) -> None:
    await session.execute(
        update(notifications).where(notifications.c.id == notification_id).values(**values)
    )


# --- scheduler ---------------------------------------------------------------------------


async def claim_due(
    session: AsyncSession, now: datetime, limit: int
) -> list[tuple[Row, Row | None]]:
    """Due subscriptions (locked, skipping rows another replica holds) with their pending
    invoice."""
    due = (
        select(subscriptions.c.id)
        .where(subscriptions.c.next_action_at <= now)
        .order_by(subscriptions.c.next_action_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    # Everything the decisions need (not features and metadata: less JSON to decode).
    cols = [c for c in subscriptions.c if c.name not in ("features", "metadata")]
    subs = _all(
        await session.execute(select(*cols).where(subscriptions.c.id.in_(select(due.c.id))))
    )
    pending = [s["pending_invoice_id"] for s in subs if s.get("pending_invoice_id")]
    by_id: dict[str, Row] = {}
    if pending:
        for inv in _all(
            await session.execute(
                select(invoices).where(invoices.c.id.in_(pending)).with_for_update()
            )
        ):
            by_id[inv["id"]] = inv
    return [(s, by_id.get(s.get("pending_invoice_id") or "")) for s in subs]


async def live_subscriptions_page(
    session: AsyncSession, after: str | None, limit: int
) -> list[Row]:
    """Live subscriptions of every organization, by id (keyset pages)."""
    t = subscriptions
    stmt = (
        select(t.c.id, t.c.org_id, t.c.customer_id, t.c.product_id, t.c.updated_at)
        .where(t.c.status.in_(LIVE_STATUSES), t.c.id > (after or ""))
        .order_by(t.c.id)
        .limit(limit)
    )
    return [dict(r._mapping) for r in await session.execute(stmt)]


async def active_products(session: AsyncSession, org_id: str | None, customer_id: str) -> list[Row]:
    stmt = select(
        subscriptions.c.id,
        subscriptions.c.org_id,
        subscriptions.c.product_id,
        subscriptions.c.status,
        subscriptions.c.is_free,
    ).where(subscriptions.c.customer_id == customer_id, subscriptions.c.status.in_(LIVE_STATUSES))
    if org_id:
        stmt = stmt.where(subscriptions.c.org_id == org_id)
    return _all(await session.execute(stmt))


# --- bulk paths of the scheduler (COPY and one UPDATE per batch, on the session's own
# asyncpg connection, so still inside its transaction) ------------------------------------

_PG_TYPES = {
    "VARCHAR": "text",
    "TEXT": "text",
    "BOOLEAN": "boolean",
    "BIGINT": "bigint",
    "BIGINTEGER": "bigint",  # sqlalchemy.BigInteger
    "INTEGER": "integer",
    "JSONB": "jsonb",
    "UUID": "uuid",
}


def _pg_type(column: Any) -> str:
    name = type(column.type).__name__.upper()
    if name == "DATETIME":
        return "timestamptz"
    if name == "STRING":
        return "text"
    return _PG_TYPES.get(name, "text")


def _json(value: Any) -> Any:
    return None if value is None else orjson.dumps(value).decode()


async def _driver(session: AsyncSession) -> Any:
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def copy_rows(session: AsyncSession, table: Any, rows: list[Row]) -> None:
    """COPY rows into `table` (JSONB values as Python objects)."""
    if not rows:
        return
    columns = list(rows[0])
    json_cols = {c for c in columns if _pg_type(table.c[c]) == "jsonb"}
    records = [tuple(_json(r[c]) if c in json_cols else r[c] for c in columns) for r in rows]
    driver = await _driver(session)
    await driver.copy_records_to_table(
        table.name, schema_name=table.schema, columns=columns, records=records
    )


async def update_rows(session: AsyncSession, table: Any, rows: list[Row]) -> None:
    """One `UPDATE ... FROM unnest(...)` per set of changed columns (rows carry "id")."""
    groups: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:
        cols = tuple(sorted(k for k in row if k != "id"))
        if cols:
            groups.setdefault(cols, []).append(row)
    driver = await _driver(session) if groups else None
    for cols, group in groups.items():
        names = ("id", *cols)
        types = [_pg_type(table.c[c]) for c in names]
        sets = ", ".join(f'"{c}" = v."{c}"' for c in cols)
        args = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
        alias = ", ".join(f'"{c}"' for c in names)
        sql = (
            f'UPDATE "{table.schema}"."{table.name}" AS t SET {sets} '
            f"FROM unnest({args}) AS v({alias}) WHERE t.id = v.id"
        )
        arrays = [
            [(_json(r.get(c)) if types[i] == "jsonb" else r.get(c)) for r in group]
            for i, c in enumerate(names)
        ]
        assert driver is not None
        await driver.execute(sql, *arrays)


async def copy_events(
    session: AsyncSession, producer: str, events: Sequence[tuple[Event, str | None]]
) -> None:
    if not events:
        return
    rows = [outbox_row(event, producer=producer, org_id=org_id) for event, org_id in events]
    records = [(r["event_id"], r["event_type"], r["org_id"], r["envelope"]) for r in rows]
    driver = await _driver(session)
    await driver.copy_records_to_table(
        outbox.name,
        schema_name=outbox.schema,
        columns=["event_id", "event_type", "org_id", "envelope"],
        records=records,
    )
    await session.execute(
        text("SELECT pg_notify(:c, '')"), {"c": notify_channel(outbox.schema or "public")}
    )


# --- fulfilment of a checkout (checkout.completed.v1, the hot path of a paid checkout) ------
#
# Two statements on the session's own asyncpg connection (inside the consumer's
# transaction) instead of about ten ORM statements: SQLAlchemy's per-statement work and
# the round trips were most of the handler's CPU.

_CLAIM_CHECKOUT_SQL = f"""
WITH claim AS (
    INSERT INTO {subscription_checkouts.fullname} (checkout_id, org_id, outcome)
    VALUES ($1, $2, 'pending')
    ON CONFLICT DO NOTHING
    RETURNING checkout_id
), live AS (
    SELECT id FROM {subscriptions.fullname}
    WHERE org_id = $2 AND customer_id = $3 AND product_id = $4 AND status = ANY($5::text[])
      AND EXISTS (SELECT FROM claim)
    FOR UPDATE
)
SELECT EXISTS (SELECT FROM claim) AS claimed,
       EXISTS (SELECT FROM live) AS live,
       EXISTS (
           SELECT FROM {subscriptions.fullname}
           WHERE org_id = $2 AND customer_id = $3 AND is_free AND status = ANY($5::text[])
             AND EXISTS (SELECT FROM claim)
       ) AS has_free
"""


async def claim_checkout_and_look(
    session: AsyncSession, checkout_id: str, org_id: str, customer_id: str, product_id: str
) -> tuple[bool, bool, bool]:
    """Claim the checkout for fulfilment (once per checkout) and, if claimed, whether the
    customer already has a live subscription to the product (locked, as
    `live_subscription(lock=True)` does) and any live free one in the organization:
    (claimed, live, has_free)."""
    driver = await _driver(session)
    row = await driver.fetchrow(
        _CLAIM_CHECKOUT_SQL, checkout_id, org_id, customer_id, product_id, list(LIVE_STATUSES)
    )
    return bool(row["claimed"]), bool(row["live"]), bool(row["has_free"])


def _values(table: Any, row: Row, args: list[Any]) -> tuple[str, str]:
    """`(columns)` and `$n::type, ...` of `row` for `table`, its values appended to `args`
    (JSONB as JSON text)."""
    names, slots = [], []
    for name, value in row.items():
        pg = _pg_type(table.c[name])
        args.append(_json(value) if pg == "jsonb" else value)
        names.append(f'"{name}"')
        slots.append(f"${len(args)}::{pg}")
    return ", ".join(names), ", ".join(slots)


async def record_fulfilment(
    session: AsyncSession,
    *,
    sub: Row,
    checkout_id: str,
    outcome: str,
    events: list[dict[str, Any]],
    invoice: Row | None,
    attempt: Row | None,
) -> None:
    """In one statement: the new subscription, the checkout's outcome, the events
    (`bos_common.outbox.outbox_row`, with the relay's wake-up), and the paid invoice of
    the checkout, numbered (`allocate_invoice_numbers` + `invoice_number`), with its
    succeeded attempt. `invoice` has no "number"; `attempt` goes with `invoice`."""
    args: list[Any] = []
    cols, vals = _values(subscriptions, sub, args)
    if invoice is not None:
        invoice = {k: v for k, v in invoice.items() if k != "number"}
    parts = [f"s AS (INSERT INTO {subscriptions.fullname} ({cols}) VALUES ({vals}) RETURNING 1)"]
    args += [sub["id"], outcome, checkout_id]
    n = len(args)
    parts.append(
        f"l AS (UPDATE {subscription_checkouts.fullname} SET subscription_id = ${n - 2}, "
        f"outcome = ${n - 1} WHERE checkout_id = ${n} RETURNING 1)"
    )
    args += [
        [e["event_id"] for e in events],
        [e["event_type"] for e in events],
        [e["org_id"] for e in events],
        [e["envelope"] for e in events],
        notify_channel(outbox.schema or "public"),
    ]
    n = len(args)
    parts.append(
        f"e AS (INSERT INTO {outbox.fullname} (event_id, event_type, org_id, envelope) "
        f"SELECT * FROM unnest(${n - 4}::uuid[], ${n - 3}::text[], ${n - 2}::text[], "
        f"${n - 1}::jsonb[]) RETURNING 1)"
    )
    notify = f"SELECT pg_notify(${n}, '') WHERE EXISTS (SELECT FROM e)"
    if invoice is not None:
        assert attempt is not None
        args += [invoice["org_id"], invoice_prefix(invoice["org_id"])]
        org, prefix = len(args) - 1, len(args)
        parts.append(
            f"seq AS (INSERT INTO {invoice_sequences.fullname} AS q (org_id, last_number) "
            f"VALUES (${org}, 1) ON CONFLICT (org_id) DO UPDATE "
            f"SET last_number = q.last_number + 1 RETURNING last_number)"
        )
        # invoice_number(): at least six digits, zero-padded.
        number = (
            f"${prefix}::text || lpad(seq.last_number::text, "
            f"greatest(6, length(seq.last_number::text)), '0')"
        )
        cols, vals = _values(invoices, invoice, args)
        parts.append(
            f"i AS (INSERT INTO {invoices.fullname} ({cols}, number) "
            f"SELECT {vals}, {number} FROM seq RETURNING 1)"
        )
        cols, vals = _values(invoice_attempts, attempt, args)
        parts.append(
            f"a AS (INSERT INTO {invoice_attempts.fullname} ({cols}) "
            f"SELECT {vals} WHERE EXISTS (SELECT FROM i) ON CONFLICT DO NOTHING RETURNING 1)"
        )
    driver = await _driver(session)
    await driver.execute(f"WITH {', '.join(parts)} {notify}", *args)
