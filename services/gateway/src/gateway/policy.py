"""Browser-facing policy: origin checks (CSRF), CORS, scopes and the client's address.

A browser request carrying a session or portal token must come from the gateway's own
origin (the hosted checkout and portal pages) or from one of its organization's
`allowed_origins`; any other `Origin` is 403 `origin_not_allowed`. API-key requests are
server to server and are not checked. A CORS preflight carries no credential, so it is
answered for an origin that some organization allows (the request itself is then
checked against the token's own organization) and refused with 403 otherwise. Both
questions go to the replica's `OriginPolicy` (gateway.origins).
"""

from __future__ import annotations

from contextlib import suppress
from typing import Final

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bos_common.auth import Identity
from bos_common.context import SCOPE_KEY
from bos_common.errors import BOSError, PermissionDenied, ServiceUnavailable, error_body
from gateway.origins import OriginPolicy
from gateway.routing import scope_allows

# Set by CorsMiddleware: the request's Origin when it is not the gateway's own.
CROSS_ORIGIN_KEY: Final = "bos.cross_origin"

ORIGIN_NOT_ALLOWED: Final = ("origin_not_allowed", "Origin not allowed")
SCOPE_FORBIDDEN: Final = ("forbidden", "This credential cannot perform this action.")

ALLOW_METHODS: Final = b"GET, POST, PATCH, DELETE, PUT, HEAD, OPTIONS"
ALLOW_HEADERS: Final = (
    b"authorization, content-type, idempotency-key, x-request-id, traceparent, tracestate"
)
EXPOSE_HEADERS: Final = b"x-request-id, retry-after, idempotent-replayed"
PREFLIGHT_MAX_AGE: Final = b"600"


async def check_access(
    identity: Identity, method: str, path: str, cross_origin: str | None, origins: OriginPolicy
) -> None:
    """403 for a browser credential outside its scope or from a foreign origin."""
    kind = identity.principal_type
    if kind != "session" and kind != "portal":
        return
    if not scope_allows(kind, method, path):
        raise PermissionDenied(*SCOPE_FORBIDDEN)
    if cross_origin is None or (
        identity.org_id is not None and origins.known(cross_origin, identity.org_id)
    ):
        return
    if identity.org_id is None or not await confirmed(origins, cross_origin, identity.org_id):
        raise PermissionDenied(*ORIGIN_NOT_ALLOWED)


async def confirmed(origins: OriginPolicy, origin: str, org_id: str | None) -> bool:
    """The owner's answer for an origin the copy does not know; 503 when it cannot be
    asked (a refusal is never given on the copy's word alone)."""
    try:
        return await origins.allows(origin, org_id)
    except BOSError as exc:
        if exc.status_code < 500:
            raise
        cause: Exception = exc
    except Exception as exc:  # noqa: BLE001 - unreachable or broken: the same for the caller
        cause = exc
    raise ServiceUnavailable(
        "dependency_unavailable", "A dependency is unavailable, please retry."
    ) from cause


def is_same_origin(origin: str, host: str | None) -> bool:
    """`Origin: https://bos.example.com` against `Host: bos.example.com` (the scheme is
    left out: TLS usually ends in front of the gateway)."""
    if host is None:
        return False
    _, sep, authority = origin.partition("://")
    return bool(sep) and authority.lower() == host.lower()


def client_ip(peer: str | None, forwarded_for: str | None, trusted_proxies: int) -> str | None:
    """The caller's address: the TCP peer, or, behind `trusted_proxies` load balancers that
    append to X-Forwarded-For, the entry that many places from the right."""
    if trusted_proxies <= 0 or not forwarded_for:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    if len(hops) < trusted_proxies:
        return peer
    return hops[-trusted_proxies]


class CorsMiddleware:
    """Answers preflights and adds CORS headers for allowed origins (pure ASGI)."""

    def __init__(self, app: ASGIApp, origins: OriginPolicy) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = host = preflight = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"host":
                host = value
            elif name == b"access-control-request-method":
                preflight = value
        if origin is None:
            await self.app(scope, receive, send)
            return
        origin_text = origin.decode("latin-1")
        same = is_same_origin(origin_text, host.decode("latin-1") if host else None)
        if not same:
            scope[CROSS_ORIGIN_KEY] = origin_text
        if preflight is not None and scope["method"] == "OPTIONS":
            try:
                allowed = same or await confirmed(self.origins, origin_text, None)
            except ServiceUnavailable as exc:
                await self._refuse(scope, send, exc)
                return
            await self._preflight(scope, send, origin, allowed)
            return
        # A request the owner cannot be asked about goes on without CORS headers; the
        # proxy's own origin check then answers it.
        allowed = same or self.origins.known(origin_text, None)
        if not allowed:
            with suppress(Exception):
                allowed = await self.origins.allows(origin_text, None)
        if not allowed:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    h
                    for h in message.get("headers", ())
                    if not h[0].lower().startswith(b"access-control-")
                ]
                headers += [
                    (b"access-control-allow-origin", origin),
                    (b"access-control-expose-headers", EXPOSE_HEADERS),
                    (b"vary", b"Origin"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope: Scope, send: Send, origin: bytes, allowed: bool) -> None:
        if not allowed:
            await self._refuse(scope, send, PermissionDenied(*ORIGIN_NOT_ALLOWED))
            return
        headers = [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", ALLOW_METHODS),
            (b"access-control-allow-headers", ALLOW_HEADERS),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE),
            (b"vary", b"Origin"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _refuse(self, scope: Scope, send: Send, exc: BOSError) -> None:
        body = orjson.dumps(
            error_body(exc.type, exc.code, exc.message, request_id=scope.get(SCOPE_KEY))
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"vary", b"Origin"),
            (b"content-length", str(len(body)).encode()),
            *((k.lower().encode(), v.encode()) for k, v in exc.headers.items()),
        ]
        await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body})
