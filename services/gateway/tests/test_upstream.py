"""The proxy's HTTP/1.1 client against a real socket server that answers exactly the
bytes a test asks for (keep-alive, chunked, HEAD, a server closing idle connections)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from gateway.upstream import Upstream, UpstreamError

DROP = frozenset({b"date", b"server", b"content-length", b"transfer-encoding", b"connection"})

# (request head, request body) -> response bytes, or parts written 50 ms apart
Reply = Callable[[bytes, bytes], bytes | list[bytes]]


class Server:
    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.close_after_each = False
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append((head, body))
                reply = self.reply(head, body)
                for i, part in enumerate([reply] if isinstance(reply, bytes) else reply):
                    if i:
                        await asyncio.sleep(0.05)
                    writer.write(part)
                    await writer.drain()
                if self.close_after_each:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    def drop_idle_connections(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server(lambda head, body: ok(b'{"echo": %d}' % len(body)))
    listener = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.port = listener.sockets[0].getsockname()[1]
    yield srv
    listener.close()
    srv.drop_idle_connections()


def ok(body: bytes, *extra: bytes) -> bytes:
    head = [b"HTTP/1.1 200 OK", b"content-type: application/json", b"server: uvicorn"]
    head += [b"date: Fri, 27 Nov 2026 00:00:00 GMT", *extra]
    head.append(b"content-length: %d" % len(body))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def upstream(server: Server) -> Upstream:
    return Upstream("127.0.0.1", server.port, pool_size=4, drop=DROP)


async def test_requests_reuse_one_keep_alive_connection(server: Server) -> None:
    up = upstream(server)
    first = await up.request("POST", "/v1/x?a=1", [("x-request-id", "r1")], b'{"a": 1}')
    second = await up.request("GET", "/v1/y", [], b"")
    assert first == (200, [(b"content-type", b"application/json")], b'{"echo": 8}')
    assert second[2] == b'{"echo": 0}'
    assert server.connections == 1
    head, body = server.requests[0]
    assert head.startswith(b"POST /v1/x?a=1 HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:%d\r\n" % server.port in head
    assert b"\r\nx-request-id: r1\r\n" in head and b"\r\ncontent-length: 8\r\n" in head
    assert body == b'{"a": 1}'
    up.close()


async def test_concurrent_requests_open_at_most_pool_size_connections(server: Server) -> None:
    up = upstream(server)
    answers = await asyncio.gather(*(up.request("GET", "/", [], b"") for _ in range(20)))
    assert all(status == 200 for status, _, _ in answers)
    assert server.connections <= 4
    up.close()


async def test_a_chunked_answer_is_read_whole(server: Server) -> None:
    server.reply = lambda head, body: (
        b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\nx-a: 1\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    up = upstream(server)
    assert await up.request("GET", "/", [], b"") == (201, [(b"x-a", b"1")], b"hello world")
    assert await up.request("GET", "/", [], b"") == (201, [(b"x-a", b"1")], b"hello world")
    assert server.connections == 1
    up.close()


async def test_a_head_answer_ends_with_its_headers_and_the_connection_stays_usable(
    server: Server,
) -> None:
    replies = iter([ok(b"")[: -0 or None].replace(b"content-length: 0", b"content-length: 42")])

    def reply(head: bytes, body: bytes) -> bytes:
        if head.startswith(b"HEAD"):
            return next(replies)
        return ok(b"after")

    server.reply = reply
    up = upstream(server)
    status, headers, body = await asyncio.wait_for(up.request("HEAD", "/", [], b""), 2)
    assert status == 200 and body == b""
    assert (b"content-length", b"42") in headers  # what a GET would have sent
    assert (await up.request("GET", "/", [], b""))[2] == b"after"
    assert server.connections == 1
    up.close()


async def test_a_head_answer_with_connection_close_is_not_reused(server: Server) -> None:
    server.close_after_each = True
    server.reply = lambda head, body: ok(b"", b"connection: close").replace(
        b"content-length: 0", b"content-length: 9"
    )
    up = upstream(server)
    for _ in range(2):
        status, _, body = await asyncio.wait_for(up.request("HEAD", "/", [], b""), 2)
        assert (status, body) == (200, b"")
    assert server.connections == 2
    up.close()


async def test_an_idle_connection_closed_by_the_server_is_replaced_transparently(
    server: Server,
) -> None:
    up = upstream(server)
    await up.request("GET", "/", [], b"")
    server.drop_idle_connections()  # as uvicorn does after its keep-alive timeout
    await asyncio.sleep(0.05)
    status, _, body = await up.request("POST", "/", [], b"12345")
    assert (status, body) == (200, b'{"echo": 5}')
    assert server.connections == 2
    assert [b for _, b in server.requests] == [b"", b"12345"]  # the write went out once
    up.close()


async def test_an_interim_100_continue_apart_from_the_answer_is_skipped(
    server: Server,
) -> None:
    server.reply = lambda head, body: [b"HTTP/1.1 100 Continue\r\n\r\n", ok(b"final")]
    up = upstream(server)
    status, headers, body = await asyncio.wait_for(up.request("POST", "/", [], b"x"), 2)
    assert (status, body) == (200, b"final")
    assert (await up.request("GET", "/", [], b""))[2] == b"final"  # still in step
    assert server.connections == 1
    up.close()


async def test_an_answer_without_length_ends_when_the_server_closes(server: Server) -> None:
    server.close_after_each = True
    server.reply = lambda head, body: [b"HTTP/1.1 200 OK\r\nx-a: 1\r\n\r\nup to ", b"the end"]
    up = upstream(server)
    answer = await asyncio.wait_for(up.request("GET", "/", [], b""), 2)
    assert answer == (200, [(b"x-a", b"1")], b"up to the end")
    up.close()


async def test_an_answer_cut_short_is_an_upstream_error(server: Server) -> None:
    server.close_after_each = True
    server.reply = lambda head, body: b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort"
    up = upstream(server)
    with pytest.raises(UpstreamError):
        await asyncio.wait_for(up.request("GET", "/", [], b""), 2)
    up.close()


async def test_connection_close_is_honoured(server: Server) -> None:
    server.close_after_each = True
    server.reply = lambda head, body: ok(b"x", b"connection: close")
    up = upstream(server)
    for _ in range(3):
        assert (await up.request("GET", "/", [], b""))[2] == b"x"
    assert server.connections == 3
    up.close()


async def test_an_unreachable_upstream_is_an_upstream_error(server: Server) -> None:
    up = Upstream("127.0.0.1", 9, pool_size=1, drop=DROP)
    with pytest.raises(UpstreamError):
        await up.request("GET", "/", [], b"")


async def test_a_timed_out_exchange_never_reuses_its_connection(server: Server) -> None:
    stalled = asyncio.Event()

    def reply(head: bytes, body: bytes) -> bytes:
        if b"/slow" in head:
            stalled.set()
            return b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf"  # never completes
        return ok(b"fine")

    server.reply = reply
    up = upstream(server)
    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(30) as deadline:

            async def expire_mid_answer() -> None:
                # The deadline passes once the server has begun its answer, however slow
                # the machine: a fixed short timeout could pass before the request is sent.
                await stalled.wait()
                deadline.reschedule(loop.time() + 0.1)

            expiry = asyncio.create_task(expire_mid_answer())
            await up.request("GET", "/slow", [], b"")
    await expiry
    assert stalled.is_set()
    assert (await up.request("GET", "/", [], b""))[2] == b"fine"
    assert server.connections == 2
    up.close()


async def test_a_malformed_answer_is_an_upstream_error(server: Server) -> None:
    server.reply = lambda head, body: b"NOT HTTP AT ALL\r\n\r\n"
    up = upstream(server)
    with pytest.raises(UpstreamError):
        await asyncio.wait_for(up.request("GET", "/", [], b""), 2)
    up.close()


def test_on_uvloop_as_in_production() -> None:
    """uvicorn runs the gateway on uvloop, whose transports are not asyncio classes."""
    import uvloop

    async def exchange() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        srv = Server(lambda head, body: ok(b"uv"))
        listener = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
        srv.port = listener.sockets[0].getsockname()[1]
        up = upstream(srv)
        try:
            await up.request("GET", "/", [], b"")
            return await up.request("GET", "/", [], b"")
        finally:
            up.close()
            listener.close()
            srv.drop_idle_connections()

    assert uvloop.run(exchange()) == (200, [(b"content-type", b"application/json")], b"uv")
