"""Organizations: the address BOS writes to about the merchant's account.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "tokens"


def upgrade() -> None:
    op.add_column("organizations", sa.Column("notification_email", sa.String(320)), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("organizations", "notification_email", schema=SCHEMA)
