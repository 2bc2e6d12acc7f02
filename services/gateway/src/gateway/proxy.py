"""The proxy hop: pooled keep-alive HTTP/1.1 connections to each upstream service
(gateway.upstream) and the header rules in both directions. Bodies are small JSON
documents, so they are read whole, not streamed."""

from __future__ import annotations

import asyncio
from typing import Final
from urllib.parse import urlsplit

import orjson
from multidict import CIMultiDict

from bos_common.auth import IDENTITY_HEADER
from bos_common.errors import ServiceUnavailable
from gateway.upstream import Upstream, UpstreamError

# Never forwarded in either direction (RFC 9110 7.6.1), plus what the client sets itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
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
                return await self._upstreams[service].request(method, target, headers.items(), body)
        except (TimeoutError, UpstreamError) as exc:
            raise ServiceUnavailable(*UNAVAILABLE) from exc

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
    """Client headers minus hop-by-hop ones, credentials (replaced by the signed identity)
    and any identity a client tries to forge."""
    out: CIMultiDict[str] = CIMultiDict()
    for raw_name, raw_value in incoming:
        name = raw_name.decode("latin-1").lower()
        if (
            name in HOP_BY_HOP
            or name in CREDENTIAL_HEADERS
            or name.startswith(INTERNAL_PREFIX)
            or name == IDENTITY_HEADER
        ):
            continue
        out.add(name, raw_value.decode("latin-1"))
    if client_ip:
        prior = out.get("x-forwarded-for")
        out["x-forwarded-for"] = f"{prior}, {client_ip}" if prior else client_ip
    return out
