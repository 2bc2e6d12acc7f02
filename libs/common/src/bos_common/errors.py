"""Domain errors and the handlers that turn every failure into the public error body.

Body: `{"error": {"type", "code", "message", "request_id"[, "param"]}}` (docs/api.md,
"Errors"). Bodies never carry input values, SQL, stack traces or secrets: those
go to the server log only.
"""

from __future__ import annotations

import math
import socket
import types
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar, Final

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import orjson
import sqlalchemy.exc as sa_exc
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from bos_common.context import REQUEST_ID_HEADER, SCOPE_KEY, new_request_id, request_id_of
from bos_common.logging import get_logger, redact_text

__all__ = [
    "AuthenticationError",
    "BOSError",
    "Conflict",
    "InternalError",
    "InvalidRequest",
    "NotFound",
    "PaymentError",
    "PermissionDenied",
    "RateLimited",
    "ServiceUnavailable",
    "ValidationFailed",
    "error_body",
    "error_response",
    "install_error_handlers",
    "is_dependency_unavailable",
]

log = get_logger(__name__)

UNAVAILABLE_MESSAGE: Final = "Service temporarily unavailable, please retry"
INTERNAL_MESSAGE: Final = "Something went wrong on our side."
DEFAULT_RETRY_AFTER: Final = "1"


# --------------------------------------------------------------------------- errors


class BOSError(Exception):
    """An error meant for the caller: raised by domain code, rendered by the handler."""

    status_code: int = 500
    type: str = "internal_error"
    default_code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = INTERNAL_MESSAGE

    def __init__(
        self,
        code: str | None = None,
        message: str | None = None,
        *,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        status_code: int | None = None,
    ) -> None:
        self.code: str = code or self.default_code
        self.message: str = message or self.default_message
        self.param: str | None = param
        self.headers: dict[str, str] = dict(headers or {})
        if status_code is not None:
            self.status_code = status_code
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidRequest(BOSError):
    status_code = 400
    type = "invalid_request"
    default_code = "invalid_request"
    default_message = "The request is invalid."


class ValidationFailed(BOSError):
    status_code = 422
    type = "invalid_request"
    default_code = "parameter_invalid"
    default_message = "A parameter is invalid."


class AuthenticationError(BOSError):
    status_code = 401
    type = "authentication_error"
    default_code = "authentication_required"
    default_message = "Authentication required."


class PermissionDenied(BOSError):
    status_code = 403
    type = "permission_error"
    default_code = "permission_denied"
    default_message = "You do not have permission to do this."


class NotFound(BOSError):
    status_code = 404
    type = "not_found"
    default_code = "resource_not_found"
    default_message = "Not found"


class Conflict(BOSError):
    status_code = 409
    type = "conflict"
    default_code = "conflict"
    default_message = "The request conflicts with the current state of the resource."


class PaymentError(BOSError):
    status_code = 402
    type = "payment_error"
    default_code = "payment_failed"
    default_message = "The payment could not be completed."


def _retry_after_header(retry_after: float | str | None) -> dict[str, str]:
    if retry_after is None:
        return {}
    if isinstance(retry_after, str):
        return {"Retry-After": retry_after}
    # Retry-After takes whole seconds; round up so clients never retry too early.
    return {"Retry-After": str(max(1, math.ceil(retry_after)))}


class RateLimited(BOSError):
    status_code = 429
    type = "rate_limited"
    default_code = "rate_limited"
    default_message = "Too many requests, please retry later."

    def __init__(
        self,
        code: str | None = None,
        message: str | None = None,
        *,
        retry_after: float | str | None = None,
        **kw: Any,
    ) -> None:
        headers = {**_retry_after_header(retry_after), **dict(kw.pop("headers", None) or {})}
        super().__init__(code, message, headers=headers, **kw)


class ServiceUnavailable(BOSError):
    status_code = 503
    type = "service_unavailable"
    default_code = "service_unavailable"
    default_message = UNAVAILABLE_MESSAGE

    def __init__(
        self,
        code: str | None = None,
        message: str | None = None,
        *,
        retry_after: float | str = DEFAULT_RETRY_AFTER,
        **kw: Any,
    ) -> None:
        headers = {**_retry_after_header(retry_after), **dict(kw.pop("headers", None) or {})}
        super().__init__(code, message, headers=headers, **kw)


class InternalError(BOSError):
    status_code = 500
    type = "internal_error"
    default_code = "internal_error"
    default_message = INTERNAL_MESSAGE


# --------------------------------------------------------------------------- bodies


def error_body(
    type: str,
    code: str,
    message: str,
    request_id: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "type": type,
        "code": code,
        "message": message,
        "request_id": request_id,
    }
    if param is not None:
        error["param"] = param
    return {"error": error}


def _request_id(request: Request) -> str:
    """The request's id; minted (once) if RequestContextMiddleware is not installed."""
    rid = request_id_of(request)
    if rid is None:
        rid = new_request_id()
        request.scope[SCOPE_KEY] = rid
    return rid


def error_response(
    request: Request,
    status_code: int,
    type: str,
    code: str,
    message: str,
    *,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """JSON error response carrying the request id in the body and in `X-Request-Id`.

    The header is set here too because the catch-all handler runs outside
    RequestContextMiddleware (see bos_common.context.SCOPE_KEY).
    """
    rid = _request_id(request)
    body = error_body(type, code, message, request_id=rid, param=param)
    all_headers = {**(headers or {}), REQUEST_ID_HEADER: rid}
    return Response(
        content=orjson.dumps(body),
        status_code=status_code,
        headers=all_headers,
        media_type="application/json",
    )


# --------------------------------------------------------------------------- BOSError


async def _bos_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BOSError)
    if exc.status_code >= 500:
        # A deliberate error (a dependency down, not ready): its type and cause say what
        # happened, a stack would not. Without one, because under overload every request
        # lands here, and rendering and redacting a traceback each time would make the
        # overload worse.
        cause = exc.__cause__
        log.warning(
            "bos_error",
            status=exc.status_code,
            code=exc.code,
            cause=type(cause).__qualname__ if cause is not None else None,
            detail=str(cause)[:200] if cause is not None else None,
            request_id=_request_id(request),
        )
    headers = exc.headers
    if exc.status_code == 503:
        # Every 503 says when to retry, also one relayed from another service.
        headers = {"Retry-After": DEFAULT_RETRY_AFTER, **headers}
    return error_response(
        request,
        exc.status_code,
        exc.type,
        exc.code,
        exc.message,
        param=exc.param,
        headers=headers,
    )


# --------------------------------------------------------------------------- validation


def _param_name(loc: Sequence[Any]) -> str | None:
    """('body', 'card', 'number') -> 'card.number'; ('query', 'items', 0) -> 'items[0]'."""
    parts = (
        list(loc[1:])
        if loc and loc[0] in ("body", "query", "path", "header", "cookie")
        else list(loc)
    )
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or None


def _safe_reason(error: Mapping[str, Any]) -> str:
    """The pydantic message without the input value.

    pydantic-core's own messages never quote the input; a custom validator's
    ("Value error, ...") might, so it is passed through redaction and cut short.
    """
    msg = str(error.get("msg") or "Invalid value")
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    msg = redact_text(msg)[:200].rstrip(".")
    return msg


def _validation_detail(error: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """(code, message, param) for the first validation error."""
    loc: Sequence[Any] = error.get("loc") or ()
    param = _param_name(loc)
    kind = str(error.get("type", ""))
    if kind == "missing":
        if param is None:
            return "parameter_missing", "The request body is missing.", None
        return "parameter_missing", f"Missing required parameter: {param}.", param
    if kind == "json_invalid":
        return "parameter_invalid", "The request body is not valid JSON.", None
    if param is None:
        return "parameter_invalid", f"Invalid request body: {_safe_reason(error)}.", None
    return "parameter_invalid", f"Invalid value for {param}: {_safe_reason(error)}.", param


async def _validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first: Mapping[str, Any] = errors[0] if errors else {}
    code, message, param = _validation_detail(first)
    return error_response(request, 422, "invalid_request", code, message, param=param)


# --------------------------------------------------------------------------- HTTPException

_HTTP_DEFAULTS: Final[dict[int, tuple[str, str, str]]] = {
    400: ("invalid_request", "invalid_request", "The request is invalid."),
    401: ("authentication_error", "authentication_required", "Authentication required."),
    402: ("payment_error", "payment_failed", "The payment could not be completed."),
    403: ("permission_error", "permission_denied", "You do not have permission to do this."),
    404: ("not_found", "resource_not_found", "Not found"),
    405: ("invalid_request", "method_not_allowed", "This method is not allowed on this path."),
    406: ("invalid_request", "not_acceptable", "The requested representation is not available."),
    409: ("conflict", "conflict", "The request conflicts with the current state of the resource."),
    413: ("invalid_request", "request_too_large", "The request body is too large."),
    415: ("invalid_request", "unsupported_media_type", "Unsupported content type."),
    422: ("invalid_request", "parameter_invalid", "A parameter is invalid."),
    429: ("rate_limited", "rate_limited", "Too many requests, please retry later."),
    503: ("service_unavailable", "service_unavailable", UNAVAILABLE_MESSAGE),
}


def _http_defaults(status: int) -> tuple[str, str, str]:
    if status in _HTTP_DEFAULTS:
        return _HTTP_DEFAULTS[status]
    if status < 500:
        return ("invalid_request", "invalid_request", "The request is invalid.")
    return ("internal_error", "internal_error", INTERNAL_MESSAGE)


def _is_default_phrase(status: int, detail: str) -> bool:
    try:
        return detail == HTTPStatus(status).phrase
    except ValueError:
        return False


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status in (204, 304) or status < 400:
        return Response(status_code=status, headers=headers)
    type_, code, message = _http_defaults(status)
    # A custom string detail (HTTPException(404, "Product not found")) is a message
    # written by us; the stock reason phrase is replaced by our sentence.
    if isinstance(exc.detail, str) and exc.detail and not _is_default_phrase(status, exc.detail):
        message = redact_text(exc.detail)[:300]
    if status == 503:
        headers.setdefault("Retry-After", DEFAULT_RETRY_AFTER)
    if status == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return error_response(request, status, type_, code, message, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves on this path (Starlette's 405 names only those of
    the first route that matched the path, where one path has a route per method)."""
    methods: set[str] = set()
    routes = list(getattr(request.app, "routes", ()))
    while routes:
        route = routes.pop()
        included = getattr(route, "original_router", None)  # FastAPI's include_router
        if included is not None:
            routes.extend(included.routes)
            continue
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(request.scope)[0] != Match.NONE:
            methods.update(route_methods)
    return ", ".join(sorted(methods))


# --------------------------------------------------------------------------- dependency down

# Always mean "the database (or another dependency) cannot be reached right now".
_UNAVAILABLE_TYPES: Final[tuple[type[BaseException], ...]] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # QueuePool checkout timeout
    sa_exc.DisconnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.TooManyConnectionsError,
    ConnectionError,  # ConnectionRefusedError, ConnectionResetError, BrokenPipeError
)
# A bare OSError / TimeoutError / socket.gaierror means "dependency down" only when it
# comes out of the DB stack; elsewhere (files, our own bugs) it stays a 500.
_DEPENDENCY_MODULES: Final = ("sqlalchemy.", "asyncpg.", "bos_common.db")


def _raised_inside(tb: types.TracebackType | None, prefixes: tuple[str, ...]) -> bool:
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if isinstance(module, str) and module.startswith(prefixes):
            return True
        tb = tb.tb_next
    return False


def is_dependency_unavailable(exc: BaseException) -> bool:
    """True if `exc` (or what it was raised from) means a dependency is unreachable."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _UNAVAILABLE_TYPES):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, OSError | socket.gaierror) and _raised_inside(
            current.__traceback__, _DEPENDENCY_MODULES
        ):
            return True
        current = current.__cause__
    return False


def _unavailable_response(request: Request, exc: BaseException) -> Response:
    # The detail (which may hold SQL or a DSN) goes to the log, never to the body. No
    # stack: during an outage every request lands here and the type says enough.
    log.warning(
        "dependency_unavailable",
        error=type(exc).__qualname__,
        detail=str(exc)[:500],
        path=request.url.path,
        request_id=_request_id(request),
    )
    return error_response(
        request,
        503,
        "service_unavailable",
        "service_unavailable",
        UNAVAILABLE_MESSAGE,
        headers={"Retry-After": DEFAULT_RETRY_AFTER},
    )


def _internal_response(request: Request, exc: BaseException) -> Response:
    log.error(
        "unhandled_exception",
        error=type(exc).__qualname__,
        method=request.method,
        path=request.url.path,
        # Explicit: this handler runs after RequestContextMiddleware reset the contextvar.
        request_id=_request_id(request),
        exc_info=exc,
    )
    return error_response(request, 500, "internal_error", "internal_error", INTERNAL_MESSAGE)


async def _dependency_error_handler(request: Request, exc: Exception) -> Response:
    if is_dependency_unavailable(exc):
        return _unavailable_response(request, exc)
    return _internal_response(request, exc)


async def _unhandled_error_handler(request: Request, exc: Exception) -> Response:
    # Starlette calls this from ServerErrorMiddleware and re-raises afterwards, so the
    # server also logs the exception; the body stays generic.
    return await _dependency_error_handler(request, exc)


async def exception_response(request: Request, exc: Exception) -> Response:
    """The contract's error response for any exception, for ASGI code that runs outside
    FastAPI's exception handling (the gateway's proxy fast path)."""
    if isinstance(exc, BOSError):
        return await _bos_error_handler(request, exc)
    return await _dependency_error_handler(request, exc)


# --------------------------------------------------------------------------- install


def install_error_handlers(app: FastAPI) -> None:
    """Registers the handlers; replaces FastAPI's defaults for validation and HTTP errors."""
    app.add_exception_handler(BOSError, _bos_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    for exc_type in (*_UNAVAILABLE_TYPES, sa_exc.DBAPIError, OSError):
        app.add_exception_handler(exc_type, _dependency_error_handler)
    app.add_exception_handler(Exception, _unhandled_error_handler)
