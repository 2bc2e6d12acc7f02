"""``GET /_sim/requests``: every ``/v1`` request with its headers, decoded parameters, status and,
for refusals, Stripe's error and what was refused; ``stripe_sim.testing`` asserts on it."""

from __future__ import annotations

import httpx
import pytest

from stripe_sim import errors
from stripe_sim.request_log import RequestLog
from stripe_sim.testing import (
    assert_no_refused_requests,
    clear_recorded_requests,
    recorded_requests,
)


def test_requests_are_recorded_with_headers_params_and_outcome(
    http: httpx.Client, sim_url: str
) -> None:
    clear_recorded_requests(sim_url)
    account = http.post("/v1/accounts", data={"type": "express"}).json()["id"]
    good = http.post(
        "/v1/customers",
        data={"email": "a@b.co", "metadata[plan]": "pro"},
        headers={
            "Stripe-Account": account,
            "Stripe-Version": "2026-10-28.endive",
            "Idempotency-Key": "key-1",
        },
    )
    assert good.status_code == 200
    bad = http.post("/v1/customers", data={"emali": "a@b.co"})
    assert bad.status_code == 400
    http.get("/v1/customers", headers={"Stripe-Version": "2019-2-19"})
    http.get("/v1/customers/cus_missing")

    records = recorded_requests(sim_url)
    assert [(r["method"], r["path"], r["status"]) for r in records] == [
        ("POST", "/v1/accounts", 200),
        ("POST", "/v1/customers", 200),
        ("POST", "/v1/customers", 400),
        ("GET", "/v1/customers", 400),
        ("GET", "/v1/customers/cus_missing", 404),
    ]
    first = records[1]
    assert first["stripe_account"] == account
    assert first["stripe_version"] == "2026-10-28.endive"
    assert first["idempotency_key"] == "key-1"
    assert first["params"] == {"email": "a@b.co", "metadata": {"plan": "pro"}}
    assert first["error"] is None and first["refusal"] is None
    assert records[2]["error"]["code"] == "parameter_unknown"
    assert records[2]["error"]["param"] == "emali"
    assert records[2]["refusal"] == "parameters"
    assert records[3]["refusal"] == "version"
    assert records[4]["error"]["code"] == "resource_missing"
    assert records[4]["refusal"] is None  # a missing object is no refusal of the request

    refused = recorded_requests(sim_url, refused_only=True)
    assert [r["refusal"] for r in refused] == ["parameters", "version"]
    with pytest.raises(AssertionError, match="2 request\\(s\\) Stripe would refuse") as info:
        assert_no_refused_requests(sim_url)
    assert "POST /v1/customers -> 400 [parameters] parameter_unknown param=emali" in str(info.value)
    assert_no_refused_requests(sim_url, refusals=["rule"])

    clear_recorded_requests(sim_url)
    assert recorded_requests(sim_url) == []
    assert_no_refused_requests(sim_url)


def test_rule_refusals_are_tagged(http: httpx.Client, sim_url: str) -> None:
    clear_recorded_requests(sim_url)
    card_payment = {"amount": "500", "currency": "usd", "payment_method": "pm_card_visa"}
    response = http.post("/v1/payment_intents", data={**card_payment, "confirm": "true"})
    assert response.status_code == 400
    [record] = recorded_requests(sim_url, refused_only=True)
    assert record["refusal"] == "rule"
    clear_recorded_requests(sim_url)


def test_reused_idempotency_keys_are_rule_refusals(http: httpx.Client, sim_url: str) -> None:
    clear_recorded_requests(sim_url)
    key = {"Idempotency-Key": "reused-with-other-params"}
    assert http.post("/v1/customers", data={"email": "a@b.co"}, headers=key).status_code == 200
    assert http.post("/v1/customers", data={"email": "c@d.co"}, headers=key).status_code == 400
    [record] = recorded_requests(sim_url, refused_only=True)
    assert (record["error"]["type"], record["refusal"]) == ("idempotency_error", "rule")
    clear_recorded_requests(sim_url)


def test_unknown_urls_are_recorded_as_refused(http: httpx.Client, sim_url: str) -> None:
    clear_recorded_requests(sim_url)
    assert http.post("/v1/payment_intentz", data={"amount": "1"}).status_code == 404
    [record] = recorded_requests(sim_url, refused_only=True)
    assert (record["path"], record["refusal"], record["params"]) == (
        "/v1/payment_intentz",
        "route",
        {"amount": "1"},
    )
    clear_recorded_requests(sim_url)


def test_publishable_key_is_not_recorded(http: httpx.Client, sim_url: str) -> None:
    clear_recorded_requests(sim_url)
    httpx.post(
        f"{sim_url}/v1/payment_methods",
        data={"key": "pk_test_x", "type": "card", "card[token]": "tok_visa"},
    )
    [record] = recorded_requests(sim_url)
    assert "key" not in record["params"]
    clear_recorded_requests(sim_url)


def test_log_is_bounded() -> None:
    log = RequestLog(max_records=3)
    for index in range(5):
        log.record(
            method="GET",
            path=f"/v1/x/{index}",
            headers={},
            form="",
            status=400,
            request_id=f"req_{index}",
            error=errors.unknown_param("x"),
        )
    listing = log.listing()
    assert [r["path"] for r in listing["data"]] == ["/v1/x/2", "/v1/x/3", "/v1/x/4"]
    assert (listing["total"], listing["dropped"]) == (5, 2)


def test_a_refusal_outlives_the_traffic_that_pushes_it_out_of_the_log() -> None:
    log = RequestLog(max_records=3)
    for index in range(5):
        log.record(
            method="POST",
            path=f"/v1/x/{index}",
            headers={},
            form="",
            status=400 if index == 0 else 200,
            request_id=f"req_{index}",
            error=errors.unknown_param("x") if index == 0 else None,
        )
    assert "/v1/x/0" not in [r["path"] for r in log.listing()["data"]]
    assert [r["path"] for r in log.listing(refused_only=True)["data"]] == ["/v1/x/0"]
