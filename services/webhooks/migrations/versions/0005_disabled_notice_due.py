"""Merchant webhooks: the e-mail telling a merchant BOS disabled its endpoint is owed until
sent (due time, attempts), so a worker sends it, retrying while SMTP is down.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

S = "webhooks"


def upgrade() -> None:
    op.add_column(
        "webhook_endpoints",
        sa.Column("disabled_notice_due_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.add_column(
        "webhook_endpoints",
        sa.Column(
            "disabled_notice_attempts", sa.Integer, nullable=False, server_default=sa.text("0")
        ),
        schema=S,
    )
    op.create_index(
        "ix_webhook_endpoints_disabled_notice_due",
        "webhook_endpoints",
        ["disabled_notice_due_at"],
        schema=S,
        postgresql_where=sa.text("disabled_notice_due_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_endpoints_disabled_notice_due", "webhook_endpoints", schema=S)
    op.drop_column("webhook_endpoints", "disabled_notice_attempts", schema=S)
    op.drop_column("webhook_endpoints", "disabled_notice_due_at", schema=S)
