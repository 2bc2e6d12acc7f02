"""A pooled HTTP/1.1 keep-alive client for the proxy hop, on asyncio's Protocol and
httptools' response parser (the same C parser uvicorn uses for requests).

A general client (httpx, aiohttp) costs more CPU per proxied request than the rest of the
gateway (bench/README.md, the `floor` scenario). The hop needs little of one (no
redirects, cookies, proxies, TLS, decompression or streaming: the services are plain HTTP
on a private network and answer small JSON documents), so this one writes the request in
one buffer and parses the response in callbacks, with no task, stream reader or header
object per request.

Connections: per upstream, idle ones are reused last-in first-out, at most `pool_size`
open at once (more requests wait for one), and an idle connection is closed before the
server's keep-alive timeout (uvicorn's is 5 s) could close it under a request. A request
on a reused connection that fails before any byte of the answer arrived is retried once
on a new connection: the server closed that connection without reading the request.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from typing import Final, cast

import httptools

# An idle connection older than this is closed, not reused: below uvicorn's default
# keep-alive timeout (5 s), so the server never closes one the pool is about to use.
IDLE_SECONDS: Final = 4.0
CONNECT_TIMEOUT_SECONDS: Final = 2.0

Headers = list[tuple[bytes, bytes]]


class UpstreamError(ConnectionError):
    """The upstream could not be reached or broke the connection mid-answer."""


class _Answer:
    __slots__ = ("body", "framed", "headers", "status")

    def __init__(self) -> None:
        self.status = 0
        self.headers: Headers = []
        self.body: list[bytes] = []
        # Content-Length or Transfer-Encoding seen: the body ends by its framing, not at EOF.
        self.framed = False


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self, drop: frozenset[bytes]) -> None:
        self._drop = drop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._answer = _Answer()
        self._waiter: asyncio.Future[_Answer] | None = None
        self._head = False
        self.received = False  # any byte of the current answer
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"malformed response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self._answer
        if exc is None and answer.status >= 200 and not answer.framed:
            # A close-delimited body (no Content-Length, not chunked) ends at a clean EOF.
            self._done(keep_alive=False)
        self._fail(UpstreamError("upstream closed the connection"))

    # --- httptools callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name not in self._drop:
            self._answer.headers.append((name, value))
        elif name == b"content-length" or name == b"transfer-encoding":
            self._answer.framed = True
            if self._head and name == b"content-length":
                # What a GET would have sent: the gateway passes it on for HEAD.
                self._answer.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            return  # interim (100 Continue, 103 Early Hints): on_message_complete skips it
        self._answer.status = status
        if status == 204 or status == 304:
            self._answer.framed = True  # never a body (RFC 9110 15.3.5, 15.4.5)
        if self._head:
            # A HEAD answer has no body whatever its Content-Length says; the parser
            # cannot be told, so the answer ends here and the next one gets a new parser.
            keep_alive = self._parser.should_keep_alive()
            self._parser = httptools.HttpResponseParser(self)
            self._done(keep_alive=keep_alive)

    def on_body(self, body: bytes) -> None:
        self._answer.body.append(body)

    def on_message_complete(self) -> None:
        if self._answer.status == 0:
            # An interim answer ended: the final one follows on the same parser.
            self._answer.headers.clear()
            self._answer.framed = False
            return
        self._done(keep_alive=self._parser.should_keep_alive())

    # --- requests -------------------------------------------------------------------------

    async def request(self, head: bytes, body: bytes, *, is_head: bool) -> _Answer:
        assert self._transport is not None and self._waiter is None
        self._answer = _Answer()
        self._head = is_head
        self.received = False
        self.reusable = False
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(head + body if body else head)
        return await self._waiter

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _done(self, *, keep_alive: bool) -> None:
        self.reusable = keep_alive and not self.closed
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(self._answer)

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class Upstream:
    """The connections to one service."""

    def __init__(self, host: str, port: int, *, pool_size: int, drop: frozenset[bytes]) -> None:
        self.host = host
        self.port = port
        self._host_header = f"{host}:{port}".encode()
        self._drop = drop
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(pool_size)

    async def request(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> tuple[int, Headers, bytes]:
        """(status, headers without the dropped ones, body) of one exchange."""
        head = self._head(method, target, headers, body)
        is_head = method == "HEAD"
        async with self._slots:
            conn = self._reuse()
            if conn is not None:
                try:
                    return await self._exchange(conn, head, body, is_head)
                except UpstreamError:
                    if conn.received:
                        raise
                    # Closed by the server before it read the request: once more, fresh.
            return await self._exchange(await self._connect(), head, body, is_head)

    def _head(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> bytes:
        lines = [f"{method} {target} HTTP/1.1".encode(), b"host: " + self._host_header]
        lines.extend(f"{name}: {value}".encode("latin-1") for name, value in headers)
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(b"content-length: " + str(len(body)).encode())
        lines.append(b"\r\n")
        return b"\r\n".join(lines)

    async def _exchange(
        self, conn: _Connection, head: bytes, body: bytes, is_head: bool
    ) -> tuple[int, Headers, bytes]:
        try:
            answer = await conn.request(head, body, is_head=is_head)
        except BaseException:
            conn.close()  # interrupted (timeout, cancel) or broken: never reused
            raise
        if conn.reusable:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
        return answer.status, answer.headers, b"".join(answer.body)

    def _reuse(self) -> _Connection | None:
        deadline = time.monotonic() - IDLE_SECONDS
        while self._idle:
            conn = self._idle.pop()  # the most recently used: warm and least likely stale
            if not conn.closed and conn.idle_since > deadline:
                return conn
            conn.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self._drop), self.host, self.port
                )
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return conn

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
