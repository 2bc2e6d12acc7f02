"""``/v1/events`` (retrieve, list) and ``/v1/webhook_endpoints`` (create, list, retrieve,
update, delete). Events are scoped like Stripe: the platform sees its own events, a
``Stripe-Account`` request sees that account's."""

from __future__ import annotations

from typing import Any

from .. import errors, ids
from ..forms import Params, apply_metadata
from ..sim import Ctx, Sim
from ..store import Obj
from ..webhooks import Endpoint
from .common import LIST_PARAMS, Route, allowed, list_object, require_secret_key

EVENT_LIST = LIST_PARAMS | {"type", "types", "delivery_success"}
ENDPOINT_CREATE = allowed(
    "api_version", "connect", "description", "enabled_events", "metadata", "url"
)
ENDPOINT_UPDATE = allowed("description", "disabled", "enabled_events", "metadata", "url")


def retrieve_event(sim: Sim, ctx: Ctx, p: Params, event: str) -> Obj:
    p.check_allowed(allowed())
    return sim.require(ctx, event, "event")


def list_events(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    p.check_allowed(EVENT_LIST)
    type_ = p.string("type")
    types = {str(t) for t in p.array("types")}
    if type_ is not None and "*" not in type_:
        ids_ = sim.store.seq_index_ids("event.type", f"{ctx.account or ''}|{type_}")
        return list_object(sim, ctx, p, ids_, "/v1/events", kind="event")
    prefix = type_.split("*", 1)[0] if type_ else None

    def keep(event: Obj) -> bool:
        if types and event["type"] not in types:
            return False
        return prefix is None or event["type"].startswith(prefix)

    ids_ = sim.store.ids_of_type("event", ctx.account)
    return list_object(sim, ctx, p, ids_, "/v1/events", keep=keep, kind="event")


# -- webhook endpoints through the API -----------------------------------------------------


def _endpoint_obj(sim: Sim, endpoint: Endpoint, *, with_secret: bool = False) -> Obj:
    obj: Obj = {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "api_version": sim.config.api_version,
        "application": None,
        "created": endpoint.created,
        "description": None,
        "enabled_events": endpoint.enabled_events,
        "livemode": False,
        "metadata": {},
        "status": "enabled",
        "url": endpoint.url,
    }
    if with_secret:
        obj["secret"] = endpoint.secret
    return obj


def _enabled_events(p: Params) -> list[str]:
    events = [str(e) for e in p.array("enabled_events")]
    if not events:
        raise errors.missing_param("enabled_events")
    return events


def create_endpoint(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    p.check_allowed(ENDPOINT_CREATE)
    require_secret_key(ctx)
    endpoint = sim.deliverer.add_endpoint(
        p.req_string("url"),
        ids.new_id("whsec", 32),
        enabled_events=_enabled_events(p),
        connect=p.flag("connect"),
        source="v1",
    )
    sim.store.touch()
    obj = _endpoint_obj(sim, endpoint, with_secret=True)
    obj["metadata"] = apply_metadata({}, p.raw("metadata"))
    obj["description"] = p.string("description")
    return obj


def _endpoint(sim: Sim, endpoint_id: str) -> Endpoint:
    endpoint = sim.deliverer.endpoints.get(endpoint_id)
    if endpoint is None:
        raise errors.no_such("webhook_endpoint", endpoint_id)
    return endpoint


def retrieve_endpoint(sim: Sim, ctx: Ctx, p: Params, endpoint: str) -> Obj:
    p.check_allowed(allowed())
    return _endpoint_obj(sim, _endpoint(sim, endpoint))


def update_endpoint(sim: Sim, ctx: Ctx, p: Params, endpoint: str) -> Obj:
    p.check_allowed(ENDPOINT_UPDATE)
    found = _endpoint(sim, endpoint)
    if "url" in p:
        found.url = p.req_string("url")
    if "enabled_events" in p:
        found.enabled_events = _enabled_events(p)
    sim.store.touch()
    return _endpoint_obj(sim, found)


def delete_endpoint(sim: Sim, ctx: Ctx, p: Params, endpoint: str) -> Obj:
    _endpoint(sim, endpoint)
    sim.deliverer.remove_endpoint(endpoint)
    sim.store.touch()
    return {"id": endpoint, "object": "webhook_endpoint", "deleted": True}


def list_endpoints(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    p.check_allowed(LIST_PARAMS)
    data: list[Any] = [_endpoint_obj(sim, e) for e in sim.deliverer.endpoints.values()]
    return {"object": "list", "data": data, "has_more": False, "url": "/v1/webhook_endpoints"}


ROUTES = [
    Route("GET", "/v1/events", list_events),
    Route("GET", "/v1/events/{event}", retrieve_event),
    Route("POST", "/v1/webhook_endpoints", create_endpoint),
    Route("GET", "/v1/webhook_endpoints", list_endpoints),
    Route("GET", "/v1/webhook_endpoints/{endpoint}", retrieve_endpoint),
    Route("POST", "/v1/webhook_endpoints/{endpoint}", update_endpoint),
    Route("DELETE", "/v1/webhook_endpoints/{endpoint}", delete_endpoint),
]
