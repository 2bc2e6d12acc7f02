"""bos_common.openapi: every operation documents its errors in the envelope; 405 names
every method of the path."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from bos_common import openapi
from bos_common.errors import install_error_handlers


class Thing(BaseModel):
    name: str


def _app() -> FastAPI:
    router = APIRouter()

    @router.get("/v1/things")
    async def list_things() -> list[Thing]:
        return []

    @router.post("/v1/things", status_code=201)
    async def create_thing(body: Thing) -> Thing:
        return body

    @router.get("/v1/things/{thing_id}")
    async def get_thing(thing_id: str) -> Thing:
        return Thing(name=thing_id)

    @router.post(
        "/v1/things/{thing_id}/pay", responses=openapi.error_responses({402: "card_declined"})
    )
    async def pay(thing_id: str) -> Thing:
        return Thing(name=thing_id)

    @router.post("/v1/hooks", openapi_extra={"security": []})
    async def hook() -> dict[str, bool]:
        return {"received": True}

    app = FastAPI()
    app.include_router(router)
    install_error_handlers(app)
    openapi.install(app)
    return app


def _statuses(doc: dict[str, Any], path: str, method: str) -> list[str]:
    return list(doc["paths"][path][method]["responses"])


def test_each_operation_documents_the_errors_of_its_kind() -> None:
    doc = _app().openapi()
    assert _statuses(doc, "/v1/things", "get") == ["200", "400", "401", "403", "422", "429", "503"]
    assert _statuses(doc, "/v1/things", "post") == [
        "201",
        "400",
        "401",
        "403",
        "404",
        "409",
        "413",
        "422",
        "429",
        "503",
    ]
    assert "404" in _statuses(doc, "/v1/things/{thing_id}", "get")
    assert "402" in _statuses(doc, "/v1/things/{thing_id}/pay", "post")
    # Signed, not authenticated: no 401/403.
    assert not {"401", "403"} & set(_statuses(doc, "/v1/hooks", "post"))


def test_errors_use_the_envelope_with_an_example_and_fastapi_schemas_are_gone() -> None:
    doc = _app().openapi()
    responses = doc["paths"]["/v1/things/{thing_id}/pay"]["post"]["responses"]
    for status in ("402", "422", "429"):
        media = responses[status]["content"]["application/json"]
        assert media["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
        assert media["example"]["error"]["request_id"]
    assert responses["402"]["content"]["application/json"]["example"]["error"]["code"] == (
        "card_declined"
    )
    assert "Retry-After" in responses["429"]["headers"]
    schemas = doc["components"]["schemas"]
    assert "ErrorResponse" in schemas and "ErrorDetail" in schemas
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert "HTTPValidationError" not in str(doc)


async def test_405_names_every_method_of_the_path() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.patch("/v1/things")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["error"]["code"] == "method_not_allowed"
