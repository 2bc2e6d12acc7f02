"""TextGuardMiddleware: NUL and unpaired surrogates are a 422 in the error envelope."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bos_common.context import RequestContextMiddleware
from bos_common.text_guard import (
    TextGuardMiddleware,
    find_bad_text_in_json,
    find_bad_text_in_query,
)


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"length": len(body), "query": dict(request.query_params)})


def _client() -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST", "PATCH"])])
    app.add_middleware(TextGuardMiddleware)
    app.add_middleware(RequestContextMiddleware)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def _post(body: str) -> dict[str, object]:
    return {"content": body.encode("utf-8", "surrogatepass"), "headers": _JSON}


_JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ('{"name": "a\\u0000b"}', "name"),
        ('{"metadata": {"k\\u0000": "v"}}', "metadata"),
        ('{"metadata": {"plan": "v\\u0000"}}', "metadata.plan"),
        ('{"features": ["ok", "x\\ud800"]}', "features[1]"),
        ('{"customer": {"email": "a\\uDFFF@b.co"}}', "customer.email"),
        ('{"name": "\\udc00\\ud83d"}', "name"),
    ],
)
async def test_nul_or_lone_surrogate_in_a_json_body_is_422_naming_the_field(
    body: str, param: str
) -> None:
    async with _client() as client:
        response = await client.post("/v1/products", content=body.encode(), headers=_JSON)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert error["code"] == "parameter_invalid"
    assert error["param"] == param
    assert error["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "emoji \\ud83d\\ude00 paired"}',
        '{"name": "an escaped backslash: \\\\u0000"}',
        '{"name": "caf\\u00e9", "n": 1}',
        "not json at all",
        "",
    ],
)
async def test_clean_bodies_pass_untouched(body: str) -> None:
    async with _client() as client:
        response = await client.post("/x", content=body.encode(), headers=_JSON)
    assert response.status_code == 200
    assert response.json()["length"] == len(body.encode())


async def test_raw_nul_byte_in_a_body_is_422() -> None:
    async with _client() as client:
        response = await client.patch("/x", content=b'{"a": "\x00"}', headers=_JSON)
    assert response.status_code == 422
    assert "param" not in response.json()["error"]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("customer_id=cus_%00", "customer_id"),
        ("limit=3&email=a%ED%A0%80", "email"),
        ("limit=3&email=a%ed%bf%bf", "email"),
        ("na%00me=1", None),
    ],
)
async def test_nul_or_surrogate_in_the_query_string_is_422(query: str, param: str | None) -> None:
    async with _client() as client:
        response = await client.get(f"/v1/subscriptions?{query}")
    assert response.status_code == 422
    assert response.json()["error"].get("param") == param


async def test_a_clean_query_with_utf8_passes() -> None:
    async with _client() as client:
        response = await client.get("/x?email=caf%C3%A9%F0%9F%98%80&a=%25&b=%2500")
    assert response.status_code == 200
    assert response.json()["query"]["b"] == "%00"


async def test_nul_in_the_path_is_422() -> None:
    async with _client() as client:
        response = await client.get("/v1/products/prod_%00")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "parameter_invalid"


def test_the_scanners_name_what_they_found() -> None:
    assert find_bad_text_in_json(b'{"a": "fine"}') is None
    found = find_bad_text_in_json(b'[{"a": "\\u0000"}]')
    assert found is not None and found.param == "[0].a"
    assert find_bad_text_in_query(b"a=1&b=2") is None
