"""Every ``/v1`` request the simulator answered, newest last, for ``GET /_sim/requests``: a
test can then assert that a whole run sent nothing Stripe refuses. Bounded: the oldest
records go first; refusals are also kept apart (bounded too), so a long run's traffic never
pushes one out before it is checked.

A record is a flat tuple of strings and numbers with the raw form string (decoded only when
listed): it costs little per request and gives the garbage collector nothing to scan.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import Any, NamedTuple

from . import errors, forms

MAX_RECORDS = 50_000
MAX_REFUSALS = 10_000


class Record(NamedTuple):
    at: float
    request_id: str
    method: str
    path: str
    stripe_account: str | None
    stripe_version: str | None
    idempotency_key: str | None
    form: str
    status: int
    error_type: str | None
    error_code: str | None
    error_param: str | None
    error_message: str | None
    refusal: str | None

    def as_dict(self) -> dict[str, Any]:
        params, _ = forms.decode(self.form)
        params.pop("key", None)  # a publishable key sent as a form field
        return {
            "at": self.at,
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "stripe_account": self.stripe_account,
            "stripe_version": self.stripe_version,
            "idempotency_key": self.idempotency_key,
            "params": params,
            "status": self.status,
            "error": None
            if self.error_type is None
            else {
                "type": self.error_type,
                "code": self.error_code,
                "param": self.error_param,
                "message": self.error_message,
            },
            "refusal": self.refusal,
        }


class RequestLog:
    def __init__(self, max_records: int = MAX_RECORDS) -> None:
        self.records: deque[Record] = deque(maxlen=max_records)
        self.refusals: deque[Record] = deque(maxlen=MAX_REFUSALS)
        self.total = 0

    def record(
        self,
        *,
        method: str,
        path: str,
        headers: Mapping[str, str],
        form: str,
        status: int,
        request_id: str,
        error: errors.StripeError | None,
    ) -> None:
        self.total += 1
        record = Record(
            time.time(),
            request_id,
            method,
            path,
            headers.get("stripe-account"),
            headers.get("stripe-version"),
            headers.get("idempotency-key"),
            form,
            status,
            error.type if error else None,
            error.code if error else None,
            error.param if error else None,
            error.message if error else None,
            error.refusal if error else None,
        )
        self.records.append(record)
        if record.refusal:
            self.refusals.append(record)

    def clear(self) -> None:
        self.records.clear()
        self.refusals.clear()
        self.total = 0

    def listing(self, *, refused_only: bool = False) -> dict[str, Any]:
        records = self.refusals if refused_only else self.records
        return {
            "object": "list",
            "data": [r.as_dict() for r in records],
            "total": self.total,
            "dropped": self.total - len(self.records),
        }
