"""Pending payments by the age of their lease (`updated_at`), for the sweep that settles
confirms whose process died (checkout.recovery).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 16:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_payments_pending_lease",
        "payments",
        ["updated_at"],
        schema="checkout",
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_payments_pending_lease", table_name="payments", schema="checkout")
