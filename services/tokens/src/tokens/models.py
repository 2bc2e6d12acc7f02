"""Tables of the tokens schema."""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from bos_common.db import make_metadata
from bos_common.idempotency import idempotency_table
from bos_common.inbox import inbox_table
from bos_common.outbox import outbox_table

metadata = make_metadata("tokens")
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)

organizations = Table(
    "organizations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("platform_fee_bps", Integer, nullable=False, server_default=text("500")),
    Column("allowed_origins", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("stripe_account_id", String(255)),
    Column("payout_schedule", JSONB, nullable=False),
    Column("rate_limits", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # Where BOS writes to the merchant about its account (null: nowhere).
    Column("notification_email", String(320)),
    # Grows with every change; carried by organization.updated.v1 so consumers can
    # ignore a stale event.
    Column("version", BigInteger, nullable=False, server_default=text("1")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # One Stripe connected account belongs to one organization (webhooks route by it).
    Index("uq_organizations_stripe_account_id", "stripe_account_id", unique=True),
)

# The secret itself is never stored: `lookup` (the first characters of its random part,
# not enough to use it) finds the row, `secret_hash` (sha256 hex of the whole secret) is
# compared in constant time.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("org_id", String(32), ForeignKey("organizations.id"), nullable=False),
    Column("mode", String(8), nullable=False),  # "test" | "live"
    Column("lookup", String(16), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("name", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_used_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_api_keys_org_id_created_at", "org_id", "created_at"),
)

# Session tokens (scope "session", id sess_...) and portal tokens (scope "portal",
# id ps_...). The token text is not stored: it is verifiable from its signature alone;
# the row is the record, the revocation and what the cleanup job deletes.
session_tokens = Table(
    "session_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("org_id", String(32), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("external_user_id", String(255)),
    Column("customer_id", String(64)),
    Column("api_key_id", String(32)),
    Column("kid", String(32), nullable=False),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_session_tokens_expires_at", "expires_at"),
    # The gateways' revocation set: revoked tokens not yet expired.
    Index(
        "ix_session_tokens_revoked",
        "expires_at",
        postgresql_where=text("revoked_at IS NOT NULL"),
    ),
)
