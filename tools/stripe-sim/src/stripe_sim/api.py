"""The ``/v1`` request pipeline: faults, authentication, ``Stripe-Account``, form decoding,
``Idempotency-Key`` replay, the handler, ``expand[]`` and Stripe-shaped JSON errors."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from . import errors, expand, forms, ids, param_schema, versions
from .idempotency import Entry, digest
from .resources.common import Route
from .sim import Ctx, Sim

Endpoint = Callable[[Request], Awaitable[Response]]
log = logging.getLogger("stripe_sim.api")

SECRET_PREFIXES = ("sk_test_", "rk_test_")
PUBLISHABLE_PREFIX = "pk_test_"
NO_KEY_MESSAGE = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)


def json_response(
    body: bytes, status: int, request_id: str, extra: dict[str, str] | None = None
) -> Response:
    headers = {"Request-Id": request_id, "Cache-Control": "no-cache, no-store"}
    if extra:
        headers.update(extra)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def error_response(exc: errors.StripeError, request_id: str) -> Response:
    return json_response(orjson.dumps(exc.body()), exc.status, request_id, exc.headers or None)


def _mask(key: str) -> str:
    return key[:8] + "*" * max(len(key) - 12, 4) + key[-4:]


def _api_key(request: Request, params: dict[str, Any]) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return value.strip()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip()).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            return decoded.partition(":")[0]
    key = params.pop("key", None)  # Stripe.js style: publishable key as a form field
    return key if isinstance(key, str) else None


def _authenticate(sim: Sim, request: Request, route: Route, params: dict[str, Any]) -> Ctx:
    key = _api_key(request, params)
    if not key:
        raise errors.authentication(NO_KEY_MESSAGE)
    publishable = key.startswith(PUBLISHABLE_PREFIX)
    if not publishable and not key.startswith(SECRET_PREFIXES):
        raise errors.authentication(f"Invalid API Key provided: {_mask(key)}")
    if publishable and not route.publishable:
        raise errors.authentication(
            "This API call cannot be made with a publishable API key. Please use a secret API "
            "key. You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys."
        )
    account = request.headers.get("stripe-account") or None
    if account is not None:
        found = sim.store.get(account, None)
        if found is None or found.get("object") != "account":
            raise errors.StripeError(
                403,
                "invalid_request_error",
                f"The provided key '{_mask(key)}' does not have access to account '{account}' "
                "(or that account does not exist). Application access may have been revoked.",
                code="account_invalid",
            )
    return Ctx(
        account=account,
        publishable=publishable,
        api_version=request.headers.get("stripe-version"),
        base_url=f"{request.url.scheme}://{request.headers.get('host', '127.0.0.1')}",
    )


async def _read_form(request: Request) -> str:
    """The request's parameters as one form string: the query, then a POST's body."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    if request.method == "POST":
        body = (await request.body()).decode()
        if query:
            body = f"{query}&{body}" if body else query
        return body
    return query


def _render(sim: Sim, ctx: Ctx, result: dict[str, Any], params: dict[str, Any]) -> bytes:
    paths = forms.Params(params).array("expand")
    if paths:
        result = expand.expand(result, [str(p) for p in paths], sim.store.get_any)
    return orjson.dumps(result)


def make_endpoint(sim: Sim, route: Route) -> Endpoint:
    validate = param_schema.validator(route.method, route.path, publishable=route.publishable)

    async def endpoint(request: Request) -> Response:
        request_id = ids.new_id("req", 14)
        received: dict[str, Any] = {}
        error: errors.StripeError | None = None
        try:
            response = await _handle(sim, route, validate, request, request_id, received)
        except errors.StripeError as exc:
            error, response = exc, error_response(exc, request_id)
        except Exception:
            log.exception("unhandled error in %s %s", route.method, route.path)
            error = errors.api_error()
            response = error_response(error, request_id)
        sim.request_log.record(
            method=route.method,
            path=request.url.path,
            headers=request.headers,
            form=received.get("form", ""),
            status=response.status_code,
            request_id=request_id,
            error=error or received.get("declined_error"),
        )
        return response

    return endpoint


async def _handle(
    sim: Sim,
    route: Route,
    validate: Callable[[Any], None],
    request: Request,
    request_id: str,
    received: dict[str, Any],
) -> Response:
    form = await _read_form(request)
    received["form"] = form
    params, pairs = forms.decode(form)
    ctx = _authenticate(sim, request, route, params)
    ctx.request_id = request_id
    ctx.api_version = versions.check(ctx.api_version, sim.known_versions)
    validate(params)
    key = request.headers.get("idempotency-key") if request.method == "POST" else None
    if not key:
        return await _execute(sim, route, ctx, params, request, request_id, received, None, "")
    request_digest = digest(request.method, [kv for kv in pairs if kv[0] != "key"])
    entry = sim.idempotency.lookup(ctx.account, key, request.url.path, request_digest)
    if entry is not None:
        return json_response(
            entry.body,
            entry.status,
            entry.request_id,
            {"Idempotency-Key": key, "Idempotent-Replayed": "true"},
        )
    # The key is held while its request executes: a concurrent one with it gets 409.
    with sim.idempotency.executing(ctx.account, key):
        ctx.idempotency_key = key
        return await _execute(
            sim, route, ctx, params, request, request_id, received, key, request_digest
        )


async def _execute(
    sim: Sim,
    route: Route,
    ctx: Ctx,
    params: dict[str, Any],
    request: Request,
    request_id: str,
    received: dict[str, Any],
    key: str | None,
    request_digest: str,
) -> Response:
    """The endpoint itself (after the faults: latency is time spent executing), its
    executed result remembered under `key`."""
    faults = sim.faults
    if faults.api_latency_ms:
        await asyncio.sleep(faults.api_latency_ms / 1000)
    if faults.should_fail_api():
        raise errors.api_error("An unexpected error occurred (stripe-sim fault injection).")
    try:
        result = route.handler(sim, ctx, forms.Params(params), **request.path_params)
        status, body = 200, _render(sim, ctx, result, params)
    except errors.StripeError as exc:
        if not key or exc.status != 402:  # only executed requests are remembered
            raise
        status, body = exc.status, orjson.dumps(exc.body())
        received["declined_error"] = exc
    extra = {"Stripe-Version": ctx.api_version or sim.config.api_version}
    if key:
        entry = Entry(time.time(), request.url.path, request_digest, status, body, request_id)
        sim.idempotency.save(ctx.account, key, entry)
        extra["Idempotency-Key"] = key
    return json_response(body, status, request_id, extra)


def make_unknown_route(sim: Sim) -> Endpoint:
    """Any other ``/v1`` URL: Stripe's 404, recorded as a refusal of the route."""

    async def unknown_route(request: Request) -> Response:
        request_id = ids.new_id("req", 14)
        exc = errors.invalid_request(
            f"Unrecognized request URL ({request.method}: {request.url.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            status=404,
        )
        exc.refusal = "route"
        sim.request_log.record(
            method=request.method,
            path=request.url.path,
            headers=request.headers,
            form=await _read_form(request),
            status=exc.status,
            request_id=request_id,
            error=exc,
        )
        return error_response(exc, request_id)

    return unknown_route
