"""Every public operation documents the errors it can answer, in the contract's envelope.

`document_errors(doc)` completes a service's OpenAPI document: each operation gets the
error statuses that apply to its kind (authenticated or not, read or write, with path
parameters or not), each with the `ErrorResponse` schema and an example, and FastAPI's
validation error schema (`{"detail": [...]}`, which BOS never sends) is replaced by the
envelope. A route declares anything else it answers (`402`, a specific `400`) with
`responses=error_responses({402: "payment_failed"})` or just `responses={402: {}}`;
the envelope and an example are filled in here. `ServiceRuntime.create_app` installs it
for every service, so routes need no per-route boilerplate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ErrorDetail", "ErrorResponse", "document_errors", "error_responses", "install"]

ErrorType = Literal[
    "authentication_error",
    "permission_error",
    "not_found",
    "invalid_request",
    "conflict",
    "rate_limited",
    "payment_error",
    "service_unavailable",
    "internal_error",
]


class ErrorDetail(BaseModel):
    model_config = ConfigDict(title="ErrorDetail")

    type: ErrorType
    code: str = Field(description="Stable, machine-readable reason, e.g. `product_not_found`.")
    message: str = Field(description="A sentence for a person; never echoes input values.")
    request_id: str | None = Field(description="The request's `X-Request-Id`.")
    param: str | None = Field(
        default=None, description="The offending parameter (`customer.email`), when one is."
    )


class ErrorResponse(BaseModel):
    """`{"error": {...}}`: the body of every 4xx and 5xx answer."""

    model_config = ConfigDict(title="ErrorResponse")

    error: ErrorDetail


# status -> (type, a typical code, message, description of when it is answered)
_STATUSES: Final[dict[int, tuple[str, str, str, str]]] = {
    400: (
        "invalid_request",
        "invalid_request",
        "The request is invalid.",
        "The request cannot be carried out as sent (a body that cannot be parsed, or a "
        "business rule such as an unavailable product or an invalid coupon).",
    ),
    401: (
        "authentication_error",
        "invalid_api_key",
        "Invalid API key.",
        "No credential, or an invalid, expired or revoked one (`invalid_api_key`, "
        "`session_expired`, `session_invalid`, `authentication_required`).",
    ),
    402: (
        "payment_error",
        "payment_failed",
        "The payment could not be completed.",
        "The payment was refused.",
    ),
    403: (
        "permission_error",
        "permission_denied",
        "You do not have permission to do this.",
        "The credential is valid but may not perform this operation (e.g. a session "
        "token on a merchant-only operation, a request from an origin not allowed).",
    ),
    404: (
        "not_found",
        "resource_not_found",
        "Not found",
        "The object does not exist, or belongs to another organization.",
    ),
    409: (
        "conflict",
        "idempotency_key_in_use",
        "A request with this Idempotency-Key is still being processed.",
        "The object's state does not allow this now, or a request with the same "
        "`Idempotency-Key` is still running.",
    ),
    413: (
        "invalid_request",
        "request_too_large",
        "The request body is too large.",
        "The request body is over the gateway's size limit.",
    ),
    422: (
        "invalid_request",
        "parameter_invalid",
        "Invalid value for limit: Input should be less than or equal to 100.",
        "A parameter is missing or invalid (`param` names it; text must not contain NUL "
        "characters or unpaired surrogates), or an `Idempotency-Key` was reused with "
        "another request.",
    ),
    429: (
        "rate_limited",
        "rate_limited",
        "Too many requests, please retry later.",
        "Over the rate limit; `Retry-After` says when to retry.",
    ),
    503: (
        "service_unavailable",
        "service_unavailable",
        "Service temporarily unavailable, please retry",
        "A dependency is unavailable; nothing was changed. `Retry-After` says when to retry.",
    ),
}
_RETRY_AFTER: Final = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 0},
    }
}
_WRITE_METHODS: Final = frozenset({"post", "put", "patch", "delete"})
_METHODS: Final = frozenset({"get", "head", "options", *_WRITE_METHODS})
_SCHEMA_REF: Final = "#/components/schemas/ErrorResponse"
_FASTAPI_VALIDATION_SCHEMAS: Final = ("HTTPValidationError", "ValidationError")


def error_responses(codes: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that answers a specific error: status -> its usual code
    (the example's); the rest is filled in by `document_errors`."""
    return {
        status: {"content": {"application/json": {"example": _example(status, code)}}}
        for status, code in codes.items()
    }


def _example(status: int, code: str | None = None) -> dict[str, Any]:
    type_, default_code, message, _ = _STATUSES.get(status, _STATUSES[400])
    error: dict[str, Any] = {
        "type": type_,
        "code": code or default_code,
        "message": message if code is None else code.replace("_", " ").capitalize() + ".",
        "request_id": "req_4f1c9b2e8a7d6c5b4a3f2e1d",
    }
    if status == 422:
        error["param"] = "limit"
    return {"error": error}


def _statuses_for(method: str, operation: Mapping[str, Any]) -> list[int]:
    authenticated = operation.get("security") != []
    write = method in _WRITE_METHODS
    has_path_params = any(p.get("in") == "path" for p in operation.get("parameters", ()))
    # 429 everywhere: a request carrying a credential counts against that credential's
    # limit, an anonymous one against its address's, whatever the operation.
    statuses = [400, 422, 429, 503]
    if authenticated:
        statuses += [401, 403]
    if write:
        statuses += [404, 409]
    elif has_path_params:
        statuses.append(404)
    if "requestBody" in operation:
        statuses.append(413)
    return sorted(set(statuses))


def _complete(status: int, response: dict[str, Any]) -> None:
    """Gives a declared error response the envelope schema, an example and a description."""
    content = response.setdefault("content", {})
    media = content.setdefault("application/json", {})
    if "schema" not in media or "HTTPValidationError" in str(media["schema"]):
        media["schema"] = {"$ref": _SCHEMA_REF}
    media.setdefault("example", _example(status))
    known = _STATUSES.get(status)
    if not response.get("description") or response["description"] in (
        "Validation Error",
        "Additional Response",
    ):
        response["description"] = known[3] if known else "An error."
    if status in (429, 503):
        response.setdefault("headers", {}).update(_RETRY_AFTER)


def document_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """Adds the error responses to every operation of `doc` (in place; idempotent)."""
    for item in doc.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _METHODS or not isinstance(operation, dict):
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status in _statuses_for(method, operation):
                responses.setdefault(str(status), {})
            for key, response in responses.items():
                if key.isdigit() and int(key) >= 400:
                    _complete(int(key), response)
            operation["responses"] = dict(sorted(responses.items()))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    error_schemas = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schemas.pop("$defs", {}))
    schemas["ErrorResponse"] = error_schemas
    return doc


def install(app: FastAPI) -> None:
    """Makes `app.openapi()` return the document completed by `document_errors`."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
