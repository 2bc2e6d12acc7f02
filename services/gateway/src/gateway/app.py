"""The gateway: the only public entry. Routing, authentication, origin checks and CORS,
rate limits, request ids, the operational endpoints and the merged OpenAPI document."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from bos_common.auth import IDENTITY_HEADER, Identity, sign_identity
from bos_common.context import RequestContextMiddleware, request_id_of
from bos_common.errors import NotFound, ServiceUnavailable, install_error_handlers
from bos_common.logging import configure_logging
from bos_common.telemetry import MetricsMiddleware, instrument_app, metrics_response, setup_tracing
from gateway.auth import Authenticator
from gateway.openapi import merge_openapi
from gateway.policy import CROSS_ORIGIN_KEY, CorsMiddleware, check_access, client_ip
from gateway.proxy import UpstreamPool, forwarded_headers
from gateway.ratelimit import RateLimiter
from gateway.routing import service_for
from gateway.settings import GatewaySettings

PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
OPENAPI_TTL_SECONDS = 30.0
SIGNED_CACHE_SIZE = 10_000


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

    async def proxy(self, request: Request) -> Response:
        path = request.url.path
        service = service_for(path)
        if service is None:
            raise NotFound("resource_not_found", "Not found.")
        scope = request.scope
        method = request.method
        identity = await self.authenticator.authenticate(request.headers.get("authorization"), path)
        state = self.authenticator.state
        check_access(identity, method, path, scope.get(CROSS_ORIGIN_KEY), state)
        peer = request.client.host if request.client else None
        if identity.principal_type == "anonymous":
            ip = client_ip(
                peer, request.headers.get("x-forwarded-for"), self.settings.trusted_proxy_count
            )
        else:
            ip = None
        await self.limiter.check(
            identity, path, ip, state.org(identity.org_id).rate_limits if identity.org_id else {}
        )
        headers = forwarded_headers(scope["headers"], peer)
        headers[IDENTITY_HEADER] = self.signed(identity)
        request_id = request_id_of(request)
        if request_id:
            headers["x-request-id"] = request_id
        status, out_headers, body = await self.pool.forward(
            service,
            request.method,
            request.scope.get("raw_path", path.encode()).decode("latin-1").split("?", 1)[0],
            request.scope.get("query_string", b"").decode("latin-1"),
            headers,
            await request.body(),
        )
        self.authenticator.revoked_here(service, method, path, status)
        response = Response(content=body, status_code=status)
        response.raw_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in out_headers
            if k.lower() != "x-request-id"
        ] + [(b"content-length", str(len(body)).encode())]
        return response

    async def readiness(self) -> dict[str, str]:
        async def check(service: str) -> str:
            try:
                status, _ = await self.pool.get_json(service, "/readyz")
            except Exception:  # noqa: BLE001 - unreachable counts as down
                return "down"
            return "ok" if status == 200 else "down"

        names = list(self.pool.base)
        results = await asyncio.gather(*(check(n) for n in names))
        checks = dict(zip(names, results, strict=True))
        # Session tokens cannot be judged before the revocation set is loaded.
        if checks.get("tokens") == "ok" and not self.authenticator.state.loaded:
            checks["tokens"] = "loading"
        return checks

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
    setup_tracing("gateway")
    gateway = Gateway(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.pool.start()
        await gateway.authenticator.start()
        yield
        await gateway.authenticator.stop()
        await gateway.pool.stop()

    app = FastAPI(
        title="BOS gateway",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.gateway = gateway

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "gateway"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> dict[str, Any]:
        checks = await gateway.readiness()
        down = [k for k, v in checks.items() if v != "ok"]
        if down:
            raise ServiceUnavailable("not_ready", "Not ready: " + ", ".join(down) + ".")
        return {"status": "ok", "service": "gateway", "checks": checks}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return metrics_response()

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> Response:
        return Response(orjson.dumps(await gateway.openapi()), media_type="application/json")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="BOS API")

    app.add_api_route("/{path:path}", gateway.proxy, methods=PROXY_METHODS, include_in_schema=False)
    install_error_handlers(app)
    instrument_app(app, "gateway")
    app.add_middleware(MetricsMiddleware, service="gateway")
    app.add_middleware(CorsMiddleware, state=gateway.authenticator.state)
    app.add_middleware(RequestContextMiddleware)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn gateway.app:app` builds the app on first access (importing reads no env).
    if name == "app":
        return create_app()
    raise AttributeError(name)
