"""On the wire, the simulator refuses what Stripe refuses (400 with Stripe's error body) and
accepts the valid form: parameters, ``Stripe-Version`` and the version-dependent rules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from stripe_sim.param_schema import api_version

CARDS_ONLY = {
    "automatic_payment_methods[enabled]": "true",
    "automatic_payment_methods[allow_redirects]": "never",
}
PAYMENT = {"amount": "1000", "currency": "usd", "payment_method": "pm_card_visa"}


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    return error


def _verified_account(http: httpx.Client) -> str:
    account = http.post("/v1/accounts", data={"type": "express", "country": "US"}).json()
    assert http.post(f"/_sim/accounts/{account['id']}/verify").status_code == 200
    return str(account["id"])


def test_unknown_nested_parameter(http: httpx.Client) -> None:
    account = _verified_account(http)
    bad = {**PAYMENT, **CARDS_ONLY, "confirm": "true"}
    error = _error(
        http.post(
            "/v1/payment_intents",
            data={**bad, "transfer_data[destination]": account, "transfer_data[bogus]": "1"},
        )
    )
    assert error["code"] == "parameter_unknown"
    assert error["param"] == "transfer_data[bogus]"
    assert error["message"] == "Received unknown parameter: transfer_data[bogus]"
    assert error["doc_url"].endswith("/parameter-unknown")
    ok = http.post("/v1/payment_intents", data={**bad, "transfer_data[destination]": account})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("amount", "12.5", "parameter_invalid_integer"),
        ("description", "", "parameter_invalid_empty"),
        ("capture_method", "later", None),
        ("setup_future_usage", "sometimes", None),
    ],
)
def test_wrong_type_or_value(http: httpx.Client, field: str, value: str, code: str | None) -> None:
    error = _error(http.post("/v1/payment_intents", data={**PAYMENT, field: value}))
    assert error.get("code") == code
    assert error["param"] == field


def test_query_parameters_are_checked_too(http: httpx.Client) -> None:
    error = _error(http.get("/v1/customers", params={"emial": "a@b.co"}))
    assert (error["code"], error["param"]) == ("parameter_unknown", "emial")
    error = _error(http.get("/v1/customers", params={"limit": "many"}))
    assert error["code"] == "parameter_invalid_integer"
    assert http.get("/v1/customers", params={"email": "a@b.co", "limit": "3"}).status_code == 200


@pytest.mark.parametrize("version", ["2019-2-19", "2099-01-01", "2020-08-27; link_beta=v1", "x"])
def test_malformed_or_unknown_version(http: httpx.Client, version: str) -> None:
    error = _error(http.get("/v1/customers", headers={"Stripe-Version": version}))
    assert error["message"] == f"Invalid Stripe API version: {version}"


def test_version_is_honoured_and_events_follow_it(http: httpx.Client) -> None:
    response = http.post("/v1/customers", headers={"Stripe-Version": "2022-11-15"})
    assert response.status_code == 200
    assert response.headers["Stripe-Version"] == "2022-11-15"
    customer_id = response.json()["id"]
    events = http.get("/v1/events", params={"type": "customer.created", "limit": "100"}).json()
    event = next(e for e in events["data"] if e["data"]["object"]["id"] == customer_id)
    assert event["api_version"] == "2022-11-15"
    pinned = http.post("/v1/customers", headers={"Stripe-Version": api_version()})
    assert pinned.headers["Stripe-Version"] == "2026-10-28.endive"


def test_server_side_confirm_needs_return_url_or_no_redirects(http: httpx.Client) -> None:
    error = _error(http.post("/v1/payment_intents", data={**PAYMENT, "confirm": "true"}))
    assert error["message"].startswith("A `return_url` must be specified because this Payment")
    assert error["param"] == "return_url"
    created = http.post("/v1/payment_intents", data={"amount": "1000", "currency": "usd"}).json()
    assert created["automatic_payment_methods"] == {"allow_redirects": "always", "enabled": True}
    error = _error(
        http.post(
            f"/v1/payment_intents/{created['id']}/confirm", data={"payment_method": "pm_card_visa"}
        )
    )
    assert "return_url" in error["message"]
    for valid in (
        CARDS_ONLY,
        {"return_url": "https://shop.example/done"},
        {"allowed_payment_method_types[0]": "card"},
    ):
        ok = http.post("/v1/payment_intents", data={**PAYMENT, "confirm": "true", **valid})
        assert ok.status_code == 200, (valid, ok.text)
        assert ok.json()["status"] == "succeeded"


def test_setup_intent_confirm_follows_the_same_rule(http: httpx.Client) -> None:
    card = {"payment_method": "pm_card_visa", "confirm": "true"}
    error = _error(http.post("/v1/setup_intents", data=card))
    assert error["message"].startswith("A `return_url` must be specified because this Setup")
    ok = http.post("/v1/setup_intents", data={**card, **CARDS_ONLY})
    assert ok.json()["status"] == "succeeded"


def test_off_session_confirm_needs_no_return_url(http: httpx.Client) -> None:
    customer = http.post("/v1/customers").json()["id"]
    pm = http.post("/v1/payment_methods/pm_card_visa/attach", data={"customer": customer}).json()[
        "id"
    ]
    renewal = http.post(
        "/v1/payment_intents",
        data={
            "amount": "1000",
            "currency": "usd",
            "customer": customer,
            "payment_method": pm,
            "confirm": "true",
            "off_session": "true",
        },
    )
    assert renewal.status_code == 200, renewal.text
    assert renewal.json()["status"] == "succeeded"


def test_versions_before_2023_08_16_have_no_automatic_payment_methods(
    http: httpx.Client,
) -> None:
    since = http.post(
        "/v1/payment_intents",
        data={**PAYMENT, "confirm": "true"},
        headers={"Stripe-Version": "2023-08-16"},
    )
    assert since.status_code == 400  # the rule starts with 2023-08-16
    old = http.post(
        "/v1/payment_intents",
        data={**PAYMENT, "confirm": "true"},
        headers={"Stripe-Version": "2022-11-15"},
    )
    assert old.status_code == 200, old.text
    assert old.json()["automatic_payment_methods"] is None


def test_3ds_next_action_follows_use_stripe_sdk(http: httpx.Client) -> None:
    challenge = {**PAYMENT, "payment_method": "pm_card_authenticationRequired", "confirm": "true"}
    in_page = http.post(
        "/v1/payment_intents", data={**challenge, **CARDS_ONLY, "use_stripe_sdk": "true"}
    )
    assert in_page.json()["next_action"]["type"] == "use_stripe_sdk"
    back = {"return_url": "https://shop.example/back"}
    redirected = http.post("/v1/payment_intents", data={**challenge, **back})
    action = redirected.json()["next_action"]
    assert action["type"] == "redirect_to_url"
    assert action["redirect_to_url"]["return_url"] == "https://shop.example/back"
    no_sdk = http.post("/v1/payment_intents", data={**challenge, **CARDS_ONLY}).json()
    assert no_sdk["next_action"]["type"] == "redirect_to_url"
    assert no_sdk["next_action"]["redirect_to_url"]["return_url"] is None


def test_expand_of_a_field_the_object_lacks(http: httpx.Client) -> None:
    payment = {**PAYMENT, **CARDS_ONLY, "confirm": "true"}
    paid = http.post("/v1/payment_intents", data=payment).json()
    charge = http.get(f"/v1/charges/{paid['latest_charge']}", params={"expand[]": "transfer"})
    assert charge.status_code == 200  # expandable, absent on a charge without a transfer
    assert "transfer" not in charge.json()
    error = _error(http.get(f"/v1/charges/{paid['latest_charge']}", params={"expand[]": "amount"}))
    assert (error["param"], error["message"]) == (
        "expand",
        "This property cannot be expanded (amount).",
    )
