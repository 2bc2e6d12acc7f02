"""Stripe-Signature verification (unit): the official SDK's scheme, rotation, tolerance."""

from __future__ import annotations

import json
import time

import pytest

from bos_common.errors import InvalidRequest
from webhooks.api import verify
from webhooks.testing import signature

PAYLOAD = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded", "created": 1}).encode()


def test_valid_signature_verifies() -> None:
    assert verify(PAYLOAD, signature(PAYLOAD, "whsec_a"), ["whsec_a"], 300)["id"] == "evt_1"


def test_rotation_old_and_new_secret_both_verify() -> None:
    for secret in ("whsec_old", "whsec_new"):
        assert verify(PAYLOAD, signature(PAYLOAD, secret), ["whsec_new", "whsec_old"], 300)


@pytest.mark.parametrize(
    ("signature", "code"),
    [
        (None, "signature_missing"),
        ("", "signature_missing"),
        ("t=1,v1=00", "signature_invalid"),
        ("nonsense", "signature_invalid"),
    ],
)
def test_9_2_missing_or_invalid_signature_is_rejected(signature: str | None, code: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        verify(PAYLOAD, signature, ["whsec_a"], 300)
    assert err.value.code == code


def test_9_2_wrong_secret_tampered_body_and_stale_timestamp_are_rejected() -> None:
    with pytest.raises(InvalidRequest):
        verify(PAYLOAD, signature(PAYLOAD, "whsec_other"), ["whsec_a"], 300)
    with pytest.raises(InvalidRequest):
        verify(PAYLOAD + b" ", signature(PAYLOAD, "whsec_a"), ["whsec_a"], 300)
    with pytest.raises(InvalidRequest):
        verify(PAYLOAD, signature(PAYLOAD, "whsec_a", at=int(time.time()) - 301), ["whsec_a"], 300)


def test_a_signed_body_that_is_not_an_event_is_rejected() -> None:
    body = b'{"hello": "world"}'
    with pytest.raises(InvalidRequest):
        verify(body, signature(body, "whsec_a"), ["whsec_a"], 300)
