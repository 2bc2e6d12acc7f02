"""``python -m stripe_sim --host 127.0.0.1 --port 12111``."""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn

from . import config as config_module
from .app import create_app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stripe_sim", description=__doc__)
    parser.add_argument("--host", default=None, help="bind address (env STRIPE_SIM_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port (env STRIPE_SIM_PORT)")
    parser.add_argument("--state-file", default=None, help="snapshot file (STRIPE_SIM_STATE_FILE)")
    parser.add_argument("--fast-retries", action="store_true", default=None)
    parser.add_argument("--log-level", default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = config_module.from_env(
        os.environ,
        host=args.host,
        port=args.port,
        state_file=args.state_file,
        fast_retries=args.fast_retries,
        log_level=args.log_level,
    )
    logging.basicConfig(level=config.log_level.upper())
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
        # Like Stripe's servers, keep idle connections longer than clients do (aiohttp: 15 s):
        # with uvicorn's 5 s the server would close connections a client is just reusing,
        # and the SDK (no network retries: BOS retries itself) would answer a burst of
        # confirms with APIConnectionError after any pause of about 5 s.
        timeout_keep_alive=75,
    )


if __name__ == "__main__":
    main()
