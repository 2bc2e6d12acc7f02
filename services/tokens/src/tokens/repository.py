"""All SQL of the tokens service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row, and_, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tokens.models import api_keys, organizations, session_tokens

# --- organizations -------------------------------------------------------------------


async def insert_organization(session: AsyncSession, **values: Any) -> Row[Any]:
    result = await session.execute(insert(organizations).values(**values).returning(organizations))
    return result.one()


async def get_organization(session: AsyncSession, org_id: str) -> Row[Any] | None:
    result = await session.execute(select(organizations).where(organizations.c.id == org_id))
    return result.first()


async def organization_by_stripe_account(session: AsyncSession, account: str) -> Row[Any] | None:
    o = organizations
    result = await session.execute(select(o.c.id).where(o.c.stripe_account_id == account))
    return result.first()


async def connected_stripe_accounts(session: AsyncSession) -> list[Row[Any, Any]]:
    o = organizations
    result = await session.execute(
        select(o.c.id, o.c.stripe_account_id)
        .where(o.c.stripe_account_id.is_not(None))
        .order_by(o.c.stripe_account_id)
    )
    return list(result.all())


async def update_organization(
    session: AsyncSession, org_id: str, values: dict[str, Any]
) -> Row[Any] | None:
    """Apply `values`, bump the version; the new row (None for an unknown org)."""
    result = await session.execute(
        update(organizations)
        .where(organizations.c.id == org_id)
        .values(**values, version=organizations.c.version + 1, updated_at=func.now())
        .returning(organizations)
    )
    return result.first()


async def organizations_for_gateways(
    session: AsyncSession, *, allowing_origin: str | None = None
) -> list[Row[Any, Any, Any, Any]]:
    """Every organization's gateway settings, or those whose `allowed_origins` hold one."""
    o = organizations
    query = select(o.c.id, o.c.version, o.c.allowed_origins, o.c.rate_limits)
    if allowing_origin is not None:
        query = query.where(o.c.allowed_origins.contains([allowing_origin]))
    result = await session.execute(query)
    return list(result.all())


# --- API keys --------------------------------------------------------------------------


async def insert_api_key(session: AsyncSession, **values: Any) -> Row[Any]:
    result = await session.execute(insert(api_keys).values(**values).returning(api_keys))
    return result.one()


async def api_key_by_lookup(session: AsyncSession, lookup: str) -> Row[Any] | None:
    result = await session.execute(select(api_keys).where(api_keys.c.lookup == lookup))
    return result.first()


async def touch_api_key(session: AsyncSession, key_id: str) -> None:
    """Record use, at most once a minute per key (resolution is cached by gateways)."""
    k = api_keys
    await session.execute(
        update(k)
        .where(
            k.c.id == key_id,
            or_(
                k.c.last_used_at.is_(None),
                k.c.last_used_at < func.now() - text("interval '1 minute'"),
            ),
        )
        .values(last_used_at=func.now())
    )


async def list_api_keys(
    session: AsyncSession, org_id: str, *, limit: int, starting_after: str | None
) -> list[Row[Any]]:
    """Newest first; `limit + 1` rows so the caller can tell `has_more`."""
    k = api_keys
    stmt = select(k).where(k.c.org_id == org_id)
    if starting_after is not None:
        cursor = (
            select(k.c.created_at, k.c.id)
            .where(k.c.org_id == org_id, k.c.id == starting_after)
            .subquery()
        )
        stmt = stmt.where(
            or_(
                k.c.created_at < select(cursor.c.created_at).scalar_subquery(),
                and_(
                    k.c.created_at == select(cursor.c.created_at).scalar_subquery(),
                    k.c.id < starting_after,
                ),
            )
        )
    stmt = stmt.order_by(k.c.created_at.desc(), k.c.id.desc()).limit(limit + 1)
    return list((await session.execute(stmt)).all())


async def revoke_api_key(session: AsyncSession, org_id: str, key_id: str) -> Row[Any] | None:
    """Revoke if not yet revoked; the row when this call revoked it, else None."""
    k = api_keys
    result = await session.execute(
        update(k)
        .where(k.c.org_id == org_id, k.c.id == key_id, k.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(k)
    )
    return result.first()


async def get_api_key(session: AsyncSession, org_id: str, key_id: str) -> Row[Any] | None:
    k = api_keys
    result = await session.execute(select(k).where(k.c.org_id == org_id, k.c.id == key_id))
    return result.first()


# --- session and portal tokens ---------------------------------------------------------


# Minted tokens are written on the driver connection (Database.driver_connection):
# SQLAlchemy's execute path cost more CPU than the statement itself. One INSERT writes the
# rows of the tokens minted together (tokens.token_store), atomic on its own.
_INSERT_SESSION_TOKENS = """
    INSERT INTO session_tokens
        (id, org_id, scope, external_user_id, customer_id, api_key_id, kid, metadata,
         created_at, expires_at)
    SELECT id, org_id, scope, external_user_id, customer_id, api_key_id, kid,
           metadata::jsonb, created_at, expires_at
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[])
        AS t(id, org_id, scope, external_user_id, customer_id, api_key_id, kid, metadata,
             created_at, expires_at)
"""
SESSION_TOKEN_COLUMNS = (
    "id",
    "org_id",
    "scope",
    "external_user_id",
    "customer_id",
    "api_key_id",
    "kid",
    "metadata",
    "created_at",
    "expires_at",
)
SessionTokenRecord = tuple[Any, ...]
"""A token's values in SESSION_TOKEN_COLUMNS order, `metadata` as JSON text."""


def session_token_record(values: dict[str, Any]) -> SessionTokenRecord:
    return tuple(values[c] for c in SESSION_TOKEN_COLUMNS[:7]) + (
        orjson.dumps(values["metadata"]).decode(),
        values["created_at"],
        values["expires_at"],
    )


async def insert_session_tokens(conn: Any, records: list[SessionTokenRecord]) -> None:
    """One INSERT of these tokens' rows, on a driver connection (asyncpg) the caller holds."""
    await conn.execute(_INSERT_SESSION_TOKENS, *(list(c) for c in zip(*records, strict=True)))


async def revoke_session_token(
    session: AsyncSession, org_id: str, token_id: str
) -> Row[Any] | None:
    """Revoke if not yet revoked; the row when this call revoked it, else None."""
    t = session_tokens
    result = await session.execute(
        update(t)
        .where(t.c.org_id == org_id, t.c.id == token_id, t.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(t)
    )
    return result.first()


async def get_session_token(session: AsyncSession, org_id: str, token_id: str) -> Row[Any] | None:
    t = session_tokens
    result = await session.execute(select(t).where(t.c.org_id == org_id, t.c.id == token_id))
    return result.first()


async def revoked_unexpired_tokens(session: AsyncSession) -> list[Row[Any, Any]]:
    t = session_tokens
    result = await session.execute(
        select(t.c.id, t.c.expires_at).where(
            t.c.revoked_at.is_not(None), t.c.expires_at > func.now()
        )
    )
    return list(result.all())


# Set-based batches: a ctid list from the expires_at index, deleted in one statement.
# SKIP LOCKED lets several replicas run the job at once on disjoint rows.
_DELETE_EXPIRED_BATCH = text(
    """
    DELETE FROM session_tokens
    WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM session_tokens
        WHERE expires_at < :before
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ))
    """
)


async def delete_expired_batch(session: AsyncSession, *, before: datetime, batch: int) -> int:
    result = await session.execute(_DELETE_EXPIRED_BATCH, {"before": before, "batch": batch})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
