"""Payments this service has learned of (walking skeleton).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payments_received",
        sa.Column("payment_intent_id", sa.String(255), nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("org_id", sa.String(64)),
        sa.Column("checkout_id", sa.String(64)),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("payment_intent_id", name="pk_payments_received"),
        schema="subscriptions",
    )


def downgrade() -> None:
    op.drop_table("payments_received", schema="subscriptions")
