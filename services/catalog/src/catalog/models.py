"""Tables of the catalog schema (mirrors migrations/versions; the migrations are the truth).

Ids are time-ordered (`bos_common.ids`) and compared byte-wise (`COLLATE "C"`), so
`ORDER BY id DESC` is newest first and a cursor is just `id < :starting_after`: every
list is an index range scan whatever the page depth.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from bos_common.db import make_metadata
from bos_common.idempotency import idempotency_table
from bos_common.inbox import inbox_table
from bos_common.outbox import outbox_table

metadata = make_metadata("catalog")
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)


def _id(length: int = 40) -> String:
    return String(length, collation="C")


products = Table(
    "products",
    metadata,
    Column("id", _id(), primary_key=True),
    Column("org_id", _id(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text),
    Column("visible", Boolean, nullable=False, server_default=text("true")),
    Column("archived_at", DateTime(timezone=True)),
    # Derived, stored: a plain boolean column the listing indexes can lead with.
    Column("active", Boolean, Computed("archived_at IS NULL", persisted=True), nullable=False),
    Column("features", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # One index per filter combination of GET /v1/products, each ending in id, so any
    # page (first or deep) is a bounded backward range scan.
    Index("ix_products_org_id_id", "org_id", "id"),
    Index("ix_products_org_id_active_id", "org_id", "active", "id"),
    Index("ix_products_org_id_visible_id", "org_id", "visible", "id"),
    Index("ix_products_org_id_active_visible_id", "org_id", "active", "visible", "id"),
)

prices = Table(
    "prices",
    metadata,
    Column("id", _id(), primary_key=True),
    Column("org_id", _id(64), nullable=False),
    Column("product_id", _id(), ForeignKey("products.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("type", String(16), nullable=False),
    Column("interval", String(8)),
    Column("trial_days", Integer, nullable=False, server_default=text("0")),
    Column("setup_fee", BigInteger, nullable=False, server_default=text("0")),
    Column("deleted_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("amount >= 0", name="amount_non_negative"),
    CheckConstraint("setup_fee >= 0", name="setup_fee_non_negative"),
    CheckConstraint("trial_days >= 0", name="trial_days_non_negative"),
    CheckConstraint(
        "(type = 'recurring' AND interval IN ('month', 'year')) "
        "OR (type = 'one_time' AND interval IS NULL)",
        name="type_interval",
    ),
    Index("ix_prices_org_id_id", "org_id", "id"),
    Index("ix_prices_product_id_id", "product_id", "id"),
)

coupons = Table(
    "coupons",
    metadata,
    Column("id", _id(), primary_key=True),
    Column("org_id", _id(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("percent_off", Numeric(5, 2)),
    Column("amount_off", BigInteger),
    Column("currency", String(3)),
    Column("duration", String(16), nullable=False),
    Column("duration_in_months", Integer),
    Column("expires_at", DateTime(timezone=True)),
    Column("product_ids", ARRAY(Text)),
    Column("new_customers_only", Boolean, nullable=False, server_default=text("false")),
    Column("max_redemptions", Integer),
    Column("times_redeemed", Integer, nullable=False, server_default=text("0")),
    Column("trial_extension_days", Integer, nullable=False, server_default=text("0")),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "percent_off IS NULL OR (percent_off > 0 AND percent_off <= 100)", name="percent_off_range"
    ),
    CheckConstraint(
        "amount_off IS NULL OR (amount_off > 0 AND currency IS NOT NULL)",
        name="amount_off_currency",
    ),
    CheckConstraint("percent_off IS NULL OR amount_off IS NULL", name="one_discount"),
    # Codes are unique per organization, case-insensitively (what a customer types).
    Index("uq_coupons_org_id_code", "org_id", func.upper(text("code")), unique=True),
    Index("ix_coupons_org_id_id", "org_id", "id"),
)

# One row per (coupon, checkout): a lease ("reserved", until expires_at) taken before the
# checkout charges, turned into "redeemed" by checkout.completed.v1, or "released".
coupon_redemptions = Table(
    "coupon_redemptions",
    metadata,
    Column("coupon_id", _id(), ForeignKey("coupons.id"), primary_key=True),
    Column("checkout_id", _id(64), primary_key=True),
    Column("org_id", _id(64), nullable=False),
    Column("customer_id", String(64)),
    Column("status", String(16), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("redeemed_at", DateTime(timezone=True)),
    Column("event_id", Uuid),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('reserved', 'redeemed', 'released')", name="status"),
    Index(
        "ix_coupon_redemptions_live",
        "coupon_id",
        "expires_at",
        postgresql_where=text("status = 'reserved'"),
    ),
    Index("ix_coupon_redemptions_checkout_id", "checkout_id"),
)
