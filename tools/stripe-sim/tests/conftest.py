"""Fixtures: a webhook receiver that verifies signatures with the official SDK, the simulator
as a real subprocess pointed at it, and clients (StripeClient, global SDK style, raw httpx)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import stripe

from stripe_sim.testing import WebhookReceiver, run_simulator

WEBHOOK_SECRET = "whsec_stripe_sim_tests"
#: the Connect endpoint's own secret (``/connect``: events of connected accounts)
CONNECT_WEBHOOK_SECRET = "whsec_stripe_sim_connect_tests"
API_KEY = "sk_test_stripe_sim_tests"


def verify_signature(body: bytes, signature: str) -> Any:
    """Either endpoint's secret (tests check which one signed what)."""
    try:
        return stripe.Webhook.construct_event(body, signature, WEBHOOK_SECRET)
    except stripe.SignatureVerificationError:
        return stripe.Webhook.construct_event(body, signature, CONNECT_WEBHOOK_SECRET)


@pytest.fixture(scope="session")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(verifier=verify_signature) as recv:
        yield recv


@pytest.fixture(scope="session")
def sim_url(receiver: WebhookReceiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    endpoints = [
        (receiver.url("/hook"), WEBHOOK_SECRET),
        (receiver.url("/connect"), CONNECT_WEBHOOK_SECRET, "connect"),
    ]
    with run_simulator(webhook_endpoints=endpoints, log_file=log) as url:
        yield url


@pytest.fixture
def client(sim_url: str) -> stripe.StripeClient:
    return stripe.StripeClient(API_KEY, base_addresses={"api": sim_url}, max_network_retries=0)


@pytest.fixture
def global_stripe(sim_url: str) -> Iterator[Any]:
    """The module-level SDK style: ``stripe.api_base`` / ``stripe.PaymentIntent.create``."""
    saved = (stripe.api_key, stripe.api_base, stripe.max_network_retries)
    stripe.api_key, stripe.api_base, stripe.max_network_retries = API_KEY, sim_url, 0
    try:
        yield stripe
    finally:
        stripe.api_key, stripe.api_base, stripe.max_network_retries = saved


@pytest.fixture
def http(sim_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sim_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    ) as c:
        yield c


@pytest.fixture
def sim_events(http: httpx.Client) -> Callable[..., list[dict[str, Any]]]:
    """All simulator events (``GET /_sim/events``), optionally filtered."""

    def fetch(type_: str | None = None, object_id: str | None = None) -> list[dict[str, Any]]:
        pages: list[list[dict[str, Any]]] = []
        params: dict[str, Any] = {"limit": 1000}
        if type_:
            params["type"] = type_
        while True:
            page = http.get("/_sim/events", params=params).json()
            pages.append(page["data"])
            if not page["has_more"] or not page["data"]:
                break
            params["ending_before"] = page["data"][0]["id"]
        out = [event for chunk in reversed(pages) for event in chunk]
        if object_id is not None:
            out = [e for e in out if e["data"]["object"].get("id") == object_id]
        return out

    return fetch
