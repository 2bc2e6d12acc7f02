"""Internal routes (`/internal/...`, never routed by the gateway): what the gateways and
the other services ask the tokens service. Only a signed `service` identity may call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from bos_common.app import Session
from bos_common.auth import Identity
from tokens import service
from tokens.api import principal
from tokens.schemas import (
    GatewaySnapshot,
    OrganizationGatewaySettings,
    OrganizationOut,
    ResolveApiKey,
    ResolvedApiKey,
)

router = APIRouter(prefix="/internal", include_in_schema=False)

Service = Annotated[Identity, principal("service")]


@router.post("/api-keys/resolve", response_model=ResolvedApiKey)
async def resolve_api_key(
    body: ResolveApiKey, session: Session, identity: Service
) -> ResolvedApiKey:
    """The key a secret belongs to, or 401 `invalid_api_key`."""
    return await service.resolve_api_key(session, body.secret)


@router.get("/gateway/snapshot", response_model=GatewaySnapshot)
async def gateway_snapshot(session: Session, identity: Service) -> GatewaySnapshot:
    """Revoked unexpired tokens and per-organization origins and rate limits: a gateway
    loads this at start and after every reconnection to the bus."""
    return await service.gateway_snapshot(session)


@router.get("/gateway/organizations", response_model=list[OrganizationGatewaySettings])
async def gateway_organizations(
    allowed_origin: str, session: Session, identity: Service
) -> list[OrganizationGatewaySettings]:
    """The organizations that allow a browser origin: a gateway confirms with this before
    it refuses a request its own copy does not know to be allowed."""
    return await service.organizations_for_gateways(session, allowing_origin=allowed_origin)


@router.get("/organizations/{org_id}", response_model=OrganizationOut)
async def get_organization(org_id: str, session: Session, identity: Service) -> OrganizationOut:
    """An organization's settings (platform fee, Stripe account, payout schedule)."""
    return await service.get_organization(session, org_id)


@router.get("/stripe-accounts/{account_id}")
async def stripe_account(account_id: str, session: Session, identity: Service) -> dict[str, str]:
    """The organization a Stripe connected account belongs to, or 404
    `stripe_account_not_found` (the webhooks service refuses events for foreign accounts)."""
    return await service.organization_for_stripe_account(session, account_id)


@router.get("/stripe-accounts")
async def stripe_accounts(session: Session, identity: Service) -> dict[str, list[dict[str, str]]]:
    """Every organization's Stripe connected account and organization (the webhooks
    service lists each account's events when it reconciles)."""
    return {"data": await service.connected_stripe_accounts(session)}
