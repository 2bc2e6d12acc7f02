"""Held transfers retry with backoff (attempts, last_error; the charge they draw on), and
the payout schedule applied to each connected account with Stripe's answer.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "transfers",
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        schema="checkout",
    )
    op.add_column("transfers", sa.Column("last_error", sa.Text()), schema="checkout")
    op.add_column(
        "transfers", sa.Column("source_charge_id", sa.String(length=255)), schema="checkout"
    )
    op.create_table(
        "payout_schedules",
        sa.Column("account_id", sa.String(length=255), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("org_version", sa.BigInteger(), nullable=False),
        sa.Column("schedule", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error_code", sa.String(length=100)),
        sa.Column("error_message", sa.Text()),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_payout_schedules")),
        sa.CheckConstraint(
            "status IN ('applied', 'refused')", name=op.f("ck_payout_schedules_status")
        ),
        schema="checkout",
    )


def downgrade() -> None:
    op.drop_table("payout_schedules", schema="checkout")
    for column in ("source_charge_id", "last_error", "attempts"):
        op.drop_column("transfers", column, schema="checkout")
