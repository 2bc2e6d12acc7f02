"""A gateway and a real upstream, both served by uvicorn (httptools) on free loopback ports in
this process, and a raw HTTP/1.1 client that writes exactly the bytes a test asks for.

The upstream is a plain ASGI app whose behaviour the path picks (the last segment): `echo`,
`chunked`, `no-content`, `not-modified`, `cookies`, `close`, `slow`, `broken` (ends its
answer early), `proxy-503` (a load balancer's HTML 503), `service-503` (a service's own).
Every service URL points to it except the webhooks service's, which is a raw socket server
that resets the connection halfway through an answer."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.types import Receive, Scope, Send

from gateway.app import create_app
from gateway.settings import GatewaySettings

ADMIN_TOKEN = "admin-token-conformance"
LARGE_HEADER = "v" * 12_000


SERVICE_503 = orjson.dumps(
    {
        "error": {
            "type": "service_unavailable",
            "code": "its_own",
            "message": "The service's own answer.",
            "request_id": "req_0",
        }
    }
)


@dataclass
class Upstream:
    """What the ASGI upstream saw."""

    requests: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        kind = scope["path"].rstrip("/").rsplit("/", 1)[-1]
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.requests.append(
            {
                "method": scope["method"],
                "path": scope["path"],
                "query": scope["query_string"].decode(),
                "headers": [(k.decode(), v.decode()) for k, v in scope["headers"]],
                "body": body,
            }
        )
        if kind == "chunked":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for part in (b'{"parts": ', b"[1, 2, ", b"3]}"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif kind == "no-content":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        elif kind == "not-modified":
            etag = [(b"etag", b'"v1"')]
            await send({"type": "http.response.start", "status": 304, "headers": etag})
            await send({"type": "http.response.body", "body": b""})
        elif kind == "cookies":
            headers = [
                (b"set-cookie", b"a=1; Path=/"),
                (b"set-cookie", b"b=2; Path=/"),
                (b"x-large", LARGE_HEADER.encode()),
                (b"content-type", b"application/json"),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"{}"})
        elif kind in ("proxy-503", "service-503"):
            answer, type_ = (
                (b"<html><body><h1>503 Service Unavailable</h1></body></html>", b"text/html")
                if kind == "proxy-503"
                else (SERVICE_503, b"application/json")
            )
            headers = [(b"content-type", type_), (b"content-length", str(len(answer)).encode())]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": answer})
        elif kind == "broken":
            headers = [(b"content-length", b"1000")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b'{"partial', "more_body": True})
            raise RuntimeError("the upstream fails mid-answer (as intended by the test)")
        else:
            if kind == "slow":
                await asyncio.sleep(0.3)
            answer = orjson.dumps({"method": scope["method"], "size": len(body)})
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(answer)).encode()),
            ]
            if kind == "close":
                headers.append((b"connection", b"close"))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": answer})


@dataclass
class ResettingUpstream:
    """Answers the head of a response and part of its body, then resets (RST) the
    connection."""

    port: int = 0
    requests: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        self.requests += 1
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n{"half')
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[int]:
    """`app` served by uvicorn as in production (httptools), on a free port."""
    sock = free_socket()
    config = uvicorn.Config(
        app, http="httptools", lifespan="off", log_level="critical", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn's Server exposes only this flag
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class Stack:
    gateway_port: int
    upstream: Upstream
    resetting: ResettingUpstream
    settings: GatewaySettings


@asynccontextmanager
async def stack(**overrides: str) -> AsyncIterator[Stack]:
    upstream = Upstream()
    resetting = ResettingUpstream()
    listener = await asyncio.start_server(resetting.handle, "127.0.0.1", 0)
    resetting.port = listener.sockets[0].getsockname()[1]
    async with serving(upstream) as upstream_port:
        url = f"http://127.0.0.1:{upstream_port}"
        env = {
            "BOS_INTERNAL_SECRET": "conformance-internal-secret-0123",
            "BOS_ADMIN_TOKEN": ADMIN_TOKEN,
            "BOS_SESSION_SECRETS": "k1:conformance-secret-0123456789",
            "AMQP_URL": "amqp://guest:guest@127.0.0.1:1/",
            "TOKENS_URL": url,
            "CATALOG_URL": url,
            "CHECKOUT_URL": url,
            "SUBSCRIPTIONS_URL": url,
            "WEBHOOKS_URL": f"http://127.0.0.1:{resetting.port}",
            "RATE_LIMIT_ENABLED": "false",
            "LOG_JSON": "false",
            "LOG_LEVEL": "CRITICAL",
            **overrides,
        }
        settings = GatewaySettings(**env)  # type: ignore[arg-type]
        app = create_app(settings)
        gateway = app.state.gateway
        await gateway.pool.start()  # no lifespan: nothing else (the bus) is needed here
        try:
            async with serving(app) as gateway_port:
                yield Stack(gateway_port, upstream, resetting, settings)
        finally:
            await gateway.pool.stop()
    listener.close()


# --- the client ------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    def json(self) -> Any:
        return orjson.loads(self.body)


class Client:
    """One connection to the gateway; requests are bytes, answers parsed by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, *, head: bool = False, timeout: float = 5.0) -> Answer:
        async with asyncio.timeout(timeout):
            raw = await self.reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = []
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers.append((name.strip().lower(), value.strip()))
            answer = Answer(status, headers, b"")
            if head or status < 200 or status in (204, 304):
                return answer
            length = answer.header("content-length")
            if length is not None:
                answer.body = await self.reader.readexactly(int(length))
            elif answer.header("transfer-encoding") == "chunked":
                answer.body = await self._chunks()
            else:
                answer.body = await self.reader.read()
            return answer

    async def _chunks(self) -> bytes:
        body = b""
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return body
            body += await self.reader.readexactly(size)
            await self.reader.readexactly(2)

    async def closed(self, timeout: float = 5.0) -> bool:
        """True once the server closed the connection."""
        async with asyncio.timeout(timeout):
            return await self.reader.read(1) == b""

    def close(self) -> None:
        self.writer.close()


def request(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    headers: tuple[tuple[str, str], ...] = (),
    admin: bool = True,
    length: bool = True,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway.test"]
    if admin:
        lines.append(f"Authorization: Bearer {ADMIN_TOKEN}")
    lines += [f"{k}: {v}" for k, v in headers]
    if length and (body or method in ("POST", "PUT", "PATCH")):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
