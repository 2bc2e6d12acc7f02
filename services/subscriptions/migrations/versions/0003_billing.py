"""Subscriptions, trial history, invoices (numbers, attempts), organizations projection,
notifications.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "subscriptions"


def tz(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("customer_email", sa.String(320)),
        sa.Column("customer_name", sa.String(255)),
        sa.Column("external_user_id", sa.String(255)),
        sa.Column("checkout_id", sa.String(64)),
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("product_name", sa.String(255), nullable=False),
        sa.Column("price_id", sa.String(64), nullable=False),
        sa.Column("price_type", sa.String(16), nullable=False),
        sa.Column("interval", sa.String(8)),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("is_free", sa.Boolean, nullable=False),
        sa.Column("features", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("status", sa.String(16), nullable=False),
        tz("billing_anchor"),
        tz("current_period_start", nullable=False),
        tz("current_period_end"),
        tz("trial_start"),
        tz("trial_end"),
        tz("trial_reminder_for"),
        sa.Column(
            "cancel_at_period_end", sa.Boolean, nullable=False, server_default=sa.text("false")
        ),
        tz("canceled_at"),
        tz("ended_at"),
        sa.Column("cancel_reason", sa.String(32)),
        sa.Column("coupon", JSONB),
        tz("discount_start"),
        sa.Column("stripe_customer_id", sa.String(255)),
        sa.Column("payment_method_id", sa.String(255)),
        sa.Column("card_fingerprint", sa.String(255)),
        tz("payment_method_updated_at"),
        sa.Column("latest_invoice_id", sa.String(64)),
        sa.Column("pending_invoice_id", sa.String(64)),
        tz("past_due_since"),
        sa.Column("hard_declined", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("next_action", sa.String(32)),
        tz("next_action_at"),
        tz("created_at", nullable=False),
        tz("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions"),
        schema=S,
    )
    op.create_index(
        "uq_subscriptions_live_product",
        "subscriptions",
        ["org_id", "customer_id", "product_id"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("status IN ('trialing', 'active', 'past_due', 'incomplete')"),
    )
    op.create_index(
        "ix_subscriptions_org_customer", "subscriptions", ["org_id", "customer_id"], schema=S
    )
    op.create_index(
        "ix_subscriptions_org_external_user",
        "subscriptions",
        ["org_id", "external_user_id"],
        schema=S,
    )
    op.create_index(
        "ix_subscriptions_due",
        "subscriptions",
        ["next_action_at"],
        schema=S,
        postgresql_where=sa.text("next_action_at IS NOT NULL"),
    )
    op.create_index(
        "ix_subscriptions_org_created", "subscriptions", ["org_id", "created_at", "id"], schema=S
    )

    op.create_table(
        "subscription_checkouts",
        sa.Column("checkout_id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64)),
        sa.Column("subscription_id", sa.String(64)),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("checkout_id", name="pk_subscription_checkouts"),
        schema=S,
    )

    op.create_table(
        "trial_history",
        sa.Column("id", sa.BigInteger, autoincrement=True, nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("card_fingerprint", sa.String(255)),
        sa.Column("subscription_id", sa.String(64), nullable=False),
        tz("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_trial_history"),
        schema=S,
    )
    op.create_index(
        "ix_trial_history_customer",
        "trial_history",
        ["org_id", "product_id", "customer_id"],
        schema=S,
    )
    op.create_index(
        "ix_trial_history_email", "trial_history", ["org_id", "product_id", "email"], schema=S
    )
    op.create_index(
        "ix_trial_history_card",
        "trial_history",
        ["org_id", "product_id", "card_fingerprint"],
        schema=S,
    )

    op.create_table(
        "invoices",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("customer_email", sa.String(320)),
        sa.Column("customer_name", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("billing_reason", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("subtotal", sa.BigInteger, nullable=False),
        sa.Column("discount_amount", sa.BigInteger, nullable=False),
        sa.Column("tax", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("amount_due", sa.BigInteger, nullable=False),
        sa.Column("amount_paid", sa.BigInteger, nullable=False),
        sa.Column("lines", JSONB, nullable=False),
        sa.Column("discount", JSONB),
        tz("period_start", nullable=False),
        tz("period_end"),
        sa.Column("attempt_count", sa.Integer, nullable=False),
        tz("next_payment_attempt"),
        sa.Column("payment_id", sa.String(64)),
        sa.Column("payment_intent_id", sa.String(255)),
        tz("paid_at"),
        tz("voided_at"),
        sa.Column("last_failure_code", sa.String(64)),
        sa.Column("last_failure_message", sa.Text),
        tz("created_at", nullable=False),
        tz("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_invoices"),
        sa.UniqueConstraint("org_id", "number", name="uq_invoices_org_number"),
        schema=S,
    )
    op.create_index(
        "ix_invoices_org_customer", "invoices", ["org_id", "customer_id", "created_at"], schema=S
    )
    op.create_index(
        "ix_invoices_subscription", "invoices", ["subscription_id", "created_at"], schema=S
    )

    op.create_table(
        "invoice_sequences",
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("last_number", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("org_id", name="pk_invoice_sequences"),
        schema=S,
    )

    op.create_table(
        "invoice_attempts",
        sa.Column("invoice_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("payment_id", sa.String(64)),
        sa.Column("failure_code", sa.String(64)),
        sa.Column("failure_message", sa.Text),
        tz("created_at", nullable=False),
        sa.PrimaryKeyConstraint("invoice_id", "attempt", name="pk_invoice_attempts"),
        schema=S,
    )
    op.create_index(
        "ix_invoice_attempts_customer",
        "invoice_attempts",
        ["org_id", "customer_id", "created_at"],
        schema=S,
    )

    op.create_table(
        "organizations",
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        tz("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("org_id", name="pk_organizations"),
        schema=S,
    )

    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("dedupe_key", sa.String(255), nullable=False),
        sa.Column("to_email", sa.String(320), nullable=False),
        sa.Column("context", JSONB, nullable=False),
        sa.Column("invoice_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        tz("next_attempt_at", nullable=False),
        tz("sent_at"),
        sa.Column("last_error", sa.Text),
        tz("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("dedupe_key", name="uq_notifications_dedupe_key"),
        schema=S,
    )
    op.create_index(
        "ix_notifications_pending",
        "notifications",
        ["next_attempt_at"],
        schema=S,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    for table in (
        "notifications",
        "organizations",
        "invoice_attempts",
        "invoice_sequences",
        "invoices",
        "trial_history",
        "subscription_checkouts",
        "subscriptions",
    ):
        op.drop_table(table, schema=S)
