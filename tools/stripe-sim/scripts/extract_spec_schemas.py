"""Vendor the few component schemas of Stripe's OpenAPI spec that the simulator's responses are
checked against (``tests/test_response_schemas.py``), so the test runs from the repo alone.

The spec lives outside the product (``../shared/stripe/spec3-2023-08-16.json``). Kept: the
objects BOS uses and the nested objects it reads; a reference to any other component becomes
``{}`` (anything), descriptions and ``x-`` extensions are dropped.

    .venv/bin/python tools/stripe-sim/scripts/extract_spec_schemas.py [path/to/spec.json]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = ROOT.parents[2] / "shared" / "stripe" / "spec3-2023-08-16.json"
OUTPUT = ROOT / "tests" / "spec_schemas.json"
REF_PREFIX = "#/components/schemas/"

#: the objects BOS uses
OBJECTS = (
    "account", "application_fee", "balance_transaction", "charge", "customer", "event",
    "payment_intent", "payment_method", "refund", "setup_intent", "transfer", "webhook_endpoint",
)  # fmt: skip
#: nested objects BOS reads (account settings and requirements, next actions, errors, ...)
NESTED = (
    "account_capabilities", "account_payout_settings", "account_requirements", "account_settings",
    "address", "api_errors", "billing_details", "charge_transfer_data", "fee",
    "invoice_setting_customer_setting", "notification_event_data", "notification_event_request",
    "payment_flows_automatic_payment_methods_payment_intent",
    "payment_flows_automatic_payment_methods_setup_intent", "payment_intent_next_action",
    "payment_intent_next_action_redirect_to_url", "payment_method_card",
    "payment_method_details", "payment_method_details_card", "setup_intent_next_action",
    "setup_intent_next_action_redirect_to_url", "transfer_data", "transfer_schedule",
)  # fmt: skip
KEPT = frozenset(OBJECTS + NESTED)


def _trim(node: Any) -> Any:
    if isinstance(node, list):
        return [_trim(item) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.removeprefix(REF_PREFIX)
        return {"$ref": ref} if name in KEPT else {}
    return {
        key: _trim(value)
        for key, value in node.items()
        if key not in ("description", "title") and not key.startswith("x-")
    }


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    components = spec["components"]["schemas"]
    return {
        "source": f"Stripe OpenAPI spec3, API version {spec['info']['version']}",
        "objects": list(OBJECTS),
        "schemas": {name: _trim(components[name]) for name in sorted(KEPT)},
    }


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SPEC
    extracted = extract(orjson.loads(path.read_bytes()))
    OUTPUT.write_bytes(
        orjson.dumps(extracted, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
