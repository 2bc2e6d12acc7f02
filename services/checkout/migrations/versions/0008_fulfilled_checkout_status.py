"""A fulfilled checkout (`completed_at` set: checkout.completed.v1 published) is
`processing` until its subscription exists, then `complete`; never open, expired or
canceled again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 18:40:00.000000
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CONDITION = "completed_at IS NULL OR status IN ('processing', 'complete')"


def upgrade() -> None:
    # NOT VALID, then VALIDATE: the rows already there are checked without holding the
    # table's exclusive lock for the scan.
    op.execute(
        "ALTER TABLE checkout.checkout_sessions ADD CONSTRAINT ck_checkout_sessions_fulfilled"
        f" CHECK ({CONDITION}) NOT VALID"
    )
    op.execute(
        "ALTER TABLE checkout.checkout_sessions VALIDATE CONSTRAINT ck_checkout_sessions_fulfilled"
    )


def downgrade() -> None:
    op.drop_constraint("ck_checkout_sessions_fulfilled", "checkout_sessions", schema="checkout")
