"""The rows of merchant webhooks' tables, typed: one frozen record per entity as the
repository reads it (`from_row`, its one constructor from a SQL result), and the new rows
the service writes (`values`, the columns to insert)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A merchant's endpoint without its secrets (those are read only to sign)."""

    id: str
    org_id: str
    url: str
    description: str | None
    event_types: list[str]
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None
    disabled_at: datetime | None
    previous_secret_expires_at: datetime | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Endpoint:
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            url=row["url"],
            description=row["description"],
            event_types=list(row["event_types"] or []),
            status=row["status"],
            disabled_reason=row["disabled_reason"],
            disabled_at=row["disabled_at"],
            previous_secret_expires_at=row["previous_secret_expires_at"],
            failing_since=row["failing_since"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class DisabledNotice:
    """A claimed notice that BOS disabled `endpoint`: `claimed_until`, the due time the
    claim set, is the claim's token; `attempts`, those made before this one."""

    endpoint: Endpoint
    claimed_until: datetime
    attempts: int

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> DisabledNotice:
        return cls(
            endpoint=Endpoint.from_row(row),
            claimed_until=row["disabled_notice_due_at"],
            attempts=row["disabled_notice_attempts"],
        )


@dataclass(frozen=True, slots=True)
class SubscribedEndpoint:
    """An enabled endpoint and the public event types it takes (none: every type)."""

    id: str
    org_id: str
    event_types: list[str]

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> SubscribedEndpoint:
        return cls(id=row["id"], org_id=row["org_id"], event_types=list(row["event_types"] or []))

    def takes(self, public_type: str) -> bool:
        return not self.event_types or public_type in self.event_types


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A public event to write (`payload` None: rendered at its first attempt)."""

    id: str
    org_id: str
    type: str
    source_event_id: Any  # uuid.UUID of the internal event, None for a test event
    object_kind: str
    object_id: str | None
    data: dict[str, Any]
    payload: str | None
    created_at: datetime

    def values(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "org_id": self.org_id,
            "type": self.type,
            "source_event_id": self.source_event_id,
            "object_kind": self.object_kind,
            "object_id": self.object_id,
            "data": self.data,
            "payload": self.payload,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery to write: pending, due at `next_attempt_at`."""

    id: str
    org_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    next_attempt_at: datetime

    def values(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "org_id": self.org_id,
            "endpoint_id": self.endpoint_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "next_attempt_at": self.next_attempt_at,
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery as the merchant lists it."""

    id: str
    org_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_duration_ms: int | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Delivery:
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            endpoint_id=row["endpoint_id"],
            event_id=row["event_id"],
            event_type=row["event_type"],
            status=row["status"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            last_status_code=row["last_status_code"],
            last_error=row["last_error"],
            last_duration_ms=row["last_duration_ms"],
            delivered_at=row["delivered_at"],
            created_at=row["created_at"],
        )

    @classmethod
    def written(cls, new: NewDelivery, created_at: datetime) -> Delivery:
        """The row `new` made, as the table's defaults fill it in."""
        return cls(
            id=new.id,
            org_id=new.org_id,
            endpoint_id=new.endpoint_id,
            event_id=new.event_id,
            event_type=new.event_type,
            status="pending",
            attempts=0,
            next_attempt_at=new.next_attempt_at,
            last_status_code=None,
            last_error=None,
            last_duration_ms=None,
            delivered_at=None,
            created_at=created_at,
        )


@dataclass(frozen=True, slots=True)
class SigningSecrets:
    """An endpoint's current secret, and the previous one while its overlap lasts."""

    secret: str
    previous_secret: str | None = None
    previous_secret_expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery leased for an attempt, with what the attempt needs of its endpoint and
    event."""

    id: str
    org_id: str
    endpoint_id: str
    event_id: str
    attempts: int
    url: str
    endpoint_status: str
    signing: SigningSecrets
    failing_since: datetime | None
    type: str
    payload: str | None
    data: dict[str, Any]
    object_kind: str
    object_id: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> ClaimedDelivery:
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            endpoint_id=row["endpoint_id"],
            event_id=row["event_id"],
            attempts=row["attempts"],
            url=row["url"],
            endpoint_status=row["endpoint_status"],
            signing=SigningSecrets(
                row["secret"], row["previous_secret"], row["previous_secret_expires_at"]
            ),
            failing_since=row["failing_since"],
            type=row["type"],
            payload=row["payload"],
            data=row["data"],
            object_kind=row["object_kind"],
            object_id=row["object_id"],
            created_at=row["created_at"],
        )
