"""Simulator settings from CLI flags and ``STRIPE_SIM_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_API_VERSION = "2026-10-28.endive"
DEFAULT_PORT = 12111
#: how long a charge's funds stay pending before they become available (Stripe: days)
DEFAULT_BALANCE_PENDING_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    url: str
    secret: str
    enabled_events: list[str] | None = None  # None: every event ("*")
    connect: bool = False  # True: events of connected accounts only; False: platform events


@dataclass(slots=True)
class Config:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    webhook_endpoints: list[EndpointSpec] = field(default_factory=list)
    state_file: str | None = None
    fast_retries: bool = False
    snapshot_interval: float = 2.0
    api_version: str = DEFAULT_API_VERSION
    webhook_max_attempts: int | None = None
    webhook_timeout: float = 10.0
    log_level: str = "warning"
    balance_pending_seconds: float = DEFAULT_BALANCE_PENDING_SECONDS

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def retry_delay(self, attempt: int) -> float:
        """Delay before attempt ``attempt + 1`` (exponential, capped)."""
        if self.fast_retries:
            return float(min(0.05 * 2 ** (attempt - 1), 2.0))
        return float(min(5.0 * 2 ** (attempt - 1), 3600.0))

    def max_attempts(self) -> int:
        if self.webhook_max_attempts is not None:
            return self.webhook_max_attempts
        # fast: ~70 s of retries; normal: about three days, as Stripe.
        return 40 if self.fast_retries else 80


def parse_endpoints(value: str | None) -> list[EndpointSpec]:
    """``url|secret|types|connect,url|secret`` -> endpoint specs: the secret defaults to
    ``whsec_test``; the optional third field lists the endpoint's enabled event types,
    separated by spaces, as a Stripe endpoint's ``enabled_events`` (default: every event);
    a last field ``connect`` makes it a Connect endpoint (``connect=true`` on Stripe: events
    of connected accounts only), otherwise it is a platform endpoint (the platform's own
    events only). ``url|secret|connect`` is a Connect endpoint for every event type."""
    specs: list[EndpointSpec] = []
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        url, secret, *rest = [part.strip() for part in item.split("|")] + [""]
        fields = [part for part in rest if part]
        connect = bool(fields) and fields[-1].lower() == "connect"
        if connect:
            fields.pop()
        types = fields[0].split() if fields else []
        specs.append(EndpointSpec(url, secret or "whsec_test", types or None, connect))
    return specs


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def from_env(env: Mapping[str, str] | None = None, **overrides: object) -> Config:
    env = os.environ if env is None else env
    config = Config(
        host=env.get("STRIPE_SIM_HOST", "127.0.0.1"),
        port=int(env.get("STRIPE_SIM_PORT", DEFAULT_PORT)),
        webhook_endpoints=parse_endpoints(env.get("STRIPE_SIM_WEBHOOK_ENDPOINTS")),
        state_file=env.get("STRIPE_SIM_STATE_FILE") or None,
        fast_retries=_truthy(env.get("STRIPE_SIM_FAST_RETRIES")),
        snapshot_interval=float(env.get("STRIPE_SIM_SNAPSHOT_INTERVAL", "2")),
        api_version=env.get("STRIPE_SIM_API_VERSION", DEFAULT_API_VERSION),
        webhook_max_attempts=(
            int(env["STRIPE_SIM_WEBHOOK_MAX_ATTEMPTS"])
            if env.get("STRIPE_SIM_WEBHOOK_MAX_ATTEMPTS")
            else None
        ),
        log_level=env.get("STRIPE_SIM_LOG_LEVEL", "warning"),
        balance_pending_seconds=float(
            env.get("STRIPE_SIM_BALANCE_PENDING_SECONDS", DEFAULT_BALANCE_PENDING_SECONDS)
        ),
    )
    for key, value in overrides.items():
        if value is not None:
            setattr(config, key, value)
    if config.fast_retries:
        config.webhook_timeout = 5.0
    return config
