from gateway.proxy import forwarded_headers


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
