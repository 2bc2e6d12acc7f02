"""The row types of the service's data.

`Row`: a subscription's or an invoice's row (or the changes to one) as a dict of column
name to value, as the repository reads it and billing's decisions take it. `Notification`:
a notification row, typed (built once, by the repository, from the SQL result)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Notification:
    """A customer e-mail to send: its kind, address, template context and delivery state."""

    id: uuid.UUID
    org_id: str
    kind: str
    dedupe_key: str
    to_email: str
    context: dict[str, Any]
    invoice_id: str | None
    status: str  # pending | sent | failed
    attempts: int
    next_attempt_at: datetime
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Notification:
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            kind=row["kind"],
            dedupe_key=row["dedupe_key"],
            to_email=row["to_email"],
            context=row["context"],
            invoice_id=row["invoice_id"],
            status=row["status"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            created_at=row["created_at"],
        )
