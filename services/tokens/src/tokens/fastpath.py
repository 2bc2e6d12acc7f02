"""`POST /v1/session-tokens` answered in plain ASGI, before FastAPI's router.

Minting is this service's hot path (every browser session starts with one), and on it
FastAPI's routing and dependency resolution cost several times what the token's HMAC and
its INSERT do. This middleware sits innermost, inside the request id, telemetry and
Idempotency-Key middleware (so those behave exactly as for any route), and answers the
common case itself: a valid signed `api_key` identity and a JSON body that validates as
`CreateSessionToken`. Anything else (another or no identity, a body that does not
validate, another content type) goes on to the FastAPI route with the body handed over
untouched, so every error keeps the contract's exact shape; the FastAPI route also stays
the documented one (OpenAPI). The domain logic is the same function either way
(`service.create_session_token`).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Final

from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from bos_common.asgi import read_body, replay_body
from bos_common.auth import IDENTITY_HEADER, Identity, verify_identity
from bos_common.errors import exception_response
from bos_common.session_tokens import SessionKeys
from tokens import service
from tokens.schemas import CreateSessionToken
from tokens.token_store import SessionTokenStore

PATH: Final = "/v1/session-tokens"
# What the telemetry middleware labels the request with (it reads scope["route"]).
ROUTE: Final = SimpleNamespace(path=PATH)
_IDENTITY: Final = IDENTITY_HEADER.encode()
_JSON: Final = b"application/json"
_HEADERS: Final = [(b"content-type", _JSON)]


class SessionTokenFastPath:
    def __init__(
        self, app: ASGIApp, *, store: SessionTokenStore, keys: SessionKeys, secret: str
    ) -> None:
        self.app = app
        self.store = store
        self.keys = keys
        self.secret = secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        identity_header = content_type = None
        for name, value in scope["headers"]:
            if name == _IDENTITY:
                identity_header = value
            elif name == b"content-type":
                content_type = value
        body = await read_body(receive)
        identity = _api_key_identity(identity_header, self.secret)
        request = _parse(body, content_type) if identity is not None else None
        if identity is None or request is None:
            await self.app(scope, replay_body(body, receive), send)
            return
        scope["route"] = ROUTE
        try:
            created = await service.create_session_token(self.store, self.keys, identity, request)
        except Exception as exc:  # noqa: BLE001 - rendered as the FastAPI handlers would
            response = await exception_response(Request(scope), exc)
            await response(scope, receive, send)
            return
        payload = created.model_dump_json().encode()
        headers = [*_HEADERS, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _api_key_identity(header: bytes | None, secret: str) -> Identity | None:
    """The caller's identity if it is a valid API-key identity; None leaves the request
    to the route (which answers 401/403 for anything else)."""
    if header is None:
        return None
    identity = verify_identity(header.decode("latin-1"), secret)
    if identity is None or identity.principal_type != "api_key" or not identity.org_id:
        return None
    return identity


def _parse(body: bytes, content_type: bytes | None) -> CreateSessionToken | None:
    """The body if FastAPI would read it as JSON and it validates; else None. FastAPI
    (strict content type, its default) reads a body as JSON only under a JSON content
    type; without one the route refuses it, so the route answers."""
    if content_type is None or content_type.split(b";", 1)[0].strip().lower() != _JSON:
        return None
    try:
        return CreateSessionToken.model_validate_json(body)
    except ValidationError:
        return None
