"""Webhook intake at sustained load (issue 7, "Benchmarks"): an opt-in runner, not a wrk
scenario (it registers nothing, so a bare `make bench` does not run it).

Issue 7's target is an open-loop load: 500 signed webhooks a second for 60 s through the
gateway, all stored and published, intake p95 < 50 ms, no growth of the outbox backlog,
and the end-to-end lag from delivery to the consumer's commit reported (target p95 <
200 ms). wrk's closed loop would slow down with the server and hide the queueing, so the
load comes from `bench/webhook_load.py` (the one generator); this runner adds CPU per
event of every process of the stack (bench/procs.py), the checks, and writes
`bench/results/webhooks.json`:

    source scripts/lib.sh && stack_env     # a dev-profile stack (fsync on), your ports
    .venv/bin/python -m bench.webhook_intake --rate 500 --duration 60

The stack should run with the gateway's rate limiter off (`RATE_LIMIT_ENABLED=false`,
as scripts/bench.sh does). CPU is read from the pid files in `$BOS_STATE_DIR/run` (or
`$BENCH_RUN_DIR`), Postgres' postmaster.pid and RabbitMQ's pid file; with none, only the
generator's own CPU is reported. On a shared machine read `cpu_us_per_event` and
`other_cpu_cores` before the absolute rates: the generator needs CPU of its own.

With `--merchant-share F` (issue 21's combined run), a merchant endpoint receives every event
type (bench/merchant_webhooks.py's receiver, answering after `--receiver-ms`) for a new
organization, and that share of the events are `charge.refunded` of that organization (each
one delivery to it) instead of payments; the intake, backlog and lag checks stay, and
`merchant` reports deliveries a second and event -> delivery (p50/p95/p99, goal p95 < 1 s):

    .venv/bin/python -m bench.webhook_intake --rate 500 --duration 60 --merchant-share 0.4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

from bench import merchant_webhooks
from bench.procs import StackCpu
from bench.webhook_load import run_load

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"intake_p95_ms": 50.0, "lag_p95_ms": 200.0}


def checks(r: dict[str, Any]) -> list[dict[str, Any]]:
    ok = int(r["statuses"].get("200", 0))

    def check(name: str, measured: Any, target: str, passed: bool) -> dict[str, Any]:
        return {"name": name, "measured": measured, "target": target, "pass": passed}

    return [
        check("all_accepted", r["statuses"], f"200 x {r['sent']}", ok == r["sent"]),
        check(
            "all_stored_published_consumed",
            [r["stored"], r["outbox_unpublished_after"], r["consumed_by_checkout"]],
            f"[{ok}, 0, {r.get('payments_accepted', ok)}]",
            r["stored"] == ok and r["outbox_unpublished_after"] == 0,
        ),
        check(
            "intake_p95",
            r["intake_ms"]["p95"],
            f"< {TARGETS['intake_p95_ms']:g} ms",
            r["intake_ms"]["p95"] < TARGETS["intake_p95_ms"],
        ),
        check(
            "lag_p95",
            r["delivery_to_consumer_commit_ms"]["p95"],
            f"< {TARGETS['lag_p95_ms']:g} ms",
            r["delivery_to_consumer_commit_ms"]["p95"] < TARGETS["lag_p95_ms"],
        ),
        # "No growth": what is left unpublished in the second half of the run stays
        # within about a second of events (the relay keeps up, it does not fall behind).
        check(
            "outbox_backlog_bounded",
            r["outbox_backlog_second_half_max"],
            f"<= {r['rate_target']:g} rows (1 s of events)",
            r["outbox_backlog_second_half_max"] <= r["rate_target"],
        ),
        check(
            "rate_sustained",
            r["completed_per_s"],
            f">= {0.95 * r['rate_target']:g}/s",
            r["completed_per_s"] >= 0.95 * r["rate_target"],
        ),
    ]


async def load(rate: float, duration: float, merchant: argparse.Namespace | None) -> dict[str, Any]:
    """The intake load; with `merchant`, its endpoint served and registered first, and its
    deliveries waited for (up to `merchant.drain_timeout`) and reported under `merchant`."""
    gateway = os.environ["GATEWAY_URL"]
    secret = os.environ["STRIPE_WEBHOOK_SECRETS"].split(",")[0]
    dsn = os.environ["DATABASE_URL"]
    if merchant is None:
        return await run_load(rate, duration, gateway=gateway, secret=secret, dsn=dsn)
    receiver = merchant_webhooks.Receiver(merchant.receiver_port, merchant.receiver_ms)
    await receiver.start()
    try:
        org = await merchant_webhooks.register_endpoint(gateway, receiver.url)
        result = await run_load(
            rate,
            duration,
            gateway=gateway,
            secret=secret,
            dsn=dsn,
            merchant_org=org["id"],
            merchant_share=merchant.merchant_share,
        )
        accepted = result.pop("merchant_accepted")
        sent_at = result.pop("merchant_sent_at")
        await receiver.wait_for(accepted, merchant.drain_timeout)
    finally:
        await receiver.stop()
    report = receiver.report(sent_at)
    result["merchant"] = {
        "share": merchant.merchant_share,
        "receiver_ms": merchant.receiver_ms,
        "sent": len(sent_at),
        "accepted": accepted,
        **report,
        "stages_ms": await merchant_webhooks.stages(org["id"]),
        "checks": merchant_webhooks.delivery_checks(report, accepted),
    }
    return result


def run(rate: float, duration: float, merchant: argparse.Namespace | None = None) -> dict[str, Any]:
    cpu0 = time.process_time()
    with StackCpu() as stack:
        result = uvloop.run(load(rate, duration, merchant))
    seconds = {**stack.seconds, "generator": time.process_time() - cpu0}
    meter = stack.meter
    events = max(1, int(result["statuses"].get("200", 0)))
    result = {
        "scenario": "webhooks",
        "description": "Open-loop signed Stripe webhooks through the gateway (issue 7).",
        **result,
        "cpu_seconds": {n: round(s, 2) for n, s in seconds.items()},
        # Over the whole run (load and drain), per accepted event: the relay, the
        # consumers (checkout, subscriptions), Postgres, RabbitMQ and the gateway included.
        "cpu_us_per_event": {n: round(s / events * 1e6) for n, s in seconds.items()},
        "other_cpu_cores": round(meter.other_cores, 2),
        "wall_s": round(meter.wall, 1),
        "targets": TARGETS,
    }
    result["checks"] = checks(result)
    if merchant is not None:
        result["checks"] += [
            {**c, "name": f"merchant_{c['name']}"} for c in result["merchant"].pop("checks")
        ]
    result["pass"] = all(c["pass"] for c in result["checks"])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.webhook_intake", description=__doc__)
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/webhooks.json")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    ap.add_argument(
        "--merchant-share",
        type=float,
        default=0.0,
        help="share of the events that are a merchant endpoint's refunds (0: no endpoint)",
    )
    ap.add_argument("--receiver-ms", type=float, default=50.0)
    ap.add_argument("--receiver-port", type=int, default=28095)
    ap.add_argument("--drain-timeout", type=float, default=60.0)
    args = ap.parse_args(argv)
    if not 0 <= args.merchant_share <= 1:
        ap.error("--merchant-share is a fraction between 0 and 1")
    result = run(args.rate, args.duration, args if args.merchant_share > 0 else None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for c in result["checks"]:
        print(f"{'PASS' if c['pass'] else 'FAIL'} {c['name']}: {c['measured']} ({c['target']})")
    if "merchant" in result:
        m = result["merchant"]
        print(
            f"merchant: {m['delivered']} of {m['accepted']} delivered, "
            f"{m['deliveries_per_s']}/s, event -> delivery {m['event_to_delivery_ms']}, "
            f"stages {m['stages_ms']}"
        )
    print(f"load average {result['loadavg']}", file=sys.stderr)
    print(f"cpu us/event: {result['cpu_us_per_event']}; wrote {args.out}", file=sys.stderr)
    return 1 if args.strict and not result["pass"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
