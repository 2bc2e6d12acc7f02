"""Vendor what the simulator needs from Stripe's OpenAPI spec, so its tests run from the repo
alone (the spec itself is not in the repo: Stripe publishes it as ``openapi/spec3.json`` in
its ``stripe/openapi`` repository; the extract was made from API version 2023-08-16):

- ``tests/spec_schemas.json``: the component schemas the simulator's responses are checked
  against (``tests/test_response_schemas.py``): the objects BOS uses and the nested objects it
  reads; a reference to any other component becomes ``{}`` (anything), descriptions and ``x-``
  extensions are dropped;
- ``src/stripe_sim/data/open_enums.json``: per route, the request parameters whose enum Stripe
  does not enforce (``x-stripeBypassValidation``: new values pass), read by
  ``gen_param_schemas.py``.

    .venv/bin/python tools/stripe-sim/scripts/extract_spec_schemas.py path/to/spec3.json
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "tests" / "spec_schemas.json"
OPEN_ENUMS_OUTPUT = ROOT / "src" / "stripe_sim" / "data" / "open_enums.json"
FORM = "application/x-www-form-urlencoded"
REF_PREFIX = "#/components/schemas/"
PLACEHOLDER = re.compile(r"\{[^}]*\}")

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


def _open_enum_paths(node: Any, path: str, found: list[str]) -> None:
    if not isinstance(node, dict):
        return
    if node.get("x-stripeBypassValidation") and "enum" in node:
        found.append(path)
    for key, child in node.get("properties", {}).items():
        _open_enum_paths(child, f"{path}[{key}]" if path else key, found)
    for key in ("anyOf", "oneOf"):
        for child in node.get(key, []):
            _open_enum_paths(child, path, found)
    if "items" in node:
        _open_enum_paths(node["items"], f"{path}[]", found)


def open_enums(spec: dict[str, Any]) -> dict[str, list[str]]:
    """``"POST /v1/payment_methods"``-style route keys (placeholders as ``{}``) -> the
    parameter paths (``a[b]``, arrays as ``[]``) whose enum Stripe does not enforce."""
    result: dict[str, list[str]] = {}
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            found: list[str] = []
            body = operation.get("requestBody", {}).get("content", {}).get(FORM, {})
            _open_enum_paths(body.get("schema", {}), "", found)
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    _open_enum_paths(parameter.get("schema", {}), parameter["name"], found)
            if found:
                result[f"{method.upper()} {PLACEHOLDER.sub('{}', path)}"] = sorted(set(found))
    return dict(sorted(result.items()))


def _write(path: Path, data: Any) -> None:
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    print(f"wrote {path}")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: extract_spec_schemas.py path/to/spec3.json (Stripe's OpenAPI spec)")
    path = Path(sys.argv[1])
    spec = orjson.loads(path.read_bytes())
    _write(OUTPUT, extract(spec))
    source = f"Stripe OpenAPI spec3, API version {spec['info']['version']}"
    _write(OPEN_ENUMS_OUTPUT, {"source": source, "routes": open_enums(spec)})


if __name__ == "__main__":
    main()
