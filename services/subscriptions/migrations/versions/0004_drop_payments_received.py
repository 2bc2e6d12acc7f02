"""Drop payments_received: written for every payment.succeeded.v1 and never read.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("payments_received", schema="subscriptions")


def downgrade() -> None:
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
