"""Tables of the checkout schema: customers, checkout sessions, payments, transfers and
the Connect accounts this service has learned of."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from bos_common.db import make_metadata
from bos_common.idempotency import idempotency_table
from bos_common.inbox import inbox_table
from bos_common.outbox import outbox_table

metadata = make_metadata("checkout")
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)


def _timestamps() -> list[Column]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


customers = Table(
    "customers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), nullable=False),
    Column("email", String(320), nullable=False),
    Column("name", String(200)),
    Column("external_user_id", String(255)),
    Column("stripe_customer_id", String(255)),
    Column("default_payment_method_id", String(255)),
    Column("card_fingerprint", String(255)),
    *_timestamps(),
    # One customer per organization and email, whatever its case.
    Index("uq_customers_org_email", "org_id", func.lower(text("email")), unique=True),
    Index("ix_customers_org_external_user", "org_id", "external_user_id"),
)

CHECKOUT_STATUSES = ("open", "processing", "complete", "expired", "canceled")

checkout_sessions = Table(
    "checkout_sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), nullable=False),
    Column("status", String(20), nullable=False, server_default="open"),
    Column("client_secret_hash", String(64), nullable=False),
    Column("price_id", String(40), nullable=False),
    Column("product_id", String(40), nullable=False),
    Column("price", JSONB, nullable=False),  # bos_common.events.PriceSnapshot
    Column("currency", String(3), nullable=False),
    Column("amount_subtotal", BigInteger, nullable=False),
    Column("amount_discount", BigInteger, nullable=False),
    Column("amount_total", BigInteger, nullable=False),
    Column("setup_fee", BigInteger, nullable=False),
    Column("is_free", Boolean, nullable=False),
    Column("trial_days", Integer, nullable=False),
    Column("coupon", JSONB),  # bos_common.events.AppliedCoupon
    Column("customer_id", String(40)),
    Column("customer_email", String(320), nullable=False),
    Column("customer_name", String(200)),
    Column("external_user_id", String(255)),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("success_url", Text),
    Column("attempt", Integer, nullable=False, server_default=text("0")),
    Column("payment_id", String(40)),
    Column("last_error", JSONB),
    Column("subscription_id", String(40)),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    # When the checkout was fulfilled (checkout.completed.v1 published, the payment's
    # card saved). Its status is then `processing` until subscriptions reports the
    # subscription (subscription.created.v1), then `complete`: the contract's `complete`
    # means the subscription exists.
    Column("completed_at", DateTime(timezone=True)),
    *_timestamps(),
    CheckConstraint(f"status IN {CHECKOUT_STATUSES!r}", name="status"),
    CheckConstraint(
        "completed_at IS NULL OR status IN ('processing', 'complete')", name="fulfilled"
    ),
    Index(
        "ix_checkout_sessions_open_expiry", "expires_at", postgresql_where=text("status = 'open'")
    ),
    Index("ix_checkout_sessions_org_customer", "org_id", "customer_id"),
)

PAYMENT_STATUSES = ("pending", "requires_action", "succeeded", "failed", "canceled", "refunded")

payments = Table(
    "payments",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), nullable=False),
    Column("kind", String(20), nullable=False),  # checkout | setup | renewal
    Column("checkout_id", String(40)),
    Column("invoice_id", String(40)),
    Column("subscription_id", String(40)),
    Column("customer_id", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status", String(20), nullable=False, server_default="pending"),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("platform_fee", BigInteger, nullable=False, server_default=text("0")),
    Column("net_amount", BigInteger, nullable=False, server_default=text("0")),
    Column("destination_account", String(255)),
    # "destination": Stripe routes the merchant's share; "held": taken on the platform
    # while the account is unverified, transferred later (12.2); NULL: no Connect.
    Column("connect_mode", String(20)),
    Column("stripe_intent_id", String(255), unique=True),
    Column("stripe_idempotency_key", String(255), nullable=False, unique=True),
    Column("payment_method_id", String(255)),
    # A sampled confirm's traceparent, in its intent create's metadata: a replay of that
    # create (checkout.recovery) must send the same parameters.
    Column("intent_traceparent", String(55)),
    Column("card_fingerprint", String(255)),
    Column("error_code", String(100)),
    Column("error_message", Text),
    *_timestamps(),
    CheckConstraint(f"status IN {PAYMENT_STATUSES!r}", name="status"),
    Index("ix_payments_checkout", "checkout_id"),
    Index("ix_payments_invoice", "invoice_id"),
    Index("ix_payments_pending_lease", "updated_at", postgresql_where=text("status = 'pending'")),
)

# The merchant's share of a payment taken on the platform while the organization's
# connected account could not receive charges (12.2), released by a transfer later.
transfers = Table(
    "transfers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), nullable=False),
    Column("payment_id", String(40), nullable=False, unique=True),
    Column("destination_account", String(255), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    # held | paid | failed; canceled / reversed: its payment was refunded before / after
    Column("status", String(20), nullable=False, server_default="held"),
    Column("stripe_transfer_id", String(255)),
    # When it is next tried: moved on with backoff while Stripe cannot make it yet.
    Column("available_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    # The charge of the payment (the PaymentIntent's latest_charge): source_transaction.
    Column("source_charge_id", String(255)),
    *_timestamps(),
    Index("ix_transfers_held", "destination_account", postgresql_where=text("status = 'held'")),
)

# Connect accounts as `account.updated` reported them.
connected_accounts = Table(
    "connected_accounts",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("charges_enabled", Boolean, nullable=False),
    Column("payouts_enabled", Boolean, nullable=False),
    Column("stripe_updated_at", DateTime(timezone=True), nullable=False),
)

# The payout schedule last pushed to each connected account (from organization.updated.v1)
# and Stripe's answer: `refused` (with Stripe's error) when the platform does not control
# the account's settings.
payout_schedules = Table(
    "payout_schedules",
    metadata,
    Column("account_id", String(255), primary_key=True),
    Column("org_id", String(40), nullable=False),
    Column("org_version", BigInteger, nullable=False),
    Column("schedule", JSONB, nullable=False),
    Column("status", String(20), nullable=False),  # applied | refused
    Column("error_code", String(100)),
    Column("error_message", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('applied', 'refused')", name="status"),
)

# Invoices subscriptions will never collect: a late `invoice.created.v1` is not charged.
voided_invoices = Table(
    "voided_invoices",
    metadata,
    Column("invoice_id", String(40), primary_key=True),
    Column("voided_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# What checkout knows of its customers' subscriptions, from subscription.created.v1 and
# subscription.ended.v1: answers "already subscribed to this product?" (8.2) at creation
# with a local query instead of a call to subscriptions. `as_of` is the occurred_at of
# the event that set `live`, so an event arriving late never undoes a newer one.
customer_subscriptions = Table(
    "customer_subscriptions",
    metadata,
    Column("subscription_id", String(40), primary_key=True),
    Column("org_id", String(40)),
    Column("customer_id", String(40), nullable=False),
    Column("product_id", String(40), nullable=False),
    Column("live", Boolean, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Index(
        "ix_customer_subscriptions_live",
        "customer_id",
        "product_id",
        postgresql_where=text("live"),
    ),
)

# A projection filled once from its source (checkout.backfill), so it is not done again.
projection_backfills = Table(
    "projection_backfills",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("completed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
