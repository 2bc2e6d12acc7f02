"""`POST /v1/webhooks/stripe` answered in plain ASGI, before FastAPI's router.

Intake is this service's hot path, and FastAPI's routing, request and response handling
would cost about as much CPU as recording the event. This middleware sits innermost,
inside the request id, telemetry and Idempotency-Key middleware (so those behave exactly
as for any route), and runs the route's own function (`api.receive`) on the body: every
answer, success or error, is the route's, rendered by the same handlers
(`exception_response`). The FastAPI route stays the documented one (OpenAPI) and answers
anything else on that path (another method).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Final

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from bos_common.asgi import read_body
from bos_common.errors import exception_response
from webhooks.api import receive as receive_event
from webhooks.runtime import WebhooksRuntime

PATH: Final = "/v1/webhooks/stripe"
# What the telemetry middleware labels the request with (it reads scope["route"]).
ROUTE: Final = SimpleNamespace(path=PATH)
_SIGNATURE: Final = b"stripe-signature"
_CONTENT_TYPE: Final = (b"content-type", b"application/json")


class StripeWebhookFastPath:
    def __init__(self, app: ASGIApp, *, runtime: WebhooksRuntime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        signature = None
        for name, value in scope["headers"]:
            if name == _SIGNATURE:
                # As Starlette's Headers decode it.
                signature = value.decode("latin-1")
                break
        scope["route"] = ROUTE
        try:
            answer = await receive_event(self.runtime, await read_body(receive), signature)
        except Exception as exc:  # noqa: BLE001 - rendered as the FastAPI handlers would
            response = await exception_response(Request(scope), exc)
            await response(scope, receive, send)
            return
        body = orjson.dumps(answer)
        headers = [_CONTENT_TYPE, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
