"""The derived parameter schemas: in step with the installed stripe SDK, and the checks they
compile to (unknown names at any depth, types, enum values, empty strings, required ones)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from stripe_sim import errors, param_schema

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gen_param_schemas.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_param_schemas", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_schemas_match_the_installed_sdk() -> None:
    generator = _generator()
    fresh = generator.generate()
    committed = orjson.loads(generator.OUTPUT.read_bytes())
    assert fresh["api_version"] == committed["api_version"], "run scripts/gen_param_schemas.py"
    assert fresh == committed, "stale: run tools/stripe-sim/scripts/gen_param_schemas.py"


def test_every_route_has_derived_parameters() -> None:
    from stripe_sim.resources import ROUTES

    for route in ROUTES:
        param_schema.validator(route.method, route.path, publishable=route.publishable)


def _refusal(method: str, path: str, params: dict[str, Any]) -> errors.StripeError:
    with pytest.raises(errors.StripeError) as info:
        param_schema.validator(method, path)(params)
    assert info.value.status == 400
    assert info.value.type == "invalid_request_error"
    assert info.value.refusal == "parameters"
    return info.value


CREATE_PI = ("POST", "/v1/payment_intents")
VALID_PI = {"amount": "1000", "currency": "usd"}


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"bogus": "1"}, "parameter_unknown", "bogus"),
        ({"transfer_data": {"bogus": "x"}}, "parameter_unknown", "transfer_data[bogus]"),
        (
            {"payment_method_options": {"card": {"bogus": "x"}}},
            "parameter_unknown",
            "payment_method_options[card][bogus]",
        ),
        ({"amount": "ten"}, "parameter_invalid_integer", "amount"),
        ({"amount": "1.5"}, "parameter_invalid_integer", "amount"),
        ({"description": ""}, "parameter_invalid_empty", "description"),
        ({"transfer_data": ""}, "parameter_invalid_empty", "transfer_data"),
        ({"transfer_data": {"amount": "1"}}, "parameter_missing", "transfer_data[destination]"),
        ({"capture_method": "sometimes"}, None, "capture_method"),
        ({"confirm": "yes"}, None, "confirm"),
        ({"description": {"a": "b"}}, None, "description"),
        ({"expand": "customer"}, None, "expand"),
        ({"metadata": "x"}, None, "metadata"),
    ],
)
def test_refusals(params: dict[str, Any], code: str | None, param: str) -> None:
    exc = _refusal(*CREATE_PI, {**VALID_PI, **params})
    assert (exc.code, exc.param) == (code, param)
    assert exc.body()["error"]["param"] == param


def test_enum_message_lists_the_values() -> None:
    exc = _refusal(*CREATE_PI, {**VALID_PI, "capture_method": "sometimes"})
    assert exc.message == (
        "Invalid capture_method: must be one of automatic, automatic_async, or manual"
    )
    exc = _refusal(
        *CREATE_PI, {**VALID_PI, "automatic_payment_methods": {"allow_redirects": "maybe"}}
    )
    assert exc.param == "automatic_payment_methods[allow_redirects]"
    assert exc.message.endswith("must be one of always or never")


def test_required_parameters() -> None:
    exc = _refusal(*CREATE_PI, {"amount": "1000"})
    assert (exc.code, exc.param) == ("parameter_missing", "currency")


def test_valid_forms_pass() -> None:
    validate = param_schema.validator(*CREATE_PI)
    validate(
        {
            **VALID_PI,
            "confirm": "true",
            "off_session": "recurring",
            "automatic_payment_methods": {"enabled": "true", "allow_redirects": "never"},
            "transfer_data": {"destination": "acct_1", "amount": "900"},
            "metadata": {"order": "o-1", "gone": ""},
            "expand": ["latest_charge", "customer"],
            "payment_method_options": {"card": {"request_three_d_secure": "any"}},
            "setup_future_usage": "off_session",
        }
    )
    validate({**VALID_PI, "metadata": ["numeric", "keys"]})  # metadata[0]=numeric
    # "" unsets what the SDK marks emptyable
    param_schema.validator("POST", "/v1/payment_intents/{intent}")({"metadata": ""})
    # unions: an integer or a range
    events = param_schema.validator("GET", "/v1/events")
    events({"created": "1700000000"})
    events({"created": {"gte": "1700000000", "lt": "1800000000"}})


def test_client_secret_only_with_stripe_js_routes() -> None:
    confirm = ("POST", "/v1/payment_intents/{intent}/confirm")
    param_schema.validator(*confirm, publishable=True)({"client_secret": "pi_1_secret_x"})
    exc = _refusal(*confirm, {"client_secret": "pi_1_secret_x"})
    assert exc.code == "parameter_unknown"


def test_pinned_version_is_the_sdks() -> None:
    import stripe

    assert param_schema.api_version() == stripe.api_version


def test_enums_stripe_does_not_enforce_take_any_value() -> None:
    """``x-stripeBypassValidation`` in Stripe's spec (``data/open_enums.json``)."""
    param_schema.validator("POST", "/v1/webhook_endpoints")(
        {"url": "https://bos.example/hook", "enabled_events": ["an.event.newer.than.the.sdk"]}
    )
    param_schema.validator(*CREATE_PI)({**VALID_PI, "payment_method_data": {"type": "card"}})
    exc = _refusal("POST", "/v1/webhook_endpoints", {"url": "https://x", "enabled_events": ""})
    assert exc.code == "parameter_invalid_empty"
