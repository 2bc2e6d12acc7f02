"""All SQL of the tokens service."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import orjson
from sqlalchemy import Row, and_, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.db import asyncpg_dsn
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


async def organizations_for_gateways(session: AsyncSession) -> list[Row[Any]]:
    o = organizations
    result = await session.execute(
        select(o.c.id, o.c.version, o.c.allowed_origins, o.c.rate_limits)
    )
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


# The minting hot path bypasses the ORM engine: one prepared INSERT on a fixed-size asyncpg
# pool of its own. Measured under 50 concurrent requests: the engine's pool (pool_size
# plus as many overflow connections, closed again on return) opened a new Postgres
# connection every ~11 requests (TLS attempt, backend fork), and SQLAlchemy's execute
# path cost more CPU than the statement itself. A fixed pool queues the excess instead.
# One statement is its own transaction: nothing else is written with a token (no
# outbox event: minting publishes nothing), so there is no BEGIN/COMMIT round trip.
_INSERT_SESSION_TOKEN = """
    INSERT INTO session_tokens
        (id, org_id, scope, external_user_id, customer_id, api_key_id, kid, metadata,
         created_at, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)
"""


# A connection of this pool only ever runs that one statement outside a transaction: it
# holds no session state (no LISTEN, cursor, advisory lock or SET) to clear, so asyncpg's
# default reset on release (`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
# RESET ALL`, one more round trip per INSERT) is skipped. A broken connection is still
# discarded by the pool.
async def _no_reset(connection: asyncpg.Connection) -> None:
    return None


# How long a request waits for a pool connection before answering 503 (the engine's
# pool_timeout, for the same reason: fail fast while Postgres is unreachable).
ACQUIRE_TIMEOUT_SECONDS = 5.0


class SessionTokenStore:
    """Writes minted session and portal tokens. The pool is opened on first use (so an
    app built without its lifespan, as in tests, works too) and again after a failed
    open; `close()` at shutdown."""

    def __init__(self, database_url: str, schema: str, *, size: int) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._schema = schema
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._opening: asyncio.Lock | None = None

    async def _open(self) -> asyncpg.Pool:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=self._size,
                    timeout=5,
                    command_timeout=30,
                    reset=_no_reset,
                    server_settings={
                        "search_path": self._schema,
                        "application_name": f"{self._schema}-mint",
                    },
                )
            return self._pool

    async def insert(self, values: dict[str, Any]) -> None:
        pool = self._pool or await self._open()
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
            await conn.execute(
                _INSERT_SESSION_TOKEN,
                values["id"],
                values["org_id"],
                values["scope"],
                values["external_user_id"],
                values["customer_id"],
                values["api_key_id"],
                values["kid"],
                orjson.dumps(values["metadata"]).decode(),
                values["created_at"],
                values["expires_at"],
            )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


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


async def revoked_unexpired_tokens(session: AsyncSession) -> list[Row[Any]]:
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
