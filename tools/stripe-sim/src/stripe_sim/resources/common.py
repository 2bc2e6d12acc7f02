"""Shared pieces of the resource modules: route records, list responses, small builders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..forms import Params
from ..sim import Ctx, Sim
from ..store import Obj, paginate

Handler = Callable[..., Obj]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    #: callable with a publishable key (Stripe.js); the handler checks the client secret
    publishable: bool = False


def list_limit(p: Params) -> int:
    limit = p.integer("limit")
    if limit is None:
        return 10
    if not 1 <= limit <= 100:
        raise errors.invalid_request(
            "Invalid limit: must be between 1 and 100", param="limit", code="parameter_invalid"
        )
    return limit


def list_object(
    sim: Sim,
    ctx: Ctx,
    p: Params,
    ids: list[str],
    url: str,
    *,
    keep: Callable[[Obj], bool] | None = None,
    sorted_by_seq: bool = True,
    kind: str = "object",
) -> Obj:
    """A Stripe list (newest first) over ``ids`` (oldest first) visible to ``ctx.account``."""
    store = sim.store

    def visible(object_id: str) -> bool:
        obj = store.get(object_id, ctx.account)
        return obj is not None and (keep is None or keep(obj))

    def missing(object_id: str, param: str) -> Exception:
        return errors.no_such(kind, object_id, param=param, status=400)

    page = paginate(
        store,
        ids,
        limit=list_limit(p),
        starting_after=p.string("starting_after"),
        ending_before=p.string("ending_before"),
        keep=visible,
        sorted_by_seq=sorted_by_seq,
        missing=missing,
    )
    return {
        "object": "list",
        "data": [store.objects[i] for i in page.ids],
        "has_more": page.has_more,
        "url": url,
    }


def empty_list(url: str) -> Obj:
    return {"object": "list", "data": [], "has_more": False, "url": url}


def empty_address() -> dict[str, Any]:
    return {
        "city": None,
        "country": None,
        "line1": None,
        "line2": None,
        "postal_code": None,
        "state": None,
    }


def address_from(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    address = empty_address()
    for key in address:
        if value.get(key) not in (None, ""):
            address[key] = str(value[key])
    return address


def check_publishable_secret(ctx: Ctx, p: Params, obj: Obj, kind: str) -> None:
    """With a publishable key, the caller must prove it holds the intent's client secret."""
    if not ctx.publishable:
        return
    if p.string("client_secret") != obj.get("client_secret"):
        raise errors.no_such(kind, obj["id"])


def require_secret_key(ctx: Ctx) -> None:
    if ctx.publishable:
        raise errors.StripeError(
            401,
            "invalid_request_error",
            "This API call cannot be made with a publishable API key. Please use a secret API key.",
        )
