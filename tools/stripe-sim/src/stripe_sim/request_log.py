"""Every ``/v1`` request the simulator answered, newest last, for ``GET /_sim/requests``: a
test can then assert that a whole run sent nothing Stripe refuses. Bounded: the oldest
records go first."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from . import errors

MAX_RECORDS = 50_000


class RequestLog:
    def __init__(self, max_records: int = MAX_RECORDS) -> None:
        self.records: deque[dict[str, Any]] = deque(maxlen=max_records)
        self.total = 0

    def record(
        self,
        *,
        method: str,
        path: str,
        headers: Any,
        params: Any,
        status: int,
        request_id: str,
        error: errors.StripeError | None,
    ) -> None:
        self.total += 1
        self.records.append(
            {
                "at": time.time(),
                "request_id": request_id,
                "method": method,
                "path": path,
                "stripe_account": headers.get("stripe-account"),
                "stripe_version": headers.get("stripe-version"),
                "idempotency_key": headers.get("idempotency-key"),
                "params": params,
                "status": status,
                "error": None
                if error is None
                else {
                    "type": error.type,
                    "code": error.code,
                    "param": error.param,
                    "message": error.message,
                },
                "refusal": error.refusal if error is not None else None,
            }
        )

    def clear(self) -> None:
        self.records.clear()
        self.total = 0

    def listing(self, *, refused_only: bool = False) -> dict[str, Any]:
        data = [r for r in self.records if r["refusal"]] if refused_only else list(self.records)
        return {
            "object": "list",
            "data": data,
            "total": self.total,
            "dropped": self.total - len(self.records),
        }
