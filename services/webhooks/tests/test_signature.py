"""Stripe-Signature verification (unit): the official SDK's scheme, rotation, tolerance, and
the two endpoints' secrets (account and Connect, Stripe rule 5)."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import ValidationError

from bos_common.errors import InvalidRequest
from webhooks.api import verify
from webhooks.settings import WebhooksSettings
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


SETTINGS = {
    "BOS_INTERNAL_SECRET": "internal-secret-for-tests",
    "DATABASE_URL": "postgresql+asyncpg://x@127.0.0.1:1/x",
    "AMQP_URL": "amqp://x@127.0.0.1:1/",
    "STRIPE_SECRET_KEY": "sk_test_x",
    "TOKENS_URL": "http://127.0.0.1:9",
}
SECRET_VARS = (
    "STRIPE_WEBHOOK_SECRETS",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_CONNECT_WEBHOOK_SECRETS",
    "STRIPE_CONNECT_WEBHOOK_SECRET",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRET_VARS:
        monkeypatch.delenv(name, raising=False)


def secrets_of(**env: str) -> list[str]:
    settings = WebhooksSettings(**SETTINGS, **env)  # type: ignore[arg-type, unused-ignore]
    secrets: list[str] = settings.webhook_secrets
    return secrets


@pytest.mark.usefixtures("clean_env")
def test_the_account_and_connect_endpoints_secrets_are_all_accepted() -> None:
    assert secrets_of(STRIPE_WEBHOOK_SECRETS="whsec_a") == ["whsec_a"]
    assert secrets_of(
        STRIPE_WEBHOOK_SECRETS="whsec_a_old, whsec_a", STRIPE_CONNECT_WEBHOOK_SECRETS="whsec_c"
    ) == ["whsec_a_old", "whsec_a", "whsec_c"]
    # The singular names, one secret per endpoint.
    assert secrets_of(
        STRIPE_WEBHOOK_SECRET="whsec_a", STRIPE_CONNECT_WEBHOOK_SECRET="whsec_c_old,whsec_c"
    ) == ["whsec_a", "whsec_c_old", "whsec_c"]


@pytest.mark.usefixtures("clean_env")
def test_the_account_endpoints_secret_is_required() -> None:
    with pytest.raises(ValidationError):
        secrets_of(STRIPE_CONNECT_WEBHOOK_SECRETS="whsec_c")


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("signed_with", ["whsec_a_old", "whsec_a", "whsec_c_old", "whsec_c"])
def test_rule_5_an_event_verifies_with_either_endpoints_secret_during_rotations(
    signed_with: str,
) -> None:
    secrets = secrets_of(
        STRIPE_WEBHOOK_SECRETS="whsec_a_old,whsec_a",
        STRIPE_CONNECT_WEBHOOK_SECRETS="whsec_c_old,whsec_c",
    )
    assert verify(PAYLOAD, signature(PAYLOAD, signed_with), secrets, 300)["id"] == "evt_1"


@pytest.mark.usefixtures("clean_env")
def test_rule_5_a_secret_of_neither_endpoint_is_a_400() -> None:
    secrets = secrets_of(STRIPE_WEBHOOK_SECRETS="whsec_a", STRIPE_CONNECT_WEBHOOK_SECRETS="whsec_c")
    with pytest.raises(InvalidRequest) as err:
        verify(PAYLOAD, signature(PAYLOAD, "whsec_someone_else"), secrets, 300)
    assert (err.value.status_code, err.value.code) == (400, "signature_invalid")
