"""When a failed delivery is tried again: exponential backoff with jitter over about
three days (pure, tested without a clock)."""

from __future__ import annotations

import random
from collections.abc import Callable

# Attempts in all (the first included): with the defaults, retries after about 30 s, 2 min,
# 8 min, 32 min, 2 h, 8.5 h, then every 12 h, the last about 3 days after the first.
MAX_ATTEMPTS = 12
FACTOR = 4.0
JITTER = 0.2  # each delay is drawn within +-20 % of its nominal value


def retry_delay(
    attempts: int,
    *,
    base_seconds: float = 30.0,
    cap_seconds: float = 12 * 3600.0,
    max_attempts: int = MAX_ATTEMPTS,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones; None when they are
    exhausted. `rand` returns a number in [0, 1) (the jitter)."""
    if attempts < 1:
        raise ValueError("attempts counts the failed attempts, from 1")
    if attempts >= max_attempts:
        return None
    nominal = min(base_seconds * FACTOR ** (attempts - 1), cap_seconds)
    return nominal * (1 - JITTER + 2 * JITTER * rand())
