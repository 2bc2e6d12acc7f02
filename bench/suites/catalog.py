"""Catalog scenarios (issue #5 "Benchmarks").

`catalog_products`: with 1,000,000 products across 100 organizations in `catalog.products`
(10,000 each, one monthly price per product), the first page and a deep cursor page (90%
down an organization's list) of `GET /v1/products` through the gateway with an API key,
the first page straight to catalog (what the hop adds), and the internal price snapshot
checkout calls, straight to catalog with a signed `service` identity.

Targets of the issue: listing through the gateway one-connection p99 < 10 ms and
>= 1,000 req/s at 50 connections; snapshot one-connection p99 < 3 ms service-local. The
same throughput target is also checked against the floor's `POST /items` measured in the
same run (1,000 / 6,737 req/s, the floor on a quiet machine in
bench/README.md, scenario `floor`), which survives a busy machine better than the
absolute number.

Seeding is set-based (two `INSERT ... SELECT` over `generate_series`, ids precomputed per
row position and per organization, then concatenated) and idempotent: 99 synthetic
organizations `org_bench001`..`org_bench099` are seeded once per database and kept; the
hundredth is a real organization created through the admin API on every run (its API key
is what the gateway authenticates), whose 10,000 products replace those of the previous
run's. Seeding from scratch takes tens of seconds (the time is in the scenario's notes),
which is why this scenario is opt-in: `scripts/bench.sh --scenario catalog_products`.

    .venv/bin/python -m bench.suites.catalog   # seed DATABASE_URL's catalog, print the times
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
from typing import Any

from bench.fixtures import create_org
from bench.procs import process_cpu_seconds
from bench.scenarios import MaxLatency, MinRps, RpsRatio, Scenario, Target, register
from bos_common.auth import IDENTITY_HEADER, Identity, sign_identity
from bos_common.db import asyncpg_dsn
from bos_common.ids import ALPHABET

ORGS = 100
PER_ORG = 10_000
SYNTHETIC = "org_bench"  # org_bench001 .. org_bench099
MARKER = "catalog_products"  # metadata.bench of every seeded product
# Issue #5 targets.
LIST_P99_MS = 10.0
LIST_RPS = 1000.0
SNAPSHOT_P99_MS = 3.0
# The floor's POST /items at 50 connections on a quiet machine (performance-floor.md).
FLOOR_ITEMS_RPS = 6737.0


# --------------------------------------------------------------------------- seeding


def _b62_sql(expr: str, width: int) -> str:
    """Fixed-width base62 of a bigint SQL expression, most significant digit first (the
    alphabet of bos_common.ids, so ids sort like the service's under COLLATE "C")."""
    digits = []
    for k in reversed(range(width)):
        if 62**k >= 2**63:  # beyond bigint: those digits are 0 for any bigint
            digits.append("'0'")
        else:
            digits.append(f"substr('{ALPHABET}', (({expr}) / {62**k} % 62)::int + 1, 1)")
    return " || ".join(digits)


# Ids have the service's shape (`prod_` + 8 base62 chars of the creation time in ms + 12
# more): the time part and a 10-char row part are computed once per row position (10,000
# rows), a 2-char organization part once per organization, and each of the 1,000,000 ids
# is a concatenation (computing base62 per product is what made the first seeder slow).
# Creation times spread over the past year; 10% archived, ~23% invisible, so every
# filter of GET /v1/products has real rows to skip. One monthly price per product.
SEED_SQL = f"""
WITH pos AS MATERIALIZED (
  SELECT i, created,
         {_b62_sql("floor(extract(epoch FROM created) * 1000)::bigint", 8)}
           || {_b62_sql("i::bigint", 10)} AS id_part,
         NOT (i % 5 = 0 OR i % 30 = 3) AS visible,
         CASE WHEN i % 10 = 3 THEN created + interval '1 day' END AS archived_at,
         jsonb_build_object('tier', (i % 3)::text, 'bench', '{MARKER}') AS metadata
  FROM (SELECT g.i, now() - interval '365 days' + (g.i::float8 / $3::int) * interval '365 days'
                 AS created
          FROM generate_series(1, $3::int) AS g(i)) AS t
), orgs AS MATERIALIZED (
  SELECT o.org_id, {_b62_sql("o.slot::bigint", 2)} AS org_part
  FROM unnest($1::text[], $2::int[]) AS o(org_id, slot)
), inserted AS (
  INSERT INTO catalog.products
    (id, org_id, name, description, visible, archived_at, features, metadata, created_at,
     updated_at)
  SELECT 'prod_' || substr(p.id_part, 1, 8) || o.org_part || substr(p.id_part, 9),
         o.org_id, 'Product ' || p.i, 'Benchmark product ' || p.i, p.visible, p.archived_at,
         '["seats:10", "support:email", "reports"]'::jsonb, p.metadata, p.created, p.created
  FROM pos p CROSS JOIN orgs o
  -- primary-key order: the pk index is appended to, not updated all over
  ORDER BY p.i, o.org_part
  RETURNING id, org_id, created_at
)
INSERT INTO catalog.prices
  (id, org_id, product_id, amount, currency, type, interval, trial_days, setup_fee, created_at)
SELECT 'price_' || substr(id, 6), org_id, id, 1000 + (abs(hashtext(id)) % 9000), 'usd',
       'recurring', 'month', CASE WHEN abs(hashtext(id)) % 4 = 0 THEN 14 ELSE 0 END, 0,
       created_at
FROM inserted
"""

SYNTHETIC_RANGE = f"org_id >= '{SYNTHETIC}' AND org_id < '{SYNTHETIC}~'"
# Products of earlier runs' real organizations (metadata marker, outside the synthetic
# range): replaced by this run's.
STALE = f'metadata @> \'{{"bench": "{MARKER}"}}\' AND NOT ({SYNTHETIC_RANGE})'


async def _delete(conn: Any, where: str) -> None:
    await conn.execute(
        f"DELETE FROM catalog.prices WHERE product_id IN "
        f"(SELECT id FROM catalog.products WHERE {where})"
    )
    await conn.execute(f"DELETE FROM catalog.products WHERE {where}")


async def _secondary_indexes(conn: Any) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the products and prices indexes that back no
    constraint (what the migrations made them, read back from the catalog)."""
    rows = await conn.fetch(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.schemaname = 'catalog' AND i.tablename IN ('products', 'prices')
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                          WHERE c.conname = i.indexname
                            AND c.connamespace = 'catalog'::regnamespace)
        ORDER BY i.indexname
        """
    )
    return [(r["indexname"], r["indexdef"]) for r in rows]


async def seed(
    database_url: str, real_org_id: str | None, orgs: int = ORGS, per_org: int = PER_ORG
) -> dict[str, Any]:
    """Seed (orgs - 1) synthetic organizations once, and `real_org_id` (if given) now;
    returns what was done, how long it took and, for the real org, a deep cursor and a
    price in the middle of its list."""
    import asyncpg  # type: ignore[import-untyped, unused-ignore]

    timings: dict[str, float] = {}
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        cpu0 = process_cpu_seconds(backend)
        t0 = time.perf_counter()
        synthetic = [f"{SYNTHETIC}{n:03d}" for n in range(1, orgs)]
        have = await conn.fetchval(f"SELECT count(*) FROM catalog.products WHERE {SYNTHETIC_RANGE}")
        bulk = have != len(synthetic) * per_org
        seeded: list[tuple[str, int]] = []
        async with conn.transaction():
            # Bulk load: no need to wait for the WAL flush of each statement.
            await conn.execute("SET LOCAL synchronous_commit = off")
            await conn.execute("SET LOCAL work_mem = '64MB'")
            await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            indexes: list[tuple[str, str]] = []
            # Deletes first, while the indexes their foreign-key checks use exist.
            if real_org_id is not None:
                await _delete(conn, STALE)
            if bulk:
                await _delete(conn, SYNTHETIC_RANGE)
                seeded += [(org, n) for n, org in enumerate(synthetic, start=1)]
                # A million rows inserted into six secondary indexes one by one take
                # minutes; building them afterwards takes seconds. DDL is transactional:
                # a failure rolls the drop back with everything else.
                indexes = await _secondary_indexes(conn)
                for name, _ in indexes:
                    await conn.execute(f'DROP INDEX catalog."{name}"')
            if real_org_id is not None:
                seeded.append((real_org_id, 0))
            if seeded:
                await conn.execute(
                    SEED_SQL, [o for o, _ in seeded], [s for _, s in seeded], per_org
                )
            timings["insert_s"] = round(time.perf_counter() - t0, 1)
            t1 = time.perf_counter()
            for _, ddl in indexes:
                await conn.execute(ddl)
            if indexes:
                timings["create_indexes_s"] = round(time.perf_counter() - t1, 1)
        if seeded:
            t2 = time.perf_counter()
            # Fresh statistics and visibility map: the planner and index-only scans see
            # the new rows as they would after autovacuum.
            await conn.execute("VACUUM (ANALYZE) catalog.products, catalog.prices")
            timings["vacuum_analyze_s"] = round(time.perf_counter() - t2, 1)
        timings["total_s"] = round(time.perf_counter() - t0, 1)
        cpu1 = process_cpu_seconds(backend)
        if cpu0 is not None and cpu1 is not None:
            # Wall time depends on what else runs on the machine; this does not.
            timings["postgres_cpu_s"] = round(cpu1 - cpu0, 1)
        out: dict[str, Any] = {
            "organizations_seeded": len(seeded),
            "products_inserted": len(seeded) * per_org,
            "seconds": timings,
            "products_total": await conn.fetchval("SELECT count(*) FROM catalog.products"),
        }
        if real_org_id is not None:
            out["deep_cursor"] = await conn.fetchval(
                "SELECT id FROM catalog.products WHERE org_id = $1 ORDER BY id DESC "
                "OFFSET $2 LIMIT 1",
                real_org_id,
                int(per_org * 0.9),
            )
            out["price_id"] = await conn.fetchval(
                "SELECT p.id FROM catalog.prices p JOIN catalog.products r ON r.id = "
                "p.product_id WHERE p.org_id = $1 AND r.archived_at IS NULL ORDER BY p.id "
                "DESC OFFSET $2 LIMIT 1",
                real_org_id,
                per_org // 2,
            )
    finally:
        await conn.close()
    return out


# --------------------------------------------------------------------------- scenario

GATEWAY_PROCS = ("gateway", "catalog")

SCENARIO = Scenario(
    name="catalog_products",
    description=(
        "GET /v1/products (first and deep cursor page) through the gateway and the "
        "internal price snapshot, with 1,000,000 products across 100 organizations."
    ),
    targets=(
        Target(
            name="list_first",
            label="gateway GET /v1/products (first page of 20, API key)",
            base="gateway",
            path="/v1/products",
            procs=GATEWAY_PROCS,
        ),
        Target(
            name="list_deep",
            label="gateway GET /v1/products?starting_after=<90% down the org's 10,000>",
            base="gateway",
            path="/v1/products?starting_after=",
            procs=GATEWAY_PROCS,
        ),
        Target(
            name="list_first_direct",
            label="catalog GET /v1/products directly (first page, forwarded identity)",
            base="catalog",
            path="/v1/products",
            procs=("catalog",),
        ),
        Target(
            name="snapshot",
            label="catalog GET /internal/orgs/<org>/prices/<price>/snapshot (service identity)",
            base="catalog",
            path="/internal/orgs/<org>/prices/<price>/snapshot",
            procs=("catalog",),
        ),
    ),
    floors=("ping", "items"),
    checks=(
        MaxLatency("list_first_p99", "list_first", "99", LIST_P99_MS),
        MaxLatency("list_deep_p99", "list_deep", "99", LIST_P99_MS),
        MinRps("list_first_rps", "list_first", LIST_RPS),
        MinRps("list_deep_rps", "list_deep", LIST_RPS),
        MaxLatency("snapshot_p99", "snapshot", "99", SNAPSHOT_P99_MS),
        # The same throughput target scaled by the floor measured in this run.
        RpsRatio(
            "list_first_vs_floor_items",
            "list_first",
            "floor_items",
            round(LIST_RPS / FLOOR_ITEMS_RPS, 3),
        ),
        RpsRatio(
            "list_deep_vs_floor_items",
            "list_deep",
            "floor_items",
            round(LIST_RPS / FLOOR_ITEMS_RPS, 3),
        ),
    ),
)


def prepare(urls: dict[str, str]) -> Scenario:
    database_url = os.environ["DATABASE_URL"]
    secret = os.environ.get("BOS_INTERNAL_SECRET", "bos-dev-internal-secret-change-me")
    org = create_org(urls, name="bench-catalog")
    info = asyncio.run(seed(database_url, org.org_id))
    # Signed identities are accepted for 300 s either side of their `iat`: stamped 295 s
    # ahead, one is valid for the next ~10 minutes, long enough for a run of this scenario
    # (--repeat 3 with 10 s runs takes about 6).
    ahead = time.time() + 295
    merchant = sign_identity(
        Identity(principal_type="api_key", principal_id="key_bench", org_id=org.org_id),
        secret,
        now=ahead,
    )
    checkout = sign_identity(
        Identity(principal_type="service", principal_id="checkout"), secret, now=ahead
    )
    list_first, list_deep, direct, snapshot = SCENARIO.targets
    targets = (
        dataclasses.replace(list_first, headers=org.auth),
        dataclasses.replace(
            list_deep,
            path=f"/v1/products?starting_after={info['deep_cursor']}",
            headers=org.auth,
        ),
        dataclasses.replace(direct, headers={IDENTITY_HEADER: merchant}),
        dataclasses.replace(
            snapshot,
            path=f"/internal/orgs/{org.org_id}/prices/{info['price_id']}/snapshot",
            headers={IDENTITY_HEADER: checkout},
        ),
    )
    seconds = info["seconds"]
    note = (
        f"Seeded {info['products_inserted']:,} products for {info['organizations_seeded']} "
        f"organizations in {seconds.get('insert_s', 0):g} s (+ VACUUM ANALYZE "
        f"{seconds.get('vacuum_analyze_s', 0):g} s); catalog.products holds "
        f"{info['products_total']:,} rows. Organization {org.org_id}, deep cursor "
        f"{info['deep_cursor']}, price {info['price_id']}."
    )
    return dataclasses.replace(SCENARIO, targets=targets, notes=(*SCENARIO.notes, note))


# Not when run as a script: `python -m bench.suites.catalog` imports this package (which
# registers the scenario) before running this file again as __main__.
if __name__ != "__main__":
    register(dataclasses.replace(SCENARIO, prepare=prepare, opt_in=True))


def main() -> int:
    """Seed DATABASE_URL's catalog (synthetic organizations only) and print the times."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    print(asyncio.run(seed(url, None)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
