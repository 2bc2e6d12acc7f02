"""Public routes of the tokens service (thin: parse, call service.py, shape the response).

Who may call what (docs/api.md "Principals"): the admin token creates and manages
organizations; an API key manages its own organization, its keys and its session and
portal tokens. The gateway has already authenticated the caller.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from bos_common.app import CurrentIdentity, Runtime, Session
from bos_common.auth import Identity, PrincipalType, require
from tokens import service
from tokens.schemas import (
    AdminUpdateOrganization,
    ApiKeyList,
    ApiKeyOut,
    ApiKeyWithSecret,
    CreateApiKey,
    CreatedOrganization,
    CreatedSessionToken,
    CreateOrganization,
    CreatePortalSession,
    CreateSessionToken,
    OrganizationOut,
    PortalSessionOut,
    SessionTokenOut,
    UpdateOrganization,
)
from tokens.settings import TokensSettings
from tokens.token_store import SessionTokenStore

router = APIRouter()


def principal(*types: PrincipalType) -> object:
    """The caller's identity, required to be one of `types` (401/403 before the body is
    even validated)."""

    async def dependency(identity: CurrentIdentity) -> Identity:
        return require(identity, *types)

    return Depends(dependency)


Admin = Annotated[Identity, principal("admin")]
ApiKey = Annotated[Identity, principal("api_key")]


async def _token_store(request: Request) -> SessionTokenStore:
    store: SessionTokenStore = request.app.state.session_token_store
    return store


TokenStore = Annotated[SessionTokenStore, Depends(_token_store)]


def _settings(runtime: Runtime) -> TokensSettings:
    settings = runtime.settings
    assert isinstance(settings, TokensSettings)
    return settings


# --- organizations -----------------------------------------------------------------------


@router.post(
    "/admin/organizations",
    status_code=201,
    response_model=CreatedOrganization,
    summary="Create an organization and its first API key (admin token)",
)
async def create_organization(
    body: CreateOrganization, session: Session, identity: Admin, runtime: Runtime
) -> CreatedOrganization:
    return await service.create_organization(runtime, session, body)


@router.get(
    "/admin/organizations/{org_id}",
    response_model=OrganizationOut,
    summary="An organization (admin token)",
)
async def admin_get_organization(org_id: str, session: Session, identity: Admin) -> OrganizationOut:
    return await service.get_organization(session, org_id)


@router.patch(
    "/admin/organizations/{org_id}",
    response_model=OrganizationOut,
    summary="Change an organization, including its rate limits (admin token)",
)
async def admin_update_organization(
    org_id: str,
    body: AdminUpdateOrganization,
    session: Session,
    identity: Admin,
    runtime: Runtime,
) -> OrganizationOut:
    changes = body.model_dump(exclude_unset=True)
    return await service.update_organization(runtime, session, org_id, changes)


@router.get("/v1/organization", response_model=OrganizationOut, summary="Your organization")
async def get_organization(session: Session, identity: ApiKey) -> OrganizationOut:
    assert identity.org_id
    return await service.get_organization(session, identity.org_id)


@router.patch(
    "/v1/organization", response_model=OrganizationOut, summary="Change your organization"
)
async def update_organization(
    body: UpdateOrganization, session: Session, identity: ApiKey, runtime: Runtime
) -> OrganizationOut:
    assert identity.org_id
    changes = body.model_dump(exclude_unset=True)
    return await service.update_organization(runtime, session, identity.org_id, changes)


# --- API keys ----------------------------------------------------------------------------


@router.post(
    "/v1/api-keys",
    status_code=201,
    response_model=ApiKeyWithSecret,
    summary="Create an API key (the secret is shown once)",
)
async def create_api_key(
    body: CreateApiKey, session: Session, identity: ApiKey
) -> ApiKeyWithSecret:
    return await service.create_api_key_for(
        session, identity, name=body.name, expires_at=body.expires_at
    )


@router.get("/v1/api-keys", response_model=ApiKeyList, summary="List your API keys")
async def list_api_keys(
    session: Session,
    identity: ApiKey,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: Annotated[str | None, Query(max_length=64)] = None,
) -> ApiKeyList:
    assert identity.org_id
    return await service.list_api_keys(
        session, identity.org_id, limit=limit, starting_after=starting_after
    )


@router.delete("/v1/api-keys/{key_id}", response_model=ApiKeyOut, summary="Revoke an API key")
async def revoke_api_key(
    key_id: str, session: Session, identity: ApiKey, runtime: Runtime
) -> ApiKeyOut:
    assert identity.org_id
    return await service.revoke_api_key(runtime, session, identity.org_id, key_id)


# --- session and portal tokens -----------------------------------------------------------


@router.post(
    "/v1/session-tokens",
    status_code=201,
    response_model=CreatedSessionToken,
    summary="Mint a session token for one of your users",
)
async def create_session_token(
    body: CreateSessionToken, identity: ApiKey, runtime: Runtime, store: TokenStore
) -> CreatedSessionToken:
    keys = service.session_keys(_settings(runtime).session_secrets)
    return await service.create_session_token(store, keys, identity, body)


@router.delete(
    "/v1/session-tokens/{token_id}",
    response_model=SessionTokenOut,
    summary="Revoke a session or portal token at once",
)
async def revoke_session_token(
    token_id: str, session: Session, identity: ApiKey, runtime: Runtime
) -> SessionTokenOut:
    assert identity.org_id
    return await service.revoke_session_token(runtime, session, identity.org_id, token_id)


@router.post(
    "/v1/portal-sessions",
    status_code=201,
    response_model=PortalSessionOut,
    summary="Open a customer portal session for one of your customers",
)
async def create_portal_session(
    body: CreatePortalSession, identity: ApiKey, runtime: Runtime, store: TokenStore
) -> PortalSessionOut:
    settings = _settings(runtime)
    await service.customer_exists(
        settings.checkout_url, settings.internal_secret, identity, body.customer_id
    )
    keys = service.session_keys(settings.session_secrets)
    return await service.create_portal_session(
        store, keys, identity, body, public_url=settings.public_url
    )
