"""Merchant webhook endpoints: when an endpoint was disabled.

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


def downgrade() -> None:
    op.drop_column("webhook_endpoints", "disabled_at", schema=S)
