"""Fault injection: API error rate and latency, webhook duplicate/shuffle/drop-first-attempt."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

from . import errors

_FIELDS = {
    "api_error_rate": float,
    "api_latency_ms": int,
    "webhook_duplicate": bool,
    "webhook_shuffle": bool,
    "webhook_drop_first_attempt": bool,
}


@dataclass(slots=True)
class Faults:
    api_error_rate: float = 0.0
    api_latency_ms: int = 0
    webhook_duplicate: bool = False
    webhook_shuffle: bool = False
    webhook_drop_first_attempt: bool = False

    def update(self, body: dict[str, Any]) -> None:
        for key, value in body.items():
            kind = _FIELDS.get(key)
            if kind is None:
                raise errors.unknown_param(key)
            if kind is bool:
                if not isinstance(value, bool):
                    raise errors.invalid_request(f"{key} must be a boolean", param=key)
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise errors.invalid_request(f"{key} must be a number", param=key)
            setattr(self, key, kind(value))
        if not 0.0 <= self.api_error_rate <= 1.0:
            raise errors.invalid_request(
                "api_error_rate must be within 0..1", param="api_error_rate"
            )
        if self.api_latency_ms < 0:
            raise errors.invalid_request("api_latency_ms must be >= 0", param="api_latency_ms")

    def clear(self) -> None:
        for key, value in asdict(Faults()).items():
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def should_fail_api(self) -> bool:
        return self.api_error_rate > 0 and random.random() < self.api_error_rate
