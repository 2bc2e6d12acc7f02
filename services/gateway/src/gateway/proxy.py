"""The proxy hop: one pooled keep-alive aiohttp client per upstream service.

Measured on this machine (shared/notes/performance-floor.md), an httpx-based hop costs
~0.9 ms of CPU per request; aiohttp's client is several times cheaper, so the gateway
uses it. Bodies are small JSON documents, so they are read whole, not streamed.
"""

from __future__ import annotations

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from bos_common.auth import IDENTITY_HEADER
from bos_common.errors import ServiceUnavailable

# Never forwarded in either direction (RFC 9110 7.6.1), plus what aiohttp sets itself.
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


class UpstreamPool:
    def __init__(self, upstreams: dict[str, str], *, pool_size: int, timeout: float) -> None:
        self.base = {name: URL(url) for name, url in upstreams.items()}
        self._base_text = {name: str(url).rstrip("/") for name, url in self.base.items()}
        self._pool_size = pool_size
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=2)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._pool_size,
            limit_per_host=self._pool_size,
            keepalive_timeout=30,
            ttl_dns_cache=300,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "UpstreamPool.start() was not awaited"
        return self._session

    async def forward(
        self,
        service: str,
        method: str,
        raw_path: str,
        query: str,
        headers: CIMultiDict[str],
        body: bytes,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """(status, raw response headers without hop-by-hop ones and those the gateway
        sets itself, body)."""
        # The client's path and query are forwarded byte for byte (already encoded).
        target = (
            f"{self._base_text[service]}{raw_path}?{query}"
            if query
            else (f"{self._base_text[service]}{raw_path}")
        )
        url = URL(target, encoded=True)
        try:
            async with self.session.request(
                method, url, headers=headers, data=body or None, allow_redirects=False
            ) as resp:
                payload = await resp.read()
                out = [
                    (name, v)
                    for k, v in resp.raw_headers
                    if (name := k.lower()) not in GATEWAY_SET
                    and name.decode("latin-1") not in HOP_BY_HOP
                ]
                return resp.status, out, payload
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            raise ServiceUnavailable(
                "upstream_unavailable",
                "The service is temporarily unavailable, please retry.",
            ) from exc

    async def get_json(self, service: str, path: str, timeout: float = 2.0) -> tuple[int, object]:
        url = self.base[service].with_path(path)
        async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            try:
                return resp.status, await resp.json(content_type=None)
            except ValueError:
                return resp.status, None


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
