"""The stack's processes one by one, for tests that look behind the load balancer (a
service's metrics and logs): with `REPLICAS=N` (scripts/lib.sh) each service runs N
processes, and its URL reaches one of them per request."""

from __future__ import annotations

import os
from pathlib import Path


def replica_urls(service: str) -> list[str]:
    """Every process of `service` (`checkout`, ...): <SERVICE>_REPLICA_URLS, else its URL."""
    name = service.upper()
    urls = os.environ.get(f"{name}_REPLICA_URLS") or os.environ[f"{name}_URL"]
    return urls.split(",")


def log_files(state_dir: str, service: str) -> list[Path]:
    """The log of each process of `service` (`checkout.log`, or `checkout-1.log`, ...)."""
    logs = Path(state_dir, "logs")
    return [
        p for p in [logs / f"{service}.log", *sorted(logs.glob(f"{service}-*.log"))] if p.exists()
    ]
