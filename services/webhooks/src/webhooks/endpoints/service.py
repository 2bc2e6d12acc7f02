"""Merchant webhooks' domain logic: endpoints (registration checks, secrets, rotation),
turning internal events into deliveries, and what an attempt's result means (`after_attempt`,
pure). Never commits: the caller's transaction does."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.errors import InvalidRequest, NotFound
from bos_common.events import Envelope
from bos_common.ids import looks_like, new_id
from webhooks.endpoints import catalogue, repository
from webhooks.endpoints.addresses import RefusedAddress, check_resolved, check_url
from webhooks.endpoints.rows import Delivery, Endpoint, NewDelivery, NewEvent
from webhooks.endpoints.schedule import retry_delay
from webhooks.endpoints.schemas import EndpointUpdate
from webhooks.settings import WebhooksSettings

ENDPOINT_PREFIX = "we"
DELIVERY_PREFIX = "wdl"
EVENT_PREFIX = "evt"


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def check_endpoint_url(settings: WebhooksSettings, url: str) -> None:
    """400 `url_invalid` for a URL an endpoint may not have (see addresses.py): a rule of
    the deployment, not of the schema (any string is a schema-valid `url`)."""
    try:
        host = check_url(
            url,
            require_https=settings.is_production,
            allow_private=settings.allow_private_endpoints,
        )
        if not settings.allow_private_endpoints:
            await check_resolved(host)
    except RefusedAddress as exc:
        raise InvalidRequest("url_invalid", str(exc), param="url") from None


def _not_found() -> NotFound:
    return NotFound("webhook_endpoint_not_found", "No such webhook endpoint.")


async def endpoint(session: AsyncSession, org_id: str, endpoint_id: str) -> Endpoint:
    row = None
    if looks_like(endpoint_id, ENDPOINT_PREFIX):
        row = await repository.get_endpoint(session, org_id, endpoint_id)
    if row is None:
        raise _not_found()
    return row


async def create_endpoint(
    settings: WebhooksSettings,
    session: AsyncSession,
    org_id: str,
    url: str,
    event_types: Sequence[str],
    description: str | None,
) -> tuple[Endpoint, str]:
    """The endpoint and its signing secret (shown this once)."""
    await check_endpoint_url(settings, url)
    secret = new_secret()
    row = await repository.insert_endpoint(
        session,
        id=new_id(ENDPOINT_PREFIX),
        org_id=org_id,
        url=url,
        event_types=list(dict.fromkeys(event_types)),
        description=description,
        secret=secret,
    )
    return row, secret


async def update_endpoint(
    settings: WebhooksSettings,
    session: AsyncSession,
    org_id: str,
    endpoint_id: str,
    changes: EndpointUpdate,
) -> Endpoint:
    """Changes the fields `changes` sets (an explicit null description clears it)."""
    await endpoint(session, org_id, endpoint_id)
    values: dict[str, Any] = {}
    if changes.url is not None:
        await check_endpoint_url(settings, changes.url)
        values["url"] = changes.url
    if changes.event_types is not None:
        values["event_types"] = list(dict.fromkeys(changes.event_types))
    if "description" in changes.model_fields_set:
        values["description"] = changes.description
    if changes.status == "enabled":
        values.update(
            status="enabled",
            disabled_reason=None,
            disabled_at=None,
            failing_since=None,
            disabled_notice_due_at=None,
        )
    elif changes.status == "disabled":
        # The merchant knows: an e-mail still owed about BOS disabling it is not sent.
        values.update(
            status="disabled",
            disabled_reason="disabled by the merchant",
            disabled_at=func.now(),
            disabled_notice_due_at=None,
        )
    row = await repository.update_endpoint(session, org_id, endpoint_id, values)
    if row is None:
        raise _not_found()
    return row


async def delete_endpoint(session: AsyncSession, org_id: str, endpoint_id: str) -> None:
    if not looks_like(endpoint_id, ENDPOINT_PREFIX) or not await repository.delete_endpoint(
        session, org_id, endpoint_id
    ):
        raise _not_found()


async def rotate_secret(
    settings: WebhooksSettings, session: AsyncSession, org_id: str, endpoint_id: str
) -> tuple[Endpoint, str]:
    """The endpoint and its new secret; the current one keeps signing beside it for the
    overlap."""
    current = await endpoint(session, org_id, endpoint_id)
    old = await repository.endpoint_secret(session, current.id)
    secret = new_secret()
    until = datetime.now(UTC) + timedelta(seconds=settings.merchant_webhook_secret_overlap_seconds)
    row = await repository.update_endpoint(
        session,
        org_id,
        endpoint_id,
        {"secret": secret, "previous_secret": old, "previous_secret_expires_at": until},
    )
    assert row is not None
    return row, secret


async def retry_delivery(session: AsyncSession, org_id: str, delivery_id: str) -> Delivery:
    row = None
    if looks_like(delivery_id, DELIVERY_PREFIX):
        row = await repository.retry_delivery(session, org_id, delivery_id)
    if row is None:
        raise NotFound("webhook_delivery_not_found", "No such webhook delivery.")
    return row


async def send_test_event(session: AsyncSession, org_id: str, endpoint_id: str) -> Delivery:
    """A `webhook_endpoint.test` event for this endpoint alone (enabled or not: it is
    delivered when the endpoint is enabled)."""
    found = await endpoint(session, org_id, endpoint_id)
    now = datetime.now(UTC)
    event_id = new_id(EVENT_PREFIX)
    obj = {"id": found.id, "object": "webhook_endpoint", "url": found.url}
    await repository.insert_events(
        session,
        [
            NewEvent(
                id=event_id,
                org_id=org_id,
                type=catalogue.TEST_EVENT_TYPE,
                source_event_id=None,
                object_kind="webhook_endpoint",
                object_id=found.id,
                data=obj,
                payload=None,
                created_at=now,
            )
        ],
    )
    delivery = _delivery(org_id, found.id, event_id, catalogue.TEST_EVENT_TYPE, now)
    await repository.insert_deliveries(session, [delivery])
    return Delivery.written(delivery, created_at=now)


def _delivery(
    org_id: str, endpoint_id: str, event_id: str, type_: str, now: datetime
) -> NewDelivery:
    return NewDelivery(
        id=new_id(DELIVERY_PREFIX),
        org_id=org_id,
        endpoint_id=endpoint_id,
        event_id=event_id,
        event_type=type_,
        next_attempt_at=now,
    )


async def plan_deliveries(session: AsyncSession, envelopes: Sequence[Envelope]) -> int:
    """Each internal event that makes a public one, for each enabled endpoint of its
    organization subscribed to that type: one event row and one delivery per endpoint
    (the inbox runs this once per event). Returns how many deliveries were written."""
    made = []
    for envelope in envelopes:
        found = catalogue.source_of(envelope.event_type, envelope.data)
        if found is not None and envelope.org_id:
            made.append((envelope, *found))
    if not made:
        return 0
    orgs = sorted({envelope.org_id or "" for envelope, _, _ in made})
    endpoints = await repository.subscribed_endpoints(session, orgs)
    if not endpoints:
        return 0
    now = datetime.now(UTC)
    events: list[NewEvent] = []
    deliveries: list[NewDelivery] = []
    for envelope, source, object_id in made:
        targets = [
            e.id for e in endpoints if e.org_id == envelope.org_id and e.takes(source.public_type)
        ]
        if not targets:
            continue
        event_id = new_id(EVENT_PREFIX)
        events.append(
            NewEvent(
                id=event_id,
                org_id=envelope.org_id or "",
                type=source.public_type,
                source_event_id=envelope.event_id,
                object_kind=source.kind,
                object_id=object_id,
                data=envelope.data,
                # Made now when the object is the event's own; else at the first attempt.
                payload=_payload_of(event_id, source.public_type, envelope, source.kind),
                created_at=envelope.occurred_at,
            )
        )
        for target in targets:
            deliveries.append(
                _delivery(envelope.org_id or "", target, event_id, source.public_type, now)
            )
    await repository.insert_events(session, events)
    await repository.insert_deliveries(session, deliveries)
    return len(deliveries)


def _payload_of(event_id: str, type_: str, envelope: Envelope, kind: str) -> str | None:
    if kind != "refund":
        return None
    obj = catalogue.refund_object(envelope.data)
    created = int(envelope.occurred_at.timestamp())
    return orjson.dumps(catalogue.body(event_id, type_, created, obj)).decode()


# --- the result of an attempt --------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What to record after an attempt: the delivery's new status and next attempt, and
    whether the endpoint must be disabled (its failures have lasted too long)."""

    status: str  # "succeeded" | "pending" | "failed"
    next_attempt_at: datetime | None
    disable_endpoint: bool = False


def after_attempt(
    settings: WebhooksSettings,
    *,
    ok: bool,
    attempts: int,
    failing_since: datetime | None,
    now: datetime,
    rand: Any = None,
) -> Outcome:
    """`attempts` counts this one; `failing_since` is when the endpoint began to fail
    (this failure included)."""
    if ok:
        return Outcome("succeeded", None)
    kwargs: dict[str, Any] = {} if rand is None else {"rand": rand}
    delay = retry_delay(
        attempts,
        base_seconds=settings.merchant_webhook_retry_base_seconds,
        cap_seconds=settings.merchant_webhook_retry_cap_seconds,
        max_attempts=settings.merchant_webhook_max_attempts,
        **kwargs,
    )
    disable = failing_since is not None and now - failing_since >= timedelta(
        seconds=settings.merchant_webhook_disable_after_seconds
    )
    if delay is None:
        return Outcome("failed", None, disable)
    return Outcome("pending", now + timedelta(seconds=delay), disable)
