"""``/v1/events`` (retrieve, list) and ``/v1/webhook_endpoints`` (create, list, retrieve,
update, delete). Events are scoped like Stripe: the platform sees its own events, a
``Stripe-Account`` request sees that account's."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from .. import errors, forms, ids
from ..forms import Params, apply_metadata
from ..sim import Ctx, Sim
from ..store import Obj
from ..webhooks import Endpoint
from .common import Route, list_object, require_secret_key

RANGE_OPERATORS: dict[str, Callable[[int, int], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def retrieve_event(sim: Sim, ctx: Ctx, p: Params, event: str) -> Obj:
    return sim.require(ctx, event, "event")


def created_filter(p: Params) -> Callable[[Obj], bool] | None:
    """``created`` as an exact timestamp or a range (``created[gte]``, ``[gt]``, ``[lte]``,
    ``[lt]``), as Stripe's list endpoints take it."""
    value = p.raw("created")
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        exact = forms.to_int(value, "created")
        return lambda obj: bool(obj["created"] == exact)
    bounds: dict[str, int] = {}
    for key, bound in value.items():
        if key not in RANGE_OPERATORS:
            raise errors.unknown_param(f"created[{key}]")
        bounds[key] = forms.to_int(bound, f"created[{key}]")

    def keep(obj: Obj) -> bool:
        created = obj["created"]
        return all(RANGE_OPERATORS[op](created, bound) for op, bound in bounds.items())

    return keep


def list_events(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    """The events of the caller's account (``Stripe-Account``; the platform's without it),
    newest first, filtered by ``type`` (``*`` wildcard) or ``types[]``, ``created`` and
    ``delivery_success``."""
    type_ = p.string("type")
    types = {str(t) for t in p.array("types")}
    if type_ is not None and types:
        raise errors.invalid_request(
            "You may pass either `type` or `types`, but not both.", param="types"
        )
    created = created_filter(p)
    delivered = p.flag("delivery_success") if "delivery_success" in p else None
    exact = type_ is not None and "*" not in type_
    prefix = type_.split("*", 1)[0] if type_ is not None and not exact else None

    def keep(event: Obj) -> bool:
        if types and event["type"] not in types:
            return False
        if prefix is not None and not event["type"].startswith(prefix):
            return False
        if created is not None and not created(event):
            return False
        return delivered is None or (event["pending_webhooks"] == 0) == delivered

    if exact:
        ids_ = sim.store.seq_index_ids("event.type", f"{ctx.account or ''}|{type_}")
    else:
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
    return _endpoint_obj(sim, _endpoint(sim, endpoint))


def update_endpoint(sim: Sim, ctx: Ctx, p: Params, endpoint: str) -> Obj:
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
