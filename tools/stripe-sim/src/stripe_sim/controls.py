"""Simulator-only test controls under ``/_sim`` (see docs/api.md "Simulator test
controls"), the hosted 3DS and onboarding pages, and the fake Stripe.js file."""

from __future__ import annotations

import functools
import html
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route as StarletteRoute

from . import cards, elements, errors, ids
from .api import error_response, json_response
from .resources import balance, connect, payment_intents, payment_methods, setup_intents
from .sim import Ctx, Sim
from .store import Obj, paginate

Control = Callable[[Sim, Request, dict[str, Any]], Any]
WALLETS = ("apple_pay", "google_pay")
SIM_EVENTS_DEFAULT_LIMIT = 100
SIM_EVENTS_MAX_LIMIT = 1000


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise errors.invalid_request("Request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise errors.invalid_request("Request body must be a JSON object.")
        return data
    return dict(parse_qsl(raw.decode(), keep_blank_values=True))


def _control(sim: Sim, fn: Control) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        request_id = ids.new_id("req", 14)
        try:
            result = fn(sim, request, await _body(request))
        except errors.StripeError as exc:
            return error_response(exc, request_id)
        if isinstance(result, Response):
            return result
        return json_response(orjson.dumps(result), 200, request_id)

    return endpoint


def _owner_ctx(sim: Sim, request: Request, object_id: str) -> Ctx:
    if object_id not in sim.store.meta:
        raise errors.no_such("intent", object_id)
    return Ctx(
        account=sim.store.owner(object_id),
        request_id=ids.new_id("req", 14),
        base_url=f"{request.url.scheme}://{request.headers.get('host', '127.0.0.1')}",
    )


def _outcome(body: dict[str, Any]) -> bool:
    outcome = body.get("outcome")
    if outcome not in ("success", "failure"):
        raise errors.invalid_request('outcome must be "success" or "failure"', param="outcome")
    return outcome == "success"


def authenticate_intent(sim: Sim, intent_id: str, ctx: Ctx, success: bool) -> Obj:
    if intent_id.startswith("seti_"):
        return setup_intents.authenticate(sim, ctx, intent_id, success)
    return payment_intents.authenticate(sim, ctx, intent_id, success)


# -- controls ------------------------------------------------------------------------------


def pi_authenticate(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    intent = request.path_params["intent"]
    ctx = _owner_ctx(sim, request, intent)
    return payment_intents.authenticate(sim, ctx, intent, _outcome(body))


def si_authenticate(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    intent = request.path_params["intent"]
    ctx = _owner_ctx(sim, request, intent)
    return setup_intents.authenticate(sim, ctx, intent, _outcome(body))


def account_verify(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    return connect.verify(sim, request.path_params["account"])


def faults_get(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    return sim.faults.as_dict()


def faults_set(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    sim.faults.update(body)
    return sim.faults.as_dict()


def faults_clear(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    sim.faults.clear()
    return sim.faults.as_dict()


def events_emit(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    type_ = body.get("type")
    if not isinstance(type_, str) or not type_:
        raise errors.missing_param("type")
    data = body.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise errors.missing_param("data[object]")
    account = body.get("account")
    if account is not None and not isinstance(account, str):
        raise errors.invalid_request("account must be a string", param="account")
    return sim.emit(type_, obj, account=account, raw_object=True)


def _sim_event(sim: Sim, event: Obj) -> Obj:
    return {
        "id": event["id"],
        "type": event["type"],
        "created": event["created"],
        "account": event.get("account"),
        "data": event["data"],
        "pending_webhooks": event["pending_webhooks"],
        "deliveries": sim.store.internal(event["id"]).get("deliveries", []),
    }


def events_list(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    """Emitted events, newest last. Without a cursor: the newest ``limit`` events
    (``has_more``: older ones exist); ``starting_after``: the next newer ones (``has_more``:
    newer ones exist); ``ending_before``: the ones just older than the cursor."""
    query = request.query_params
    type_ = query.get("type")
    try:
        limit = int(query.get("limit") or SIM_EVENTS_DEFAULT_LIMIT)
    except ValueError:
        raise errors.invalid_integer("limit", query.get("limit")) from None
    limit = max(1, min(limit, SIM_EVENTS_MAX_LIMIT))
    if type_:
        event_ids = sim.store.seq_index_ids("event.all_type", type_)
    else:
        event_ids = sim.store.seq_index_ids("event.all", "all")

    def missing(object_id: str, param: str) -> Exception:
        return errors.no_such("event", object_id, param=param, status=400)

    starting_after = query.get("starting_after")
    ending_before = query.get("ending_before")
    page = paginate(
        sim.store,
        event_ids,
        limit=limit,
        starting_after=starting_after,
        ending_before=ending_before,
        keep=sim.store.is_live,
        newest_first=not (starting_after or ending_before),
        missing=missing,
    )
    ordered = page.ids if (starting_after or ending_before) else list(reversed(page.ids))
    return {
        "object": "list",
        "data": [_sim_event(sim, sim.store.objects[i]) for i in ordered],
        "has_more": page.has_more,
    }


def endpoints_add(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    url, secret = body.get("url"), body.get("secret")
    if not isinstance(url, str) or not url:
        raise errors.missing_param("url")
    if not isinstance(secret, str) or not secret:
        raise errors.missing_param("secret")
    events = body.get("enabled_events")
    connect_only = body.get("connect")
    endpoint = sim.deliverer.add_endpoint(
        url,
        secret,
        enabled_events=[str(e) for e in events] if isinstance(events, list) else None,
        connect=connect_only if isinstance(connect_only, bool) else None,
    )
    sim.store.touch()
    sim.save()
    return endpoint.public()


def endpoints_list(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    return {"object": "list", "data": [e.public() for e in sim.deliverer.endpoints.values()]}


def endpoints_remove(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    endpoint_id = request.path_params["endpoint"]
    if sim.deliverer.remove_endpoint(endpoint_id) is None:
        raise errors.no_such("webhook_endpoint", endpoint_id)
    sim.store.touch()
    sim.save()
    return {"id": endpoint_id, "deleted": True}


def requests_list(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    """Recorded ``/v1`` requests, oldest first; ``?refused=true``: only the refused ones."""
    refused_only = request.query_params.get("refused", "").lower() in ("1", "true")
    return sim.request_log.listing(refused_only=refused_only)


def requests_clear(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    sim.request_log.clear()
    return {"deleted": True}


def data_reset(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    sim.reset()
    return {"deleted": True}


def stats(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    return {
        "objects": sim.store.count(),
        "events": len(sim.store.seq_index_ids("event.all", "all")),
        "pending_webhook_deliveries": sim.deliverer.pending(),
        "webhook_endpoints": len(sim.deliverer.endpoints),
        "idempotency_keys": len(sim.idempotency.entries),
        "idempotency_keys_executing": len(sim.idempotency.executing_keys),
        "faults": sim.faults.as_dict(),
    }


def wallet_payment_method(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    """What the fake Stripe.js payment sheet returns: a card PM with ``card.wallet``."""
    wallet = body.get("wallet")
    if wallet not in WALLETS:
        raise errors.invalid_request(f"wallet must be one of {', '.join(WALLETS)}", param="wallet")
    spec = cards.lookup_number(str(body.get("number") or "4242424242424242"))
    account = request.headers.get("stripe-account") or body.get("account") or None
    pm = payment_methods.build_card_pm(
        spec,
        12,
        time.gmtime().tm_year + payment_methods.DEFAULT_EXP_YEAR_OFFSET,
        cvc_given=True,
        billing_details=body.get("billing_details"),
        wallet=str(wallet),
    )
    ctx = Ctx(account=account)
    return payment_methods.store_pm(sim, ctx, pm, spec)


# -- hosted pages --------------------------------------------------------------------------

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto}}
button{{font-size:1rem;padding:.5rem 1rem;margin-right:.5rem}}</style></head>
<body><main><h1>{title}</h1><p>{text}</p>
<form method="post">{hidden}{buttons}</form></main></body></html>"""


def _page(title: str, text: str, hidden: dict[str, str], buttons: list[tuple[str, str]]) -> str:
    fields = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in hidden.items()
    )
    rendered = "".join(
        f'<button type="submit" name="outcome" value="{html.escape(v)}">{html.escape(label)}'
        "</button>"
        for label, v in buttons
    )
    return _PAGE.format(
        title=html.escape(title), text=html.escape(text), hidden=fields, buttons=rendered
    )


def threeds_page(sim: Sim, request: Request, body: dict[str, Any]) -> Response:
    intent = request.path_params["intent"]
    _owner_ctx(sim, request, intent)
    page = _page(
        "3D Secure authentication",
        f"Stripe simulator test authentication for {intent}.",
        {"return_url": request.query_params.get("return_url", "")},
        [("Complete", "success"), ("Fail", "failure")],
    )
    return HTMLResponse(page)


def threeds_submit(sim: Sim, request: Request, body: dict[str, Any]) -> Response:
    intent = request.path_params["intent"]
    ctx = _owner_ctx(sim, request, intent)
    success = _outcome(body)
    obj = authenticate_intent(sim, intent, ctx, success)
    return_url = str(body.get("return_url") or "")
    if not return_url:
        return HTMLResponse(f"<p>Authentication {'completed' if success else 'failed'}.</p>")
    prefix = "setup_intent" if obj["object"] == "setup_intent" else "payment_intent"
    query = urlencode(
        {
            prefix: obj["id"],
            f"{prefix}_client_secret": obj["client_secret"],
            "redirect_status": "succeeded" if success else "failed",
        }
    )
    separator = "&" if "?" in return_url else "?"
    return RedirectResponse(f"{return_url}{separator}{query}", status_code=303)


def onboarding_page(sim: Sim, request: Request, body: dict[str, Any]) -> Response:
    account = connect.connected_account(sim, request.path_params["account"])
    page = _page(
        "Connect onboarding",
        f"Stripe simulator onboarding for {account['id']}.",
        {
            "return_url": request.query_params.get("return_url", ""),
            "refresh_url": request.query_params.get("refresh_url", ""),
        },
        [("Complete onboarding", "success"), ("Leave", "failure")],
    )
    return HTMLResponse(page)


def onboarding_submit(sim: Sim, request: Request, body: dict[str, Any]) -> Response:
    account_id = request.path_params["account"]
    if _outcome(body):
        connect.verify(sim, account_id)
        target = str(body.get("return_url") or "")
    else:
        target = str(body.get("refresh_url") or "")
    if not target:
        return HTMLResponse("<p>Done.</p>")
    return RedirectResponse(target, status_code=303)


@functools.cache
def _stripe_js_source() -> str:
    return resources.files("stripe_sim").joinpath("static/stripe.js").read_text()


def stripe_js(sim: Sim, request: Request, body: dict[str, Any]) -> Response:
    return Response(
        _stripe_js_source(),
        media_type="application/javascript",
        headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
    )


def healthz(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    return {"status": "ok", "objects": sim.store.count()}


def routes(sim: Sim) -> list[StarletteRoute]:
    table: list[tuple[str, str, Control]] = [
        ("GET", "/healthz", healthz),
        ("POST", "/_sim/payment_intents/{intent}/authenticate", pi_authenticate),
        ("POST", "/_sim/setup_intents/{intent}/authenticate", si_authenticate),
        ("POST", "/_sim/accounts/{account}/verify", account_verify),
        ("POST", "/_sim/balance/settle", balance.settle_control),
        ("GET", "/_sim/balance", balance.balances_control),
        ("GET", "/_sim/faults", faults_get),
        ("POST", "/_sim/faults", faults_set),
        ("DELETE", "/_sim/faults", faults_clear),
        ("POST", "/_sim/events", events_emit),
        ("GET", "/_sim/events", events_list),
        ("POST", "/_sim/webhook_endpoints", endpoints_add),
        ("GET", "/_sim/webhook_endpoints", endpoints_list),
        ("DELETE", "/_sim/webhook_endpoints/{endpoint}", endpoints_remove),
        ("DELETE", "/_sim/data", data_reset),
        ("GET", "/_sim/requests", requests_list),
        ("DELETE", "/_sim/requests", requests_clear),
        ("GET", "/_sim/stats", stats),
        ("POST", "/_sim/payment_methods/wallet", wallet_payment_method),
        ("GET", "/_sim/3ds/{intent}", threeds_page),
        ("POST", "/_sim/3ds/{intent}", threeds_submit),
        ("GET", "/_sim/connect/onboarding/{account}", onboarding_page),
        ("POST", "/_sim/connect/onboarding/{account}", onboarding_submit),
        ("GET", "/js.stripe.com/v3/", stripe_js),
        ("GET", "/js.stripe.com/v3", stripe_js),
        ("GET", "/js.stripe.com/v3/{page}", elements.frame_page),
    ]
    return [StarletteRoute(path, _control(sim, fn), methods=[m]) for m, path, fn in table]
