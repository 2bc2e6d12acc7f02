"""Refuse text PostgreSQL cannot store: NUL characters and unpaired UTF-16 surrogates.

A NUL (`\\u0000`) in a JSON string passes pydantic but makes asyncpg fail (`text` and
`jsonb` reject it), and a lone surrogate cannot be encoded as UTF-8: both became 500s.
`TextGuardMiddleware` answers such requests with 422 `parameter_invalid` in the error
envelope before any route, fast path or the Idempotency-Key middleware sees them, for the
path, the query string, the headers and the body of every request of every service.

Cheap on the hot paths: one regex pass over the raw bytes of each part; only when it hits
(a NUL or surrogate escape, or a `\\\\u0000` inside a string) is the JSON body decoded to
tell a real hit from an escaped backslash and to name the offending field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from bos_common.asgi import read_body, replay_body
from bos_common.errors import error_response

__all__ = [
    "BadText",
    "TextGuardMiddleware",
    "find_bad_text_in_headers",
    "find_bad_text_in_json",
    "find_bad_text_in_query",
]

# Raw NUL; the JSON escapes of NUL and of any surrogate (paired ones are legitimate and
# sorted out by the decoding check); UTF-8-style encoded surrogates (invalid UTF-8).
_BODY_SUSPECT: Final = re.compile(rb"\x00|\\u(?:0000|[dD][89a-fA-F])|\xed[\xa0-\xbf]")
# The same in a query string: raw or percent-encoded NUL, percent-encoded surrogates.
_QUERY_SUSPECT: Final = re.compile(rb"\x00|%00|%[eE][dD]%[aAbB][0-9a-fA-F]")
# What a decoded string must not contain.
_BAD_CHARS: Final = re.compile("[\x00\ud800-\udfff]")
_RAW_BAD: Final = re.compile(rb"\x00|\xed[\xa0-\xbf]")

_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MESSAGE: Final = (
    "Invalid value for {param}: must not contain NUL characters or unpaired surrogates."
)
_MESSAGE_NO_PARAM: Final = "The request must not contain NUL characters or unpaired surrogates."


@dataclass(frozen=True, slots=True)
class BadText:
    """Where the bad text was found (`param` is None when it cannot be named)."""

    param: str | None


def _has_bad_chars(text: str) -> bool:
    return _BAD_CHARS.search(text) is not None


def _walk(value: Any, path: str) -> BadText | None:
    """Where the first string (key or value) with a bad character is, else None. A bad
    key is reported as its object's path (the key itself cannot be named safely)."""
    if isinstance(value, str):
        return BadText(path or None) if _has_bad_chars(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _has_bad_chars(key):
                return BadText(path or None)
            found = _walk(item, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _walk(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def find_bad_text_in_json(body: bytes) -> BadText | None:
    """The bad text of a JSON body, or None. A body that is not JSON is refused only for
    a raw NUL or an encoded surrogate (which no JSON route would accept either)."""
    if _BODY_SUSPECT.search(body) is None:
        return None
    try:
        document = json.loads(body)
    except ValueError:  # UnicodeDecodeError included
        return BadText(None) if _RAW_BAD.search(body) is not None else None
    return _walk(document, "")


def find_bad_text_in_query(query: bytes) -> BadText | None:
    """The bad text of a raw query string (`param` is the parameter's name), or None."""
    if _QUERY_SUSPECT.search(query) is None:
        return None
    for pair in query.split(b"&"):
        if _QUERY_SUSPECT.search(pair) is None:
            continue
        name_bytes = pair.split(b"=", 1)[0]
        if _QUERY_SUSPECT.search(name_bytes) is not None:
            return BadText(None)
        name = unquote(name_bytes.decode("latin-1").replace("+", " "))
        return BadText(name or None)
    return BadText(None)


def find_bad_text_in_headers(headers: Iterable[tuple[bytes, bytes]]) -> BadText | None:
    for name, value in headers:
        if b"\x00" in value:
            return BadText(name.decode("latin-1"))
    return None


class TextGuardMiddleware:
    """422 for a NUL or an unpaired surrogate anywhere in the request (see module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bad = (
            BadText(None)
            if "\x00" in scope["path"]
            else find_bad_text_in_query(scope.get("query_string", b""))
            or find_bad_text_in_headers(scope["headers"])
        )
        if bad is None and scope["method"] in _BODY_METHODS:
            body = await read_body(receive)
            bad = find_bad_text_in_json(body)
            receive = replay_body(body, receive)
        if bad is None:
            await self.app(scope, receive, send)
            return
        message = _MESSAGE.format(param=bad.param) if bad.param else _MESSAGE_NO_PARAM
        response = error_response(
            Request(scope), 422, "invalid_request", "parameter_invalid", message, param=bad.param
        )
        await response(scope, receive, send)
