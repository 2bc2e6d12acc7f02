"""HTTP/1.1 as clients speak it, through the gateway to a real uvicorn upstream (issue 15.7):
Expect/100-continue, the body limit, chunked requests and answers, HEAD, 204/304,
`Connection: close` from the upstream, pipelining, large and repeated headers, slow and
truncated bodies, an upstream that breaks off or resets mid-answer. Every exchange is
bounded by a timeout: a hang fails the test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from .http_harness import (
    LARGE_HEADER,
    Client,
    Stack,
    chunked,
    request,
    stack,
)

LIMIT = 4096


@pytest.fixture(scope="module")
async def gw() -> AsyncIterator[Stack]:
    async with stack(MAX_REQUEST_BODY_BYTES=str(LIMIT)) as running:
        yield running


@pytest.fixture
async def client(gw: Stack) -> AsyncIterator[Client]:
    connection = await Client.connect(gw.gateway_port)
    yield connection
    connection.close()


def error_of(answer: object) -> dict[str, str]:
    body = answer.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}, body
    assert set(body["error"]) >= {"type", "code", "message", "request_id"}
    return dict(body["error"])


# --- Expect: 100-continue -------------------------------------------------------------------


async def test_expect_100_continue_gets_100_then_the_final_answer(
    gw: Stack, client: Client
) -> None:
    body = b'{"name": "' + b"x" * 2000 + b'"}'
    # `slow`: the upstream answers a while after reading the body, as a service does after
    # its database work (a 100 Continue from it would arrive apart from its answer).
    head = request("POST", "/v1/products/slow", body, headers=(("Expect", "100-continue"),))
    await client.send(head[: -len(body)])  # the head only, as curl does
    interim = await client.answer(timeout=2)
    assert interim.status == 100
    await client.send(body)
    final = await client.answer(timeout=2)
    assert final.status == 200 and final.json() == {"method": "POST", "size": len(body)}
    seen = gw.upstream.requests[-1]
    assert not [k for k, _ in seen["headers"] if k == "expect"]
    assert seen["body"] == body
    # The connection is still in step: the next request gets its own answer.
    await client.send(request("GET", "/v1/products/echo"))
    assert (await client.answer()).json() == {"method": "GET", "size": 0}


async def test_expect_with_the_body_sent_at_once_is_answered(client: Client) -> None:
    body = b"y" * 1500
    await client.send(
        request("POST", "/v1/products/echo", body, headers=(("Expect", "100-continue"),))
    )
    answer = await client.answer(timeout=2)
    if answer.status == 100:
        answer = await client.answer(timeout=2)
    assert answer.status == 200 and answer.json()["size"] == 1500


async def test_a_refusal_under_expect_comes_before_100_continue(gw: Stack, client: Client) -> None:
    seen = len(gw.upstream.requests)
    await client.send(
        request("POST", "/v1/products", b"", admin=False, length=False).replace(
            b"\r\n\r\n", b"\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n"
        )
    )
    answer = await client.answer(timeout=2)
    assert answer.status == 401  # final, no 100 Continue first: the body is never sent
    assert error_of(answer)["code"] == "authentication_required"
    assert answer.header("www-authenticate") == 'Bearer realm="bos"'
    assert len(gw.upstream.requests) == seen


# --- the body limit --------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_413_by_its_content_length_before_it_is_sent(
    gw: Stack, client: Client
) -> None:
    seen = len(gw.upstream.requests)
    head = request("POST", "/v1/products/echo", b"z" * (LIMIT + 1))[: -(LIMIT + 1)]
    await client.send(head.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"))
    answer = await client.answer(timeout=2)
    assert answer.status == 413
    error = error_of(answer)
    assert error["type"] == "invalid_request" and error["code"] == "request_too_large"
    assert str(LIMIT) in error["message"]
    assert len(gw.upstream.requests) == seen


async def test_a_body_at_the_limit_is_forwarded(client: Client) -> None:
    await client.send(request("POST", "/v1/products/echo", b"a" * LIMIT))
    assert (await client.answer()).json()["size"] == LIMIT


async def test_a_chunked_body_is_413_once_it_passes_the_limit(gw: Stack, client: Client) -> None:
    seen = len(gw.upstream.requests)
    head = request("POST", "/v1/products/echo", headers=(("Transfer-Encoding", "chunked"),))
    await client.send(head.replace(b"Content-Length: 0\r\n", b""))
    await client.send(b"%x\r\n%s\r\n" % (LIMIT, b"b" * LIMIT))
    await client.send(b"10\r\n" + b"c" * 16 + b"\r\n")  # now past the limit; never ends
    answer = await client.answer(timeout=2)
    assert answer.status == 413 and error_of(answer)["code"] == "request_too_large"
    assert len(gw.upstream.requests) == seen


# --- chunked, HEAD, 204/304, connection handling ------------------------------------------


async def test_a_chunked_request_is_forwarded_whole_with_a_length(
    gw: Stack, client: Client
) -> None:
    head = request("POST", "/v1/products/echo", headers=(("Transfer-Encoding", "chunked"),))
    await client.send(head.replace(b"Content-Length: 0\r\n", b""))
    await client.send(chunked(b'{"a": ', b"1}"))
    assert (await client.answer()).json() == {"method": "POST", "size": 8}
    seen = dict(gw.upstream.requests[-1]["headers"])
    assert seen["content-length"] == "8" and "transfer-encoding" not in seen


async def test_a_chunked_answer_reaches_the_client_whole(client: Client) -> None:
    await client.send(request("GET", "/v1/products/chunked"))
    answer = await client.answer()
    assert answer.status == 200 and answer.json() == {"parts": [1, 2, 3]}
    assert answer.header("content-length") == str(len(answer.body))


async def test_head_has_the_get_length_and_no_body(client: Client) -> None:
    await client.send(request("HEAD", "/v1/products/echo"))
    answer = await client.answer(head=True)
    assert answer.status == 200
    assert answer.header("content-length") == str(len(b'{"method":"HEAD","size":0}'))
    await client.send(request("GET", "/v1/products/echo"))  # no stray body before this one
    assert (await client.answer()).json() == {"method": "GET", "size": 0}


@pytest.mark.parametrize("kind, status", [("no-content", 204), ("not-modified", 304)])
async def test_204_and_304_have_no_body_and_no_length(
    client: Client, kind: str, status: int
) -> None:
    await client.send(request("GET", f"/v1/products/{kind}"))
    answer = await client.answer()
    assert answer.status == status
    assert answer.header("content-length") is None
    assert answer.header("transfer-encoding") is None
    await client.send(request("GET", "/v1/products/echo"))
    assert (await client.answer()).json() == {"method": "GET", "size": 0}


async def test_connection_close_from_the_upstream_stays_there(client: Client) -> None:
    for _ in range(3):
        await client.send(request("GET", "/v1/products/close"))
        answer = await client.answer()
        assert answer.status == 200 and answer.header("connection") is None


async def test_pipelined_requests_are_answered_in_order(client: Client) -> None:
    await client.send(
        request("GET", "/v1/products/slow")
        + request("POST", "/v1/products/echo", b"12345")
        + request("GET", "/v1/products/chunked")
        + request("HEAD", "/v1/products/echo")
        + request("GET", "/v1/products/echo?x=1")
    )
    assert (await client.answer()).json() == {"method": "GET", "size": 0}
    assert (await client.answer()).json() == {"method": "POST", "size": 5}
    assert (await client.answer()).json() == {"parts": [1, 2, 3]}
    assert (await client.answer(head=True)).status == 200
    assert (await client.answer()).json() == {"method": "GET", "size": 0}


async def test_hop_by_hop_and_connection_named_headers_are_not_forwarded(
    gw: Stack, client: Client
) -> None:
    headers = (
        ("Connection", "keep-alive, X-Hop"),
        ("X-Hop", "secret"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Proxy-Connection", "keep-alive"),
        ("X-Kept", "yes"),
    )
    await client.send(request("GET", "/v1/products/echo", headers=headers))
    assert (await client.answer()).status == 200
    names = {k for k, _ in gw.upstream.requests[-1]["headers"]}
    assert "x-kept" in names
    assert not names & {"x-hop", "keep-alive", "te", "proxy-connection", "authorization"}


# --- headers ---------------------------------------------------------------------------------


async def test_large_and_repeated_headers_pass_both_ways(gw: Stack, client: Client) -> None:
    big = "w" * 12_000
    headers = (("X-Big", big), ("X-Twice", "1"), ("X-Twice", "2"))
    await client.send(request("GET", "/v1/products/cookies", headers=headers))
    answer = await client.answer()
    assert answer.status == 200
    assert answer.all("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert answer.header("x-large") == LARGE_HEADER
    seen = gw.upstream.requests[-1]["headers"]
    assert ("x-big", big) in seen
    assert [v for k, v in seen if k == "x-twice"] == ["1", "2"]


# --- slow, truncated, broken ----------------------------------------------------------------


async def test_a_slow_body_is_waited_for(client: Client) -> None:
    body = b'{"slowly": true}'
    await client.send(request("POST", "/v1/products/echo", body)[: -len(body)])
    for i in range(0, len(body), 4):
        await asyncio.sleep(0.05)
        await client.send(body[i : i + 4])
    assert (await client.answer()).json() == {"method": "POST", "size": len(body)}


async def test_a_client_gone_mid_body_forwards_nothing(gw: Stack) -> None:
    seen = len(gw.upstream.requests)
    client = await Client.connect(gw.gateway_port)
    await client.send(request("POST", "/v1/products/echo", b"x" * 1000)[:-600])
    await asyncio.sleep(0.1)
    client.writer.transport.abort()
    await asyncio.sleep(0.2)
    assert len(gw.upstream.requests) == seen
    # The gateway is unharmed.
    other = await Client.connect(gw.gateway_port)
    await other.send(request("GET", "/v1/products/echo"))
    assert (await other.answer()).status == 200
    other.close()


async def test_an_answer_broken_off_by_the_upstream_is_503(client: Client) -> None:
    await client.send(request("GET", "/v1/products/broken"))
    answer = await client.answer()
    assert answer.status == 503
    error = error_of(answer)
    assert error["type"] == "service_unavailable" and error["code"] == "upstream_unavailable"
    assert answer.header("retry-after")
    await client.send(request("GET", "/v1/products/echo"))
    assert (await client.answer()).status == 200


async def test_a_load_balancers_503_page_is_the_contracts_upstream_unavailable(
    client: Client,
) -> None:
    # Between the gateway and a service's replicas (HAProxy, a mesh sidecar) with none up.
    await client.send(request("GET", "/v1/products/proxy-503"))
    answer = await client.answer()
    assert answer.status == 503
    error = error_of(answer)
    assert error["type"] == "service_unavailable" and error["code"] == "upstream_unavailable"
    # A service's own 503 (JSON, in the contract's format) goes through as it is.
    await client.send(request("GET", "/v1/products/service-503"))
    answer = await client.answer()
    assert answer.status == 503 and error_of(answer)["code"] == "its_own"


async def test_an_upstream_reset_mid_answer_is_503_never_a_hang(gw: Stack, client: Client) -> None:
    await client.send(request("POST", "/v1/webhooks/stripe", b"{}", admin=False))
    answer = await client.answer()
    assert answer.status == 503 and error_of(answer)["code"] == "upstream_unavailable"
    assert gw.resetting.requests >= 1


async def test_a_refused_body_sent_anyway_is_skipped_not_read_as_a_request(
    gw: Stack, client: Client
) -> None:
    seen = len(gw.upstream.requests)
    # Bodies that look like requests: were they parsed as such, the upstream would see them.
    smuggled = request("GET", "/v1/products/echo?smuggled=1")
    too_large = smuggled + b"x" * (LIMIT + 1 - len(smuggled))
    await client.send(
        request("POST", "/v1/products/echo", too_large)
        + request("POST", "/v1/products/echo", smuggled, admin=False)
        + request("GET", "/v1/products/echo?after=1")
    )
    assert (await client.answer()).status == 413
    assert (await client.answer()).status == 401
    assert (await client.answer()).json() == {"method": "GET", "size": 0}
    queries = [r["query"] for r in gw.upstream.requests[seen:]]
    assert queries == ["after=1"]
