"""Domain logic of the tokens service: organizations, API keys, session and portal
tokens. Never commits (the request or worker scope does)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import string
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.app import ServiceRuntime
from bos_common.auth import Identity
from bos_common.errors import (
    AuthenticationError,
    BOSError,
    Conflict,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
)
from bos_common.events import (
    ApiKeyRevokedV1,
    OrganizationUpdatedV1,
    PayoutSchedule,
    SessionTokenRevokedV1,
)
from bos_common.internal import InternalClient
from bos_common.session_tokens import SessionKeys, new_token_id
from tokens import repository
from tokens.schemas import (
    ApiKeyList,
    ApiKeyOut,
    ApiKeyWithSecret,
    CreatedOrganization,
    CreatedSessionToken,
    CreateOrganization,
    CreatePortalSession,
    CreateSessionToken,
    GatewaySnapshot,
    OrganizationGatewaySettings,
    OrganizationOut,
    PortalSessionOut,
    ResolvedApiKey,
    RevokedToken,
    SessionTokenOut,
)
from tokens.token_store import SessionTokenStore

log = logging.getLogger("tokens.service")

INVALID_API_KEY = ("invalid_api_key", "Invalid API key provided.")
API_KEY_SECRET = re.compile(r"sk_(test|live)_([A-Za-z0-9]{40})")
_ALPHABET = string.ascii_letters + string.digits
LOOKUP_LENGTH = 12


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@lru_cache(maxsize=4)
def session_keys(spec: str) -> SessionKeys:
    return SessionKeys.parse(spec)


# --- organizations -----------------------------------------------------------------------


def organization_out(row: Row[Any]) -> OrganizationOut:
    return OrganizationOut(
        id=row.id,
        name=row.name,
        platform_fee_bps=row.platform_fee_bps,
        allowed_origins=row.allowed_origins,
        stripe_account_id=row.stripe_account_id,
        payout_schedule=row.payout_schedule,
        rate_limits=row.rate_limits,
        notification_email=row.notification_email,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def organization_event(row: Row[Any]) -> OrganizationUpdatedV1:
    return OrganizationUpdatedV1(
        org_id=row.id,
        version=row.version,
        name=row.name,
        platform_fee_bps=row.platform_fee_bps,
        allowed_origins=row.allowed_origins,
        stripe_account_id=row.stripe_account_id,
        payout_schedule=PayoutSchedule.model_validate(row.payout_schedule),
        rate_limits=row.rate_limits,
        updated_at=row.updated_at,
    )


async def create_organization(
    runtime: ServiceRuntime, session: AsyncSession, body: CreateOrganization
) -> CreatedOrganization:
    org_id = new_id("org")
    async with _stripe_account_unique():
        row = await repository.insert_organization(
            session,
            id=org_id,
            name=body.name,
            platform_fee_bps=body.platform_fee_bps,
            allowed_origins=body.allowed_origins,
            stripe_account_id=body.stripe_account_id,
            payout_schedule=body.payout_schedule.model_dump(exclude_none=True),
            rate_limits=body.rate_limits,
            notification_email=body.notification_email,
        )
    key = await create_api_key(
        session, org_id, mode="live" if body.livemode else "test", name="Default key"
    )
    await runtime.publish(session, organization_event(row), org_id=org_id)
    return CreatedOrganization(**organization_out(row).model_dump(), api_key=key)


@asynccontextmanager
async def _stripe_account_unique() -> AsyncIterator[None]:
    try:
        yield
    except IntegrityError as exc:
        if "uq_organizations_stripe_account_id" not in str(exc.orig):
            raise
        raise Conflict(
            "stripe_account_in_use",
            "This Stripe account is connected to another organization.",
            param="stripe_account_id",
        ) from None


async def organization_for_stripe_account(session: AsyncSession, account: str) -> dict[str, str]:
    """Which organization a Stripe connected account belongs to (webhooks ask)."""
    row = await repository.organization_by_stripe_account(session, account)
    if row is None:
        raise NotFound("stripe_account_not_found", "Stripe account not found")
    return {"stripe_account_id": account, "org_id": row.id}


async def connected_stripe_accounts(session: AsyncSession) -> list[dict[str, str]]:
    """Every organization's Stripe connected account (webhooks reconcile their events)."""
    rows = await repository.connected_stripe_accounts(session)
    return [{"stripe_account_id": r.stripe_account_id, "org_id": r.id} for r in rows]


async def get_organization(session: AsyncSession, org_id: str) -> OrganizationOut:
    row = await repository.get_organization(session, org_id)
    if row is None:
        raise NotFound("organization_not_found", "Organization not found")
    return organization_out(row)


async def update_organization(
    runtime: ServiceRuntime, session: AsyncSession, org_id: str, changes: dict[str, Any]
) -> OrganizationOut:
    """Apply the fields the caller sent (`model_dump(exclude_unset=True)`)."""
    if "payout_schedule" in changes and changes["payout_schedule"] is not None:
        schedule = {k: v for k, v in changes["payout_schedule"].items() if v is not None}
        # `{}` is the default schedule (what the model's defaults say), stored complete.
        changes["payout_schedule"] = {"interval": "daily", **schedule}
    for field in ("name", "platform_fee_bps", "payout_schedule", "allowed_origins", "rate_limits"):
        if field in changes and changes[field] is None:
            raise InvalidRequest("parameter_invalid", f"{field} cannot be null.", param=field)
    if not changes:
        return await get_organization(session, org_id)
    async with _stripe_account_unique():
        row = await repository.update_organization(session, org_id, changes)
    if row is None:
        raise NotFound("organization_not_found", "Organization not found")
    await runtime.publish(session, organization_event(row), org_id=org_id)
    return organization_out(row)


# --- API keys ----------------------------------------------------------------------------


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_out(row: Row[Any]) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        name=row.name,
        livemode=row.mode == "live",
        redacted_secret=f"sk_{row.mode}_...{row.last4}",
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


async def create_api_key(
    session: AsyncSession,
    org_id: str,
    *,
    mode: str,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> ApiKeyWithSecret:
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise InvalidRequest(
            "parameter_invalid", "expires_at must be in the future.", param="expires_at"
        )
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(40))
    secret = f"sk_{mode}_{random_part}"
    row = await repository.insert_api_key(
        session,
        id=new_id("key"),
        org_id=org_id,
        mode=mode,
        lookup=random_part[:LOOKUP_LENGTH],
        secret_hash=_hash(secret),
        last4=random_part[-4:],
        name=name,
        expires_at=expires_at,
    )
    return ApiKeyWithSecret(**api_key_out(row).model_dump(), secret=secret)


async def create_api_key_for(
    session: AsyncSession, identity: Identity, *, name: str | None, expires_at: datetime | None
) -> ApiKeyWithSecret:
    """A new key of the same mode (test/live) as the key making the request."""
    assert identity.org_id and identity.principal_id
    caller = await repository.get_api_key(session, identity.org_id, identity.principal_id)
    mode = caller.mode if caller is not None else "test"
    return await create_api_key(
        session, identity.org_id, mode=mode, name=name, expires_at=expires_at
    )


async def list_api_keys(
    session: AsyncSession, org_id: str, *, limit: int, starting_after: str | None
) -> ApiKeyList:
    rows = await repository.list_api_keys(
        session, org_id, limit=limit, starting_after=starting_after
    )
    return ApiKeyList(data=[api_key_out(r) for r in rows[:limit]], has_more=len(rows) > limit)


async def revoke_api_key(
    runtime: ServiceRuntime, session: AsyncSession, org_id: str, key_id: str
) -> ApiKeyOut:
    row = await repository.revoke_api_key(session, org_id, key_id)
    if row is not None:
        await runtime.publish(
            session,
            ApiKeyRevokedV1(key_id=row.id, org_id=org_id, revoked_at=row.revoked_at),
            org_id=org_id,
        )
        return api_key_out(row)
    existing = await repository.get_api_key(session, org_id, key_id)
    if existing is None:
        raise NotFound("api_key_not_found", "API key not found")
    return api_key_out(existing)  # already revoked: nothing more to do


async def resolve_api_key(session: AsyncSession, secret: str) -> ResolvedApiKey:
    """Who a secret belongs to, or 401 `invalid_api_key` (unknown, revoked, expired)."""
    match = API_KEY_SECRET.fullmatch(secret)
    if match is None:
        raise AuthenticationError(*INVALID_API_KEY)
    mode, random_part = match.groups()
    row = await repository.api_key_by_lookup(session, random_part[:LOOKUP_LENGTH])
    computed = _hash(secret)
    stored = row.secret_hash if row is not None else _hash("")
    matches = hmac.compare_digest(stored, computed)
    now = datetime.now(UTC)
    if (
        row is None
        or not matches
        or row.mode != mode
        or row.revoked_at is not None
        or (row.expires_at is not None and row.expires_at <= now)
    ):
        raise AuthenticationError(*INVALID_API_KEY)
    await repository.touch_api_key(session, row.id)
    return ResolvedApiKey(
        key_id=row.id, org_id=row.org_id, livemode=mode == "live", expires_at=row.expires_at
    )


# --- session and portal tokens -----------------------------------------------------------


async def create_session_token(
    store: SessionTokenStore, keys: SessionKeys, identity: Identity, body: CreateSessionToken
) -> CreatedSessionToken:
    assert identity.org_id
    token, claims = keys.mint(
        org=identity.org_id, sub=body.external_user_id, scope="session", expires_in=body.expires_in
    )
    created_at = datetime.fromtimestamp(claims.iat, UTC)
    expires_at = datetime.fromtimestamp(claims.exp, UTC)
    await store.insert(
        {
            "id": claims.jti,
            "org_id": identity.org_id,
            "scope": "session",
            "external_user_id": body.external_user_id,
            "customer_id": None,
            "api_key_id": identity.principal_id,
            "kid": claims.kid,
            "metadata": body.metadata,
            "created_at": created_at,
            "expires_at": expires_at,
        },
    )
    return CreatedSessionToken(
        id=claims.jti,
        token=token,
        external_user_id=body.external_user_id,
        metadata=body.metadata,
        created_at=created_at,
        expires_at=expires_at,
    )


def session_token_out(row: Row[Any]) -> SessionTokenOut:
    return SessionTokenOut(
        id=row.id,
        external_user_id=row.external_user_id,
        metadata=row.metadata,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


async def revoke_session_token(
    runtime: ServiceRuntime, session: AsyncSession, org_id: str, token_id: str
) -> SessionTokenOut:
    row = await repository.revoke_session_token(session, org_id, token_id)
    if row is not None:
        await runtime.publish(
            session,
            SessionTokenRevokedV1(
                token_id=row.id,
                org_id=org_id,
                scope=row.scope,
                external_user_id=row.external_user_id,
                customer_id=row.customer_id,
                expires_at=row.expires_at,
                revoked_at=row.revoked_at,
            ),
            org_id=org_id,
        )
        return session_token_out(row)
    existing = await repository.get_session_token(session, org_id, token_id)
    if existing is None:
        raise NotFound("session_token_not_found", "Session token not found")
    return session_token_out(existing)  # already revoked


async def customer_exists(
    checkout_url: str | None, secret: str, identity: Identity, customer_id: str
) -> None:
    """The checkout service owns customers: 404 `customer_not_found` unless it knows
    this one in the caller's organization (`GET /internal/customers/{id}` on its side)."""
    if not checkout_url:
        raise ServiceUnavailable(
            "dependency_unavailable", "Customer lookups are not configured, please retry later."
        )
    client = InternalClient(checkout_url, caller="tokens", secret=secret, timeout=5.0)
    try:
        await client.request("GET", f"/internal/customers/{customer_id}", on_behalf_of=identity)
    except BOSError as exc:
        if exc.status_code == 404:
            raise NotFound("customer_not_found", "Customer not found") from None
        if exc.status_code >= 500:
            raise
        log.warning("customer lookup answered %s %s", exc.status_code, exc.code)
        raise ServiceUnavailable(
            "dependency_unavailable", "A dependency is unavailable, please retry."
        ) from None
    finally:
        await client.close()


async def create_portal_session(
    store: SessionTokenStore,
    keys: SessionKeys,
    identity: Identity,
    body: CreatePortalSession,
    *,
    public_url: str,
) -> PortalSessionOut:
    """A portal token bound to `body.customer_id` (whose existence the caller checked)."""
    assert identity.org_id
    token, claims = keys.mint(
        org=identity.org_id,
        sub=body.customer_id,
        scope="portal",
        cus=body.customer_id,
        expires_in=body.expires_in,
        jti=new_token_id("ps"),
    )
    created_at = datetime.fromtimestamp(claims.iat, UTC)
    expires_at = datetime.fromtimestamp(claims.exp, UTC)
    await store.insert(
        {
            "id": claims.jti,
            "org_id": identity.org_id,
            "scope": "portal",
            "external_user_id": None,
            "customer_id": body.customer_id,
            "api_key_id": identity.principal_id,
            "kid": claims.kid,
            "metadata": {},
            "created_at": created_at,
            "expires_at": expires_at,
        },
    )
    return PortalSessionOut(
        id=claims.jti,
        token=token,
        # A fragment never reaches a server log or a Referer header.
        url=f"{public_url.rstrip('/')}/portal#token={token}",
        customer_id=body.customer_id,
        created_at=created_at,
        expires_at=expires_at,
    )


# --- for the gateways --------------------------------------------------------------------


async def gateway_snapshot(session: AsyncSession) -> GatewaySnapshot:
    revoked = await repository.revoked_unexpired_tokens(session)
    return GatewaySnapshot(
        revoked_tokens=[RevokedToken(id=r.id, expires_at=r.expires_at) for r in revoked],
        organizations=await organizations_for_gateways(session),
    )


async def organizations_for_gateways(
    session: AsyncSession, *, allowing_origin: str | None = None
) -> list[OrganizationGatewaySettings]:
    orgs = await repository.organizations_for_gateways(session, allowing_origin=allowing_origin)
    return [
        OrganizationGatewaySettings(
            id=o.id, version=o.version, allowed_origins=o.allowed_origins, rate_limits=o.rate_limits
        )
        for o in orgs
    ]
