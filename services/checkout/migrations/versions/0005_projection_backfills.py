"""Which projections have been filled from their source once (customer_subscriptions from
subscriptions' live subscriptions, on a database that predates the projection).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 08:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projection_backfills",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column(
            "completed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_projection_backfills")),
        schema="checkout",
    )


def downgrade() -> None:
    op.drop_table("projection_backfills", schema="checkout")
