"""`python -m bench`: run benchmark scenarios against a running BOS stack.

scripts/bench.sh (`make bench`) brings up a stack of its own and calls this; it can also
be pointed at any running stack through the environment (GATEWAY_URL, CATALOG_URL, ...,
DATABASE_URL for the floor), e.g. the one of `make up`.

For every target of a scenario (floor targets included) two regimes are measured:
  closed loop     wrk -t2 -c50  -> throughput (req/s) and errors
  one connection  wrk -t1 -c1   -> latency p50/p95/p99 (at 50 connections latency is
                                   queueing: median ~= 50 / throughput, Little's law)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import bench.suites  # noqa: F401 - registers the scenarios of bench/suites/*.py
from bench import report
from bench.procs import ROOT, CpuMeter, FloorApp, read_pidfiles
from bench.scenarios import FLOOR_TARGETS, SCENARIOS, RpsRatio, Scenario, Target
from bench.wrk import LUA_DIR, Load, WrkResult, build_script, run_wrk, wrk_version

SERVICES = ("tokens", "catalog", "checkout", "subscriptions", "webhooks")
DEFAULT_PORTS = {
    "gateway": 8080,
    "tokens": 8001,
    "catalog": 8002,
    "checkout": 8003,
    "subscriptions": 8004,
    "webhooks": 8005,
}
RECORDED_ENV = (
    "GATEWAY_WORKERS",
    "UPSTREAM_POOL_SIZE",
    "OTEL_SDK_DISABLED",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "BENCH_PG_FAST",
    "RATE_LIMIT_ENABLED",
    "LOG_LEVEL",
)
# Marks the result files of this harness (bench/results/ may hold other tools' JSON).
FORMAT = report.FORMAT
# CPU used by other processes during a run above which the run is flagged as disturbed
# (the rest of the idle stack uses a few hundredths of a core).
DISTURBED_CORES = 0.25
PERCENTILES = ("50", "75", "90", "95", "99", "99.9")


def log(msg: str) -> None:
    print(f"\033[1;35m[bench]\033[0m {msg}", file=sys.stderr, flush=True)


# --- configuration ---------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--scenario",
        "-s",
        action="append",
        default=[],
        help="scenario name (repeatable or comma-separated); default: all",
    )
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="closed-loop run length in seconds (default 10, --quick 3)",
    )
    p.add_argument(
        "--one-duration",
        type=float,
        default=None,
        help="one-connection run length in seconds (default 10, --quick 3)",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="warm-up per target before measuring, seconds (default 2, --quick 1)",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 3 s runs, 1 s warm-up")
    p.add_argument(
        "--repeat",
        type=int,
        default=int(os.environ.get("BENCH_REPEAT", "1")),
        help="interleaved rounds per scenario; medians are reported (default 1)",
    )
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--wrk-cpu",
        default=os.environ.get("BENCH_WRK_CPU", "auto"),
        help="core to pin wrk to with taskset: a number, 'auto' (the last "
        "core when there are 2+) or 'none'",
    )
    p.add_argument(
        "--floor-port", type=int, default=int(os.environ.get("BENCH_FLOOR_PORT", "28090"))
    )
    p.add_argument(
        "--floor-workers", type=int, default=int(os.environ.get("BENCH_FLOOR_WORKERS", "1"))
    )
    p.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a target of the issue is missed (default: report only)",
    )
    args = p.parse_args(argv)
    quick = args.quick
    args.duration = args.duration or (3.0 if quick else 10.0)
    args.one_duration = args.one_duration or (3.0 if quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if quick else 2.0)
    args.scenarios = [s for arg in args.scenario for s in arg.split(",") if s]
    for name in ("duration", "one_duration", "warmup"):
        value = getattr(args, name)
        if value and (value < 1 or value != int(value)):
            p.error(f"--{name.replace('_', '-')} takes whole seconds (wrk's -d), got {value:g}")
    return args


def wrk_cpu(choice: str) -> int | None:
    if choice == "none":
        return None
    if choice == "auto":
        n = os.cpu_count() or 1
        return n - 1 if n >= 2 else None
    return int(choice)


def endpoints(floor_url: str) -> dict[str, str]:
    urls = {"floor": floor_url}
    urls["gateway"] = os.environ.get("GATEWAY_URL", f"http://127.0.0.1:{DEFAULT_PORTS['gateway']}")
    for s in SERVICES:
        urls[s] = os.environ.get(f"{s.upper()}_URL", f"http://127.0.0.1:{DEFAULT_PORTS[s]}")
    return urls


# --- metadata --------------------------------------------------------------------------


def _cmd(*args: str) -> str:
    try:
        out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return out.stdout.strip()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def postgres_settings(database_url: str | None) -> dict[str, str]:
    if not database_url:
        return {}

    async def query() -> dict[str, str]:
        import asyncpg  # type: ignore[import-untyped]

        from bench.floor_app import asyncpg_dsn

        conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=5)
        try:
            out = {"server_version": str(await conn.fetchval("SHOW server_version"))}
            for name in ("fsync", "synchronous_commit", "full_page_writes"):
                out[name] = str(await conn.fetchval(f"SHOW {name}"))
            return out
        finally:
            await conn.close()

    try:
        return asyncio.run(query())
    except Exception as exc:  # noqa: BLE001 - metadata only
        return {"error": repr(exc)}


def run_metadata(args: argparse.Namespace, cpu: int | None) -> dict[str, Any]:
    dirty = _cmd("git", "status", "--porcelain")
    return {
        "git": {
            "commit": _cmd("git", "rev-parse", "HEAD"),
            "branch": _cmd("git", "rev-parse", "--abbrev-ref", "HEAD"),
            "dirty": bool(dirty),
        },
        "machine": {
            "cpu_model": cpu_model(),
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "python": platform.python_version(),
        },
        "wrk": {
            "version": wrk_version(),
            "pinned_cpu": cpu,
            "pinning": f"taskset -c {cpu}" if cpu is not None else "none",
            "closed_loop": f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s",
            "one_connection": f"wrk -t1 -c1 -d{args.one_duration:g}s",
            "warmup_s": args.warmup,
            "repeat": args.repeat,
        },
        "stack": {
            "description": os.environ.get("BENCH_STACK", "externally managed"),
            "gateway_workers": int(os.environ.get("GATEWAY_WORKERS", "1")),
            "service_workers": 1,
            "floor_workers": args.floor_workers,
            "uvicorn": "--loop uvloop --http httptools --no-access-log --log-level warning",
            "postgres": postgres_settings(os.environ.get("DATABASE_URL")),
            # Settings that change what is measured, as the stack's processes saw them.
            "env": {k: os.environ[k] for k in RECORDED_ENV if k in os.environ},
        },
    }


# --- measuring -------------------------------------------------------------------------


def preflight(target: Target, url: str) -> dict[str, Any]:
    """One request with urllib: the target answers what the scenario expects."""
    req = urllib.request.Request(
        url, data=target.body, method=target.method, headers=target.headers
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            status, body, ctype = r.status, r.read(), r.headers.get("content-type")
    except urllib.error.HTTPError as e:
        status, body, ctype = e.code, e.read(), e.headers.get("content-type")
    sample = {
        "status": status,
        "content_type": ctype,
        "body": body[:300].decode("utf-8", "replace"),
    }
    if status not in target.expected:
        raise RuntimeError(
            f"{target.name}: {target.method} {url} answered {status}, expected "
            f"{sorted(target.expected)}: {sample['body']}"
        )
    return sample


def regime_summary(runs: list[WrkResult], meters: list[CpuMeter], target: Target) -> dict[str, Any]:
    """Medians over rounds (a single round is itself), errors and statuses summed."""
    statuses: dict[int, int] = {}
    sockets: dict[str, int] = {}
    for r in runs:
        for s, n in r.statuses.items():
            statuses[s] = statuses.get(s, 0) + n
        for k, n in r.socket_errors.items():
            sockets[k] = sockets.get(k, 0) + n

    def med(values: list[float]) -> float:
        return float(statistics.median(values)) if values else 0.0

    latency = {
        f"p{p}": round(med([r.latency_us["percentiles"][p] for r in runs]) / 1000, 3)
        for p in PERCENTILES
    }
    for k in ("mean", "max", "min", "stdev"):
        latency[k] = round(med([float(r.latency_us[k]) for r in runs]) / 1000, 3)
    out: dict[str, Any] = {
        "rps": round(med([r.rps for r in runs]), 1),
        "requests": sum(r.requests for r in runs),
        "errors": sum(r.errors(target.expected) for r in runs),
        "unexpected_status": sum(r.unexpected(target.expected) for r in runs),
        "socket_errors": sockets,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "latency_ms": latency,
        "command": " ".join(runs[0].cmd[:-3] + ["<script>", runs[0].cmd[-1]]),
        "rounds": [
            {
                "rps": round(r.rps, 1),
                "requests": r.requests,
                "errors": r.errors(target.expected),
                "latency_ms": {
                    f"p{p}": round(r.latency_us["percentiles"][p] / 1000, 3) for p in PERCENTILES
                },
            }
            for r in runs
        ],
    }
    if meters:
        per_req: dict[str, float] = {}
        for name in meters[0].group_seconds:
            values = [
                m.group_seconds[name] / r.requests * 1e6
                for m, r in zip(meters, runs, strict=True)
                if r.requests
            ]
            per_req[name] = round(med(values), 1)
        out["cpu_us_per_request"] = per_req
        out["wrk_cpu_pct"] = round(med([m.children_seconds / m.wall * 100 for m in meters]), 1)
        out["machine_cpu_busy_pct"] = round(med([m.machine_busy * 100 for m in meters]), 1)
        out["other_cpu_cores"] = round(max(m.other_cores for m in meters), 2)
    return out


class Runner:
    def __init__(
        self,
        args: argparse.Namespace,
        urls: dict[str, str],
        cpu: int | None,
        groups: dict[str, int],
    ) -> None:
        self.args = args
        self.urls = urls
        self.cpu = cpu
        self.groups = groups
        self.closed = Load(args.threads, args.connections, args.duration)
        self.one = Load(1, 1, args.one_duration)
        self.warm = Load(args.threads, args.connections, args.warmup)

    def url(self, t: Target) -> str:
        return self.urls[t.base].rstrip("/") + t.path

    def script(self, t: Target) -> str:
        return build_script(t.method, t.body, t.headers, LUA_DIR / t.lua if t.lua else None)

    def measure(self, t: Target, load: Load) -> tuple[WrkResult, CpuMeter]:
        groups = {p: self.groups[p] for p in t.procs if p in self.groups}
        with CpuMeter(groups) as meter:
            result = run_wrk(self.url(t), load, self.script(t), self.cpu)
        return result, meter

    def scenario(self, sc: Scenario, meta: dict[str, Any]) -> dict[str, Any]:
        if sc.prepare is not None:
            log(f"{sc.name}: preparing its data")
            sc = sc.prepare(self.urls)
        targets = [FLOOR_TARGETS[f] for f in sc.floors] + list(sc.targets)
        started = dt.datetime.now(dt.UTC)
        load_before = loadavg()
        samples = {t.name: preflight(t, self.url(t)) for t in targets}
        if self.args.warmup > 0:
            for t in targets:
                log(f"{sc.name}: warm-up {t.name} ({self.args.warmup:g} s)")
                run_wrk(self.url(t), self.warm, self.script(t), self.cpu)
        closed: dict[str, list[tuple[WrkResult, CpuMeter]]] = {t.name: [] for t in targets}
        one: dict[str, list[tuple[WrkResult, CpuMeter]]] = {t.name: [] for t in targets}
        for rnd in range(self.args.repeat):
            # Interleave: every target once per round, the order rotated between rounds.
            order = targets[rnd % len(targets) :] + targets[: rnd % len(targets)]
            for regime, load, store in (
                ("closed loop", self.closed, closed),
                ("one connection", self.one, one),
            ):
                for t in order:
                    res, meter = self.measure(t, load)
                    store[t.name].append((res, meter))
                    log(
                        f"{sc.name} round {rnd + 1}/{self.args.repeat} {regime:14s} "
                        f"{t.name:16s} {res.rps:9,.0f} req/s  p50 "
                        f"{res.latency_us['percentiles']['50'] / 1000:.3f} ms  p99 "
                        f"{res.latency_us['percentiles']['99'] / 1000:.3f} ms  errors "
                        f"{res.errors(t.expected)}"
                    )
                    time.sleep(0.5)
        results: dict[str, Any] = {}
        for t in targets:
            results[t.name] = {
                "label": t.label,
                "url": self.url(t),
                "method": t.method,
                "expected_status": sorted(t.expected),
                "note": t.note,
                "floor": t.base == "floor",
                "preflight": samples[t.name],
                "closed_loop": regime_summary(
                    [r for r, _ in closed[t.name]], [m for _, m in closed[t.name]], t
                ),
                "one_connection": regime_summary(
                    [r for r, _ in one[t.name]], [m for _, m in one[t.name]], t
                ),
            }
        return assemble(sc, results, meta, started, load_before)


def assemble(
    sc: Scenario,
    results: dict[str, Any],
    meta: dict[str, Any],
    started: dt.datetime,
    load_before: list[float],
) -> dict[str, Any]:
    rps = {n: r["closed_loop"]["rps"] for n, r in results.items()}
    pct = {
        n: {p: r["one_connection"]["latency_ms"][f"p{p}"] for p in PERCENTILES}
        for n, r in results.items()
    }
    floor_ping = FLOOR_TARGETS["ping"].name
    ratios: dict[str, Any] = {}
    if floor_ping in results:
        fp_rps, fp_p50 = rps[floor_ping], pct[floor_ping]["50"]
        for n in results:
            if n == floor_ping:
                continue
            ratios[f"{n}/floor_ping"] = {
                "rps_ratio": round(rps[n] / fp_rps, 3) if fp_rps else None,
                "p50_added_ms": round(pct[n]["50"] - fp_p50, 3),
                "p99_added_ms": round(pct[n]["99"] - pct[floor_ping]["99"], 3),
            }
    rps_rounds = {n: [x["rps"] for x in r["closed_loop"]["rounds"]] for n, r in results.items()}
    pct_rounds = {
        n: [
            {p: x["latency_ms"][f"p{p}"] for p in PERCENTILES}
            for x in r["one_connection"]["rounds"]
        ]
        for n, r in results.items()
    }
    checks = [c.evaluate(rps_rounds, pct_rounds) for c in sc.checks]
    for n, r in results.items():
        errors = r["closed_loop"]["errors"] + r["one_connection"]["errors"]
        checks.append(
            {
                "name": f"no_errors:{n}",
                "kind": "errors",
                "regime": "both",
                "measured": errors,
                "target": "== 0",
                "detail": f"socket errors + statuses other than {r['expected_status']}",
                "pass": errors == 0,
                "margin": -errors,
            }
        )
    for c in sc.checks:
        if isinstance(c, RpsRatio):
            ratios[f"{c.numerator}/{c.denominator}"] = {
                "rps_ratio": next(x["measured"] for x in checks if x["name"] == c.name)
            }
    other = {
        f"{n}/{regime}": r[regime].get("other_cpu_cores", 0.0)
        for n, r in results.items()
        for regime in ("closed_loop", "one_connection")
    }
    worst = max(other.values(), default=0.0)
    disturbance = {
        "other_cpu_cores_max": worst,
        "threshold_cores": DISTURBED_CORES,
        "disturbed": worst > DISTURBED_CORES,
        "per_run": other,
        "note": (
            f"other processes kept up to {worst:.2f} cores busy during a run: absolute "
            "numbers and tail latencies are disturbed; trust ratios and p50 more than p99"
            if worst > DISTURBED_CORES
            else "quiet machine"
        ),
    }
    return {
        "format": FORMAT,
        "scenario": sc.name,
        "description": sc.description,
        "notes": list(sc.notes),
        "timestamp": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        **meta,
        "regimes": {
            "closed_loop": "throughput (req/s) and errors at "
            f"{meta['wrk']['closed_loop']}; latency there is queueing",
            "one_connection": f"latency percentiles at {meta['wrk']['one_connection']}",
        },
        "floor_targets": [FLOOR_TARGETS[f].name for f in sc.floors],
        "targets": results,
        "ratios": ratios,
        "checks": checks,
        "pass": all(c["pass"] for c in checks),
        "disturbance": disturbance,
    }


# --- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for sc in SCENARIOS.values():
            opt_in = " (opt-in: run with --scenario)" if sc.opt_in else ""
            print(f"{sc.name:20s} {sc.description}{opt_in}")
        return 0
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        print(
            f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return 2
    default = [name for name, sc in SCENARIOS.items() if not sc.opt_in]
    selected = [SCENARIOS[s] for s in (args.scenarios or default)]
    cpu = wrk_cpu(args.wrk_cpu)
    run_dir = Path(os.environ["BENCH_RUN_DIR"]) if os.environ.get("BENCH_RUN_DIR") else None
    log_dir = Path(os.environ["BENCH_LOG_DIR"]) if os.environ.get("BENCH_LOG_DIR") else None
    floor = FloorApp(
        args.floor_port,
        os.environ.get("DATABASE_URL"),
        workers=args.floor_workers,
        run_dir=run_dir,
        log_dir=log_dir,
    )
    urls = endpoints(floor.url)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    try:
        log(f"starting the floor app on {floor.url}")
        floor.start()
        groups = {n: p for n, p in read_pidfiles(run_dir).items() if n != "bench-floor"}
        if floor.pgid:
            groups["floor"] = floor.pgid
        meta = run_metadata(args, cpu)
        if cpu is None:
            log("wrk is NOT pinned to a core (taskset missing or a 1-core machine)")
        else:
            log(f"wrk pinned with taskset -c {cpu}")
        la = loadavg()
        if la and la[0] > 0.5 * (os.cpu_count() or 1):
            log(f"warning: load average {la} before the run: other work shares this machine")
        runner = Runner(args, urls, cpu, groups)
        for sc in selected:
            data = runner.scenario(sc, meta)
            path = args.results_dir / f"{sc.name}.json"
            path.write_text(json.dumps(data, indent=2) + "\n")
            log(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
            for c in data["checks"]:
                if not c["pass"]:
                    failed.append(f"{sc.name}:{c['name']}")
                mark = "PASS" if c["pass"] else "FAIL"
                log(f"  {mark} {c['name']}: {c['measured']} (target {c['target']}) {c['detail']}")
    finally:
        floor.stop()
    summary = report.write_summary(args.results_dir)
    log(f"wrote {summary.relative_to(ROOT) if summary.is_relative_to(ROOT) else summary}")
    print(summary.read_text())
    if failed:
        log(f"targets missed: {', '.join(failed)}")
        return 1 if args.strict else 0
    return 0
