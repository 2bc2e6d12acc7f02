"""Error bodies: one JSON shape for every failure, nothing sensitive in it."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy.exc as sa_exc
from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, field_validator

from bos_common.context import RequestContextMiddleware
from bos_common.errors import (
    DEFAULT_RETRY_AFTER,
    AuthenticationError,
    BOSError,
    Conflict,
    InternalError,
    InvalidRequest,
    NotFound,
    PaymentError,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    ValidationFailed,
    error_body,
    install_error_handlers,
    is_dependency_unavailable,
)

CARD = "4242424242424242"


class Card(BaseModel):
    number: str
    exp_month: int

    @field_validator("number")
    @classmethod
    def luhn_ok(cls, value: str) -> str:
        if value.endswith("0"):
            # A careless message that quotes the input: it must still not reach the body.
            raise ValueError(f"card {value} failed the check")
        return value


class ChargeIn(BaseModel):
    amount: int
    card: Card


def _raise_from_module(module_name: str, exc: BaseException) -> None:
    """Raises `exc` from a frame whose module is `module_name` (as the pool would)."""
    namespace: dict[str, Any] = {"__name__": module_name}
    exec("def boom(exc):\n    raise exc\n", namespace)  # noqa: S102 - test scaffolding
    namespace["boom"](exc)


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)

    @app.post("/charges")
    async def charge(body: ChargeIn) -> dict[str, int]:
        return {"amount": body.amount}

    @app.get("/items")
    async def items(limit: int = Query(20, ge=1, le=100)) -> dict[str, int]:
        return {"limit": limit}

    @app.get("/raise/{name}")
    async def raise_(name: str) -> None:
        raise RAISERS[name]()

    @app.get("/relayed-503")
    async def relayed() -> None:
        raise BOSError("service_unavailable", "A dependency is down.", status_code=503)

    return app


def _db_operational() -> BaseException:
    return sa_exc.OperationalError(
        "SELECT card_number FROM payments WHERE secret = $1",
        {"secret": "sk_live_zzz"},
        OSError("could not connect: password authentication for user bos"),
    )


def _pool_timeout() -> BaseException:
    try:
        _raise_from_module("sqlalchemy.pool.impl", TimeoutError())
    except TimeoutError as exc:
        return exc
    raise AssertionError("unreachable")


def _invalidated() -> BaseException:
    return sa_exc.DBAPIError("SELECT 1", None, Exception("gone"), connection_invalidated=True)


RAISERS: dict[str, Any] = {
    "bos_not_found": lambda: NotFound("product_not_found", "No such product: prod_1", param="id"),
    "bos_unavailable": lambda: ServiceUnavailable(),
    "bos_rate": lambda: RateLimited(retry_after=2.5),
    "http_conflict": lambda: HTTPException(409, "Checkout session is already complete."),
    "http_401": lambda: HTTPException(401, headers={"WWW-Authenticate": "Bearer"}),
    "http_503": lambda: HTTPException(503),
    "http_418": lambda: HTTPException(418),
    "db_operational": _db_operational,
    "db_interface": lambda: sa_exc.InterfaceError("SELECT 1", None, Exception("closed")),
    "db_invalidated": _invalidated,
    "db_integrity": lambda: sa_exc.IntegrityError("INSERT x", None, Exception("dup")),
    "pg_cannot_connect": lambda: asyncpg.exceptions.CannotConnectNowError("starting up"),
    "refused": lambda: ConnectionRefusedError(111, "Connection refused"),
    "pool_timeout": _pool_timeout,
    "plain_oserror": lambda: FileNotFoundError("/etc/secret.pem"),
    "crash": lambda: RuntimeError("boom with sk_test_leakme and SELECT * FROM keys"),
}


@pytest.fixture
def client() -> httpx.AsyncClient:
    # raise_app_exceptions=False: Starlette re-raises after the 500 handler has answered.
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def assert_error(resp: httpx.Response, status: int, type_: str, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    error = body["error"]
    assert set(body) == {"error"}
    assert error["type"] == type_
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"] == resp.headers["x-request-id"]
    assert resp.headers.get_list("x-request-id") == [error["request_id"]]
    return error  # type: ignore[no-any-return]


def test_error_body_shape() -> None:
    assert error_body("not_found", "resource_not_found", "Not found", "req_1") == {
        "error": {
            "type": "not_found",
            "code": "resource_not_found",
            "message": "Not found",
            "request_id": "req_1",
        }
    }
    assert error_body("invalid_request", "parameter_invalid", "Bad.", param="limit")["error"][
        "param"
    ] == ("limit")


@pytest.mark.parametrize(
    ("cls", "status", "type_", "code"),
    [
        (InvalidRequest, 400, "invalid_request", "invalid_request"),
        (ValidationFailed, 422, "invalid_request", "parameter_invalid"),
        (AuthenticationError, 401, "authentication_error", "authentication_required"),
        (PermissionDenied, 403, "permission_error", "permission_denied"),
        (NotFound, 404, "not_found", "resource_not_found"),
        (Conflict, 409, "conflict", "conflict"),
        (PaymentError, 402, "payment_error", "payment_failed"),
        (RateLimited, 429, "rate_limited", "rate_limited"),
        (ServiceUnavailable, 503, "service_unavailable", "service_unavailable"),
        (InternalError, 500, "internal_error", "internal_error"),
    ],
)
async def test_each_bos_error_class(
    cls: type[BOSError], status: int, type_: str, code: str
) -> None:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)

    @app.get("/x")
    async def x() -> None:
        raise cls()

    @app.get("/custom")
    async def custom() -> None:
        raise cls("my_code", "My message.", param="field")

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        error = assert_error(await c.get("/x"), status, type_, code)
        assert "param" not in error
        custom_error = assert_error(await c.get("/custom"), status, type_, "my_code")
        assert custom_error["message"] == "My message."
        assert custom_error["param"] == "field"


async def test_bos_error_param_and_headers(client: httpx.AsyncClient) -> None:
    error = assert_error(
        await client.get("/raise/bos_not_found"), 404, "not_found", "product_not_found"
    )
    assert error == {
        "type": "not_found",
        "code": "product_not_found",
        "message": "No such product: prod_1",
        "request_id": error["request_id"],
        "param": "id",
    }
    resp = await client.get("/raise/bos_unavailable")
    assert_error(resp, 503, "service_unavailable", "service_unavailable")
    assert resp.headers["retry-after"] == "1"
    resp = await client.get("/raise/bos_rate")
    assert_error(resp, 429, "rate_limited", "rate_limited")
    assert resp.headers["retry-after"] == "3"  # rounded up, never early


async def test_validation_error_names_field_without_echoing_card(
    client: httpx.AsyncClient,
) -> None:
    resp = await client.post(
        "/charges", json={"amount": 500, "card": {"number": CARD, "exp_month": "soon"}}
    )
    error = assert_error(resp, 422, "invalid_request", "parameter_invalid")
    assert error["param"] == "card.exp_month"
    assert "card.exp_month" in error["message"]
    assert CARD not in resp.text
    assert "soon" not in resp.text


async def test_validation_error_custom_validator_message_is_redacted(
    client: httpx.AsyncClient,
) -> None:
    bad = "4000056655665550"
    resp = await client.post(
        "/charges", json={"amount": 1, "card": {"number": bad, "exp_month": 1}}
    )
    error = assert_error(resp, 422, "invalid_request", "parameter_invalid")
    assert error["param"] == "card.number"
    assert bad not in resp.text
    assert "****5550" in error["message"]


async def test_validation_missing_parameter(client: httpx.AsyncClient) -> None:
    resp = await client.post("/charges", json={"card": {"number": CARD, "exp_month": 1}})
    error = assert_error(resp, 422, "invalid_request", "parameter_missing")
    assert error["param"] == "amount"
    assert error["message"] == "Missing required parameter: amount."


async def test_validation_query_and_bad_json(client: httpx.AsyncClient) -> None:
    error = assert_error(
        await client.get("/items?limit=1000"), 422, "invalid_request", "parameter_invalid"
    )
    assert error["param"] == "limit"
    assert "1000" not in error["message"]

    resp = await client.post(
        "/charges", content=b'{"amount": ', headers={"content-type": "application/json"}
    )
    error = assert_error(resp, 422, "invalid_request", "parameter_invalid")
    assert "param" not in error
    assert error["message"] == "The request body is not valid JSON."


async def test_http_exceptions(client: httpx.AsyncClient) -> None:
    error = assert_error(await client.get("/nope"), 404, "not_found", "resource_not_found")
    assert error["message"] == "Not found"

    resp = await client.delete("/items")
    assert_error(resp, 405, "invalid_request", "method_not_allowed")
    assert resp.headers["allow"] == "GET"

    error = assert_error(await client.get("/raise/http_conflict"), 409, "conflict", "conflict")
    assert error["message"] == "Checkout session is already complete."

    resp = await client.get("/raise/http_401")
    assert_error(resp, 401, "authentication_error", "authentication_required")
    assert resp.headers["www-authenticate"] == "Bearer"

    resp = await client.get("/raise/http_503")
    assert_error(resp, 503, "service_unavailable", "service_unavailable")
    assert resp.headers["retry-after"] == "1"

    assert_error(await client.get("/raise/http_418"), 418, "invalid_request", "invalid_request")


@pytest.mark.parametrize(
    "name",
    [
        "db_operational",
        "db_interface",
        "db_invalidated",
        "pg_cannot_connect",
        "refused",
        "pool_timeout",
    ],
)
async def test_dependency_down_is_503(client: httpx.AsyncClient, name: str) -> None:
    resp = await client.get(f"/raise/{name}")
    error = assert_error(resp, 503, "service_unavailable", "service_unavailable")
    assert error["message"] == "Service temporarily unavailable, please retry"
    assert resp.headers["retry-after"] == "1"
    for leak in ("SELECT", "sk_live", "password", "Traceback"):
        assert leak not in resp.text


@pytest.mark.parametrize("name", ["crash", "plain_oserror", "db_integrity"])
async def test_unexpected_is_500_without_details(client: httpx.AsyncClient, name: str) -> None:
    resp = await client.get(f"/raise/{name}", headers={"X-Request-Id": "trace-me-1"})
    error = assert_error(resp, 500, "internal_error", "internal_error")
    assert error["message"] == "Something went wrong on our side."
    assert error["request_id"] == "trace-me-1"
    for leak in ("sk_test", "SELECT", "secret.pem", "Traceback", "boom", "dup"):
        assert leak not in resp.text


async def test_unhandled_exception_logged_with_stack(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    from bos_common.logging import configure_logging

    configure_logging("errors-test")
    resp = await client.get("/raise/crash")
    assert resp.status_code == 500
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    logged = [line for line in lines if line.get("event") == "unhandled_exception"]
    assert logged, lines
    record = logged[0]
    assert record["request_id"] == resp.json()["error"]["request_id"]
    assert "Traceback" in record["exception"] and "RuntimeError" in record["exception"]
    assert "sk_test_leakme" not in json.dumps(record)


def test_is_dependency_unavailable_follows_cause() -> None:
    try:
        try:
            raise _db_operational()
        except sa_exc.OperationalError as db_error:
            raise RuntimeError("repository failed") from db_error
    except RuntimeError as wrapped:
        assert is_dependency_unavailable(wrapped)
    assert not is_dependency_unavailable(RuntimeError("x"))
    assert not is_dependency_unavailable(OSError("disk"))


async def test_a_relayed_503_still_says_when_to_retry(client: httpx.AsyncClient) -> None:
    """A 503 re-raised from another service's body (InternalClient) is a plain BOSError
    without headers; the response still carries Retry-After."""
    r = await client.get("/relayed-503")
    assert r.status_code == 503
    assert r.headers["retry-after"] == DEFAULT_RETRY_AFTER
