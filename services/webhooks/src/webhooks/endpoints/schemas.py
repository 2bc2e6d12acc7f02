"""Request and response models of merchant webhooks (snake_case, prefixed ids, times in
ISO-8601 UTC)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bos_common.fields import non_blank_text
from webhooks.endpoints import rows
from webhooks.endpoints.catalogue import EVENT_TYPES, PublicEventType

Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]
Description = Annotated[str, non_blank_text(500)]
EventTypes = Annotated[list[PublicEventType], Field(max_length=len(EVENT_TYPES))]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointCreate(_In):
    url: Url
    # Empty or absent: every type.
    event_types: EventTypes = Field(default_factory=list)
    description: Description | None = None


class EndpointUpdate(_In):
    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    status: Literal["enabled", "disabled"] | None = None


class Endpoint(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    description: str | None
    event_types: list[str]
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(Endpoint):
    """Creation and rotation only: the signing secret, never shown again."""

    secret: str
    previous_secret_expires_at: datetime | None = None


class EndpointList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Endpoint]
    has_more: bool


class EndpointDeleted(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    deleted: Literal[True] = True


class Delivery(BaseModel):
    id: str
    object: Literal["webhook_delivery"] = "webhook_delivery"
    endpoint_id: str
    event_id: str
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_duration_ms: int | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Delivery]
    has_more: bool


def endpoint_out(row: rows.Endpoint) -> Endpoint:
    return Endpoint(
        id=row.id,
        url=row.url,
        description=row.description,
        event_types=list(row.event_types),
        status=row.status,
        disabled_reason=row.disabled_reason,
        disabled_at=row.disabled_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def endpoint_with_secret(row: rows.Endpoint, secret: str) -> EndpointWithSecret:
    return EndpointWithSecret(
        **endpoint_out(row).model_dump(),
        secret=secret,
        previous_secret_expires_at=row.previous_secret_expires_at,
    )


def delivery_out(row: rows.Delivery) -> Delivery:
    return Delivery(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        last_duration_ms=row.last_duration_ms,
        # Only a pending delivery has a next attempt to show.
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
    )
