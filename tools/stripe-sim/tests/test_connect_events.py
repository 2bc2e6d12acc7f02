"""Connect events (rule 5): Connect endpoints receive only events of connected accounts,
platform endpoints only the platform's, each signed with its own secret; ``GET /v1/events``
is scoped by ``Stripe-Account`` and honours ``created``, ``type``/``types[]`` and cursors."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import stripe

from stripe_sim.config import parse_endpoints
from stripe_sim.testing import WebhookReceiver

WEBHOOK_SECRET = "whsec_stripe_sim_tests"  # conftest's platform endpoint (/hook)
CONNECT_WEBHOOK_SECRET = "whsec_stripe_sim_connect_tests"  # conftest's Connect endpoint


def _new_account(client: stripe.StripeClient, http: httpx.Client) -> str:
    account = client.v1.accounts.create(params={"type": "express"})
    http.post(f"/_sim/accounts/{account.id}/verify")
    return account.id


def test_env_endpoint_declares_connect() -> None:
    specs = parse_endpoints(
        "http://a/hook|whsec_a|account.updated charge.refunded,"
        "http://a/hook|whsec_b|account.updated|connect,http://b|whsec_c|connect,http://c"
    )
    assert [(s.url, s.secret, s.enabled_events, s.connect) for s in specs] == [
        ("http://a/hook", "whsec_a", ["account.updated", "charge.refunded"], False),
        ("http://a/hook", "whsec_b", ["account.updated"], True),
        ("http://b", "whsec_c", None, True),
        ("http://c", "whsec_test", None, False),
    ]


def test_connected_account_events_reach_only_the_connect_endpoint(
    client: stripe.StripeClient, http: httpx.Client, receiver: WebhookReceiver
) -> None:
    account = _new_account(client, http)
    got = receiver.wait_for(
        lambda r: r.event_type == "account.updated" and account.encode() in r.body
    )
    assert [r.path for r in got] == ["/connect"]
    event = stripe.Webhook.construct_event(got[0].body, got[0].signature, CONNECT_WEBHOOK_SECRET)
    assert event.account == account
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(got[0].body, got[0].signature, WEBHOOK_SECRET)

    customer = client.v1.customers.create(params={"email": "platform@example.com"})
    platform = receiver.wait_for(
        lambda r: r.event_type == "customer.created" and customer.id.encode() in r.body
    )
    assert [r.path for r in platform] == ["/hook"]
    assert "account" not in json.loads(platform[0].body)
    stripe.Webhook.construct_event(platform[0].body, platform[0].signature, WEBHOOK_SECRET)


def test_v1_connect_endpoint_gets_its_own_secret(
    client: stripe.StripeClient, http: httpx.Client, receiver: WebhookReceiver
) -> None:
    connect = client.v1.webhook_endpoints.create(
        params={
            "url": receiver.url("/v1-connect"),
            "enabled_events": ["customer.created"],
            "connect": True,
        }
    )
    platform = client.v1.webhook_endpoints.create(
        params={"url": receiver.url("/v1-platform"), "enabled_events": ["customer.created"]}
    )
    assert connect.secret != platform.secret
    try:
        account = _new_account(client, http)
        theirs = client.v1.customers.create(options={"stripe_account": account})
        ours = client.v1.customers.create()
        got = receiver.wait_for(lambda r: theirs.id.encode() in r.body and r.path != "/connect")
        assert [r.path for r in got] == ["/v1-connect"]
        stripe.Webhook.construct_event(got[0].body, got[0].signature, connect.secret)
        got = receiver.wait_for(lambda r: ours.id.encode() in r.body and r.path != "/hook")
        assert [r.path for r in got] == ["/v1-platform"]
        stripe.Webhook.construct_event(got[0].body, got[0].signature, platform.secret)
    finally:
        client.v1.webhook_endpoints.delete(connect.id)
        client.v1.webhook_endpoints.delete(platform.id)


def test_events_are_listed_per_account_with_created_filters(
    client: stripe.StripeClient, http: httpx.Client
) -> None:
    account = _new_account(client, http)
    opts = {"stripe_account": account}
    first = client.v1.customers.create(options=opts)
    time.sleep(1.1)  # ``created`` has a one-second resolution
    second = client.v1.customers.create(options=opts)
    client.v1.customers.update(second.id, params={"name": "Later"}, options=opts)

    listed = client.v1.events.list(options=opts)
    types = [e.type for e in listed.data]
    assert types[:3] == ["customer.updated", "customer.created", "customer.created"]
    assert "account.updated" in types
    assert all(e.account == account for e in listed.data)
    platform = client.v1.events.list(params={"limit": 100})
    assert not {e.id for e in platform.data} & {e.id for e in listed.data}

    created_events = client.v1.events.list(params={"type": "customer.created"}, options=opts)
    [newer, older] = created_events.data
    assert (older.data.object["id"], newer.data.object["id"]) == (first.id, second.id)
    since = client.v1.events.list(
        params={"created": {"gte": newer.created}, "types": ["customer.created"]}, options=opts
    )
    assert [e.id for e in since.data] == [newer.id]
    before = client.v1.events.list(
        params={"created": {"lt": newer.created}, "type": "customer.*"}, options=opts
    )
    assert [e.id for e in before.data] == [older.id]
    after = client.v1.events.list(params={"created": {"gt": older.created}}, options=opts)
    assert {e.type for e in after.data} == {"customer.created", "customer.updated"}
    upto = client.v1.events.list(
        params={"created": {"lte": older.created}, "type": "customer.created"}, options=opts
    )
    assert [e.id for e in upto.data] == [older.id]

    page = client.v1.events.list(params={"limit": 1}, options=opts)
    assert page.has_more is True
    rest = client.v1.events.list(params={"starting_after": page.data[0].id}, options=opts)
    assert [e.id for e in page.data + rest.data] == [e.id for e in listed.data]
    assert rest.has_more is False

    both = http.get(
        "/v1/events",
        params={"type": "customer.created", "types[0]": "customer.updated"},
        headers={"Stripe-Account": account},
    )
    assert both.status_code == 400
    bad = http.get("/v1/events", params={"created[since]": "1"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "parameter_unknown"
