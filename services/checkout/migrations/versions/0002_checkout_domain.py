"""Checkout domain: customers, checkout sessions, payments, transfers, connected accounts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 01:31:50.721551
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkout_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="open", nullable=False),
        sa.Column("client_secret_hash", sa.String(length=64), nullable=False),
        sa.Column("price_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("price", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_subtotal", sa.BigInteger(), nullable=False),
        sa.Column("amount_discount", sa.BigInteger(), nullable=False),
        sa.Column("amount_total", sa.BigInteger(), nullable=False),
        sa.Column("setup_fee", sa.BigInteger(), nullable=False),
        sa.Column("is_free", sa.Boolean(), nullable=False),
        sa.Column("trial_days", sa.Integer(), nullable=False),
        sa.Column("coupon", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("customer_email", sa.String(length=320), nullable=False),
        sa.Column("customer_name", sa.String(length=200), nullable=True),
        sa.Column("external_user_id", sa.String(length=255), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("success_url", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=True),
        sa.Column("last_error", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("subscription_id", sa.String(length=40), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('open', 'processing', 'complete', 'expired', 'canceled')",
            name=op.f("ck_checkout_sessions_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_sessions")),
        schema="checkout",
    )
    op.create_index(
        "ix_checkout_sessions_open_expiry",
        "checkout_sessions",
        ["expires_at"],
        unique=False,
        schema="checkout",
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index(
        "ix_checkout_sessions_org_customer",
        "checkout_sessions",
        ["org_id", "customer_id"],
        unique=False,
        schema="checkout",
    )
    op.create_table(
        "connected_accounts",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("charges_enabled", sa.Boolean(), nullable=False),
        sa.Column("payouts_enabled", sa.Boolean(), nullable=False),
        sa.Column("stripe_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connected_accounts")),
        schema="checkout",
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("external_user_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=True),
        sa.Column("default_payment_method_id", sa.String(length=255), nullable=True),
        sa.Column("card_fingerprint", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        schema="checkout",
    )
    op.create_index(
        "ix_customers_org_external_user",
        "customers",
        ["org_id", "external_user_id"],
        unique=False,
        schema="checkout",
    )
    op.create_index(
        "uq_customers_org_email",
        "customers",
        ["org_id", sa.literal_column("lower(email)")],
        unique=True,
        schema="checkout",
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("checkout_id", sa.String(length=40), nullable=True),
        sa.Column("invoice_id", sa.String(length=40), nullable=True),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("platform_fee", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("net_amount", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("destination_account", sa.String(length=255), nullable=True),
        sa.Column("connect_mode", sa.String(length=20), nullable=True),
        sa.Column("stripe_intent_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("payment_method_id", sa.String(length=255), nullable=True),
        sa.Column("card_fingerprint", sa.String(length=255), nullable=True),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'requires_action', 'succeeded', 'failed', 'canceled', 'refunded')",
            name=op.f("ck_payments_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint(
            "stripe_idempotency_key", name=op.f("uq_payments_stripe_idempotency_key")
        ),
        sa.UniqueConstraint("stripe_intent_id", name=op.f("uq_payments_stripe_intent_id")),
        schema="checkout",
    )
    op.create_index(
        "ix_payments_checkout", "payments", ["checkout_id"], unique=False, schema="checkout"
    )
    op.create_index(
        "ix_payments_invoice", "payments", ["invoice_id"], unique=False, schema="checkout"
    )
    op.create_table(
        "transfers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("destination_account", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="held", nullable=False),
        sa.Column("stripe_transfer_id", sa.String(length=255), nullable=True),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_transfers_payment_id")),
        schema="checkout",
    )
    op.create_index(
        "ix_transfers_held",
        "transfers",
        ["destination_account"],
        unique=False,
        schema="checkout",
        postgresql_where=sa.text("status = 'held'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_transfers_held",
        table_name="transfers",
        schema="checkout",
        postgresql_where=sa.text("status = 'held'"),
    )
    op.drop_table("transfers", schema="checkout")
    op.drop_index("ix_payments_invoice", table_name="payments", schema="checkout")
    op.drop_index("ix_payments_checkout", table_name="payments", schema="checkout")
    op.drop_table("payments", schema="checkout")
    op.drop_index("uq_customers_org_email", table_name="customers", schema="checkout")
    op.drop_index("ix_customers_org_external_user", table_name="customers", schema="checkout")
    op.drop_table("customers", schema="checkout")
    op.drop_table("connected_accounts", schema="checkout")
    op.drop_index(
        "ix_checkout_sessions_org_customer", table_name="checkout_sessions", schema="checkout"
    )
    op.drop_index(
        "ix_checkout_sessions_open_expiry",
        table_name="checkout_sessions",
        schema="checkout",
        postgresql_where=sa.text("status = 'open'"),
    )
    op.drop_table("checkout_sessions", schema="checkout")
