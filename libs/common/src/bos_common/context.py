"""Per-request context: the request id, carried in a contextvar and in `X-Request-Id`.

`RequestContextMiddleware` is a pure ASGI middleware (no BaseHTTPMiddleware: that one
wraps every request in an extra task and buffers streaming bodies, which costs on the
hot path and breaks contextvar propagation).
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar
from typing import Final

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER: Final = "X-Request-Id"
# The id is also stored in the ASGI scope: Starlette runs the catch-all (500) handler
# in ServerErrorMiddleware, outside user middleware, after this middleware has already
# reset the contextvar; the handler reads it back from the scope (and the server span
# takes it from there as an attribute).
SCOPE_KEY: Final = "bos.request_id"

_HEADER_BYTES: Final = REQUEST_ID_HEADER.lower().encode("latin-1")
_MAX_LEN: Final = 128
_SANE = re.compile(r"[A-Za-z0-9._-]{1,128}")

request_id_var: ContextVar[str | None] = ContextVar("bos_request_id", default=None)


def new_request_id() -> str:
    """`req_` + 24 hex chars (96 random bits)."""
    return "req_" + secrets.token_hex(12)


def is_valid_request_id(value: str) -> bool:
    """A caller-supplied id is honoured only if it cannot inject anything into logs or headers."""
    return len(value) <= _MAX_LEN and _SANE.fullmatch(value) is not None


def get_request_id() -> str | None:
    return request_id_var.get()


def request_id_of(conn: HTTPConnection) -> str | None:
    """The request id for a request, from the contextvar or, once that is reset, the scope."""
    rid = request_id_var.get()
    if rid is not None:
        return rid
    stored = conn.scope.get(SCOPE_KEY)
    return stored if isinstance(stored, str) else None


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == _HEADER_BYTES:
            try:
                candidate = value.decode("ascii")
            except UnicodeDecodeError:
                return None
            return candidate if is_valid_request_id(candidate) else None
    return None


class RequestContextMiddleware:
    """Takes or mints the request id, exposes it to the request's code, echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        rid = _incoming_request_id(scope) or new_request_id()
        scope[SCOPE_KEY] = rid
        header = (_HEADER_BYTES, rid.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Drop any id set further in (e.g. by an error handler) so it appears once.
                headers = [h for h in message.get("headers", ()) if h[0].lower() != _HEADER_BYTES]
                headers.append(header)
                message["headers"] = headers
            await send(message)

        token = request_id_var.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
