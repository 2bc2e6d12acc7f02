"""The SQL of checkout sessions and their payments (customers: customer_repository.py;
the subscription projection: projection_repository.py). Takes a connection (a session,
or a driver connection for a single statement); never opens one. Every status change is
a conditional UPDATE on the expected current status, so concurrent writers cannot both
win (losers get None)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, String, any_, bindparam, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.outbox import insert_sql, notify_channel, notify_sql
from checkout.models import checkout_sessions as cs
from checkout.models import outbox, payments, voided_invoices
from checkout.records import Checkout, ExpiredCheckout, PayingCustomer, Payment

# A pool connection at the driver level (an asyncpg Connection, from
# `Database.driver_connection()`): a hot path's single statement, atomic on its own.
Driver = Any


# --- checkout sessions ---------------------------------------------------------------


async def get_checkout_by_id(session: AsyncSession, checkout_id: str) -> Checkout | None:
    """For routes authorized by the checkout's own client secret and for consumers."""
    row = (await session.execute(select(cs).where(cs.c.id == checkout_id))).mappings().first()
    return None if row is None else Checkout.from_row(row)


async def checkout_status(session: AsyncSession, checkout_id: str) -> str | None:
    return (await session.execute(select(cs.c.status).where(cs.c.id == checkout_id))).scalar()


async def transition(
    session: AsyncSession,
    checkout_id: str,
    *,
    expected: tuple[str, ...],
    where: tuple[Any, ...] = (),
    **values: Any,
) -> Checkout | None:
    """Move a checkout from one of `expected` statuses; None when it was not in one."""
    stmt = (
        update(cs)
        .where(cs.c.id == checkout_id, cs.c.status.in_(expected), *where)
        .values(**values, updated_at=func.now())
        .returning(*cs.c)
    )
    row = (await session.execute(stmt)).mappings().first()
    return None if row is None else Checkout.from_row(row)


async def set_coupon(
    session: AsyncSession, checkout_id: str, coupon: dict[str, Any], discount: int, total: int
) -> Checkout | None:
    """Only an open checkout without a coupon takes one (7.8)."""
    return await transition(
        session,
        checkout_id,
        expected=("open",),
        # A JSONB column stores Python's None as JSON null, not SQL NULL: match both.
        where=(or_(cs.c.coupon.is_(None), func.jsonb_typeof(cs.c.coupon) == "null"),),
        coupon=coupon,
        amount_discount=discount,
        amount_total=total,
    )


async def expire_due(
    session: AsyncSession, now: datetime, limit: int = 500
) -> list[ExpiredCheckout]:
    due = (
        select(cs.c.id)
        .where(cs.c.status == "open", cs.c.expires_at <= now)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        update(cs)
        .where(cs.c.id.in_(due), cs.c.status == "open")
        .values(status="expired", updated_at=func.now())
        .returning(cs.c.id, cs.c.org_id, cs.c.coupon)
    )
    return [ExpiredCheckout.from_row(row) for row in (await session.execute(stmt)).mappings()]


# --- payments --------------------------------------------------------------------------


async def _payment(session: AsyncSession, stmt: Executable) -> Payment | None:
    row = (await session.execute(stmt)).mappings().first()
    return None if row is None else Payment.from_row(row)


async def _payments(session: AsyncSession, stmt: Executable) -> list[Payment]:
    return [Payment.from_row(row) for row in (await session.execute(stmt)).mappings()]


async def insert_payment(session: AsyncSession, **values: Any) -> Payment:
    stmt = insert(payments).values(**values).returning(*payments.c)
    return Payment.from_row((await session.execute(stmt)).mappings().one())


async def get_payment(session: AsyncSession, payment_id: str) -> Payment | None:
    return await _payment(session, select(payments).where(payments.c.id == payment_id))


async def get_payment_by_idempotency_key(session: AsyncSession, key: str) -> Payment | None:
    q = select(payments).where(payments.c.stripe_idempotency_key == key)
    return await _payment(session, q)


async def get_payments_of(
    session: AsyncSession, payment_ids: Sequence[str], intent_ids: Sequence[str]
) -> list[Payment]:
    """The payments with any of these ids or Stripe intent ids (one statement; arrays,
    not IN lists, so it is one prepared statement whatever the batch's size)."""
    ids = bindparam("payment_ids", list(payment_ids), type_=ARRAY(String))
    intents = bindparam("intent_ids", list(intent_ids), type_=ARRAY(String))
    q = select(payments).where(
        or_(payments.c.id == any_(ids), payments.c.stripe_intent_id == any_(intents))
    )
    return await _payments(session, q)


async def update_payment(
    session: AsyncSession, payment_id: str, *, expected: tuple[str, ...], **values: Any
) -> Payment | None:
    stmt = (
        update(payments)
        .where(payments.c.id == payment_id, payments.c.status.in_(expected))
        .values(**values, updated_at=func.now())
        .returning(*payments.c)
    )
    return await _payment(session, stmt)


async def latest_payment_of_checkout(session: AsyncSession, checkout_id: str) -> Payment | None:
    q = (
        select(payments)
        .where(payments.c.checkout_id == checkout_id)
        .order_by(payments.c.attempt.desc(), payments.c.created_at.desc())
        .limit(1)
    )
    return await _payment(session, q)


async def is_invoice_voided(session: AsyncSession, invoice_id: str) -> bool:
    q = select(exists().where(voided_invoices.c.invoice_id == invoice_id))
    return bool((await session.execute(q)).scalar())


async def void_invoice(session: AsyncSession, invoice_id: str) -> None:
    await session.execute(
        insert(voided_invoices).values(invoice_id=invoice_id).on_conflict_do_nothing()
    )


async def succeeded_payments_of_invoice(session: AsyncSession, invoice_id: str) -> list[Payment]:
    q = select(payments).where(
        payments.c.invoice_id == invoice_id, payments.c.status == "succeeded"
    )
    return await _payments(session, q)


# --- checkout creation: one statement ------------------------------------------------
#
# The customer upsert (one per org and email in any case; a later checkout updates the
# name and links the external user, 10.4), the "already subscribed" check (8.2) and the
# insert, in one round trip on the driver connection, outside any transaction (a single
# statement is atomic by itself). A customer who is already subscribed is left untouched.
#
# `subscribed` looks at the customer that existed before this statement: a customer
# created by it (or concurrently) cannot hold a subscription yet.

CREATE_CHECKOUT_SQL = """
WITH existing AS (
    SELECT id FROM checkout.customers WHERE org_id = $2 AND lower(email) = lower($3)
), subscribed AS (
    SELECT EXISTS (
        SELECT 1 FROM checkout.customer_subscriptions s JOIN existing e ON s.customer_id = e.id
        WHERE s.product_id = $7 AND s.live
    ) AS yes
), customer AS (
    INSERT INTO checkout.customers AS c (id, org_id, email, name, external_user_id)
    SELECT $1, $2, $3, $4, $5 WHERE NOT (SELECT yes FROM subscribed)
    ON CONFLICT (org_id, lower(email)) DO UPDATE SET
        name = coalesce(EXCLUDED.name, c.name),
        external_user_id = coalesce(EXCLUDED.external_user_id, c.external_user_id),
        updated_at = now()
    RETURNING c.id, c.name
), created AS (
    INSERT INTO checkout.checkout_sessions (
        id, org_id, client_secret_hash, price_id, product_id, price, currency,
        amount_subtotal, amount_discount, amount_total, setup_fee, is_free, trial_days,
        coupon, customer_id, customer_email, customer_name, external_user_id, metadata,
        success_url, expires_at
    )
    SELECT $6, $2, $8, $9, $7, $10::text::jsonb, $11, $12, $13, $14, $15, $16, $17,
           $21::text::jsonb, customer.id, $3, coalesce($4, customer.name), $5,
           $18::text::jsonb, $19, $20
    FROM customer
    RETURNING *
)
SELECT (SELECT yes FROM subscribed) AS subscribed, created.*
FROM (SELECT 1) AS one LEFT JOIN created ON true
"""


async def create_checkout(
    conn: Driver,
    *,
    customer_id: str,
    org_id: str,
    email: str,
    name: str | None,
    external_user_id: str | None,
    checkout_id: str,
    product_id: str,
    client_secret_hash: str,
    price_id: str,
    price_json: str,
    currency: str,
    amount_subtotal: int,
    amount_discount: int,
    amount_total: int,
    setup_fee: int,
    is_free: bool,
    trial_days: int,
    coupon_json: str | None,
    metadata_json: str,
    success_url: str | None,
    expires_at: datetime,
) -> tuple[bool, Checkout | None]:
    """(already subscribed, the checkout as written); no row written when subscribed."""
    row = await conn.fetchrow(
        CREATE_CHECKOUT_SQL,
        customer_id,
        org_id,
        email,
        name,
        external_user_id,
        checkout_id,
        product_id,
        client_secret_hash,
        price_id,
        price_json,
        currency,
        amount_subtotal,
        amount_discount,
        amount_total,
        setup_fee,
        is_free,
        trial_days,
        metadata_json,
        success_url,
        expires_at,
        coupon_json,
    )
    subscribed = bool(row["subscribed"])
    if row["id"] is None:
        return subscribed, None
    return subscribed, Checkout.from_row(row)


# What a coupon's evaluation needs before the checkout is written: whether the customer
# with this email holds the product (8.2, answered before the coupon) and whether one of
# their checkouts completed (a "new" customer, 7.6: as customer_has_paid_before).
BUYER_SQL = """
SELECT EXISTS (
           SELECT 1 FROM checkout.customer_subscriptions s
           WHERE s.customer_id = c.id AND s.product_id = $3 AND s.live
       ) AS subscribed,
       EXISTS (
           SELECT 1 FROM checkout.checkout_sessions k
           WHERE k.customer_id = c.id AND k.status IN ('processing', 'complete')
             AND k.completed_at IS NOT NULL
       ) AS paid_before
FROM checkout.customers c WHERE c.org_id = $1 AND lower(c.email) = lower($2)
"""


async def buyer(conn: Driver, org_id: str, email: str, product_id: str) -> tuple[bool, bool]:
    """(subscribed to the product, has paid before) of the customer with this email;
    (False, False) when there is none yet."""
    row = await conn.fetchrow(BUYER_SQL, org_id, email, product_id)
    return (False, False) if row is None else (row["subscribed"], row["paid_before"])


# --- confirm: one statement per phase ---------------------------------------------------
#
# Read, start and record are each one statement on the driver connection, atomic on its
# own; the guards are those of `transition`/`update_payment`, so every transition stays
# conditional and a statement that finds the state not as expected changes nothing.


GET_CHECKOUT_SQL = "SELECT * FROM checkout.checkout_sessions WHERE id = $1"


async def read_checkout(conn: Driver, checkout_id: str) -> Checkout | None:
    """The checkout (JSONB columns decoded) or None."""
    row = await conn.fetchrow(GET_CHECKOUT_SQL, checkout_id)
    return None if row is None else Checkout.from_row(row)


# open -> processing and the payment row that carries the Stripe idempotency key, in one
# statement. `updated_at = $2` makes the transition conditional on the checkout being
# the one the charge was planned from (every write to a checkout moves updated_at): a
# coupon applied meanwhile changes the amounts, and the caller plans again. The key is
# derived from the attempt this very UPDATE allocates.
START_PAYMENT_SQL = """
WITH started AS (
    UPDATE checkout.checkout_sessions
    SET status = 'processing', attempt = attempt + 1, last_error = NULL, updated_at = now()
    WHERE id = $1 AND status = 'open' AND updated_at = $2 AND expires_at > $3
    RETURNING id, org_id, customer_id, attempt
), payment AS (
    INSERT INTO checkout.payments (
        id, org_id, kind, checkout_id, customer_id, attempt, amount, currency, platform_fee,
        net_amount, destination_account, connect_mode, stripe_idempotency_key,
        payment_method_id, intent_traceparent
    )
    SELECT $4, org_id, $5, id, customer_id, attempt, $6, $7, $8, $9, $10, $11,
           left('bos-' || id || '-a' || attempt || '-' || $12::text, 255), $12::text, $13
    FROM started
    RETURNING *
)
SELECT p.*, c.id AS paying_customer_id, c.email AS customer_email,
       c.name AS customer_name, c.external_user_id AS customer_external_user_id,
       c.stripe_customer_id
FROM payment p LEFT JOIN checkout.customers c ON c.id = p.customer_id
"""


async def start_payment(
    conn: Driver,
    *,
    checkout_id: str,
    seen_updated_at: datetime,
    now: datetime,
    payment_id: str,
    kind: str,
    amount: int,
    currency: str,
    platform_fee: int,
    destination_account: str | None,
    connect_mode: str | None,
    payment_method_id: str,
    intent_traceparent: str | None,
) -> tuple[Payment, PayingCustomer] | None:
    """(the payment as written, with its attempt and Stripe idempotency key; its
    customer), or None when the checkout is no longer the open, unexpired one that was
    read (nothing written then)."""
    row = await conn.fetchrow(
        START_PAYMENT_SQL,
        checkout_id,
        seen_updated_at,
        now,
        payment_id,
        kind,
        amount,
        currency,
        platform_fee,
        amount - platform_fee,
        destination_account,
        connect_mode,
        payment_method_id,
        intent_traceparent,
    )
    if row is None:
        return None
    assert row["paying_customer_id"] is not None  # a checkout's customer is never deleted
    return Payment.from_row(row), PayingCustomer.from_row(row)


# Stripe's success and the fulfilment it causes, in one statement: the payment
# pending -> succeeded with Stripe's ids, the checkout's completion, the paying card as
# the customer's default (4.8) and `checkout.completed.v1` in the outbox (NOTIFY is
# delivered on commit, as add_event's). `locked` takes both rows FOR UPDATE and
# re-checks both guards on their latest versions, so either everything happens or
# nothing does (the caller then takes the general path, with the refund of a duplicate).
_COMPLETED_EVENT = "SELECT $8, $9, $10, $11::text::jsonb WHERE EXISTS (SELECT FROM fulfilled)"
RECORD_SUCCESS_SQL = f"""
WITH locked AS (
    SELECT c.id
    FROM checkout.checkout_sessions c JOIN checkout.payments p ON p.checkout_id = c.id
    WHERE p.id = $1 AND p.status = 'pending'
      AND c.id = $2 AND c.status = 'processing' AND c.completed_at IS NULL
    FOR UPDATE
), paid AS (
    UPDATE checkout.payments
    SET status = 'succeeded', error_code = NULL, error_message = NULL,
        stripe_intent_id = $3, payment_method_id = $4::text, card_fingerprint = $5::text,
        updated_at = now()
    WHERE id = $1 AND status = 'pending' AND EXISTS (SELECT FROM locked)
    RETURNING id
), fulfilled AS (
    UPDATE checkout.checkout_sessions
    SET completed_at = $6, payment_id = $1, last_error = NULL, updated_at = now()
    WHERE id = $2 AND EXISTS (SELECT FROM paid)
    RETURNING id
), saved AS (
    UPDATE checkout.customers
    SET default_payment_method_id = $4::text,
        card_fingerprint = coalesce($5::text, card_fingerprint),
        updated_at = now()
    WHERE id = $7 AND $4::text IS NOT NULL AND EXISTS (SELECT FROM fulfilled)
    RETURNING id
), event AS (
    {insert_sql(outbox, _COMPLETED_EVENT)}
    RETURNING 1
)
SELECT EXISTS (SELECT FROM event) AS done,
       ({notify_sql("$12")} WHERE EXISTS (SELECT FROM event)) AS woke
"""


async def record_success(
    conn: Driver,
    *,
    payment_id: str,
    checkout_id: str,
    customer_id: str,
    stripe_intent_id: str,
    payment_method_id: str | None,
    card_fingerprint: str | None,
    completed_at: datetime,
    event: dict[str, Any],
) -> bool:
    """True when the payment succeeded and fulfilled its checkout in this statement;
    False (nothing written) when either was not in the state confirm left it in.
    `event` is `bos_common.outbox.outbox_row(CheckoutCompletedV1...)`."""
    return bool(
        await conn.fetchval(
            RECORD_SUCCESS_SQL,
            payment_id,
            checkout_id,
            stripe_intent_id,
            payment_method_id,
            card_fingerprint,
            completed_at,
            customer_id,
            event["event_id"],
            event["event_type"],
            event["org_id"],
            event["envelope"],
            notify_channel(outbox.schema or "public"),
        )
    )
