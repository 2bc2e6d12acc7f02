"""SQL of a checkout's fulfilment (checkout.completed.v1, the hot path of a paid
checkout): two statements on the session's own driver connection, inside the consumer's
transaction: the claim of the checkout (with what the decision needs to know), then
everything the fulfilment writes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, Table, bindparam, exists, select, update
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import BindParameter

from bos_common.outbox import array_params, insert_arrays, notify
from subscriptions.models import (
    LIVE_STATUSES,
    invoice_attempts,
    invoices,
    notifications,
    outbox,
    subscription_checkouts,
    subscriptions,
)
from subscriptions.repository.base import driver_connection, json_value, pg_type
from subscriptions.repository.invoice import allocate_numbers, invoice_number_sql, invoice_prefix
from subscriptions.rows import Invoice, Row, Subscription

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
    driver = await driver_connection(session)
    row = await driver.fetchrow(
        _CLAIM_CHECKOUT_SQL, checkout_id, org_id, customer_id, product_id, list(LIVE_STATUSES)
    )
    return bool(row["claimed"]), bool(row["live"]), bool(row["has_free"])


# One statement per shape of the rows it writes (the columns the fulfilment fills, with or
# without an invoice, with or without a notification), built with SQLAlchemy Core and
# compiled once for the driver: compiling per call would cost more CPU than the statement.
_Shape = tuple[
    tuple[str, ...], tuple[str, ...] | None, tuple[str, ...] | None, tuple[str, ...] | None
]
_COMPILED: dict[_Shape, tuple[str, list[str], dict[str, Any]]] = {}
_DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call, unused-ignore]


def _binds(table: Table, prefix: str, columns: tuple[str, ...]) -> list[BindParameter[Any]]:
    return [bindparam(f"{prefix}{c}", type_=table.c[c].type) for c in columns]


def _fulfilment_statement(shape: _Shape) -> Any:
    sub_cols, inv_cols, att_cols, note_cols = shape
    sub_id = bindparam("s_id", type_=subscriptions.c.id.type)
    ctes = [
        insert(subscriptions)
        .values(dict(zip(sub_cols, _binds(subscriptions, "s_", sub_cols), strict=True)))
        .returning(subscriptions.c.id)
        .cte("s"),
        update(subscription_checkouts)
        .where(subscription_checkouts.c.checkout_id == bindparam("checkout_id"))
        .values(subscription_id=sub_id, outcome=bindparam("outcome"))
        .returning(subscription_checkouts.c.checkout_id)
        .cte("l"),
    ]
    events = insert_arrays(outbox, "e_").returning(outbox.c.id).cte("e")
    if inv_cols is not None and att_cols is not None:
        seq = allocate_numbers(bindparam("i_org_id"), 1).cte("seq")
        number = invoice_number_sql(bindparam("number_prefix", type_=String), seq.c.last_number)
        inv = (
            insert(invoices)
            .from_select(
                [*inv_cols, "number"],
                select(*_binds(invoices, "i_", inv_cols), number).select_from(seq),
            )
            .returning(invoices.c.id)
            .cte("i")
        )
        att = (
            insert(invoice_attempts)
            .from_select(
                list(att_cols),
                select(*_binds(invoice_attempts, "a_", att_cols)).where(exists(select(inv.c.id))),
            )
            .on_conflict_do_nothing()
            .returning(invoice_attempts.c.invoice_id)
            .cte("a")
        )
        ctes += [seq, inv, att]
    if note_cols is not None:
        ctes.append(
            insert(notifications)
            .values(dict(zip(note_cols, _binds(notifications, "n_", note_cols), strict=True)))
            .on_conflict_do_nothing(index_elements=[notifications.c.dedupe_key])
            .returning(notifications.c.id)
            .cte("n")
        )
    # The relay's wake-up, once the events are written.
    return notify(outbox).where(exists(select(events.c.id))).add_cte(*ctes)


def _compiled(shape: _Shape) -> tuple[str, list[str], dict[str, Any]]:
    """The statement of `shape` for the driver: its SQL, the names of its positional
    parameters and the values of those the statement binds itself."""
    found = _COMPILED.get(shape)
    if found is None:
        compiled = _fulfilment_statement(shape).compile(dialect=_DIALECT)
        assert compiled.positiontup is not None
        found = (compiled.string, list(compiled.positiontup), dict(compiled.params))
        _COMPILED[shape] = found
    return found


def _params(table: Table, prefix: str, row: Row) -> dict[str, Any]:
    """`row`'s values as the parameters `_binds(table, prefix, ...)` names (JSONB as JSON
    text, which the driver sends as is)."""
    return {
        f"{prefix}{name}": json_value(value) if pg_type(table.c[name]) == "jsonb" else value
        for name, value in row.items()
    }


async def record_fulfilment(
    session: AsyncSession,
    *,
    sub: Subscription,
    checkout_id: str,
    outcome: str,
    events: list[dict[str, Any]],
    invoice: Invoice | None,
    attempt: Row | None,
    notification: Row | None = None,
) -> None:
    """In one statement: the new subscription, the checkout's outcome, the events
    (`bos_common.outbox.outbox_row`, with the relay's wake-up), the paid invoice of the
    checkout, numbered (`allocate_numbers`, `invoice_number_sql`), with its succeeded
    attempt, and the customer's confirmation e-mail (once per dedupe key, as
    `enqueue_notifications` writes it). `invoice` has no "number"; `attempt` goes with
    `invoice`."""
    sub_values = sub.values()
    params: dict[str, Any] = {
        **_params(subscriptions, "s_", sub_values),
        "checkout_id": checkout_id,
        "outcome": outcome,
        **array_params(events, "e_"),
    }
    inv_cols = att_cols = None
    if invoice is not None:
        assert attempt is not None
        inv_values = invoice.values()
        del inv_values["number"]  # the statement numbers it
        inv_cols, att_cols = tuple(inv_values), tuple(attempt)
        params |= _params(invoices, "i_", inv_values) | _params(invoice_attempts, "a_", attempt)
        params["number_prefix"] = invoice_prefix(invoice.org_id)
    note_cols = None
    if notification is not None:
        note_cols = tuple(notification)
        params |= _params(notifications, "n_", notification)
    sql, names, defaults = _compiled((tuple(sub_values), inv_cols, att_cols, note_cols))
    values = defaults | params
    conn = await driver_connection(session)
    await conn.execute(sql, *(values[name] for name in names))
