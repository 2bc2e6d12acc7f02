"""Simulator responses carry what Stripe's OpenAPI schema requires, with the types it gives,
for the objects BOS uses and the nested objects it reads (``spec_schemas.json``, vendored from
Stripe's spec by ``scripts/extract_spec_schemas.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import orjson
import pytest

SPEC = orjson.loads((Path(__file__).parent / "spec_schemas.json").read_bytes())
REF_PREFIX = "#/components/schemas/"


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 -> JSON Schema: ``nullable`` becomes ``null`` allowed, refs point at $defs."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if "$ref" in converted:
        converted["$ref"] = "#/$defs/" + converted["$ref"].removeprefix(REF_PREFIX)
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


DEFS = {name: _json_schema(schema) for name, schema in SPEC["schemas"].items()}


def _problems(kind: str, obj: Any) -> list[str]:
    schema = {"$defs": DEFS, "$ref": f"#/$defs/{kind}"}
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{kind}.{'.'.join(str(p) for p in leaf.absolute_path)}: {leaf.message[:200]}"
        for error in validator.iter_errors(obj)
        for leaf in _leaves(error)
    ]


def _leaves(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """A nullable nested object fails as a whole (``anyOf``): name what inside it is wrong,
    not that it is not ``null``."""
    if not error.context:
        return [error]
    found = [
        leaf
        for sub in error.context
        for leaf in _leaves(sub)
        if not (leaf.validator == "type" and leaf.validator_value == "null")
    ]
    return found or [error]


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


CARDS_ONLY = {
    "automatic_payment_methods[enabled]": "true",
    "automatic_payment_methods[allow_redirects]": "never",
}


@pytest.fixture(scope="module")
def objects(sim_url: str) -> Iterator[dict[str, list[Any]]]:
    """One of each object BOS uses, in the states it sees them."""
    http = httpx.Client(
        base_url=sim_url, headers={"Authorization": "Bearer sk_test_schemas"}, timeout=10
    )
    found: dict[str, list[Any]] = {}

    def keep(obj: Any) -> Any:
        found.setdefault(obj["object"], []).append(obj)
        return obj

    account = keep(_ok(http.post("/v1/accounts", data={"type": "express", "country": "US"})))
    http.post(f"/_sim/accounts/{account['id']}/verify")
    keep(_ok(http.get(f"/v1/accounts/{account['id']}")))
    customer = keep(_ok(http.post("/v1/customers", data={"email": "s@example.com"})))
    pm = keep(
        _ok(http.post("/v1/payment_methods/pm_card_visa/attach", data={"customer": customer["id"]}))
    )
    keep(_ok(http.post("/v1/setup_intents", data={"customer": customer["id"], **CARDS_ONLY})))
    keep(
        _ok(
            http.post(
                "/v1/setup_intents",
                data={"payment_method": "pm_card_visa", "confirm": "true", **CARDS_ONLY},
            )
        )
    )
    keep(
        _ok(
            http.post(
                "/v1/setup_intents",
                data={
                    "payment_method": "pm_card_authenticationRequired",
                    "confirm": "true",
                    "use_stripe_sdk": "true",
                    **CARDS_ONLY,
                },
            )
        )
    )
    payment = {"amount": "5000", "currency": "usd", "confirm": "true", **CARDS_ONLY}
    paid = keep(
        _ok(
            http.post(
                "/v1/payment_intents",
                data={
                    **payment,
                    "customer": customer["id"],
                    "payment_method": pm["id"],
                    "application_fee_amount": "250",
                    "transfer_data[destination]": account["id"],
                },
            )
        )
    )
    keep(
        _ok(
            http.post(
                "/v1/payment_intents",
                data={
                    **payment,
                    "payment_method": "pm_card_authenticationRequired",
                    "return_url": "https://shop.example/back",
                    "automatic_payment_methods[allow_redirects]": "always",
                },
            )
        )
    )
    declined = http.post(
        "/v1/payment_intents", data={**payment, "payment_method": "pm_card_visa_chargeDeclined"}
    )
    keep(declined.json()["error"]["payment_intent"])
    keep(_ok(http.post("/v1/payment_intents", data={"amount": "700", "currency": "usd"})))
    charge = keep(_ok(http.get(f"/v1/charges/{paid['latest_charge']}")))
    keep(_ok(http.get(f"/v1/balance_transactions/{charge['balance_transaction']}")))
    if charge.get("transfer"):
        keep(_ok(http.get(f"/v1/transfers/{charge['transfer']}")))
    if charge.get("application_fee"):
        keep(_ok(http.get(f"/v1/application_fees/{charge['application_fee']}")))
    keep(_ok(http.post("/v1/refunds", data={"payment_intent": paid["id"], "amount": "1000"})))
    platform_payment = keep(
        _ok(http.post("/v1/payment_intents", data={**payment, "payment_method": "pm_card_visa"}))
    )
    keep(
        _ok(
            http.post(
                "/v1/transfers",
                data={
                    "amount": "100",
                    "currency": "usd",
                    "destination": account["id"],
                    "source_transaction": platform_payment["latest_charge"],
                },
            )
        )
    )
    keep(
        _ok(
            http.post(
                "/v1/webhook_endpoints",
                data={"url": "https://bos.example/hook", "enabled_events[0]": "*"},
            )
        )
    )
    for event in _ok(http.get("/v1/events", params={"limit": "100"}))["data"]:
        keep(event)
        if event["data"]["object"].get("object") in SPEC["objects"]:
            keep(event["data"]["object"])  # what webhooks carry
    yield found
    http.close()


@pytest.mark.parametrize("kind", SPEC["objects"])
def test_responses_match_the_spec(objects: dict[str, list[Any]], kind: str) -> None:
    assert objects.get(kind), f"no {kind} was produced"
    problems = [problem for obj in objects[kind] for problem in _problems(kind, obj)]
    assert problems == []


def test_account_payout_schedule_is_typed(objects: dict[str, list[Any]]) -> None:
    schedule = objects["account"][-1]["settings"]["payouts"]["schedule"]
    assert isinstance(schedule["delay_days"], int)
    assert isinstance(schedule["interval"], str)
