"""The proxy hop: `UpstreamPool` sends a request to the service that owns it (one
gateway.upstream client per service) under the header rules in both directions, and
`read_request_body` reads the client's body. Bodies are small JSON documents, so they are
read whole (up to MAX_REQUEST_BODY_BYTES), not streamed."""

from __future__ import annotations

import asyncio
from typing import Final
from urllib.parse import urlsplit

import orjson
from multidict import CIMultiDict
from starlette.types import Receive

from bos_common.auth import IDENTITY_HEADER
from bos_common.errors import BOSError, InvalidRequest, ServiceUnavailable
from gateway.upstream import Upstream, UpstreamError

# Never forwarded in either direction (RFC 9110 7.6.1), plus what the client sets itself.
# `expect` ends here too: the gateway's own server answers 100-continue when the proxy
# starts reading the body, and the upstream hop sends the body with its head.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "expect",
    }
)
# Connection options that name no other header (anything else it lists is hop-by-hop).
CONNECTION_OPTIONS = frozenset({"close", "keep-alive"})
# Credentials end at the gateway: services trust the signed identity it adds, and must
# never see (or log) a raw API key or session token.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})
INTERNAL_PREFIX = "x-bos-"
# Response headers the gateway sets itself: its server adds Date, it adds the request id
# and the security headers; the service's copies would appear twice.
GATEWAY_SET = frozenset({b"date", b"server", b"x-request-id", b"x-content-type-options"})
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = ((b"x-content-type-options", b"nosniff"),)


# Never passed back from a service: hop-by-hop, re-framed (the body is re-sent whole with
# its own Content-Length) or set by the gateway itself.
RESPONSE_DROP: Final = GATEWAY_SET | frozenset(h.encode() for h in HOP_BY_HOP)
UNAVAILABLE: Final = (
    "upstream_unavailable",
    "The service is temporarily unavailable, please retry.",
)


# A 502/503/504 that is not JSON comes from a proxy between the gateway and the service
# (a load balancer or mesh sidecar with no instance up), never from a BOS service, whose
# errors are JSON: the client gets the contract's `upstream_unavailable` instead.
PROXY_ERROR_STATUSES: Final = frozenset({502, 503, 504})


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(
        name.lower() == b"content-type" and value.lower().startswith(b"application/json")
        for name, value in headers
    )


class RequestTooLarge(BOSError):
    status_code = 413
    type = "invalid_request"
    default_code = "request_too_large"
    default_message = "The request body is too large."

    def __init__(self, limit: int) -> None:
        super().__init__(message=f"The request body is larger than {limit} bytes.")


class ClientDisconnected(InvalidRequest):
    """The client went away before its body ended: nothing is forwarded. The answer (400)
    reaches no one; it is what the request is recorded as."""

    default_code = "request_incomplete"
    default_message = "The request body ended before it was complete."


async def read_request_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, refused (413) as soon as it grows past `limit` bytes;
    a disconnect mid-body is ClientDisconnected, never a truncated body."""
    message = await receive()
    if message["type"] != "http.request":
        raise ClientDisconnected()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):  # the usual case: one message
        if len(body) > limit:
            raise RequestTooLarge(limit)
        return body
    chunks = [body]
    size = len(body)
    while True:
        if size > limit:
            raise RequestTooLarge(limit)
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            if size > limit:
                raise RequestTooLarge(limit)
            return b"".join(chunks)


class UpstreamPool:
    def __init__(self, upstreams: dict[str, str], *, pool_size: int, timeout: float) -> None:
        self.base = {name: urlsplit(url) for name, url in upstreams.items()}
        self._pool_size = pool_size
        self._timeout = timeout
        self._upstreams: dict[str, Upstream] = {}
        self._prefix = {name: url.path.rstrip("/") for name, url in self.base.items()}

    async def start(self) -> None:
        self._upstreams = {
            name: Upstream(
                url.hostname or "127.0.0.1",
                url.port or 80,
                pool_size=self._pool_size,
                drop=RESPONSE_DROP,
            )
            for name, url in self.base.items()
        }

    async def stop(self) -> None:
        for upstream in self._upstreams.values():
            upstream.close()

    async def forward(
        self,
        service: str,
        method: str,
        raw_path: str,
        query: str,
        headers: CIMultiDict[str],
        body: bytes,
        timeout: float | None = None,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """(status, raw response headers without hop-by-hop ones and those the gateway
        sets itself, body). The client's path and query go on byte for byte (already
        encoded)."""
        target = (
            f"{self._prefix[service]}{raw_path}?{query}"
            if query
            else (f"{self._prefix[service]}{raw_path}")
        )
        try:
            async with asyncio.timeout(timeout or self._timeout):
                answer = await self._upstreams[service].request(
                    method, target, headers.items(), body
                )
        except (TimeoutError, UpstreamError) as exc:
            raise ServiceUnavailable(*UNAVAILABLE) from exc
        if answer[0] in PROXY_ERROR_STATUSES and not _is_json(answer[1]):
            raise ServiceUnavailable(*UNAVAILABLE)
        return answer

    async def get_json(self, service: str, path: str, timeout: float = 2.0) -> tuple[int, object]:
        status, _, body = await self.forward(
            service, "GET", path, "", CIMultiDict(), b"", timeout=timeout
        )
        try:
            return status, orjson.loads(body)
        except orjson.JSONDecodeError:
            return status, None


def forwarded_headers(
    incoming: list[tuple[bytes, bytes]], client_ip: str | None
) -> CIMultiDict[str]:
    """Client headers minus hop-by-hop ones (also those the Connection header names),
    credentials (replaced by the signed identity) and any identity a client tries to forge."""
    out: CIMultiDict[str] = CIMultiDict()
    connection_named: list[str] = []
    for raw_name, raw_value in incoming:
        name = raw_name.decode("latin-1").lower()
        if (
            name in HOP_BY_HOP
            or name in CREDENTIAL_HEADERS
            or name.startswith(INTERNAL_PREFIX)
            or name == IDENTITY_HEADER
        ):
            if name == "connection":
                connection_named += connection_tokens(raw_value)
            continue
        out.add(name, raw_value.decode("latin-1"))
    for name in connection_named:
        out.popall(name, None)
    if client_ip:
        prior = out.get("x-forwarded-for")
        out["x-forwarded-for"] = f"{prior}, {client_ip}" if prior else client_ip
    return out


def connection_tokens(value: bytes) -> list[str]:
    """The header names a Connection value lists (`close` and `keep-alive` name none)."""
    tokens = (t.strip() for t in value.decode("latin-1").lower().split(","))
    return [t for t in tokens if t and t not in CONNECTION_OPTIONS]
