"""Seed a large catalog for benchmarks: set-based INSERTs, no per-row round trips.

    DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:55432/bos \
        .venv/bin/python services/catalog/bench/seed_products.py [--orgs 100] [--per-org 10000]

Writes into the `catalog` schema of DATABASE_URL (migrated to head first):
`--orgs` organizations `org_bench000`..., each with `--per-org` products (1,000,000 by
default) and one monthly price per product. Ids have the service's shape and order
(`prod_` + 8 base62 chars of a creation time in ms + 12 base62 chars), creation times
spread over the past year; 10% of the products are archived and ~23% invisible, so every
filter of `GET /v1/products` has real work to skip. Re-running replaces the bench
organizations' rows. Prints the org ids and, per org, a deep cursor for the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import asyncpg  # type: ignore[import-untyped, unused-ignore]

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# base62 with a fixed width, in SQL (least significant digit first: bigint is enough).
B62 = f"""
CREATE OR REPLACE FUNCTION pg_temp.b62(n bigint, width int) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  out text := '';
BEGIN
  FOR i IN 1..width LOOP
    out := substr('{ALPHABET}', (n % 62)::int + 1, 1) || out;
    n := n / 62;
  END LOOP;
  RETURN out;
END
$$;
"""

PRODUCTS = """
INSERT INTO catalog.products
  (id, org_id, name, description, visible, archived_at, features, metadata, created_at,
   updated_at)
SELECT
  'prod_' || pg_temp.b62(s.t_ms, 8) || pg_temp.b62(s.n, 12),
  s.org_id,
  'Product ' || s.i,
  'Benchmark product ' || s.i || ' of ' || s.org_id,
  NOT (s.i % 5 = 0 OR s.i % 30 = 3),               -- ~23% invisible
  CASE WHEN s.i % 10 = 3 THEN s.created + interval '1 day' END,  -- 10% archived
  '["seats:10", "support:email", "reports"]'::jsonb,
  jsonb_build_object('tier', (s.i % 3)::text),
  s.created,
  s.created
FROM (
  SELECT
    o.org_id,
    g.i,
    -- unique, increasing with creation time within an org
    (o.o * $2::bigint + g.i) AS n,
    (floor(extract(epoch FROM ts.created) * 1000))::bigint AS t_ms,
    ts.created
  FROM (SELECT o, 'org_bench' || lpad(o::text, 3, '0') AS org_id
          FROM generate_series(0, $1::int - 1) AS o) AS o
  CROSS JOIN generate_series(1, $2::int) AS g(i)
  CROSS JOIN LATERAL (
    SELECT now() - interval '365 days' + (g.i::float8 / $2::int) * interval '365 days'
           + (o.o * interval '1 ms') AS created
  ) AS ts
) AS s
"""

PRICES = """
INSERT INTO catalog.prices
  (id, org_id, product_id, amount, currency, type, interval, trial_days, setup_fee, created_at)
SELECT
  'price_' || substr(p.id, 6),
  p.org_id, p.id, 1000 + (abs(hashtext(p.id)) % 9000), 'usd', 'recurring', 'month',
  CASE WHEN abs(hashtext(p.id)) % 4 = 0 THEN 14 ELSE 0 END, 0, p.created_at
FROM catalog.products p
WHERE p.org_id LIKE 'org_bench%'
"""


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def seed(url: str, orgs: int, per_org: int) -> dict[str, object]:
    from bos_common.migrations import upgrade

    await asyncio.to_thread(upgrade, "catalog", url)
    conn = await asyncpg.connect(dsn(url))
    try:
        await conn.execute(B62)
        t0 = time.perf_counter()
        async with conn.transaction():
            await conn.execute(
                "DELETE FROM catalog.prices WHERE org_id LIKE 'org_bench%'")
            await conn.execute(
                "DELETE FROM catalog.products WHERE org_id LIKE 'org_bench%'")
            await conn.execute("SET LOCAL synchronous_commit = off")
            await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            products = await conn.execute(PRODUCTS, orgs, per_org)
            t1 = time.perf_counter()
            prices = await conn.execute(PRICES)
            t2 = time.perf_counter()
        await conn.execute("VACUUM ANALYZE catalog.products")
        await conn.execute("VACUUM ANALYZE catalog.prices")
        t3 = time.perf_counter()
        first_org = "org_bench000"
        # A cursor 90% of the way down the first org's list (deep pagination).
        deep = await conn.fetchval(
            "SELECT id FROM catalog.products WHERE org_id = $1 ORDER BY id DESC "
            "OFFSET $2 LIMIT 1", first_org, int(per_org * 0.9))
        price = await conn.fetchval(
            "SELECT id FROM catalog.prices WHERE org_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1",
            first_org, per_org // 2)
        total = await conn.fetchval("SELECT count(*) FROM catalog.products")
    finally:
        await conn.close()
    return {
        "products_inserted": int(products.split()[-1]),
        "prices_inserted": int(prices.split()[-1]),
        "products_total": total,
        "seconds": {"products": round(t1 - t0, 1), "prices": round(t2 - t1, 1),
                    "vacuum_analyze": round(t3 - t2, 1)},
        "org_id": first_org,
        "deep_cursor": deep,
        "price_id": price,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--per-org", type=int, default=10_000)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    print(json.dumps(asyncio.run(seed(url, args.orgs, args.per_org)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
