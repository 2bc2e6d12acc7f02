"""The parity helper of fast paths (bos_common.testing): it takes the fast paths out of
an app, and it fails on every difference a client could see."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bos_common.testing import assert_same_answer, without_fast_paths

REQUEST = httpx.Request("GET", "http://svc/v1/things")


def answer(
    body: Any = None, status: int = 200, request_id: str = "req_1", **headers: str
) -> httpx.Response:
    return httpx.Response(
        status,
        json={"id": "thing_1", "n": 1} if body is None else body,
        headers={"x-request-id": request_id, **headers},
        request=REQUEST,
    )


def error(request_id: str, answered_as: str | None = None) -> httpx.Response:
    body = {"error": {"type": "invalid_request", "code": "x", "request_id": request_id}}
    return answer(body, 400, answered_as or request_id)


def test_the_same_answer_passes_and_request_ids_may_differ() -> None:
    assert_same_answer(answer(), answer(request_id="req_2"))
    assert_same_answer(error("req_1"), error("req_2"))


@pytest.mark.parametrize(
    "other",
    [
        answer(status=201),
        answer(**{"retry-after": "1"}),
        answer({"id": "thing_1", "n": 2}),
        answer({"n": 1, "id": "thing_1"}),  # same fields, another order
    ],
    ids=["status", "header", "body", "order"],
)
def test_a_difference_fails(other: httpx.Response) -> None:
    with pytest.raises(AssertionError):
        assert_same_answer(answer(), other)


def test_an_error_must_carry_its_answers_request_id() -> None:
    with pytest.raises(AssertionError):
        assert_same_answer(error("req_1"), error("req_2", answered_as="req_3"))


def test_normalize_leaves_out_generated_values() -> None:
    def ids_aside(body: Any) -> Any:
        return {**body, "id": "<id>"}

    other = answer({"id": "thing_2", "n": 1})
    with pytest.raises(AssertionError):
        assert_same_answer(answer(), other)
    assert_same_answer(answer(), other, normalize=ids_aside)


class Marker:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def test_without_fast_paths_takes_out_what_install_fast_paths_put_in() -> None:
    from bos_common.app import ServiceRuntime

    app = FastAPI()
    kept = Middleware(Marker)
    app.user_middleware.append(kept)
    route = Route("/fast", lambda request: PlainTextResponse("fast"))
    middleware = Middleware(Marker)
    ServiceRuntime.install_fast_paths(None, app, routes=[route], middleware=[middleware])  # type: ignore[arg-type]
    assert app.router.routes[0] is route and app.user_middleware[-1] is middleware
    without_fast_paths(app)
    assert route not in app.router.routes
    assert app.user_middleware == [kept]
    with pytest.raises(AssertionError):
        without_fast_paths(FastAPI())  # nothing to take out: the test would prove nothing
