"""The floor: the least a FastAPI + asyncpg service can do on this machine.

Every benchmark run starts this app beside the stack and measures it in the same run,
so results are ratios to what bare FastAPI/uvicorn/asyncpg manage at that moment
(absolute numbers drift 25-50% on shared machines; see the `floor` scenario in bench/README.md).

    GET  /ping   -> {"status": "ok"}                          (no database)
    POST /items  -> one INSERT ... RETURNING into bench_floor.items

Run it the way the services run (the harness does this):

    DATABASE_URL=postgresql://postgres@127.0.0.1:55452/bos \\
    uvicorn bench.floor_app:app --port 28090 --loop uvloop --http httptools --no-access-log

`FLOOR_DB_POOL` (default 10) sizes the asyncpg pool; without `DATABASE_URL` only /ping works.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from fastapi import FastAPI, Request
from pydantic import BaseModel

SCHEMA = "bench_floor"
DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.items (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    amount integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""
INSERT = (
    f"INSERT INTO {SCHEMA}.items (name, amount) VALUES ($1, $2) "
    "RETURNING id, name, amount, created_at"
)


class ItemIn(BaseModel):
    name: str
    amount: int = 0


def asyncpg_dsn(url: str) -> str:
    """Accept the services' SQLAlchemy URL (postgresql+asyncpg://...) as well."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = os.environ.get("DATABASE_URL")
    pool: asyncpg.Pool | None = None
    if url:
        size = int(os.environ.get("FLOOR_DB_POOL", "10"))
        pool = await asyncpg.create_pool(asyncpg_dsn(url), min_size=size, max_size=size)
        async with pool.acquire() as conn:
            # Two workers may start at once: serialise the DDL on an advisory lock.
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(727274)")
                await conn.execute(DDL)
    app.state.pool = pool
    yield
    if pool is not None:
        await pool.close()


app = FastAPI(title="BOS bench floor", lifespan=lifespan, docs_url=None, redoc_url=None)


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/items", status_code=201)
async def create_item(item: ItemIn, request: Request) -> dict[str, Any]:
    pool: asyncpg.Pool = request.app.state.pool
    row = await pool.fetchrow(INSERT, item.name, item.amount)
    assert row is not None
    return {
        "id": row["id"],
        "name": row["name"],
        "amount": row["amount"],
        "created_at": row["created_at"].isoformat(),
    }
