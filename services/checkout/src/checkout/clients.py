"""What checkout asks other services, over their internal APIs (never their schemas).

- catalog: the price snapshot and coupon evaluation;
- tokens: the organization's billing settings (platform fee, connected account, payouts);
- subscriptions: every live subscription, once, to fill the projection below on a
  database that predates it (checkout.backfill).

(Which products a customer is already subscribed to, 8.2, is a local query on the
projection of subscription.* events (projection_repository); a 409 it would cause is
confirmed with subscriptions first: held_subscription_ids.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bos_common.events import AppliedCoupon, PriceSnapshot
from bos_common.internal import InternalClient

ORG_CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class CouponOutcome:
    coupon: AppliedCoupon
    amount_discount: int


@dataclass(frozen=True)
class OrganizationBilling:
    org_id: str
    platform_fee_bps: int
    stripe_account_id: str | None
    payout_schedule: dict[str, Any]


class CatalogClient:
    def __init__(self, client: InternalClient) -> None:
        self._client = client

    async def price_snapshot(self, org_id: str, price_id: str) -> PriceSnapshot:
        """Raises the catalog's own errors (product_not_found, price_not_available, ...)."""
        _, body = await self._client.request(
            "GET", f"/internal/orgs/{org_id}/prices/{price_id}/snapshot"
        )
        return PriceSnapshot.model_validate(body["snapshot"])

    async def evaluate_coupon(
        self, org_id: str, code: str, price: PriceSnapshot, *, customer_is_new: bool
    ) -> CouponOutcome:
        """The discount on `price`, or the catalog's reason the coupon does not apply
        (invalid_coupon, coupon_expired, coupon_not_applicable, ...). Read-only: an open
        checkout holds no redemption, so abandoned ones never starve a limited coupon."""
        return await self._coupon_call(
            f"/internal/orgs/{org_id}/coupons/evaluate", _coupon_body(code, price, customer_is_new)
        )

    async def reserve_coupon(
        self,
        org_id: str,
        code: str,
        price: PriceSnapshot,
        *,
        checkout_id: str,
        customer_id: str,
        customer_is_new: bool,
        ttl_seconds: int,
    ) -> CouponOutcome:
        """Hold one of the coupon's redemptions for this checkout right before money
        moves, until it completes (then redeemed) or the hold lapses: of concurrent
        confirms for the last slot exactly one wins, so `max_redemptions` holds."""
        body = _coupon_body(code, price, customer_is_new)
        body.update(checkout_id=checkout_id, customer_id=customer_id, ttl_seconds=ttl_seconds)
        return await self._coupon_call(f"/internal/orgs/{org_id}/coupons/reserve", body)

    async def _coupon_call(self, path: str, body: dict[str, Any]) -> CouponOutcome:
        _, answer = await self._client.request("POST", path, json=body)
        return CouponOutcome(
            coupon=AppliedCoupon.model_validate(answer["coupon"]),
            amount_discount=int(answer["amount_discount"]),
        )

    async def release_coupon(self, org_id: str, checkout_id: str) -> None:
        await self._client.request(
            "POST", f"/internal/orgs/{org_id}/coupons/release", json={"checkout_id": checkout_id}
        )


def _coupon_body(code: str, price: PriceSnapshot, customer_is_new: bool) -> dict[str, Any]:
    return {
        "code": code,
        "price_id": price.price_id,
        "product_id": price.product_id,
        "amount": price.amount,
        "currency": price.currency,
        "customer_is_new": customer_is_new,
    }


class SubscriptionsClient:
    def __init__(self, client: InternalClient) -> None:
        self._client = client

    async def live_subscriptions(
        self, after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of every live subscription, and where the next page starts (None: done)."""
        params = {"limit": str(limit)}
        if after:
            params["after"] = after
        _, body = await self._client.request("GET", "/internal/live-subscriptions", params=params)
        return list(body["data"]), body.get("next")

    async def held_subscription_ids(
        self, org_id: str, customer_id: str, product_id: str
    ) -> set[str]:
        """The customer's subscriptions to the product that subscriptions holds live now
        (trialing, active, past_due, incomplete)."""
        _, body = await self._client.request(
            "GET",
            f"/internal/customers/{customer_id}/active-products",
            params={"org_id": org_id},
        )
        return {s["subscription_id"] for s in body["data"] if s["product_id"] == product_id}


class OrganizationsClient:
    def __init__(self, client: InternalClient) -> None:
        self._client = client
        self._cache: dict[str, tuple[float, OrganizationBilling]] = {}

    async def billing(self, org_id: str, *, fresh: bool = False) -> OrganizationBilling:
        """The organization's billing settings, cached for ORG_CACHE_SECONDS unless `fresh`
        (what the merchant is shown must be what it last saved)."""
        now = time.monotonic()
        cached = self._cache.get(org_id)
        if cached and cached[0] > now and not fresh:
            return cached[1]
        _, body = await self._client.request("GET", f"/internal/organizations/{org_id}")
        billing = OrganizationBilling(
            org_id=org_id,
            platform_fee_bps=int(body.get("platform_fee_bps", 500)),
            stripe_account_id=body.get("stripe_account_id"),
            payout_schedule=body.get("payout_schedule") or {},
        )
        self._cache[org_id] = (now + ORG_CACHE_SECONDS, billing)
        return billing
