"""Webhook delivery: Stripe signatures verified by ``stripe.Webhook.construct_event``,
retries with backoff after a 500, emitted events, fault injection, persistence of endpoints."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from stripe_sim.testing import Received, WebhookReceiver, confirmed_card_payment, run_simulator

WEBHOOK_SECRET = "whsec_stripe_sim_tests"  # same as conftest
API_KEY = "sk_test_stripe_sim_tests"


def verify_signature(body: bytes, signature: str) -> Any:
    return stripe.Webhook.construct_event(body, signature, WEBHOOK_SECRET)


Events = Callable[..., list[dict[str, Any]]]


def _about(object_id: str) -> Callable[[Received], bool]:
    return lambda r: object_id.encode() in r.body


def _wait_deliveries(
    http: httpx.Client, event_id: str, count: int, timeout: float = 10
) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        page = http.get("/_sim/events", params={"limit": 1000}).json()
        found = [e for e in page["data"] if e["id"] == event_id]
        deliveries = found[0]["deliveries"] if found else []
        if len(deliveries) >= count or time.monotonic() > deadline:
            return deliveries
        time.sleep(0.05)


def test_events_are_delivered_signed(
    client: stripe.StripeClient, receiver: WebhookReceiver
) -> None:
    pi = client.v1.payment_intents.create(params=confirmed_card_payment(777, "pm_card_visa"))
    got = receiver.wait_for(
        lambda r: (
            r.path == "/hook" and r.event_type == "payment_intent.succeeded" and _about(pi.id)(r)
        )
    )
    assert len(got) == 1
    item = got[0]
    assert item.status == 200, "the receiver verified the signature with construct_event"
    event = stripe.Webhook.construct_event(item.body, item.signature, WEBHOOK_SECRET)
    assert event.type == "payment_intent.succeeded"
    assert event.data.object.id == pi.id
    assert event.data.object.status == "succeeded"
    assert event.livemode is False
    assert item.signature.startswith("t=") and ",v1=" in item.signature
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(item.body, item.signature, "whsec_wrong")
    tampered = item.body.replace(b"777", b"778")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, item.signature, WEBHOOK_SECRET)


def test_all_listed_event_types_are_emitted(
    client: stripe.StripeClient,
    http: httpx.Client,
    receiver: WebhookReceiver,
    sim_events: Events,
) -> None:
    customer = client.v1.customers.create()
    client.v1.customers.update(customer.id, params={"name": "Changed"})
    pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    ok = client.v1.payment_intents.create(
        params=confirmed_card_payment(500, pm.id, customer=customer.id)
    )
    with pytest.raises(stripe.CardError):
        client.v1.payment_intents.create(
            params=confirmed_card_payment(500, "pm_card_visa_chargeDeclined")
        )
    needs = client.v1.payment_intents.create(
        params=confirmed_card_payment(500, "pm_card_authenticationRequired")
    )
    client.v1.payment_intents.cancel(needs.id)
    client.v1.setup_intents.create(
        params={
            "payment_method": "pm_card_visa",
            "confirm": True,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        }
    )
    si = client.v1.setup_intents.create(
        params={
            "payment_method": "pm_card_authenticationRequired",
            "confirm": True,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        }
    )
    http.post(f"/_sim/setup_intents/{si.id}/authenticate", json={"outcome": "failure"})
    client.v1.refunds.create(params={"payment_intent": ok.id})
    account = client.v1.accounts.create(params={"type": "express"})
    http.post(f"/_sim/accounts/{account.id}/verify")
    client.v1.payment_intents.create(
        params=confirmed_card_payment(
            500, "pm_card_visa", transfer_data={"destination": account.id}
        )
    )
    expected = {
        "payment_intent.succeeded", "payment_intent.payment_failed",
        "payment_intent.requires_action", "payment_intent.canceled", "setup_intent.succeeded",
        "setup_intent.setup_failed", "charge.refunded", "payment_method.attached",
        "customer.updated", "account.updated", "transfer.created",
    }  # fmt: skip
    emitted = {e["type"] for e in sim_events()}
    assert expected <= emitted
    for type_ in expected:
        # events of connected accounts reach the Connect endpoint only (rule 5)
        path = "/connect" if type_ == "account.updated" else "/hook"
        got = receiver.wait_for(lambda r, t=type_, p=path: r.event_type == t and r.path == p)
        assert got, f"{type_} was not delivered"
        assert all(r.status == 200 for r in got)


def test_retries_after_500_until_2xx(
    client: stripe.StripeClient, http: httpx.Client, receiver: WebhookReceiver
) -> None:
    receiver.fail_first("/flaky", 2)
    added = http.post(
        "/_sim/webhook_endpoints",
        json={"url": receiver.url("/flaky"), "secret": WEBHOOK_SECRET},
    ).json()
    try:
        customer = client.v1.customers.create(params={"email": "retry@example.com"})
        got = receiver.wait_for(lambda r: r.path == "/flaky" and _about(customer.id)(r), count=3)
        assert [r.status for r in got] == [500, 500, 200]
        assert len({r.event_id for r in got}) == 1
        assert got[1].at - got[0].at >= 0.04, "exponential backoff between attempts"
        assert got[2].at - got[1].at >= got[1].at - got[0].at - 0.02
        for r in got:
            verify_signature(r.body, r.signature or "")
        deliveries = _wait_deliveries(http, got[0].event_id or "", 4)
        flaky = [d for d in deliveries if d["endpoint"].endswith("/flaky")]
        assert [(d["attempt"], d["status_code"]) for d in flaky] == [(1, 500), (2, 500), (3, 200)]
    finally:
        http.delete(f"/_sim/webhook_endpoints/{added['id']}")


def test_unreachable_endpoint_records_null_status(
    http: httpx.Client, client: stripe.StripeClient
) -> None:
    added = http.post(
        "/_sim/webhook_endpoints", json={"url": "http://127.0.0.1:9/nothing", "secret": "whsec_x"}
    ).json()
    try:
        customer = client.v1.customers.create()
        events = http.get("/_sim/events", params={"type": "customer.created", "limit": 1000}).json()
        event = next(e for e in events["data"] if e["data"]["object"]["id"] == customer.id)
        deliveries = _wait_deliveries(http, event["id"], 3)
        dead = [d for d in deliveries if d["endpoint"].endswith("/nothing")]
        assert dead and dead[0]["status_code"] is None
    finally:
        http.delete(f"/_sim/webhook_endpoints/{added['id']}")


def test_emit_any_event_for_another_account(http: httpx.Client, receiver: WebhookReceiver) -> None:
    response = http.post(
        "/_sim/events",
        json={
            "type": "made_up.thing_happened",
            "data": {"object": {"id": "obj_custom_1", "object": "made_up"}},
            "account": "acct_someone_else",
        },
    )
    assert response.status_code == 200
    event = response.json()
    assert event["id"].startswith("evt_")
    got = receiver.wait_for(lambda r: r.event_id == event["id"])
    assert got and got[0].status == 200
    parsed = json.loads(got[0].body)
    assert parsed["type"] == "made_up.thing_happened"
    assert parsed["account"] == "acct_someone_else"
    assert parsed["data"]["object"] == {"id": "obj_custom_1", "object": "made_up"}
    listed = http.get("/_sim/events", params={"type": "made_up.thing_happened"}).json()
    assert listed["data"][-1]["id"] == event["id"]
    assert listed["data"][-1]["account"] == "acct_someone_else"


def test_sim_events_listing_is_newest_last_with_cursors(http: httpx.Client) -> None:
    ids = [
        http.post(
            "/_sim/events", json={"type": "sim.cursor_test", "data": {"object": {"n": i}}}
        ).json()["id"]
        for i in range(4)
    ]
    newest = http.get("/_sim/events", params={"type": "sim.cursor_test", "limit": 2}).json()
    assert [e["id"] for e in newest["data"]] == ids[2:]
    assert newest["has_more"] is True
    older = http.get(
        "/_sim/events", params={"type": "sim.cursor_test", "limit": 2, "ending_before": ids[2]}
    ).json()
    assert [e["id"] for e in older["data"]] == ids[:2]
    assert older["has_more"] is False
    after = http.get(
        "/_sim/events", params={"type": "sim.cursor_test", "limit": 2, "starting_after": ids[0]}
    ).json()
    assert [e["id"] for e in after["data"]] == ids[1:3]
    assert after["has_more"] is True


def test_v1_events_retrieve_and_list(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    events = client.v1.events.list(params={"type": "customer.created", "limit": 5})
    mine = [e for e in events.data if e.data.object["id"] == customer.id]
    assert len(mine) == 1
    fetched = client.v1.events.retrieve(mine[0].id)
    assert fetched.type == "customer.created"
    assert fetched.request.idempotency_key, "SDK POSTs carry an idempotency key"


def test_webhook_endpoints_via_v1_api(client: stripe.StripeClient) -> None:
    created = client.v1.webhook_endpoints.create(
        params={"url": "http://127.0.0.1:9/v1hook", "enabled_events": ["charge.refunded"]}
    )
    assert created.secret.startswith("whsec_")
    assert created.id in [e.id for e in client.v1.webhook_endpoints.list().data]
    client.v1.webhook_endpoints.delete(created.id)
    assert created.id not in [e.id for e in client.v1.webhook_endpoints.list().data]


# -- fault injection and persistence: each on its own simulator ---------------------------


@pytest.fixture
def own_sim() -> Iterator[tuple[str, WebhookReceiver]]:
    with (
        WebhookReceiver(verifier=verify_signature) as recv,
        run_simulator(webhook_endpoints=[(recv.url("/own"), WEBHOOK_SECRET)]) as url,
    ):
        yield url, recv


def _own_client(url: str) -> stripe.StripeClient:
    return stripe.StripeClient(API_KEY, base_addresses={"api": url}, max_network_retries=0)


def test_fault_duplicate_delivery(own_sim: tuple[str, WebhookReceiver]) -> None:
    url, recv = own_sim
    httpx.post(f"{url}/_sim/faults", json={"webhook_duplicate": True})
    customer = _own_client(url).v1.customers.create()
    got = recv.wait_for(lambda r: _about(customer.id)(r) and r.event_type == "customer.created", 2)
    assert len(got) == 2
    assert got[0].event_id == got[1].event_id
    httpx.delete(f"{url}/_sim/faults")
    other = _own_client(url).v1.customers.create()
    time.sleep(0.3)
    assert len(recv.wait_for(_about(other.id), 1)) == 1


def test_fault_shuffle_delivers_out_of_order(own_sim: tuple[str, WebhookReceiver]) -> None:
    url, recv = own_sim
    httpx.post(f"{url}/_sim/faults", json={"webhook_shuffle": True})
    pi = _own_client(url).v1.payment_intents.create(
        params=confirmed_card_payment(100, "pm_card_visa")
    )
    got = recv.wait_for(lambda r: _about(pi.id)(r) and r.event_type.startswith("payment_intent"), 2)
    types = [r.event_type for r in sorted(got, key=lambda r: r.at)]
    assert types == ["payment_intent.succeeded", "payment_intent.created"]


def test_fault_drop_first_attempt(own_sim: tuple[str, WebhookReceiver]) -> None:
    url, recv = own_sim
    httpx.post(f"{url}/_sim/faults", json={"webhook_drop_first_attempt": True})
    customer = _own_client(url).v1.customers.create()
    got = recv.wait_for(_about(customer.id), 1)
    assert len(got) == 1, "only the retry reaches the endpoint"
    event = httpx.get(f"{url}/_sim/events", params={"type": "customer.created"}).json()["data"][-1]
    deadline = time.monotonic() + 5
    while len(event["deliveries"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        event = httpx.get(f"{url}/_sim/events", params={"type": "customer.created"}).json()["data"][
            -1
        ]
    assert [(d["attempt"], d["status_code"]) for d in event["deliveries"]] == [(1, None), (2, 200)]


def test_fault_api_errors_and_latency(own_sim: tuple[str, WebhookReceiver]) -> None:
    url, _ = own_sim
    faults = httpx.post(f"{url}/_sim/faults", json={"api_error_rate": 1.0}).json()
    assert faults["api_error_rate"] == 1.0
    client = _own_client(url)
    with pytest.raises(stripe.APIError) as info:
        client.v1.customers.create()
    assert info.value.http_status == 500
    assert httpx.get(f"{url}/healthz").status_code == 200, "controls are never faulted"
    httpx.post(f"{url}/_sim/faults", json={"api_error_rate": 0, "api_latency_ms": 300})
    started = time.monotonic()
    client.v1.customers.create()
    assert time.monotonic() - started >= 0.3
    httpx.delete(f"{url}/_sim/faults")
    started = time.monotonic()
    client.v1.customers.create()
    assert time.monotonic() - started < 0.3
    bad = httpx.post(f"{url}/_sim/faults", json={"api_error_rate": 2})
    assert bad.status_code == 400


def test_idempotency_key_of_an_executing_request_is_in_use(
    own_sim: tuple[str, WebhookReceiver],
) -> None:
    """Stripe's idempotency: a request with the key of one still executing gets 409
    `idempotency_key_in_use` (nothing saved for it); once that one finished, the same
    request replays its response, and other parameters are an `idempotency_error`."""
    url, _ = own_sim
    headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "in-flight-key"}
    form = {"email": "flight@example.com"}
    httpx.post(f"{url}/_sim/faults", json={"api_latency_ms": 2000})
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(httpx.post, f"{url}/v1/customers", data=form, headers=headers)
            while not httpx.get(f"{url}/_sim/stats").json()["idempotency_keys_executing"]:
                time.sleep(0.02)
            second = httpx.post(f"{url}/v1/customers", data=form, headers=headers)
            created = first.result()
    finally:
        httpx.delete(f"{url}/_sim/faults")
    assert created.status_code == 200, created.text
    assert second.status_code == 409, second.text
    error = second.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "idempotency_key_in_use")

    replay = httpx.post(f"{url}/v1/customers", data=form, headers=headers)
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == created.json()["id"]
    other = httpx.post(f"{url}/v1/customers", data={"email": "x@example.com"}, headers=headers)
    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"
    listed = _own_client(url).v1.customers.list(params={"email": "flight@example.com"})
    assert len(listed.data) == 1


def test_sdk_retries_recover_from_injected_errors(own_sim: tuple[str, WebhookReceiver]) -> None:
    url, _ = own_sim
    httpx.post(f"{url}/_sim/faults", json={"api_error_rate": 0.5})
    retrying = stripe.StripeClient(API_KEY, base_addresses={"api": url}, max_network_retries=8)
    customers = [
        retrying.v1.customers.create(params={"email": f"r{i}@example.com"}) for i in range(4)
    ]
    httpx.delete(f"{url}/_sim/faults")
    listed = _own_client(url).v1.customers.list(params={"limit": 100})
    assert len(listed.data) == 4, "idempotent retries never duplicate"
    assert {c.id for c in customers} == {c.id for c in listed.data}


def test_reset_clears_data(own_sim: tuple[str, WebhookReceiver]) -> None:
    url, _ = own_sim
    client = _own_client(url)
    customer = client.v1.customers.create()
    assert httpx.delete(f"{url}/_sim/data").status_code == 200
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.retrieve(customer.id)
    assert httpx.get(f"{url}/_sim/stats").json()["objects"] == 0


def test_state_file_keeps_objects_and_endpoints_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with WebhookReceiver(verifier=verify_signature) as recv:
        with run_simulator(state_file=state) as url:
            client = _own_client(url)
            customer = client.v1.customers.create(params={"email": "persist@example.com"})
            httpx.post(
                f"{url}/_sim/webhook_endpoints",
                json={"url": recv.url("/persisted"), "secret": WEBHOOK_SECRET},
            )
            idem = client.v1.customers.create(
                params={"email": "idem@example.com"}, options={"idempotency_key": "persist-key"}
            )
        assert state.exists()
        with run_simulator(state_file=state) as url:
            client = _own_client(url)
            assert client.v1.customers.retrieve(customer.id).email == "persist@example.com"
            assert [
                c.id for c in client.v1.customers.list(params={"email": "persist@example.com"}).data
            ] == [customer.id]
            replay = client.v1.customers.create(
                params={"email": "idem@example.com"}, options={"idempotency_key": "persist-key"}
            )
            assert replay.id == idem.id
            other = client.v1.customers.create()
            got = recv.wait_for(lambda r: r.path == "/persisted" and _about(other.id)(r))
            assert got and got[0].status == 200
