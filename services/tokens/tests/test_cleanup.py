"""Plan 15.6: the cleanup job deletes expired tokens in set-based batches.

The plan asks 1,000 expired sessions in under 5 s (always run). The issue's benchmark,
1,000,000 expired rows in under 10 s, runs when BOS_BENCH_CLEANUP=1 (it needs ~30 s to
seed): `BOS_BENCH_CLEANUP=1 scripts/test.sh services/tokens/tests/test_cleanup.py -q -s`.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from bos_common.app import ServiceRuntime
from tokens import worker
from tokens.models import session_tokens

pytestmark = pytest.mark.integration

SEED = text(
    """
    INSERT INTO session_tokens (id, org_id, scope, external_user_id, kid, created_at, expires_at)
    SELECT :prefix || g, 'org_cleanup', 'session', 'user_' || g, 'k1',
           :created, :expires
    FROM generate_series(1, :n) AS g
    """
)


async def seed(runtime: ServiceRuntime, prefix: str, n: int, expires: datetime) -> None:
    async with runtime.db.transaction() as session:
        await session.execute(
            SEED,
            {"prefix": prefix, "n": n, "created": expires - timedelta(hours=1), "expires": expires},
        )


async def count(runtime: ServiceRuntime, prefix: str) -> int:
    async with runtime.db.transaction() as session:
        stmt = select(func.count()).where(session_tokens.c.id.like(f"{prefix}%"))
        return int((await session.execute(stmt)).scalar_one())


async def test_15_6_cleanup_of_1000_expired_sessions_under_5_seconds(
    runtime: ServiceRuntime,
) -> None:
    now = datetime.now(UTC)
    await seed(runtime, "sess_cleanold", 1000, now - timedelta(days=2))
    await seed(runtime, "sess_cleanrecent", 10, now - timedelta(minutes=5))  # in retention
    await seed(runtime, "sess_cleanlive", 10, now + timedelta(hours=1))
    started = time.perf_counter()
    deleted = await worker.delete_expired_tokens(runtime.db, retention=timedelta(days=1), batch=300)
    elapsed = time.perf_counter() - started
    assert deleted >= 1000  # other tests' long-expired rows may go too
    assert await count(runtime, "sess_cleanold") == 0
    assert await count(runtime, "sess_cleanrecent") == 10
    assert await count(runtime, "sess_cleanlive") == 10
    assert elapsed < 5, elapsed
    # Nothing left to do: a second run deletes nothing.
    assert (
        await worker.delete_expired_tokens(runtime.db, retention=timedelta(days=1), batch=300) == 0
    )


@pytest.mark.skipif(
    os.environ.get("BOS_BENCH_CLEANUP") != "1",
    reason="benchmark: set BOS_BENCH_CLEANUP=1 (seeds 1,000,000 rows)",
)
async def test_15_6_benchmark_one_million_expired_rows_under_10_seconds(
    runtime: ServiceRuntime,
) -> None:
    now = datetime.now(UTC)
    for chunk in range(10):
        await seed(runtime, f"sess_bench{chunk}_", 100_000, now - timedelta(days=2))
    async with runtime.db.transaction() as session:
        await session.execute(text("ANALYZE session_tokens"))
    started = time.perf_counter()
    deleted = await worker.delete_expired_tokens(
        runtime.db,
        retention=timedelta(days=1),
        batch=runtime.settings.cleanup_batch_size,  # type: ignore[attr-defined]
    )
    elapsed = time.perf_counter() - started
    print(f"\ncleanup: deleted {deleted:,} expired rows in {elapsed:.2f} s")
    assert deleted >= 1_000_000
    assert elapsed < 10, elapsed
