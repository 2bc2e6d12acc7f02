"""Renewals: payments carry their subscription; voided invoices are remembered.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 02:10:00.982007
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voided_invoices",
        sa.Column("invoice_id", sa.String(length=40), nullable=False),
        sa.Column(
            "voided_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("invoice_id", name=op.f("pk_voided_invoices")),
        schema="checkout",
    )
    op.add_column(
        "payments",
        sa.Column("subscription_id", sa.String(length=40), nullable=True),
        schema="checkout",
    )


def downgrade() -> None:
    op.drop_column("payments", "subscription_id", schema="checkout")
    op.drop_table("voided_invoices", schema="checkout")
