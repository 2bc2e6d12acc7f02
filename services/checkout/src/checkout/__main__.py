"""The checkout service's commands: `python -m checkout backfill [--force]` fills the
subscription projection from the subscriptions service (checkout.backfill), with the
settings from the environment, on a runtime that is not started (no consumers, relay or
workers)."""

from __future__ import annotations

import argparse
import asyncio

from checkout import backfill
from checkout.app import build_runtime


async def run_backfill(force: bool) -> int:
    runtime = build_runtime()
    try:
        done = await backfill.backfill_subscriptions(runtime, force=force)
    finally:
        await runtime.stop()
    print("already done" if done is None else f"{done} live subscriptions projected")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m checkout")
    commands = parser.add_subparsers(dest="command", required=True)
    fill = commands.add_parser("backfill", help="fill the subscription projection")
    fill.add_argument("--force", action="store_true", help="run it again if done already")
    args = parser.parse_args(argv)
    return asyncio.run(run_backfill(args.force))


if __name__ == "__main__":
    raise SystemExit(main())
