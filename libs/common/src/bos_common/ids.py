"""Time-ordered, prefixed ids (`prod_`, `cs_`, `pay_`, ...), shared by every service.

`<prefix>_` + 8 base62 characters of the creation time in milliseconds + 12 base62
characters of randomness (71 bits). The alphabet is in ASCII order, so under
`COLLATE "C"` ids sort by creation time: lists are `ORDER BY id DESC` and a cursor is
`id < :starting_after`, one index range scan at any depth.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TIME_CHARS = 8  # 62**8 ms ~ 6,900 years after 1970
RANDOM_CHARS = 12  # 62**12 > 2**71
RANDOM_BITS = 71
ID_PATTERN = re.compile(r"^[a-z]+_[0-9A-Za-z]{1,40}$")


def base62(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, rem = divmod(value, 62)
        out.append(ALPHABET[rem])
    if value:
        raise ValueError("value does not fit the width")
    return "".join(reversed(out))


_last = (0, 0)  # (ms, random) of the previous id of this process


def new_id(prefix: str, *, now_ms: int | None = None) -> str:
    """Monotonic within a process (ULID-style: within one millisecond, or when the clock
    steps back, the random part is the previous one plus a small random step); random
    across processes."""
    global _last
    t = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    last_t, last_r = _last
    if now_ms is None and t <= last_t:
        t, r = last_t, last_r + 1 + secrets.randbits(24)
        if r >= 1 << RANDOM_BITS:
            t, r = t + 1, secrets.randbits(RANDOM_BITS - 1)
    else:
        r = secrets.randbits(RANDOM_BITS - 1)  # headroom to count up within the millisecond
    if now_ms is None:
        _last = (t, r)
    return f"{prefix}_{base62(t, TIME_CHARS)}{base62(r, RANDOM_CHARS)}"


def derived_id(prefix: str, key: str, *, at_ms: int) -> str:
    """The same id every time for the same `key` (and time): for a row written again
    after a crash rolled back the first write, whose id Stripe already holds (an
    idempotent request's parameters must not change). Time-ordered as `new_id`; the
    12 random characters are taken from a hash of `key`."""
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:9], "big")
    return f"{prefix}_{base62(at_ms, TIME_CHARS)}{base62(digest >> 1, RANDOM_CHARS)}"


def id_pattern(prefix: str) -> str:
    """The JSON Schema `pattern` of what `looks_like(value, prefix)` accepts."""
    return f"^{prefix}_[0-9A-Za-z]{{1,{40 - len(prefix) - 1}}}$"


def looks_like(value: str, prefix: str) -> bool:
    """Cheap shape check before touching the database (an id of the wrong kind is 404)."""
    return value.startswith(prefix + "_") and len(value) <= 40 and bool(ID_PATTERN.match(value))
