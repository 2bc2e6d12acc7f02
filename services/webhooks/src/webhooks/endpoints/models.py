"""Tables of merchant webhook delivery (in the webhooks schema, on its metadata)."""

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from webhooks.models import metadata

# A merchant's endpoint. `event_types` empty: every public type. During a rotation the
# previous secret keeps signing (beside the new one) until `previous_secret_expires_at`.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(64), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("description", Text),
    Column("event_types", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("status", String(16), nullable=False, server_default="enabled"),
    Column("disabled_reason", Text),
    Column("disabled_at", DateTime(timezone=True)),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text),
    Column("previous_secret_expires_at", DateTime(timezone=True)),
    # Since when every attempt failed (null after a success): the disabling clock.
    Column("failing_since", DateTime(timezone=True)),
    # Set when BOS disabled the endpoint: the e-mail telling the merchant is owed from then
    # until sent (null again), retried with backoff; while claimed, pushed past the lease.
    Column("disabled_notice_due_at", DateTime(timezone=True)),
    Column("disabled_notice_attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index(
        "ix_webhook_endpoints_disabled_notice_due",
        "disabled_notice_due_at",
        postgresql_where=text("disabled_notice_due_at IS NOT NULL"),
    ),
)

# One public event per internal event that had a subscribed endpoint. `payload` is the
# JSON body, rendered once at the first attempt (the object as the API returned it then)
# so every attempt and endpoint sends the same bytes.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("source_event_id", Uuid, unique=True),
    Column("object_kind", String(32), nullable=False),
    Column("object_id", String(64)),
    Column("data", JSONB, nullable=False),
    Column("payload", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One per (event, endpoint): its attempts, outcome and next retry.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(64), nullable=False),
    Column(
        "endpoint_id",
        String(40),
        ForeignKey("webhooks.webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "event_id",
        String(40),
        ForeignKey("webhooks.webhook_events.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_type", String(64), nullable=False),
    # pending | succeeded | failed (attempts exhausted, or the endpoint was disabled)
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True)),
    # Set while an attempt is in flight (claimed, its outcome not recorded yet), until the
    # claim's lease ends: how many are in flight per endpoint, whichever replica sent them.
    Column("leased_until", DateTime(timezone=True)),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("last_duration_ms", Integer),
    Column("delivered_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("uq_webhook_deliveries_event_endpoint", "event_id", "endpoint_id", unique=True),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
    ),
    Index(
        "ix_webhook_deliveries_in_flight",
        "endpoint_id",
        postgresql_where=text("leased_until IS NOT NULL"),
    ),
    Index(
        "ix_webhook_deliveries_endpoint_due",
        "endpoint_id",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
    ),
)
