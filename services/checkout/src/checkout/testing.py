"""Helpers for the checkout tests: a price snapshot, a checkout written straight to the
database (with its customer) in the state a test starts from, the organization's billing,
a renewal invoice to charge."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from bos_common.events import Envelope, InvoiceCreatedV1, PriceSnapshot
from bos_common.ids import new_id
from checkout.clients import OrganizationBilling
from checkout.models import checkout_sessions, customers
from checkout.runtime import CheckoutRuntime


class Organizations:
    """The tokens service's billing answer, set by the test: a 5% platform fee and the
    connected account in `account` (None: payments on the platform)."""

    def __init__(self, account: str | None = None) -> None:
        self.account = account

    async def billing(self, org_id: str, *, fresh: bool = False) -> OrganizationBilling:
        return OrganizationBilling(
            org_id=org_id,
            platform_fee_bps=500,
            stripe_account_id=self.account,
            payout_schedule={"interval": "weekly", "weekly_anchor": "friday"},
        )


def price_snapshot(**overrides: Any) -> PriceSnapshot:
    """$99/month "Pro" (price_1, prod_1) unless told otherwise."""
    fields: dict[str, Any] = {
        "price_id": "price_1",
        "product_id": "prod_1",
        "product_name": "Pro",
        "amount": 9900,
        "currency": "usd",
        "type": "recurring",
        "interval": "month",
        **overrides,
    }
    return PriceSnapshot(**fields)


def invoice_created(customer_id: str, *, invoice_id: str | None = None, **fields: Any) -> Envelope:
    """invoice.created.v1 of org_t from subscriptions: attempt 1 of a $99 monthly renewal of
    `customer_id`'s subscription; `fields` override any field."""
    invoice_id = invoice_id or new_id("in")
    now = datetime.now(UTC)
    event = InvoiceCreatedV1(
        **{
            "invoice_id": invoice_id,
            "number": "INV-1",
            "subscription_id": new_id("sub"),
            "customer_id": customer_id,
            "amount_due": 9900,
            "currency": "usd",
            "attempt": 1,
            "idempotency_key": f"bos-invoice-{invoice_id}-1",
            "billing_reason": "subscription_cycle",
            "description": "Pro (monthly)",
            "period_start": now,
            "created_at": now,
            **fields,
        }
    )
    return Envelope.wrap(event, producer="subscriptions", org_id="org_t")


async def a_checkout(rt: CheckoutRuntime, **values: Any) -> tuple[str, Any]:
    """(checkout id, its customer): an open $99/month checkout of org_t, expiring in an
    hour; `values` override any column."""
    price = price_snapshot()
    checkout_id = new_id("cs")
    async with rt.db.transaction() as s:
        # Straight to the tables: the state a test starts from, not a creation.
        customer = (
            await s.execute(
                insert(customers)
                .values(
                    id=new_id("cus"), org_id="org_t", email=f"{uuid.uuid4().hex}@x.com", name="Ada"
                )
                .returning(*customers.c)
            )
        ).one()
        await s.execute(
            insert(checkout_sessions).values(
                **{
                    "id": checkout_id,
                    "org_id": "org_t",
                    "client_secret_hash": "x",
                    "price_id": price.price_id,
                    "product_id": price.product_id,
                    "price": price.model_dump(mode="json"),
                    "currency": "usd",
                    "amount_subtotal": 9900,
                    "amount_discount": 0,
                    "amount_total": 9900,
                    "setup_fee": 0,
                    "is_free": False,
                    "trial_days": 0,
                    "customer_id": customer.id,
                    "customer_email": customer.email,
                    "expires_at": datetime.now(UTC) + timedelta(hours=1),
                    **values,
                }
            )
        )
    return checkout_id, customer
