"""The pinned Stripe API version: one constant, sent on every request of every client BOS
builds, and the version the locked SDK was generated for."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import stripe
import stripe._api_version

from bos_common import stripe_api
from bos_common.stripe_testing import recording_client

ROOT = Path(__file__).resolve().parents[3]


def _locked_stripe_version() -> str:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (package,) = [p for p in lock["package"] if p["name"] == "stripe"]
    return str(package["version"])


def test_the_pinned_version_is_what_the_locked_sdk_was_generated_for() -> None:
    """An SDK upgrade in uv.lock fails here until STRIPE_API_VERSION is moved on purpose
    (with the webhook endpoints' version, deploy/README.md)."""
    assert _locked_stripe_version() == stripe.VERSION == "16.1.0", (
        "uv.lock resolves another stripe SDK: read its changelog, move STRIPE_API_VERSION "
        "and the webhook endpoints to its version, then update this test"
    )
    assert stripe._api_version._ApiVersion.CURRENT == stripe_api.STRIPE_API_VERSION
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}\.\w+", stripe_api.STRIPE_API_VERSION)


async def test_every_request_carries_the_pinned_version() -> None:
    client, recorder = recording_client()
    await client.v1.customers.create_async({"email": "a@b.co"})
    await client.v1.payment_intents.retrieve_async("pi_1")
    await client.raw_request_async("post", "/v1/refunds", payment_intent="pi_1")
    assert len(recorder.requests) == 3
    assert {r.stripe_version for r in recorder.requests} == {stripe_api.STRIPE_API_VERSION}


def test_an_sdk_generated_for_another_version_still_sends_the_pinned_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the pin, the SDK's own version goes out (what an upgrade would change)."""
    monkeypatch.setattr(stripe._api_version._ApiVersion, "CURRENT", "2099-01-01.future")
    monkeypatch.setattr(stripe, "api_version", "2099-01-01.future")
    client, recorder = recording_client()
    client.v1.customers.retrieve("cus_1")
    assert recorder.last("GET", "/v1/customers/cus_1").stripe_version == (
        stripe_api.STRIPE_API_VERSION
    )
