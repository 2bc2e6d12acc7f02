"""Organizations, API keys (hashed), session and portal tokens.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "tokens"


def _timestamp(name: str, *, nullable: bool = True, default: bool = False) -> sa.Column:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=sa.func.now() if default else None,
    )


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("platform_fee_bps", sa.Integer, nullable=False, server_default=sa.text("500")),
        sa.Column(
            "allowed_origins",
            postgresql.JSONB,
            nullable=False,
            server_default=sa.text("'[]'::jsonb"),
        ),
        sa.Column("stripe_account_id", sa.String(255)),
        sa.Column("payout_schedule", postgresql.JSONB, nullable=False),
        sa.Column(
            "rate_limits", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        sa.Column("version", sa.BigInteger, nullable=False, server_default=sa.text("1")),
        _timestamp("created_at", nullable=False, default=True),
        _timestamp("updated_at", nullable=False, default=True),
        sa.PrimaryKeyConstraint("id", name="pk_organizations"),
        schema=SCHEMA,
    )
    # One Stripe connected account belongs to one organization (webhooks route by it).
    op.create_index(
        "uq_organizations_stripe_account_id",
        "organizations",
        ["stripe_account_id"],
        unique=True,
        schema=SCHEMA,
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("org_id", sa.String(32), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("lookup", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("last4", sa.String(4), nullable=False),
        sa.Column("name", sa.String(200)),
        _timestamp("created_at", nullable=False, default=True),
        _timestamp("last_used_at"),
        _timestamp("expires_at"),
        _timestamp("revoked_at"),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("lookup", name="uq_api_keys_lookup"),
        sa.ForeignKeyConstraint(
            ["org_id"],
            [f"{SCHEMA}.organizations.id"],
            name="fk_api_keys_org_id_organizations",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_api_keys_org_id_created_at", "api_keys", ["org_id", "created_at"], schema=SCHEMA
    )
    op.create_table(
        "session_tokens",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("org_id", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("external_user_id", sa.String(255)),
        sa.Column("customer_id", sa.String(64)),
        sa.Column("api_key_id", sa.String(32)),
        sa.Column("kid", sa.String(32), nullable=False),
        sa.Column(
            "metadata", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        _timestamp("created_at", nullable=False),
        _timestamp("expires_at", nullable=False),
        _timestamp("revoked_at"),
        sa.PrimaryKeyConstraint("id", name="pk_session_tokens"),
        schema=SCHEMA,
    )
    op.create_index("ix_session_tokens_expires_at", "session_tokens", ["expires_at"], schema=SCHEMA)
    op.create_index(
        "ix_session_tokens_revoked",
        "session_tokens",
        ["expires_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("revoked_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("session_tokens", schema=SCHEMA)
    op.drop_table("api_keys", schema=SCHEMA)
    op.drop_table("organizations", schema=SCHEMA)
