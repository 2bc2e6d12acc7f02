"""Tables of the subscriptions schema."""

from sqlalchemy import BigInteger, Column, DateTime, String, Table, Uuid, func

from bos_common.db import make_metadata
from bos_common.idempotency import idempotency_table
from bos_common.inbox import inbox_table
from bos_common.outbox import outbox_table

metadata = make_metadata("subscriptions")
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)

# Payments this service has learned of (walking skeleton: proves an event crosses the bus).
payments_received = Table(
    "payments_received",
    metadata,
    Column("payment_intent_id", String(255), primary_key=True),
    Column("event_id", Uuid, nullable=False),
    Column("org_id", String(64)),
    Column("checkout_id", String(64)),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
