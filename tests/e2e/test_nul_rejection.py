"""A NUL character in any string a client sends is a 422 in the error envelope, never a
500 (issue 15.3; bos_common.text_guard). Driven by the gateway's /openapi.json: every
string field of every write's body (metadata keys and values included), every path
parameter of a write, every query parameter of a read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from merchant import ADMIN_TOKEN, Merchant, new_merchant

pytestmark = pytest.mark.e2e

NUL_TEXT = "a\u0000b"
WRITES = ("post", "put", "patch", "delete")
KEY = object()  # a path step meaning "a key of this object" (metadata keys)


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    param: str | None  # what the error's `param` must name
    json: Any = None
    query: dict[str, str] | None = None


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def string_paths(
    doc: dict[str, Any], schema: dict[str, Any], path: tuple[Any, ...] = (), depth: int = 0
) -> Iterator[tuple[Any, ...]]:
    """Paths (names, 0 for an item, KEY for an object's key) to every string of a schema."""
    schema = _resolve(doc, schema)
    if depth > 6:
        return
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        yield from string_paths(doc, branch, path, depth + 1)
    kind = schema.get("type")
    if kind == "string":
        yield path
    elif kind == "array" and "items" in schema:
        yield from string_paths(doc, schema["items"], (*path, 0), depth + 1)
    elif kind == "object":
        for name, prop in schema.get("properties", {}).items():
            yield from string_paths(doc, prop, (*path, name), depth + 1)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            yield (*path, KEY)
            yield from string_paths(doc, extra, (*path, "plan"), depth + 1)
        elif not schema.get("properties"):
            yield (*path, "id")  # a free-form object (a Stripe event)


def body_with_nul(path: tuple[Any, ...]) -> tuple[Any, str | None]:
    """The smallest body holding NUL at `path`, and the `param` naming it."""
    value: Any = NUL_TEXT
    for step in reversed(path):
        if step is KEY:
            value = {NUL_TEXT: "v"}
        elif step == 0:
            value = [value]
        else:
            value = {step: value}
    param = ""
    for step in (s for s in path if s is not KEY):  # a bad key is reported as its object
        param += f"[{step}]" if step == 0 else (f".{step}" if param else str(step))
    return value, param or None


def cases(doc: dict[str, Any]) -> Iterator[Case]:
    for template, item in doc["paths"].items():
        for method, operation in item.items():
            params = operation.get("parameters", [])
            concrete = template
            for p in params:
                if p["in"] == "path":
                    concrete = concrete.replace("{" + p["name"] + "}", "x_1")
            if method in WRITES:
                body = operation.get("requestBody", {}).get("content", {}).get("application/json")
                if body:
                    seen = set()
                    for path in string_paths(doc, body["schema"]):
                        json, param = body_with_nul(path)
                        if param not in seen:
                            seen.add(param)
                            yield Case(method, concrete, param, json=json)
                for p in params:
                    if p["in"] == "path":
                        bad = template.replace("{" + p["name"] + "}", "x%00")
                        for other in params:
                            bad = bad.replace("{" + other["name"] + "}", "x_1")
                        yield Case(method, bad, None)
            for p in params:
                if p["in"] == "query":
                    yield Case(method, concrete, p["name"], query={p["name"]: NUL_TEXT})


def credential(path: str, merchant: Merchant, portal_token: str) -> dict[str, str]:
    if path.startswith("/admin/"):
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    if path.startswith("/v1/portal/"):
        return {"Authorization": f"Bearer {portal_token}"}
    return merchant.auth


async def test_15_3_a_nul_in_any_string_of_any_operation_is_422_never_500(
    gateway: httpx.AsyncClient, sim: httpx.AsyncClient
) -> None:
    # A request per case as fast as the gateway answers: more than the default API-key
    # limit (100/second) allows, which is not what this test is about.
    merchant = await new_merchant(gateway, sim, rate_limits={"api_key": "10000/second"})
    doc = (await gateway.get("/openapi.json")).json()
    checkout = await merchant.checkout((await merchant.price(0))["id"])
    assert (await merchant.post(f"/v1/checkout-sessions/{checkout['id']}/confirm-free")).is_success
    customer_id = (await merchant.wait_status(checkout["id"], "complete"))["customer"]["id"]
    r = await merchant.post("/v1/portal-sessions", {"customer_id": customer_id})
    assert r.status_code == 201, r.text
    portal_token = r.json()["token"]
    failures = []
    count = 0
    for case in cases(doc):
        count += 1
        response = await gateway.request(
            case.method.upper(),
            case.path,
            json=case.json,
            params=case.query,
            headers=credential(case.path, merchant, portal_token),
        )
        error = response.json().get("error", {}) if response.content else {}
        ok = (
            response.status_code == 422
            and error.get("code") == "parameter_invalid"
            and error.get("type") == "invalid_request"
            and error.get("request_id") == response.headers.get("x-request-id")
            and error.get("param") == case.param
        )
        if not ok:
            failures.append((case, response.status_code, response.text[:200]))
    assert count > 80, f"only {count} cases: is /openapi.json complete?"
    assert not failures, "\n".join(map(str, failures))
