"""The traceparent a payment's intent create carries in its metadata (sampled confirms
only), kept on the payment: the recovery sweep replays that create under the payment's
idempotency key, and Stripe accepts a replay only with the very same parameters.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 21:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("payments", sa.Column("intent_traceparent", sa.String(55)), schema="checkout")


def downgrade() -> None:
    op.drop_column("payments", "intent_traceparent", schema="checkout")
