"""Products, prices, coupons and coupon redemptions.

Listing indexes: one per filter combination of `GET /v1/products` (none, active,
visible, both), each `(org_id, <filters>, id)`, so the first page and any deep cursor
page are a bounded backward range scan whatever the size of the catalog.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "catalog"


def _id(length: int = 40) -> sa.String:
    return sa.String(length, collation="C")


def _now() -> sa.Column:
    return sa.func.now()


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", _id(), nullable=False),
        sa.Column("org_id", _id(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("visible", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("archived_at", sa.DateTime(timezone=True)),
        sa.Column(
            "active", sa.Boolean, sa.Computed("archived_at IS NULL", persisted=True), nullable=False
        ),
        sa.Column(
            "features", postgresql.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")
        ),
        sa.Column(
            "metadata", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        schema=S,
    )
    op.create_index("ix_products_org_id_id", "products", ["org_id", "id"], schema=S)
    op.create_index(
        "ix_products_org_id_active_id", "products", ["org_id", "active", "id"], schema=S
    )
    op.create_index(
        "ix_products_org_id_visible_id", "products", ["org_id", "visible", "id"], schema=S
    )
    op.create_index(
        "ix_products_org_id_active_visible_id",
        "products",
        ["org_id", "active", "visible", "id"],
        schema=S,
    )

    op.create_table(
        "prices",
        sa.Column("id", _id(), nullable=False),
        sa.Column("org_id", _id(64), nullable=False),
        sa.Column("product_id", _id(), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("interval", sa.String(8)),
        sa.Column("trial_days", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("setup_fee", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("id", name="pk_prices"),
        sa.ForeignKeyConstraint(
            ["product_id"], [f"{S}.products.id"], name="fk_prices_product_id_products"
        ),
        sa.CheckConstraint("amount >= 0", name="ck_prices_amount_non_negative"),
        sa.CheckConstraint("setup_fee >= 0", name="ck_prices_setup_fee_non_negative"),
        sa.CheckConstraint("trial_days >= 0", name="ck_prices_trial_days_non_negative"),
        sa.CheckConstraint(
            "(type = 'recurring' AND interval IN ('month', 'year')) "
            "OR (type = 'one_time' AND interval IS NULL)",
            name="ck_prices_type_interval",
        ),
        schema=S,
    )
    op.create_index("ix_prices_org_id_id", "prices", ["org_id", "id"], schema=S)
    op.create_index("ix_prices_product_id_id", "prices", ["product_id", "id"], schema=S)

    op.create_table(
        "coupons",
        sa.Column("id", _id(), nullable=False),
        sa.Column("org_id", _id(64), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("percent_off", sa.Numeric(5, 2)),
        sa.Column("amount_off", sa.BigInteger),
        sa.Column("currency", sa.String(3)),
        sa.Column("duration", sa.String(16), nullable=False),
        sa.Column("duration_in_months", sa.Integer),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("product_ids", postgresql.ARRAY(sa.Text)),
        sa.Column(
            "new_customers_only", sa.Boolean, nullable=False, server_default=sa.text("false")
        ),
        sa.Column("max_redemptions", sa.Integer),
        sa.Column("times_redeemed", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("trial_extension_days", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column(
            "metadata", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("id", name="pk_coupons"),
        sa.CheckConstraint(
            "percent_off IS NULL OR (percent_off > 0 AND percent_off <= 100)",
            name="ck_coupons_percent_off_range",
        ),
        sa.CheckConstraint(
            "amount_off IS NULL OR (amount_off > 0 AND currency IS NOT NULL)",
            name="ck_coupons_amount_off_currency",
        ),
        sa.CheckConstraint(
            "percent_off IS NULL OR amount_off IS NULL", name="ck_coupons_one_discount"
        ),
        schema=S,
    )
    op.create_index(
        "uq_coupons_org_id_code",
        "coupons",
        ["org_id", sa.text("upper(code)")],
        unique=True,
        schema=S,
    )
    op.create_index("ix_coupons_org_id_id", "coupons", ["org_id", "id"], schema=S)

    op.create_table(
        "coupon_redemptions",
        sa.Column("coupon_id", _id(), nullable=False),
        sa.Column("checkout_id", _id(64), nullable=False),
        sa.Column("org_id", _id(64), nullable=False),
        sa.Column("customer_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("redeemed_at", sa.DateTime(timezone=True)),
        sa.Column("event_id", sa.Uuid),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("coupon_id", "checkout_id", name="pk_coupon_redemptions"),
        sa.ForeignKeyConstraint(
            ["coupon_id"], [f"{S}.coupons.id"], name="fk_coupon_redemptions_coupon_id_coupons"
        ),
        sa.CheckConstraint(
            "status IN ('reserved', 'redeemed', 'released')", name="ck_coupon_redemptions_status"
        ),
        schema=S,
    )
    op.create_index(
        "ix_coupon_redemptions_live",
        "coupon_redemptions",
        ["coupon_id", "expires_at"],
        schema=S,
        postgresql_where=sa.text("status = 'reserved'"),
    )
    op.create_index(
        "ix_coupon_redemptions_checkout_id", "coupon_redemptions", ["checkout_id"], schema=S
    )


def downgrade() -> None:
    for table in ("coupon_redemptions", "coupons", "prices", "products"):
        op.drop_table(table, schema=S)
