"""Tables of the subscriptions schema."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from bos_common.db import make_metadata
from bos_common.idempotency import idempotency_table
from bos_common.inbox import inbox_table
from bos_common.outbox import outbox_table

metadata = make_metadata("subscriptions")
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)

TZ = DateTime(timezone=True)

# Statuses that hold the product (one per customer and product, 8.2).
LIVE_STATUSES = ("trialing", "active", "past_due", "incomplete")

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("customer_email", String(320)),
    Column("customer_name", String(255)),
    Column("external_user_id", String(255)),
    Column("checkout_id", String(64)),
    Column("product_id", String(64), nullable=False),
    Column("product_name", String(255), nullable=False),
    Column("price_id", String(64), nullable=False),
    Column("price_type", String(16), nullable=False),  # recurring | one_time
    Column("interval", String(8)),  # month | year | None (one-time, free)
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("is_free", Boolean, nullable=False),
    Column("features", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("status", String(16), nullable=False),
    # Periods are counted from the anchor (calendar months/years; periods.py).
    Column("billing_anchor", TZ),
    Column("current_period_start", TZ, nullable=False),
    Column("current_period_end", TZ),
    Column("trial_start", TZ),
    Column("trial_end", TZ),
    Column("trial_reminder_for", TZ),  # the trial_end a "trial ends soon" mail went out for
    Column("cancel_at_period_end", Boolean, nullable=False, server_default=text("false")),
    Column("canceled_at", TZ),
    Column("ended_at", TZ),
    Column("cancel_reason", String(32)),
    # Coupon (AppliedCoupon) and the start of the first discounted paid period (7.7).
    Column("coupon", JSONB),
    Column("discount_start", TZ),
    # Carried from checkout.completed.v1 for off-session charges.
    Column("stripe_customer_id", String(255)),
    Column("payment_method_id", String(255)),
    Column("card_fingerprint", String(255)),
    Column("payment_method_updated_at", TZ),
    # Billing state: the open invoice, dunning, and what the scheduler does next and when.
    Column("latest_invoice_id", String(64)),
    Column("pending_invoice_id", String(64)),
    Column("past_due_since", TZ),
    Column("hard_declined", Boolean, nullable=False, server_default=text("false")),
    Column("next_action", String(32)),
    Column("next_action_at", TZ),
    Column("created_at", TZ, nullable=False),
    Column("updated_at", TZ, nullable=False),
    Index(
        "uq_subscriptions_live_product",
        "org_id",
        "customer_id",
        "product_id",
        unique=True,
        postgresql_where=text("status IN ('trialing', 'active', 'past_due', 'incomplete')"),
    ),
    Index("ix_subscriptions_org_customer", "org_id", "customer_id"),
    Index("ix_subscriptions_org_external_user", "org_id", "external_user_id"),
    Index(
        "ix_subscriptions_due",
        "next_action_at",
        postgresql_where=text("next_action_at IS NOT NULL"),
    ),
    Index("ix_subscriptions_org_created", "org_id", "created_at", "id"),
)

# Every checkout that created or reactivated a subscription: a checkout is fulfilled once.
subscription_checkouts = Table(
    "subscription_checkouts",
    metadata,
    Column("checkout_id", String(64), primary_key=True),
    Column("org_id", String(64)),
    Column("subscription_id", String(64)),
    Column("outcome", String(32), nullable=False),  # created | reactivated | duplicate
    Column("created_at", TZ, nullable=False, server_default=func.now()),
)

# One trial per customer and product, remembered across cancellations and matched by
# customer, email and card fingerprint (6.6).
trial_history = Table(
    "trial_history",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("org_id", String(64), nullable=False),
    Column("product_id", String(64), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("email", String(320)),
    Column("card_fingerprint", String(255)),
    Column("subscription_id", String(64), nullable=False),
    Column("created_at", TZ, nullable=False),
    Index("ix_trial_history_customer", "org_id", "product_id", "customer_id"),
    Index("ix_trial_history_email", "org_id", "product_id", "email"),
    Index("ix_trial_history_card", "org_id", "product_id", "card_fingerprint"),
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False),
    Column("number", String(64), nullable=False),
    Column("subscription_id", String(64), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("customer_email", String(320)),
    Column("customer_name", String(255)),
    Column("status", String(16), nullable=False),  # open | paid | void | uncollectible
    Column("billing_reason", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("subtotal", BigInteger, nullable=False),
    Column("discount_amount", BigInteger, nullable=False),
    Column("tax", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("amount_due", BigInteger, nullable=False),
    Column("amount_paid", BigInteger, nullable=False),
    Column("lines", JSONB, nullable=False),
    Column("discount", JSONB),
    Column("period_start", TZ, nullable=False),
    Column("period_end", TZ),
    Column("attempt_count", Integer, nullable=False),
    Column("next_payment_attempt", TZ),
    Column("payment_id", String(64)),
    Column("payment_intent_id", String(255)),
    Column("paid_at", TZ),
    Column("voided_at", TZ),
    Column("last_failure_code", String(64)),
    Column("last_failure_message", Text),
    Column("created_at", TZ, nullable=False),
    Column("updated_at", TZ, nullable=False),
    UniqueConstraint("org_id", "number", name="uq_invoices_org_number"),
    Index("ix_invoices_org_customer", "org_id", "customer_id", "created_at"),
    Index("ix_invoices_subscription", "subscription_id", "created_at"),
)

# Gap-free invoice numbers per organization.
invoice_sequences = Table(
    "invoice_sequences",
    metadata,
    Column("org_id", String(64), primary_key=True),
    Column("last_number", BigInteger, nullable=False),
)

# Payment history: each charge attempt of an invoice and its outcome.
invoice_attempts = Table(
    "invoice_attempts",
    metadata,
    Column("invoice_id", String(64), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("org_id", String(64), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # succeeded | failed
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("payment_id", String(64)),
    Column("failure_code", String(64)),
    Column("failure_message", Text),
    Column("created_at", TZ, nullable=False),
    Index("ix_invoice_attempts_customer", "org_id", "customer_id", "created_at"),
)

# Organizations as tokens announces them (organization.updated.v1): seller on invoices,
# branding of emails.
organizations = Table(
    "organizations",
    metadata,
    Column("org_id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("updated_at", TZ, nullable=False),
)

# Customer emails, written in the transaction of the change they announce and sent by a
# worker (idempotent per `dedupe_key`).
notifications = Table(
    "notifications",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", String(64), nullable=False),
    Column("kind", String(48), nullable=False),
    Column("dedupe_key", String(255), nullable=False, unique=True),
    Column("to_email", String(320), nullable=False),
    Column("context", JSONB, nullable=False),
    Column("invoice_id", String(64)),
    Column("status", String(16), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", TZ, nullable=False),
    Column("sent_at", TZ),
    Column("last_error", Text),
    Column("created_at", TZ, nullable=False),
    Index(
        "ix_notifications_pending", "next_attempt_at", postgresql_where=text("status = 'pending'")
    ),
)
