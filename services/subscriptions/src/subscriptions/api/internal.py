"""Internal routes (service identity; the gateway never routes /internal)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from bos_common.app import CurrentIdentity, Session
from bos_common.auth import Identity, require
from bos_common.errors import NotFound
from subscriptions import repository
from subscriptions.api.deps import Rt
from subscriptions.runtime import SubscriptionsRuntime
from subscriptions.scheduler import drain
from subscriptions.schemas import (
    ClockRequest,
)

router = APIRouter()


# --- internal ---------------------------------------------------------------------------------


def _service(identity: Identity) -> None:
    require(identity, "service")


@router.get("/internal/customers/{customer_id}/active-products", include_in_schema=False)
async def active_products(
    customer_id: str, session: Session, identity: CurrentIdentity, org_id: str | None = None
) -> dict[str, Any]:
    _service(identity)
    org = identity.org_id or org_id
    rows = await repository.active_products(session, org, customer_id)
    return {
        "customer_id": customer_id,
        "org_id": org,
        "product_ids": sorted({r["product_id"] for r in rows}),
        "data": [
            {
                "subscription_id": r["id"],
                "product_id": r["product_id"],
                "status": r["status"],
                "is_free": r["is_free"],
            }
            for r in rows
        ],
    }


@router.get("/internal/live-subscriptions", include_in_schema=False)
async def live_subscriptions(
    session: Session,
    identity: CurrentIdentity,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> dict[str, Any]:
    """Every live subscription, a page at a time (checkout fills its projection of
    subscription.* events from it on a database that predates the projection)."""
    _service(identity)
    rows = await repository.live_subscriptions_page(session, after, limit)
    return {
        "data": [
            {
                "subscription_id": r["id"],
                "org_id": r["org_id"],
                "customer_id": r["customer_id"],
                "product_id": r["product_id"],
                "as_of": r["updated_at"].isoformat(),
            }
            for r in rows
        ],
        "next": rows[-1]["id"] if len(rows) == limit else None,
    }


def _clock_control(rt: SubscriptionsRuntime, identity: Identity) -> None:
    _service(identity)
    if not rt.settings.allow_clock_control:
        raise NotFound("not_found", "Not found")


@router.post("/internal/clock", include_in_schema=False)
async def set_clock(body: ClockRequest, identity: CurrentIdentity, rt: Rt) -> dict[str, Any]:
    from datetime import timedelta

    _clock_control(rt, identity)
    if body.reset:
        rt.clock.reset()
    if body.now is not None:
        rt.clock.set(body.now)
    if body.advance_seconds:
        rt.clock.advance(timedelta(seconds=body.advance_seconds))
    return {"now": rt.clock.now().isoformat()}


@router.post("/internal/scheduler/run", include_in_schema=False)
async def run_scheduler(identity: CurrentIdentity, rt: Rt) -> dict[str, Any]:
    _clock_control(rt, identity)
    return {"handled": await drain(rt)}
