"""Customers' subscriptions as the subscription.* events told checkout (8.2 at creation
is a local query).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 04:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_subscriptions",
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=True),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", name=op.f("pk_customer_subscriptions")),
        schema="checkout",
    )
    op.create_index(
        "ix_customer_subscriptions_live",
        "customer_subscriptions",
        ["customer_id", "product_id"],
        unique=False,
        schema="checkout",
        postgresql_where=sa.text("live"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_customer_subscriptions_live", table_name="customer_subscriptions", schema="checkout"
    )
    op.drop_table("customer_subscriptions", schema="checkout")
