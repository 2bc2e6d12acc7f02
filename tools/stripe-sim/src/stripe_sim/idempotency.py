"""``Idempotency-Key`` replay (24 h), as Stripe: same key + same request replays the stored
response; same key + different parameters is an ``idempotency_error``; same key while a
request with it is still executing is 409 ``idempotency_key_in_use`` (nothing saved for
that one: the client retries it a moment later)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import errors

TTL_SECONDS = 24 * 3600


@dataclass(slots=True)
class Entry:
    created: float
    path: str
    digest: str
    status: int
    body: bytes
    request_id: str


def digest(method: str, pairs: list[tuple[str, str]]) -> str:
    h = hashlib.sha256(method.encode())
    for key, value in sorted(pairs):
        h.update(b"\x00" + key.encode() + b"\x01" + value.encode())
    return h.hexdigest()


def _reused(message: str) -> errors.StripeError:
    """A key reused for another endpoint or other parameters (rule 8): a refused request."""
    exc = errors.StripeError(400, "idempotency_error", message)
    exc.refusal = "rule"
    return exc


def _in_use(key: str) -> errors.StripeError:
    return errors.StripeError(
        409,
        "invalid_request_error",
        "There is currently another in-progress request using this Idempotent Key (that "
        "probably means you submitted twice, and the other request is still going through): "
        f"{key}. Please try again later.",
        code="idempotency_key_in_use",
    )


class IdempotencyCache:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        # insertion order == creation order, so expiry pops from the front
        self.entries: dict[tuple[str | None, str], Entry] = {}
        # keys whose request is executing now (its response not saved yet)
        self.executing_keys: set[tuple[str | None, str]] = set()

    @contextmanager
    def executing(self, scope: str | None, key: str) -> Iterator[None]:
        """Hold `key` while its request executes; raises 409 when another holds it."""
        held = (scope, key)
        if held in self.executing_keys:
            raise _in_use(key)
        self.executing_keys.add(held)
        try:
            yield
        finally:
            self.executing_keys.discard(held)

    def _prune(self, now: float) -> None:
        while self.entries:
            first = next(iter(self.entries))
            if now - self.entries[first].created < self.ttl:
                return
            del self.entries[first]

    def lookup(self, scope: str | None, key: str, path: str, request_digest: str) -> Entry | None:
        now = time.time()
        self._prune(now)
        entry = self.entries.get((scope, key))
        if entry is None:
            return None
        if entry.path != path:
            raise _reused(
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{entry.path}' vs '{path}'). Try using a key other than "
                f"'{key}' if you meant to execute a different request.",
            )
        if entry.digest != request_digest:
            raise _reused(
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
            )
        return entry

    def save(self, scope: str | None, key: str, entry: Entry) -> None:
        self.entries[(scope, key)] = entry

    def clear(self) -> None:
        self.entries.clear()
        self.executing_keys.clear()

    def dump(self) -> list[list[Any]]:
        return [
            [scope, key, e.created, e.path, e.digest, e.status, e.body.decode(), e.request_id]
            for (scope, key), e in self.entries.items()
        ]

    def load(self, rows: list[list[Any]]) -> None:
        self.entries.clear()
        for scope, key, created, path, dig, status, body, request_id in rows:
            self.entries[(scope, key)] = Entry(
                created, path, dig, status, body.encode(), request_id
            )
        self._prune(time.time())
