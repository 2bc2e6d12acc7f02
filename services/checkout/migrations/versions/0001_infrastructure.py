"""Outbox, inbox and idempotency keys of the checkout schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op

from bos_common.migrations import create_infrastructure_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_infrastructure_tables_v1(op, "checkout")


def downgrade() -> None:
    for table in ("idempotency_keys", "inbox", "outbox"):
        op.drop_table(table, schema="checkout")
