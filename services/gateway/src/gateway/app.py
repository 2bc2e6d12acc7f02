"""The gateway: the only public entry. Routing, authentication, origin checks and CORS,
rate limits, request ids, the operational endpoints and the merged OpenAPI document.

A proxied request is answered in this order, each step before the body is read:
1. a body larger than MAX_REQUEST_BODY_BYTES (default 1 MiB, 1048576 bytes) by its
   Content-Length: 413 `request_too_large`;
2. credentials: invalid ones 401 (gateway.auth); scope and origin of browser
   credentials: 403; rate limits: 429 (unauthenticated requests per client address);
3. no credentials on a route that needs them (every route but those in
   routing.ANONYMOUS_ROUTES): 401 `authentication_required`;
4. the body is read (a client's `Expect: 100-continue` is answered with `100 Continue`
   here, and never forwarded); a chunked body is 413 as soon as it passes the limit, a
   client gone mid-body forwards nothing;
5. the request goes to the service, its answer back (gateway.proxy, gateway.upstream):
   a service that cannot be reached or breaks off its answer is 503 `upstream_unavailable`.
Errors are the contract's envelope `{"error": {type, code, message, request_id}}`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bos_common.auth import IDENTITY_HEADER, Identity, sign_identity
from bos_common.context import SCOPE_KEY, RequestContextMiddleware
from bos_common.errors import (
    AuthenticationError,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
    exception_response,
    install_error_handlers,
)
from bos_common.health import DependencyMonitor, Probe
from bos_common.logging import configure_logging
from bos_common.telemetry import (
    FASTAPI_TELEMETRY,
    ServerTelemetryMiddleware,
    current_traceparent,
    instrument_clients,
    metrics_response,
    setup_tracing,
)
from gateway.auth import Authenticator
from gateway.openapi import merge_openapi
from gateway.policy import CROSS_ORIGIN_KEY, CorsMiddleware, check_access, client_ip
from gateway.proxy import (
    SECURITY_HEADERS,
    RequestTooLarge,
    UpstreamPool,
    forwarded_headers,
    read_request_body,
)
from gateway.ratelimit import RateLimiter
from gateway.routing import CHECKOUT_SECRET_HEADER, ROUTES, allows_anonymous, service_for
from gateway.settings import GatewaySettings

PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
OPENAPI_TTL_SECONDS = 30.0
PROXY_ROUTES = {s: SimpleNamespace(path=f"proxy:{s}") for s in set(ROUTES.values())}
SIGNED_CACHE_SIZE = 10_000
# Statuses whose answer never has a body, nor a Content-Length from the gateway.
BODILESS_STATUSES = frozenset({204, 304})
AUTHENTICATION_REQUIRED = ("authentication_required", "Authentication required.")
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="bos"'}  # a 401 says how (RFC 9110 11.6.1)


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.pool = UpstreamPool(
            settings.upstreams(),
            pool_size=settings.upstream_pool_size,
            timeout=settings.upstream_timeout_seconds,
        )
        self.authenticator = Authenticator(settings)
        self.limiter = RateLimiter(
            api_key=settings.rate_limit_api_key,
            session=settings.rate_limit_session,
            ip=settings.rate_limit_ip,
            storage_url=settings.rate_limit_storage_url,
            enabled=settings.rate_limit_enabled,
        )
        self._openapi: tuple[float, dict[str, Any]] | None = None
        # Each backend's readiness and the broker (revocations arrive by it), reported
        # apart from the gateway's own readiness (bos_common.health).
        probes: dict[str, Probe] = {s: self._backend_probe(s) for s in self.pool.base}
        probes["rabbitmq"] = self._broker_up
        self.dependencies = DependencyMonitor("gateway", probes)
        # id(identity) -> (identity, second, header): see signed().
        self._signed: dict[int, tuple[Identity, int, str]] = {}

    def signed(self, identity: Identity) -> str:
        """The signed X-BOS-Identity header. Its `iat` has one-second resolution, so within
        a second the same identity object (cached by the authenticator) signs to the same
        bytes: computed once per identity and second, not per request."""
        now = int(time.time())
        cached = self._signed.get(id(identity))
        if cached is not None and cached[0] is identity and cached[1] == now:
            return cached[2]
        value = sign_identity(identity, self.settings.internal_secret, now=now)
        if len(self._signed) >= SIGNED_CACHE_SIZE:
            self._signed.clear()
        self._signed[id(identity)] = (identity, now, value)
        return value

    async def proxy(self, scope: Scope, receive: Receive, send: Send, service: str) -> None:
        """One proxied request, in plain ASGI: no router, no Request object on the hot path
        (FastAPI's routing and request handling would cost more than the hop itself)."""
        path = scope["path"]
        method = scope["method"]
        raw = scope["headers"]
        authorization = forwarded_for = content_length = None
        has_body = has_checkout_secret = False
        for name, value in raw:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                content_length = value
            elif name == b"transfer-encoding":
                has_body = True
            elif name == b"x-forwarded-for":
                forwarded_for = value.decode("latin-1")
            elif name == CHECKOUT_SECRET_HEADER:
                has_checkout_secret = True
        limit = self.settings.max_request_body_bytes
        if content_length is not None:
            try:
                declared = int(content_length)
            except ValueError:  # the server refuses these before; never a 500 here
                raise InvalidRequest("invalid_content_length", "Invalid Content-Length.") from None
            if declared > limit:
                raise RequestTooLarge(limit)
            has_body = has_body or content_length != b"0"
        identity = await self.authenticator.authenticate(authorization, path)
        kind = identity.principal_type
        state = self.authenticator.state
        await check_access(
            identity, method, path, scope.get(CROSS_ORIGIN_KEY), self.authenticator.origins
        )
        client = scope.get("client")
        peer = client[0] if client else None
        ip = None
        if kind == "anonymous":
            ip = client_ip(peer, forwarded_for, self.settings.trusted_proxy_count)
        await self.limiter.check(
            identity, path, ip, state.org(identity.org_id).rate_limits if identity.org_id else {}
        )
        # After the limiter: unauthenticated requests count against their address's limit.
        if kind == "anonymous" and not allows_anonymous(path, has_checkout_secret):
            raise AuthenticationError(*AUTHENTICATION_REQUIRED, headers=BEARER_CHALLENGE)
        # Only now is the body read: every refusal above comes before a `100 Continue`.
        body = await read_request_body(receive, limit) if has_body else b""
        headers = forwarded_headers(raw, peer)
        headers[IDENTITY_HEADER] = self.signed(identity)
        request_id = scope.get(SCOPE_KEY)
        if request_id:
            headers["x-request-id"] = request_id
        # The service's span joins the gateway's (the client's own traceparent, if any,
        # is the gateway span's parent and is replaced here).
        traceparent = current_traceparent()
        if traceparent:
            headers["traceparent"] = traceparent
        raw_path = scope.get("raw_path") or path.encode()
        status, out_headers, answer = await self.pool.forward(
            service,
            method,
            raw_path.decode("latin-1").split("?", 1)[0],
            scope.get("query_string", b"").decode("latin-1"),
            headers,
            body,
        )
        self.authenticator.changed_here(service, method, path, status)
        out_headers.extend(SECURITY_HEADERS)
        # A HEAD answer keeps the service's Content-Length (gateway.upstream); 204 and 304
        # have none.
        if method != "HEAD" and status not in BODILESS_STATUSES:
            out_headers.append((b"content-length", str(len(answer)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": answer})

    def readiness(self) -> dict[str, str]:
        """What routing needs: the auth state (revoked session tokens, organizations)
        loaded once. Not the backends: a request for a dead one is answered 503
        `upstream_unavailable` by itself, every other route keeps working."""
        return {"auth_state": "ok" if self.authenticator.state.loaded else "loading"}

    def _backend_probe(self, service: str) -> Probe:
        async def probe() -> bool:
            status, _ = await self.pool.get_json(service, "/readyz")
            return status == 200

        return probe

    async def _broker_up(self) -> bool:
        return self.authenticator.sync.bus.is_connected

    async def openapi(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._openapi and now - self._openapi[0] < OPENAPI_TTL_SECONDS:
            return self._openapi[1]

        async def fetch(service: str) -> tuple[str, dict[str, Any] | None]:
            try:
                status, doc = await self.pool.get_json(service, "/openapi.json")
            except Exception:  # noqa: BLE001 - a down service is left out, not fatal
                return service, None
            return service, doc if status == 200 and isinstance(doc, dict) else None

        docs = dict(await asyncio.gather(*(fetch(s) for s in self.pool.base)))
        merged = merge_openapi({k: v for k, v in docs.items() if v is not None})
        if all(v is not None for v in docs.values()):
            self._openapi = (now, merged)
        return merged


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    configure_logging("gateway", settings.log_level, json=settings.log_json)
    instrument_clients(setup_tracing("gateway"))
    gateway = Gateway(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.pool.start()
        await gateway.authenticator.start()
        gateway.dependencies.start()
        yield
        await gateway.dependencies.stop()
        await gateway.authenticator.stop()
        await gateway.pool.stop()

    app = FastAPI(
        title="BOS gateway",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        telemetry=FASTAPI_TELEMETRY,
    )
    app.state.gateway = gateway

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "gateway"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> dict[str, Any]:
        checks = gateway.readiness()
        down = [k for k, v in checks.items() if v != "ok"]
        if down:
            raise ServiceUnavailable("not_ready", "Not ready: " + ", ".join(down) + ".")
        return {"status": "ok", "service": "gateway", "checks": checks}

    @app.get("/healthz/details", include_in_schema=False)
    async def health_details() -> dict[str, Any]:
        """Internal: each backend's and the broker's state, checked now."""
        await gateway.dependencies.check()
        ready = all(v == "ok" for v in gateway.readiness().values())
        return gateway.dependencies.details(ready=ready)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return metrics_response()

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> Response:
        return Response(orjson.dumps(await gateway.openapi()), media_type="application/json")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="BOS API")

    @app.api_route("/{path:path}", methods=PROXY_METHODS, include_in_schema=False)
    async def not_routed() -> None:
        raise NotFound("resource_not_found", "Not found.")

    install_error_handlers(app)
    # Proxied paths are answered by ProxyRouter before FastAPI; the rest (operations,
    # docs, unknown paths) by FastAPI. Both sit inside the same middleware.
    app.add_middleware(ProxyRouter, gateway=gateway)
    app.add_middleware(ServerTelemetryMiddleware, service="gateway")
    app.add_middleware(CorsMiddleware, origins=gateway.authenticator.origins)
    app.add_middleware(RequestContextMiddleware)
    return app


class ProxyRouter:
    """Sends a request for a service's path to `Gateway.proxy` (inside the server span of
    ServerTelemetryMiddleware) and renders failures in the contract's error format."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif (service := service_for(scope["path"])) is not None:
            # Metrics label proxied requests by the service they went to.
            scope["route"] = PROXY_ROUTES[service]
            await self._proxy(scope, receive, send, service)
        else:
            await self.app(scope, receive, with_security_headers(send))

    async def _proxy(self, scope: Scope, receive: Receive, send: Send, service: str) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.gateway.proxy(scope, receive, tracking_send, service)
        except Exception as exc:
            if started:
                raise
            response = await exception_response(Request(scope), exc)
            await response(scope, receive, with_security_headers(send))


def with_security_headers(send: Send) -> Send:
    """For the gateway's own responses (operations, docs, errors); proxied responses get
    the same headers in `Gateway.proxy` without an extra wrapper."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
        await send(message)

    return send_with_headers


def __getattr__(name: str) -> FastAPI:
    # `uvicorn gateway.app:app` builds the app on first access (importing reads no env).
    if name == "app":
        return create_app()
    raise AttributeError(name)
