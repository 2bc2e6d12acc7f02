"""Which URLs a merchant endpoint may have, and which addresses a delivery may connect to
(SSRF): in production https only and public addresses only, checked when the endpoint is
registered and again, on the resolved addresses, at every delivery (a name that resolved
to a public address at registration may not any more). Dev and test allow private ones
(a receiver on localhost) by a setting."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver


class RefusedAddress(Exception):
    """The URL or one of its addresses is not allowed."""


def is_public(address: str) -> bool:
    """False for private, loopback, link-local, shared, multicast, reserved and
    unspecified addresses (an IPv4-mapped IPv6 address is judged as its IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, require_https: bool, allow_private: bool) -> str:
    """The URL's host, or RefusedAddress with why (the message is shown to the merchant)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise RefusedAddress("The URL is not valid.") from None
    if parts.scheme not in ("https", "http") or not host:
        raise RefusedAddress("The URL must be an absolute http(s) URL.")
    if require_https and parts.scheme != "https":
        raise RefusedAddress("The URL must use https.")
    if parts.username or parts.password:
        raise RefusedAddress("The URL must not contain credentials.")
    if allow_private:
        return host
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        raise RefusedAddress("The URL's host is a private address.")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return host
    if not is_public(str(literal)):
        raise RefusedAddress("The URL's host is a private address.")
    return host


async def check_resolved(host: str) -> None:
    """RefusedAddress when `host` resolves to an address that is not public (or not at
    all), for the check at registration."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        raise RefusedAddress("The URL's host does not resolve.") from None
    if not infos or not all(is_public(str(info[4][0])) for info in infos):
        raise RefusedAddress("The URL's host resolves to a private address.")


class PublicOnlyResolver(AbstractResolver):
    """aiohttp's resolver, refusing every name that resolves to a non-public address: the
    delivery connects to the very addresses checked (no window for DNS rebinding)."""

    def __init__(self) -> None:
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        for result in results:
            if not is_public(result["host"]):
                raise OSError(f"{host} resolves to a private address")
        return results

    async def close(self) -> None:
        await self._resolver.close()

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "PublicOnlyResolver()"
