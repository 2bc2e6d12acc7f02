"""Wire-format details through raw HTTP: form encoding, expand[], error bodies, auth,
Stripe-Account, Idempotency-Key replay, pagination, metadata semantics."""

from __future__ import annotations

import base64
import uuid

import httpx

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _customer(http: httpx.Client, **fields: str) -> dict:
    response = http.post("/v1/customers", data=fields)
    assert response.status_code == 200, response.text
    return response.json()


def test_nested_form_params_and_json_object_fields(http: httpx.Client) -> None:
    body = (
        "email=nested%40example.com&metadata[order_id]=42&metadata[plan]=pro"
        "&address[line1]=1+Main+St&address[city]=Berlin&preferred_locales[0]=de"
        "&preferred_locales[1]=en"
    )
    response = http.post("/v1/customers", content=body, headers=FORM)
    assert response.status_code == 200
    customer = response.json()
    assert customer["object"] == "customer"
    assert customer["id"].startswith("cus_")
    assert customer["metadata"] == {"order_id": "42", "plan": "pro"}
    assert customer["address"]["line1"] == "1 Main St"
    assert customer["address"]["city"] == "Berlin"
    assert customer["address"]["postal_code"] is None
    assert customer["preferred_locales"] == ["de", "en"]
    assert customer["livemode"] is False
    assert response.headers["Request-Id"].startswith("req_")
    assert response.headers["content-type"] == "application/json"


def test_expand_with_brackets_and_dotted_paths(http: httpx.Client) -> None:
    customer = _customer(http, email="expand@example.com")
    created = http.post(
        "/v1/payment_intents",
        data={
            "amount": "1234",
            "currency": "usd",
            "customer": customer["id"],
            "payment_method": "pm_card_visa",
            "confirm": "true",
            "automatic_payment_methods[enabled]": "true",
            "automatic_payment_methods[allow_redirects]": "never",
        },
    ).json()
    assert created["status"] == "succeeded"
    assert isinstance(created["latest_charge"], str)
    query = "expand[]=customer&expand[]=latest_charge.balance_transaction"
    expanded = http.get(f"/v1/payment_intents/{created['id']}?{query}").json()
    assert expanded["customer"]["email"] == "expand@example.com"
    txn = expanded["latest_charge"]["balance_transaction"]
    assert txn["object"] == "balance_transaction"
    assert txn["amount"] == 1234
    assert txn["fee"] == round(1234 * 0.029) + 30
    assert txn["net"] == 1234 - txn["fee"]
    # stored objects were not modified by expansion
    again = http.get(f"/v1/payment_intents/{created['id']}").json()
    assert again["customer"] == customer["id"]


def test_expand_of_a_non_expandable_field_is_rejected(http: httpx.Client) -> None:
    customer = _customer(http, email="x@example.com")
    for field in ("email", "description", "nonexistent"):
        response = http.get(f"/v1/customers/{customer['id']}", params={"expand[]": field})
        assert response.status_code == 400, field
        assert response.json()["error"]["param"] == "expand"
        assert f"({field})" in response.json()["error"]["message"]


def test_error_shape_for_missing_object(http: httpx.Client) -> None:
    response = http.get("/v1/customers/cus_doesnotexist")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "resource_missing"
    assert error["param"] == "id"
    assert error["message"] == "No such customer: 'cus_doesnotexist'"


def test_missing_and_unknown_and_invalid_params(http: httpx.Client) -> None:
    missing = http.post("/v1/payment_intents", data={"currency": "usd"})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "parameter_missing"
    assert missing.json()["error"]["param"] == "amount"

    unknown = http.post("/v1/customers", data={"emali": "typo@example.com"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "parameter_unknown"
    assert unknown.json()["error"]["param"] == "emali"

    invalid = http.post("/v1/payment_intents", data={"amount": "ten", "currency": "usd"})
    assert invalid.status_code == 400
    assert invalid.json()["error"]["code"] == "parameter_invalid_integer"


def test_card_error_body_carries_decline_code_and_payment_intent(http: httpx.Client) -> None:
    response = http.post(
        "/v1/payment_intents",
        data={
            "amount": "2000",
            "currency": "usd",
            "payment_method": "pm_card_visa_chargeDeclined",
            "confirm": "true",
            "automatic_payment_methods[enabled]": "true",
            "automatic_payment_methods[allow_redirects]": "never",
        },
    )
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["type"] == "card_error"
    assert error["code"] == "card_declined"
    assert error["decline_code"] == "generic_decline"
    assert error["message"] == "Your card was declined."
    assert error["payment_intent"]["status"] == "requires_payment_method"
    assert error["charge"].startswith("ch_")


def test_authentication_errors(sim_url: str) -> None:
    with httpx.Client(base_url=sim_url) as anon:
        none = anon.get("/v1/customers")
        assert none.status_code == 401
        assert "did not provide an API key" in none.json()["error"]["message"]
        live = anon.get("/v1/customers", headers={"Authorization": "Bearer sk_live_abcdefgh1234"})
        assert live.status_code == 401
        assert "Invalid API Key" in live.json()["error"]["message"]
        basic = base64.b64encode(b"sk_test_basic:").decode()
        ok = anon.get("/v1/customers", headers={"Authorization": f"Basic {basic}"})
        assert ok.status_code == 200
        publishable = anon.get("/v1/customers", headers={"Authorization": "Bearer pk_test_x"})
        assert publishable.status_code == 401
        assert "publishable API key" in publishable.json()["error"]["message"]


def test_unknown_url_is_a_stripe_404(http: httpx.Client) -> None:
    response = http.get("/v1/not_a_resource")
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith("Unrecognized request URL (GET:")


def test_stripe_account_header_for_unknown_account_is_403(http: httpx.Client) -> None:
    response = http.get("/v1/customers", headers={"Stripe-Account": "acct_nope"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "account_invalid"


def test_idempotency_key_replays_the_same_response(http: httpx.Client) -> None:
    key = str(uuid.uuid4())
    body = {
        "amount": "1500",
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "confirm": "true",
        "automatic_payment_methods[enabled]": "true",
        "automatic_payment_methods[allow_redirects]": "never",
    }
    first = http.post("/v1/payment_intents", data=body, headers={"Idempotency-Key": key})
    second = http.post("/v1/payment_intents", data=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert first.content == second.content
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Request-Id"] == first.headers["Request-Id"]
    charges = http.get("/v1/charges", params={"payment_intent": first.json()["id"]}).json()
    assert len(charges["data"]) == 1, "a replay must not charge twice"


def test_idempotency_key_with_different_params_is_an_idempotency_error(
    http: httpx.Client,
) -> None:
    key = str(uuid.uuid4())
    ok = http.post(
        "/v1/customers", data={"email": "a@example.com"}, headers={"Idempotency-Key": key}
    )
    assert ok.status_code == 200
    clash = http.post(
        "/v1/customers", data={"email": "b@example.com"}, headers={"Idempotency-Key": key}
    )
    assert clash.status_code == 400
    assert clash.json()["error"]["type"] == "idempotency_error"
    other_path = http.post(
        "/v1/payment_intents",
        data={"amount": "100", "currency": "usd"},
        headers={"Idempotency-Key": key},
    )
    assert other_path.status_code == 400
    assert other_path.json()["error"]["type"] == "idempotency_error"


def test_idempotency_key_replays_card_errors_but_not_validation_errors(
    http: httpx.Client,
) -> None:
    key = str(uuid.uuid4())
    body = {
        "amount": "1500",
        "currency": "usd",
        "payment_method": "pm_card_visa_chargeDeclinedInsufficientFunds",
        "confirm": "true",
        "automatic_payment_methods[enabled]": "true",
        "automatic_payment_methods[allow_redirects]": "never",
    }
    first = http.post("/v1/payment_intents", data=body, headers={"Idempotency-Key": key})
    second = http.post("/v1/payment_intents", data=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 402
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json() == second.json()

    key2 = str(uuid.uuid4())
    bad = http.post(
        "/v1/payment_intents", data={"currency": "usd"}, headers={"Idempotency-Key": key2}
    )
    assert bad.status_code == 400
    good = http.post(
        "/v1/payment_intents",
        data={"currency": "usd", "amount": "500"},
        headers={"Idempotency-Key": key2},
    )
    assert good.status_code == 200, "a request that failed validation is not remembered"


def test_idempotency_keys_are_scoped_per_account(http: httpx.Client) -> None:
    account = http.post("/v1/accounts", data={"type": "custom", "country": "US"}).json()
    key = str(uuid.uuid4())
    platform = http.post(
        "/v1/customers", data={"email": "p@example.com"}, headers={"Idempotency-Key": key}
    )
    connected = http.post(
        "/v1/customers",
        data={"email": "c@example.com"},
        headers={"Idempotency-Key": key, "Stripe-Account": account["id"]},
    )
    assert platform.status_code == connected.status_code == 200
    assert platform.json()["id"] != connected.json()["id"]


def test_list_pagination_newest_first(http: httpx.Client) -> None:
    email = f"page-{uuid.uuid4().hex[:8]}@example.com"
    ids = [_customer(http, email=email)["id"] for _ in range(5)]
    first = http.get("/v1/customers", params={"email": email, "limit": 2}).json()
    assert first["object"] == "list"
    assert first["url"] == "/v1/customers"
    assert [c["id"] for c in first["data"]] == [ids[4], ids[3]]
    assert first["has_more"] is True
    second = http.get(
        "/v1/customers", params={"email": email, "limit": 2, "starting_after": ids[3]}
    ).json()
    assert [c["id"] for c in second["data"]] == [ids[2], ids[1]]
    last = http.get(
        "/v1/customers", params={"email": email, "limit": 2, "starting_after": ids[1]}
    ).json()
    assert [c["id"] for c in last["data"]] == [ids[0]]
    assert last["has_more"] is False
    before = http.get(
        "/v1/customers", params={"email": email, "limit": 2, "ending_before": ids[1]}
    ).json()
    assert [c["id"] for c in before["data"]] == [ids[3], ids[2]]
    assert before["has_more"] is True


def test_global_list_pagination_uses_the_creation_order(http: httpx.Client) -> None:
    ids = [_customer(http)["id"] for _ in range(3)]
    page = http.get("/v1/customers", params={"limit": 2, "starting_after": ids[2]}).json()
    assert [c["id"] for c in page["data"]] == [ids[1], ids[0]]
    bad = http.get("/v1/customers", params={"starting_after": "cus_missing"})
    assert bad.status_code == 400
    limit = http.get("/v1/customers", params={"limit": 0})
    assert limit.status_code == 400


def test_metadata_merge_unset_and_clear(http: httpx.Client) -> None:
    customer = _customer(http, **{"metadata[a]": "1", "metadata[b]": "2"})
    merged = http.post(
        f"/v1/customers/{customer['id']}", data={"metadata[b]": "", "metadata[c]": "3"}
    ).json()
    assert merged["metadata"] == {"a": "1", "c": "3"}
    cleared = http.post(f"/v1/customers/{customer['id']}", data={"metadata": ""}).json()
    assert cleared["metadata"] == {}


def test_cors_preflight_for_stripe_js(http: httpx.Client) -> None:
    response = http.options(
        "/v1/payment_methods",
        headers={
            "Origin": "http://shop.localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "http://shop.localhost:3000")


def test_healthz(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
