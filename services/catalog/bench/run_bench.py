"""Service-local benchmark of the catalog's hot reads with wrk.

    CATALOG_URL=http://127.0.0.1:8002 BOS_INTERNAL_SECRET=... DATABASE_URL=... \
        .venv/bin/python services/catalog/bench/run_bench.py [--duration 20] [--repeat 3]

Targets (issue 5): `GET /v1/products` first page and a deep cursor page (90% down an
organization of 10,000 products, 1,000,000 in the table), one connection p99 < 10 ms and
>= 1,000 req/s at 50 connections; the internal price snapshot, one connection p99 < 3 ms.

The identity the gateway would forward is signed here (`x-bos-identity`, valid 300 s, so
it is signed again before every wrk run) and set once in the generated Lua script. One
connection: `wrk -t1 -c1` (latency); closed loop: `wrk -t2 -c50` (throughput). wrk is
pinned to the last core when `taskset` exists. Prints a table and a JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from bos_common.auth import IDENTITY_HEADER, Identity, sign_identity

DONE_LUA = """
function done(summary, latency, requests)
  local p = {}
  for _, q in ipairs({50, 90, 99, 99.9}) do
    table.insert(p, string.format('"%s": %d', tostring(q), latency:percentile(q)))
  end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "non_2xx": %d, "errors": %d, '
    .. '"latency_us": {%s}}\\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    table.concat(p, ", ")))
end
"""


@dataclass(frozen=True)
class Target:
    name: str
    path: str
    identity: Identity


def server_cpu_seconds() -> float | None:
    """CPU time so far of the server (CATALOG_PID and its direct children: uvicorn's
    workers), or None when CATALOG_PID is not set."""
    pid = os.environ.get("CATALOG_PID")
    if not pid:
        return None
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if entry == pid or fields[1] == pid:  # fields[1] is the parent pid
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / os.sysconf("SC_CLK_TCK")


def lua_script(identity: Identity, secret: str) -> str:
    header = sign_identity(identity, secret)
    return f'wrk.method = "GET"\nwrk.headers["{IDENTITY_HEADER}"] = "{header}"\n' + DONE_LUA


def wrk(url: str, script: str, threads: int, connections: int, duration: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        path = f.name
    cores = os.cpu_count() or 1
    pin = ["taskset", "-c", str(cores - 1)] if cores > 1 and shutil.which("taskset") else []
    cmd = [*pin, "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout=5s",
           "-s", path, url]
    cpu0 = server_cpu_seconds()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                             timeout=duration + 60).stdout
    finally:
        os.unlink(path)
    cpu1 = server_cpu_seconds()
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    data: dict[str, Any] = json.loads(line[len("BENCH_JSON "):])
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    if cpu0 is not None and cpu1 is not None and data["requests"]:
        data["server_cpu_ms_per_request"] = (cpu1 - cpu0) * 1000 / data["requests"]
    return data


async def discover(database_url: str) -> dict[str, str]:
    import asyncpg  # type: ignore[import-untyped, unused-ignore]

    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        org = "org_bench000"
        n = await conn.fetchval("SELECT count(*) FROM catalog.products WHERE org_id = $1", org)
        deep = await conn.fetchval(
            "SELECT id FROM catalog.products WHERE org_id = $1 ORDER BY id DESC OFFSET $2 "
            "LIMIT 1", org, int(n * 0.9))
        price = await conn.fetchval(
            "SELECT p.id FROM catalog.prices p JOIN catalog.products r ON r.id = p.product_id "
            "WHERE p.org_id = $1 AND r.archived_at IS NULL AND p.deleted_at IS NULL "
            "ORDER BY p.id DESC OFFSET $2 LIMIT 1", org, int(n // 2))
        total = await conn.fetchval("SELECT count(*) FROM catalog.products")
    finally:
        await conn.close()
    return {"org_id": org, "deep_cursor": deep, "price_id": price, "org_products": str(n),
            "total_products": str(total)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    base = os.environ.get("CATALOG_URL", "http://127.0.0.1:8002").rstrip("/")
    secret = os.environ["BOS_INTERNAL_SECRET"]
    seeded = asyncio.run(discover(os.environ["DATABASE_URL"]))
    org = seeded["org_id"]
    merchant = Identity(principal_type="api_key", principal_id="key_bench", org_id=org)
    checkout = Identity(principal_type="service", principal_id="checkout")
    targets = [
        # Reference: the same process's cheapest route (middleware stack, no database).
        Target("healthz_reference", "/healthz", merchant),
        Target("products_first_page", "/v1/products", merchant),
        Target("products_deep_page", f"/v1/products?starting_after={seeded['deep_cursor']}",
               merchant),
        Target("price_snapshot", f"/internal/orgs/{org}/prices/{seeded['price_id']}/snapshot",
               checkout),
    ]
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        t.name: {"one": [], "fifty": []} for t in targets}
    load_before = os.getloadavg()
    for t in targets:  # warm-up: connections, prepared statements, caches
        wrk(base + t.path, lua_script(t.identity, secret), 2, 50, args.warmup)
    for rnd in range(args.repeat):
        order = targets[rnd % len(targets):] + targets[:rnd % len(targets)]
        for t in order:
            results[t.name]["one"].append(
                wrk(base + t.path, lua_script(t.identity, secret), 1, 1, args.duration))
            results[t.name]["fifty"].append(
                wrk(base + t.path, lua_script(t.identity, secret), 2, 50, args.duration))
    load_after = os.getloadavg()

    summary: dict[str, Any] = {
        "seeded": seeded, "duration_s": args.duration, "repeat": args.repeat,
        "loadavg_before": load_before, "loadavg_after": load_after,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "targets": {},
    }
    print(f"{'target':<22} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'req/s @50':>10} "
          f"{'cpu ms/req':>10} {'errors':>7}")
    for name, r in results.items():
        def med(runs: list[dict[str, Any]], key: str) -> float:
            return statistics.median(x["latency_us"][key] for x in runs) / 1000

        p50, p99, p999 = med(r["one"], "50"), med(r["one"], "99"), med(r["one"], "99.9")
        rps = statistics.median(x["rps"] for x in r["fifty"])
        errors = sum(x["errors"] + x["non_2xx"] for x in r["one"] + r["fifty"])
        cpus = [x["server_cpu_ms_per_request"] for x in r["one"]
                if "server_cpu_ms_per_request" in x]
        cpu = statistics.median(cpus) if cpus else float("nan")
        summary["targets"][name] = {"one_connection_ms": {"p50": p50, "p99": p99,
                                                          "p99.9": p999},
                                    "rps_50_connections": round(rps), "errors": errors,
                                    "server_cpu_ms_per_request_one_connection": cpu,
                                    "runs": r}
        print(f"{name:<22} {p50:>8.2f} {p99:>8.2f} {p999:>9.2f} {rps:>10,.0f} {cpu:>10.2f} "
              f"{errors:>7}")
    print(f"load average before {load_before}, after {load_after}")
    print("BENCH_SUMMARY " + json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
