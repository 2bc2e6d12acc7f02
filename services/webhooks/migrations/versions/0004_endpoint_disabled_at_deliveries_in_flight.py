"""Merchant webhooks: when an endpoint was disabled; which deliveries are in flight (the
per-endpoint bound across replicas) and an index to pick an endpoint's due ones.

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

S = "webhooks"


def upgrade() -> None:
    op.add_column(
        "webhook_endpoints", sa.Column("disabled_at", sa.DateTime(timezone=True)), schema=S
    )
    op.add_column(
        "webhook_deliveries", sa.Column("leased_until", sa.DateTime(timezone=True)), schema=S
    )
    op.create_index(
        "ix_webhook_deliveries_in_flight",
        "webhook_deliveries",
        ["endpoint_id"],
        schema=S,
        postgresql_where=sa.text("leased_until IS NOT NULL"),
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_due",
        "webhook_deliveries",
        ["endpoint_id", "next_attempt_at"],
        schema=S,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_endpoint_due", "webhook_deliveries", schema=S)
    op.drop_index("ix_webhook_deliveries_in_flight", "webhook_deliveries", schema=S)
    op.drop_column("webhook_deliveries", "leased_until", schema=S)
    op.drop_column("webhook_endpoints", "disabled_at", schema=S)
