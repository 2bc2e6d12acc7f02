"""Merchant webhook routes (API key; organization from the identity, another
organization's endpoint or delivery is 404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from bos_common.app import CurrentIdentity, Session
from bos_common.auth import Identity, require_org
from webhooks.endpoints import repository, service
from webhooks.endpoints.schemas import (
    Delivery,
    DeliveryList,
    Endpoint,
    EndpointCreate,
    EndpointDeleted,
    EndpointList,
    EndpointUpdate,
    EndpointWithSecret,
    delivery_out,
    endpoint_out,
    endpoint_with_secret,
)
from webhooks.settings import WebhooksSettings

router = APIRouter()
Limit = Annotated[int, Query(ge=1, le=100)]
StartingAfter = Annotated[str | None, Query(max_length=64)]


async def _settings(request: Request) -> WebhooksSettings:
    settings: WebhooksSettings = request.app.state.runtime.settings
    return settings


Settings = Annotated[WebhooksSettings, Depends(_settings)]


def _org(identity: Identity) -> str:
    return require_org(identity, "api_key")


@router.post(
    "/v1/webhook-endpoints",
    status_code=201,
    response_model=EndpointWithSecret,
    summary="Register a webhook endpoint",
    description="Answers the signing secret (`whsec_...`) once. A URL that is not allowed "
    "(in production: not https, or a private, loopback or link-local address) is 400 "
    "`url_invalid`; an unknown event type is 422.",
)
async def create_webhook_endpoint(
    body: EndpointCreate, session: Session, identity: CurrentIdentity, settings: Settings
) -> EndpointWithSecret:
    row, secret = await service.create_endpoint(
        settings, session, _org(identity), body.url, body.event_types, body.description
    )
    return endpoint_with_secret(row, secret)


@router.get("/v1/webhook-endpoints", response_model=EndpointList, summary="List webhook endpoints")
async def list_webhook_endpoints(
    session: Session,
    identity: CurrentIdentity,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> EndpointList:
    rows, more = await repository.list_endpoints(session, _org(identity), limit, starting_after)
    return EndpointList(data=[endpoint_out(r) for r in rows], has_more=more)


@router.get(
    "/v1/webhook-endpoints/{endpoint_id}",
    response_model=Endpoint,
    summary="Retrieve a webhook endpoint",
)
async def get_webhook_endpoint(
    endpoint_id: str, session: Session, identity: CurrentIdentity
) -> Endpoint:
    return endpoint_out(await service.endpoint(session, _org(identity), endpoint_id))


@router.patch(
    "/v1/webhook-endpoints/{endpoint_id}",
    response_model=Endpoint,
    summary="Update a webhook endpoint",
    description='`status: "enabled"` enables an endpoint again (one disabled by its '
    "failures too); its waiting deliveries are then sent.",
)
async def update_webhook_endpoint(
    endpoint_id: str,
    body: EndpointUpdate,
    session: Session,
    identity: CurrentIdentity,
    settings: Settings,
) -> Endpoint:
    row = await service.update_endpoint(settings, session, _org(identity), endpoint_id, body)
    return endpoint_out(row)


@router.delete(
    "/v1/webhook-endpoints/{endpoint_id}",
    response_model=EndpointDeleted,
    summary="Delete a webhook endpoint (and its deliveries)",
)
async def delete_webhook_endpoint(
    endpoint_id: str, session: Session, identity: CurrentIdentity
) -> EndpointDeleted:
    await service.delete_endpoint(session, _org(identity), endpoint_id)
    return EndpointDeleted(id=endpoint_id)


@router.post(
    "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
    response_model=EndpointWithSecret,
    summary="Rotate an endpoint's signing secret",
    description="Answers the new secret once. Until `previous_secret_expires_at` (24 hours) "
    "deliveries carry a signature by each secret, so either verifies.",
)
async def rotate_webhook_endpoint_secret(
    endpoint_id: str, session: Session, identity: CurrentIdentity, settings: Settings
) -> EndpointWithSecret:
    row, secret = await service.rotate_secret(settings, session, _org(identity), endpoint_id)
    return endpoint_with_secret(row, secret)


@router.post(
    "/v1/webhook-endpoints/{endpoint_id}/test",
    status_code=201,
    response_model=Delivery,
    summary="Send a test event to an endpoint",
    description="A `webhook_endpoint.test` event, delivered to this endpoint only.",
)
async def test_webhook_endpoint(
    endpoint_id: str, session: Session, identity: CurrentIdentity
) -> Delivery:
    return delivery_out(await service.send_test_event(session, _org(identity), endpoint_id))


@router.get(
    "/v1/webhook-endpoints/{endpoint_id}/deliveries",
    response_model=DeliveryList,
    summary="List an endpoint's deliveries",
)
async def list_webhook_deliveries(
    endpoint_id: str,
    session: Session,
    identity: CurrentIdentity,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> DeliveryList:
    org = _org(identity)
    await service.endpoint(session, org, endpoint_id)
    rows, more = await repository.list_deliveries(session, org, endpoint_id, limit, starting_after)
    return DeliveryList(data=[delivery_out(r) for r in rows], has_more=more)


@router.post(
    "/v1/webhook-deliveries/{delivery_id}/retry",
    response_model=Delivery,
    summary="Deliver again now",
    description="Due at once, whatever its status (a delivered event is sent again).",
)
async def retry_webhook_delivery(
    delivery_id: str, session: Session, identity: CurrentIdentity
) -> Delivery:
    return delivery_out(await service.retry_delivery(session, _org(identity), delivery_id))
