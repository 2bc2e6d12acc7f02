"""All SQL of the checkout service. Every status change is a conditional UPDATE on the
expected current status, so concurrent writers cannot both win (losers get None)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Row, String, and_, any_, bindparam, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.db import Database
from bos_common.outbox import notify_channel
from checkout.models import checkout_sessions as cs
from checkout.models import (
    customer_subscriptions,
    customers,
    outbox,
    payments,
    projection_backfills,
    voided_invoices,
)

# --- customers ---------------------------------------------------------------------


async def upsert_customer(
    session: AsyncSession,
    *,
    customer_id: str,
    org_id: str,
    email: str,
    name: str | None,
    external_user_id: str | None,
) -> Row[Any]:
    """One row per (org, email in any case); a later checkout updates the name and links
    the external user, and concurrent writers end with the last write (10.4)."""
    stmt = insert(customers).values(
        id=customer_id, org_id=org_id, email=email, name=name, external_user_id=external_user_id
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[customers.c.org_id, func.lower(customers.c.email)],
        set_={
            "name": func.coalesce(stmt.excluded.name, customers.c.name),
            "external_user_id": func.coalesce(
                stmt.excluded.external_user_id, customers.c.external_user_id
            ),
            "updated_at": func.now(),
        },
    ).returning(*customers.c)
    return (await session.execute(stmt)).one()


async def get_customer(session: AsyncSession, org_id: str, customer_id: str) -> Row[Any] | None:
    q = select(customers).where(customers.c.id == customer_id, customers.c.org_id == org_id)
    return (await session.execute(q)).first()


async def list_customers(
    session: AsyncSession,
    org_id: str,
    *,
    email: str | None,
    external_user_id: str | None,
    limit: int,
    starting_after: str | None,
) -> list[Row[Any]]:
    q = select(customers).where(customers.c.org_id == org_id)
    if email is not None:
        q = q.where(func.lower(customers.c.email) == email.lower())
    if external_user_id is not None:
        q = q.where(customers.c.external_user_id == external_user_id)
    if starting_after is not None:
        q = q.where(customers.c.id < starting_after)
    q = q.order_by(customers.c.id.desc()).limit(limit)
    return list((await session.execute(q)).all())


SET_STRIPE_CUSTOMER_SQL = """
UPDATE checkout.customers SET stripe_customer_id = $2, updated_at = now()
WHERE id = $1 AND stripe_customer_id IS NULL
"""


async def set_stripe_customer(db: Database, customer_id: str, stripe_id: str) -> None:
    """One statement, atomic by itself: on the driver connection, outside a transaction
    (BEGIN/COMMIT and SQLAlchemy's statement machinery were most of its cost)."""
    async with db.driver_connection() as conn:
        await conn.execute(SET_STRIPE_CUSTOMER_SQL, customer_id, stripe_id)


async def set_default_payment_method(
    session: AsyncSession, customer_id: str, payment_method_id: str, fingerprint: str | None
) -> Row[Any] | None:
    """The customer as updated (saves fulfilment a SELECT)."""
    stmt = (
        update(customers)
        .where(customers.c.id == customer_id)
        .values(
            default_payment_method_id=payment_method_id,
            card_fingerprint=func.coalesce(fingerprint, customers.c.card_fingerprint),
            updated_at=func.now(),
        )
        .returning(*customers.c)
    )
    return (await session.execute(stmt)).first()


async def customer_has_paid_before(session: AsyncSession, customer_id: str) -> bool:
    """A customer is "new" until one of their checkouts completed (coupon rules, 7.6)."""
    q = select(
        exists().where(
            cs.c.customer_id == customer_id,
            cs.c.status.in_(("processing", "complete")),
            cs.c.completed_at.is_not(None),
        )
    )
    return bool((await session.execute(q)).scalar())


# --- checkout sessions ---------------------------------------------------------------


async def insert_checkout(session: AsyncSession, **values: Any) -> Row[Any]:
    return (await session.execute(insert(cs).values(**values).returning(*cs.c))).one()


async def get_checkout_by_id(session: AsyncSession, checkout_id: str) -> Row[Any] | None:
    """For routes authorized by the checkout's own client secret and for consumers."""
    return (await session.execute(select(cs).where(cs.c.id == checkout_id))).first()


async def checkout_status(session: AsyncSession, checkout_id: str) -> str | None:
    return (await session.execute(select(cs.c.status).where(cs.c.id == checkout_id))).scalar()


async def transition(
    session: AsyncSession,
    checkout_id: str,
    *,
    expected: tuple[str, ...],
    where: tuple[Any, ...] = (),
    **values: Any,
) -> Row[Any] | None:
    """Move a checkout from one of `expected` statuses; None when it was not in one."""
    stmt = (
        update(cs)
        .where(cs.c.id == checkout_id, cs.c.status.in_(expected), *where)
        .values(**values, updated_at=func.now())
        .returning(*cs.c)
    )
    return (await session.execute(stmt)).first()


async def set_coupon(
    session: AsyncSession, checkout_id: str, coupon: dict[str, Any], discount: int, total: int
) -> Row[Any] | None:
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


async def expire_due(session: AsyncSession, now: datetime, limit: int = 500) -> list[Row[Any]]:
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
    return list((await session.execute(stmt)).all())


# --- payments --------------------------------------------------------------------------


async def insert_payment(session: AsyncSession, **values: Any) -> Row[Any]:
    return (await session.execute(insert(payments).values(**values).returning(*payments.c))).one()


async def get_payment(session: AsyncSession, payment_id: str) -> Row[Any] | None:
    return (await session.execute(select(payments).where(payments.c.id == payment_id))).first()


async def get_payment_by_idempotency_key(session: AsyncSession, key: str) -> Row[Any] | None:
    q = select(payments).where(payments.c.stripe_idempotency_key == key)
    return (await session.execute(q)).first()


async def get_payments_of(
    session: AsyncSession, payment_ids: Sequence[str], intent_ids: Sequence[str]
) -> list[Row[Any]]:
    """The payments with any of these ids or Stripe intent ids (one statement; arrays,
    not IN lists, so it is one prepared statement whatever the batch's size)."""
    ids = bindparam("payment_ids", list(payment_ids), type_=ARRAY(String))
    intents = bindparam("intent_ids", list(intent_ids), type_=ARRAY(String))
    q = select(payments).where(
        or_(payments.c.id == any_(ids), payments.c.stripe_intent_id == any_(intents))
    )
    return list(await session.execute(q))


async def update_payment(
    session: AsyncSession, payment_id: str, *, expected: tuple[str, ...], **values: Any
) -> Row[Any] | None:
    stmt = (
        update(payments)
        .where(payments.c.id == payment_id, payments.c.status.in_(expected))
        .values(**values, updated_at=func.now())
        .returning(*payments.c)
    )
    return (await session.execute(stmt)).first()


async def latest_payment_of_checkout(session: AsyncSession, checkout_id: str) -> Row[Any] | None:
    q = (
        select(payments)
        .where(payments.c.checkout_id == checkout_id)
        .order_by(payments.c.attempt.desc(), payments.c.created_at.desc())
        .limit(1)
    )
    return (await session.execute(q)).first()


async def is_invoice_voided(session: AsyncSession, invoice_id: str) -> bool:
    q = select(exists().where(voided_invoices.c.invoice_id == invoice_id))
    return bool((await session.execute(q)).scalar())


async def void_invoice(session: AsyncSession, invoice_id: str) -> None:
    await session.execute(
        insert(voided_invoices).values(invoice_id=invoice_id).on_conflict_do_nothing()
    )


async def succeeded_payments_of_invoice(session: AsyncSession, invoice_id: str) -> list[Row[Any]]:
    q = select(payments).where(
        payments.c.invoice_id == invoice_id, payments.c.status == "succeeded"
    )
    return list((await session.execute(q)).all())


# --- customers' subscriptions (projection of subscription.* events) ---------------------


async def record_subscription(
    session: AsyncSession,
    *,
    subscription_id: str,
    org_id: str | None,
    customer_id: str,
    product_id: str,
    live: bool,
    as_of: datetime,
) -> None:
    """Newest event wins: one older than what is stored (out of order) changes nothing."""
    stmt = insert(customer_subscriptions).values(
        subscription_id=subscription_id,
        org_id=org_id,
        customer_id=customer_id,
        product_id=product_id,
        live=live,
        as_of=as_of,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[customer_subscriptions.c.subscription_id],
        set_={
            "live": stmt.excluded.live,
            "as_of": stmt.excluded.as_of,
            "product_id": stmt.excluded.product_id,
        },
        where=customer_subscriptions.c.as_of <= stmt.excluded.as_of,
    )
    await session.execute(stmt)


async def project_live_subscriptions(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Live subscriptions as their service reports them now (a backfill page): the same
    newest-wins rule as the events, so a subscription.ended.v1 recorded meanwhile stays."""
    if not rows:
        return
    stmt = insert(customer_subscriptions).values([{**row, "live": True} for row in rows])
    stmt = stmt.on_conflict_do_update(
        index_elements=[customer_subscriptions.c.subscription_id],
        set_={"live": True, "as_of": stmt.excluded.as_of, "product_id": stmt.excluded.product_id},
        where=customer_subscriptions.c.as_of < stmt.excluded.as_of,
    )
    await session.execute(stmt)


async def backfilled(session: AsyncSession, name: str) -> bool:
    q = select(exists().where(projection_backfills.c.name == name))
    return bool((await session.execute(q)).scalar())


async def mark_backfilled(session: AsyncSession, name: str) -> None:
    await session.execute(insert(projection_backfills).values(name=name).on_conflict_do_nothing())


async def is_subscribed(session: AsyncSession, customer_id: str, product_id: str) -> bool:
    q = select(
        exists().where(
            customer_subscriptions.c.customer_id == customer_id,
            customer_subscriptions.c.product_id == product_id,
            customer_subscriptions.c.live,
        )
    )
    return bool((await session.execute(q)).scalar())


async def live_projected_subscriptions(
    session: AsyncSession, org_id: str, email: str, product_id: str
) -> tuple[str | None, list[str]]:
    """The customer with this email, and its subscriptions to the product that the
    projection holds live."""
    c, s = customers, customer_subscriptions
    rows = (
        await session.execute(
            select(c.c.id, s.c.subscription_id)
            .select_from(c)
            .outerjoin(s, and_(s.c.customer_id == c.c.id, s.c.product_id == product_id, s.c.live))
            .where(c.c.org_id == org_id, func.lower(c.c.email) == email.lower())
        )
    ).all()
    if not rows:
        return None, []
    return rows[0].id, [r.subscription_id for r in rows if r.subscription_id is not None]


async def end_projected_subscriptions(session: AsyncSession, subscription_ids: list[str]) -> None:
    """Subscriptions the owner no longer holds live, ahead of their `subscription.ended.v1`
    (`as_of` is kept: that event, newer, still applies; ended is final)."""
    await session.execute(
        update(customer_subscriptions)
        .where(customer_subscriptions.c.subscription_id.in_(subscription_ids))
        .values(live=False)
    )


# --- checkout creation in one statement (the hot path) ------------------------------------
#
# A checkout without a coupon is created by one statement on the asyncpg connection under
# the pooled SQLAlchemy one, outside any transaction (a single statement is atomic by
# itself): the customer upsert, the "already subscribed" check (8.2) and the insert, in
# one round trip, with no statement compilation or ORM row processing. The profile of
# the Core version showed SQLAlchemy's per-statement work and BEGIN/COMMIT round trips
# as the largest part of the request's CPU. Semantics are those of upsert_customer +
# is_subscribed + insert_checkout, with one more guarantee: a customer who is already
# subscribed is left untouched (the Core path rolled its upsert back with the 409).
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
        customer_id, customer_email, customer_name, external_user_id, metadata, success_url,
        expires_at
    )
    SELECT $6, $2, $8, $9, $7, $10::text::jsonb, $11, $12, $13, $14, $15, $16, $17,
           customer.id, $3, coalesce($4, customer.name), $5, $18::text::jsonb, $19, $20
    FROM customer
    RETURNING customer_id, customer_name
)
SELECT (SELECT yes FROM subscribed) AS subscribed, created.customer_id, created.customer_name
FROM (SELECT 1) AS one LEFT JOIN created ON true
"""


async def create_checkout_in_one_statement(
    db: Database,
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
    metadata_json: str,
    success_url: str | None,
    expires_at: datetime,
) -> tuple[bool, str | None, str | None]:
    """(already subscribed, customer id, customer name); no row written when subscribed."""
    async with db.driver_connection() as driver:
        row = await driver.fetchrow(
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
        )
    return bool(row["subscribed"]), row["customer_id"], row["customer_name"]


# --- confirm on the driver connection (the hot path of a paid checkout) -------------------
#
# Confirm used to take three ORM transactions (read, start, record) of 3, 5 and 7 round
# trips. Each is now one statement on the driver connection, atomic on its own; the
# guards are those of `transition`/`update_payment`, so every transition stays
# conditional and a statement that finds the state not as expected changes nothing.


def _record(row: Any) -> Any:
    """Attribute access to a driver row, as to the Core rows the service code reads."""
    return None if row is None else SimpleNamespace(**dict(row))


GET_CHECKOUT_SQL = "SELECT * FROM checkout.checkout_sessions WHERE id = $1"


async def read_checkout(db: Database, checkout_id: str) -> Any:
    """The checkout (JSONB columns decoded) or None, without a transaction."""
    async with db.driver_connection() as conn:
        return _record(await conn.fetchrow(GET_CHECKOUT_SQL, checkout_id))


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
        payment_method_id
    )
    SELECT $4, org_id, $5, id, customer_id, attempt, $6, $7, $8, $9, $10, $11,
           left('bos-' || id || '-a' || attempt || '-' || $12::text, 255), $12::text
    FROM started
    RETURNING attempt, stripe_idempotency_key, customer_id
)
SELECT p.attempt, p.stripe_idempotency_key, c.id, c.org_id, c.email, c.name,
       c.external_user_id, c.stripe_customer_id
FROM payment p LEFT JOIN checkout.customers c ON c.id = p.customer_id
"""


async def start_payment(
    db: Database,
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
) -> tuple[int, str, Any] | None:
    """(attempt, Stripe idempotency key, customer), or None when the checkout is no longer
    the open, unexpired one that was read (nothing written then)."""
    async with db.driver_connection() as conn:
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
        )
    if row is None:
        return None
    customer = SimpleNamespace(
        id=row["id"],
        org_id=row["org_id"],
        email=row["email"],
        name=row["name"],
        external_user_id=row["external_user_id"],
        stripe_customer_id=row["stripe_customer_id"],
    )
    return row["attempt"], row["stripe_idempotency_key"], customer


# Stripe's success and the fulfilment it causes, in one statement: the payment
# pending -> succeeded with Stripe's ids, the checkout's completion, the paying card as
# the customer's default (4.8) and `checkout.completed.v1` in the outbox (NOTIFY is
# delivered on commit, as add_event's). `locked` takes both rows FOR UPDATE and
# re-checks both guards on their latest versions, so either everything happens or
# nothing does (the caller then takes the general path, with the refund of a duplicate).
RECORD_SUCCESS_SQL = """
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
    INSERT INTO checkout.outbox (event_id, event_type, org_id, envelope)
    SELECT $8, $9, $10, $11::text::jsonb WHERE EXISTS (SELECT FROM fulfilled)
    RETURNING 1
)
SELECT EXISTS (SELECT FROM event) AS done,
       (SELECT pg_notify($12, '') WHERE EXISTS (SELECT FROM event)) AS woke
"""


async def record_success(
    db: Database,
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
    async with db.driver_connection() as conn:
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


# subscription.created.v1: the projection (newest event wins, as record_subscription) and
# the checkout's `complete` (only once fulfilled: processing with completed_at set) in one
# statement, on the consumer transaction's own asyncpg connection.
SUBSCRIBED_SQL = """
WITH projected AS (
    INSERT INTO checkout.customer_subscriptions AS s
        (subscription_id, org_id, customer_id, product_id, live, as_of)
    VALUES ($1, $2, $3, $4, true, $5)
    ON CONFLICT (subscription_id) DO UPDATE
    SET live = EXCLUDED.live, as_of = EXCLUDED.as_of, product_id = EXCLUDED.product_id
    WHERE s.as_of <= EXCLUDED.as_of
), completed AS (
    UPDATE checkout.checkout_sessions
    SET status = 'complete', subscription_id = $1, updated_at = now()
    WHERE id = $6 AND status = 'processing' AND completed_at IS NOT NULL
    RETURNING id, is_free
)
-- A free checkout's confirm waits for this (checkout.completion); paid ones notify nobody.
SELECT count(*) AS completed, count(n.notified) AS notified FROM completed
LEFT JOIN LATERAL (
    SELECT true AS notified FROM pg_notify('checkout_completed', completed.id)
    WHERE completed.is_free
) n ON true
"""


async def record_subscribed(
    session: AsyncSession,
    *,
    subscription_id: str,
    org_id: str | None,
    customer_id: str,
    product_id: str,
    as_of: datetime,
    checkout_id: str | None,
) -> bool:
    """A live subscription, and its checkout (if any) `complete`, in the session's
    transaction: once a checkout reports `complete`, a new checkout for the same
    product already answers 409 (8.2). True when this made the checkout complete."""
    conn = await session.connection()
    driver = (await conn.get_raw_connection()).driver_connection
    row = await driver.fetchrow(
        SUBSCRIBED_SQL, subscription_id, org_id, customer_id, product_id, as_of, checkout_id
    )
    return bool(row["completed"])
