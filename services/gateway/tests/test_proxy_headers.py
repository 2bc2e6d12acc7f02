import pytest
from starlette.types import Message, Receive

from gateway.proxy import ClientDisconnected, RequestTooLarge, forwarded_headers, read_request_body


def test_client_cannot_forward_identity_credentials_or_hop_by_hop_headers() -> None:
    incoming = [
        (b"X-BOS-Identity", b"forged"),
        (b"x-bos-anything", b"forged"),
        (b"connection", b"keep-alive"),
        (b"host", b"evil"),
        (b"authorization", b"Bearer sk_test_1"),
        (b"cookie", b"session=abc"),
        (b"idempotency-key", b"k1"),
    ]
    out = forwarded_headers(incoming, "10.0.0.9")
    assert "x-bos-identity" not in out and "x-bos-anything" not in out
    assert "connection" not in out and "host" not in out
    # The raw credential ends at the gateway: services get the signed identity instead.
    assert "authorization" not in out and "cookie" not in out
    assert out["idempotency-key"] == "k1"
    assert out["x-forwarded-for"] == "10.0.0.9"


def test_forwarded_for_is_appended() -> None:
    out = forwarded_headers([(b"x-forwarded-for", b"1.1.1.1")], "2.2.2.2")
    assert out["x-forwarded-for"] == "1.1.1.1, 2.2.2.2"


def test_expect_and_headers_named_by_connection_end_at_the_gateway() -> None:
    incoming = [
        (b"expect", b"100-continue"),
        (b"connection", b"close, X-Hop"),
        (b"x-hop", b"1"),
        (b"proxy-connection", b"keep-alive"),
        (b"content-type", b"application/json"),
    ]
    out = forwarded_headers(incoming, None)
    assert dict(out) == {"content-type": "application/json"}


async def test_a_body_is_read_whole_and_refused_past_the_limit() -> None:
    def receiving(*messages: Message) -> Receive:
        queue = list(messages)

        async def receive() -> Message:
            return queue.pop(0)

        return receive

    one: Message = {"type": "http.request", "body": b"abc", "more_body": False}
    assert await read_request_body(receiving(one), 3) == b"abc"
    parts: list[Message] = [{"type": "http.request", "body": b"ab", "more_body": True}, one]
    assert await read_request_body(receiving(*parts), 5) == b"ababc"
    with pytest.raises(RequestTooLarge) as too_large:
        await read_request_body(receiving(*parts), 4)
    assert too_large.value.status_code == 413 and too_large.value.code == "request_too_large"
    # Refused as soon as the total passes the limit, not at the end of the body.
    endless: list[Message] = [{"type": "http.request", "body": b"12345", "more_body": True}]
    with pytest.raises(RequestTooLarge):
        await read_request_body(receiving(*endless), 4)
    gone = [parts[0], {"type": "http.disconnect"}]
    with pytest.raises(ClientDisconnected):
        await read_request_body(receiving(*gone), 100)
