"""Demo data: the "Test Data Setup" of the checkout test plan, for one organization.

`seed_demo(session, org_id)` creates, through the service layer and in the caller's
transaction, once per organization (idempotent: products are found again by
`metadata.demo`, prices by their terms, coupons by code; an advisory lock serializes
concurrent calls). What the merchant changed since is left as it is and what the demo
needs is made again beside it, and listed in `restored`: a demo product archived gets a new
product, a demo price deleted a new price.

- free-product: $0/month; basic-product: $29/month; pro-product: $99/month with a
  14-day trial; enterprise-product: $299/year (annual only);
- coupons WELCOME20 (20% off, new customers only), SAVE10 ($10 off, any product),
  TRIAL30 (30-day trial extension), EXPIRED (expired on 2024-01-01).

Exposed as `POST /internal/demo/{org_id}` (service or admin principal); `make up` calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from catalog import repository as repo
from catalog import service
from catalog.schemas import CouponCreate, PriceCreate, ProductCreate


@dataclass(frozen=True)
class DemoProduct:
    key: str
    name: str
    description: str
    amount: int
    interval: str
    trial_days: int = 0
    features: list[str] = field(default_factory=list)


PRODUCTS = (
    DemoProduct(
        "free-product",
        "Free",
        "Everything you need to try it out.",
        0,
        "month",
        features=["projects:3", "community_support"],
    ),
    DemoProduct(
        "basic-product",
        "Basic",
        "For individuals.",
        2900,
        "month",
        features=["projects:10", "email_support"],
    ),
    DemoProduct(
        "pro-product",
        "Pro",
        "For growing teams.",
        9900,
        "month",
        trial_days=14,
        features=["projects:unlimited", "priority_support", "analytics"],
    ),
    DemoProduct(
        "enterprise-product",
        "Enterprise",
        "For organizations, billed yearly.",
        29900,
        "year",
        features=["projects:unlimited", "sso", "dedicated_support", "analytics"],
    ),
)

COUPONS = (
    CouponCreate(
        code="WELCOME20", percent_off=Decimal(20), duration="once", new_customers_only=True
    ),
    CouponCreate(code="SAVE10", amount_off=1000, currency="usd", duration="once"),
    CouponCreate(code="TRIAL30", trial_extension_days=30, duration="once"),
    CouponCreate(
        code="EXPIRED",
        percent_off=Decimal(50),
        duration="once",
        expires_at=datetime(2024, 1, 1, tzinfo=UTC),
    ),
)

CURRENCY = "usd"


def _is_demo_price(price: Any, spec: DemoProduct) -> bool:
    return bool(
        price.amount == spec.amount
        and price.currency == CURRENCY
        and price.type == "recurring"
        and price.interval == spec.interval
        and price.trial_days == spec.trial_days
        and price.setup_fee == 0
    )


async def _demo_product(
    session: AsyncSession, org_id: str, spec: DemoProduct, restored: list[str]
) -> tuple[Any, bool]:
    """The plan's active demo product, created when there is none: (row, created)."""
    found = await repo.find_demo_products(session, org_id, spec.key)
    if found and found[0].archived_at is None:
        return found[0], False
    if found:
        restored.append(f"{spec.key}: the demo product was archived, created a new one")
    product = await service.create_product(
        session,
        org_id,
        ProductCreate(
            name=spec.name,
            description=spec.description,
            features=spec.features,
            metadata={"demo": spec.key},
        ),
    )
    return product, True


async def seed_demo(session: AsyncSession, org_id: str) -> dict[str, Any]:
    """The demo catalog of `org_id` (created now, found again or restored): product and
    price ids by plan name, coupon ids by code, whether anything was created, and what was
    made again because the merchant had archived or deleted it."""
    await repo.lock_for_seeding(session, org_id)
    created = False
    restored: list[str] = []
    products: dict[str, dict[str, str]] = {}
    for spec in PRODUCTS:
        product, new_product = await _demo_product(session, org_id, spec, restored)
        created = created or new_product
        prices = await repo.active_prices(session, product.id)
        price = next((p for p in prices if _is_demo_price(p, spec)), None)
        if price is None:
            if not new_product:
                restored.append(f"{spec.key}: the demo price was deleted, created a new one")
            price = await service.create_price(
                session,
                org_id,
                PriceCreate(
                    product_id=product.id,
                    amount=spec.amount,
                    currency=CURRENCY,
                    type="recurring",
                    interval=spec.interval,
                    trial_days=spec.trial_days,
                ),
            )
            created = True
        products[spec.key] = {"product_id": product.id, "price_id": price.id}
    coupons: dict[str, str] = {}
    for body in COUPONS:
        coupon = await repo.get_coupon_by_code(session, org_id, body.code)
        if coupon is None:
            coupon = await service.create_coupon(session, org_id, body)
            created = True
        coupons[body.code] = coupon.id
    return {
        "org_id": org_id,
        "created": created,
        "restored": restored,
        "products": products,
        "coupons": coupons,
    }
